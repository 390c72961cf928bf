"""Routing on the raw request path, so an escaped ``/`` inside an ID never splits it.

The path is split on ``/`` first and each segment is percent-decoded afterwards: ``%2F`` is a
character of the ID, ``%2E%2E`` is the ID ``..``, and an unescaped ``/`` makes the path too long
to match any endpoint. An unescaped ``.`` or ``..`` segment matches nothing either, as a web
server in front of the real API would have resolved it as a relative path.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

RESOURCES = ("messages", "pushedMessages", "clients")
_RECORD_METHODS = {
    "messages": ("GET", "PUT", "DELETE"),
    "pushedMessages": ("GET", "PUT", "DELETE"),
    "clients": ("GET", "PUT"),
}
_COLLECTION_METHODS = {"messages": ("POST",), "pushedMessages": ("POST",)}


@dataclass(frozen=True)
class Endpoint:
    """One API endpoint: a resource collection (``record_id`` None) or one record."""

    resource: str
    record_id: str | None

    @property
    def methods(self) -> tuple[str, ...]:
        """The HTTP methods this endpoint answers."""
        table = _COLLECTION_METHODS if self.record_id is None else _RECORD_METHODS
        return table.get(self.resource, ())


def split_path(raw_path: bytes) -> list[str] | None:
    """Split a raw path on ``/`` and percent-decode each segment.

    Returns:
        The decoded segments (the first is ``""`` for the leading slash), or None when a
        segment does not decode to UTF-8 or is an unescaped dot segment.
    """
    raw_parts = raw_path.decode("latin-1").split("/")
    if any(part in {".", ".."} for part in raw_parts):
        return None
    try:
        return [unquote(part, errors="strict") for part in raw_parts]
    except UnicodeDecodeError:
        return None


def api_endpoint(parts: list[str]) -> Endpoint | None:
    """Return the endpoint addressed by the segments after ``/api``, or None if none is.

    ``/api/pushedMessages`` and ``/api/pushedMessages/`` are both the collection; a record
    path with a trailing slash matches nothing, because the slash could belong to the ID.
    """
    if not parts or parts[0] not in RESOURCES:
        return None
    resource = parts[0]
    if len(parts) == 1 or parts[1:] == [""]:
        endpoint = Endpoint(resource, None)
    elif len(parts) == 2:
        endpoint = Endpoint(resource, parts[1])
    else:
        return None
    return endpoint if endpoint.methods else None
