"""Request paths that no record ID can redirect, and the API base URL check."""

from __future__ import annotations

import ipaddress
from urllib.parse import quote, urlsplit

from chatra_client.errors import ConfigError, InvalidIdError

RESOURCES = frozenset({"messages", "pushedMessages", "clients"})


def _check_resource(resource: str) -> None:
    if resource not in RESOURCES:
        msg = f"Unknown Chatra resource {resource!r}; expected one of {sorted(RESOURCES)}."
        raise ValueError(msg)


def escape_id(record_id: str) -> str:
    """Escape a record ID as exactly one URL path segment.

    Client IDs are whatever the website set, so they may hold ``/``, ``?``, ``#``, spaces or
    non-ASCII: every reserved character is percent-encoded. ``.`` and ``..`` are refused
    because requests decodes an escaped dot again, and servers on the way read a bare dot
    segment as "this" or "parent" directory.

    Raises:
        InvalidIdError: If the ID is not a string, is blank, is a dot segment, or is not
            valid Unicode.
    """
    if not isinstance(record_id, str) or not record_id.strip():
        msg = f"Invalid record ID {record_id!r}: an ID must be a non-blank string."
        raise InvalidIdError(msg)
    if record_id in {".", ".."}:
        msg = f"Invalid record ID {record_id!r}: a dot segment cannot name a record."
        raise InvalidIdError(msg)
    try:
        encoded = record_id.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (JSON allows "\udc00") has no UTF-8 form, so no URL can carry it.
        msg = f"Invalid record ID {record_id!r}: it holds a lone surrogate, not valid Unicode."
        raise InvalidIdError(msg) from None
    return quote(encoded, safe="")


def id_problem(value: object) -> str | None:
    """Why a value from an ID source or a body cannot be a record ID, or None when it can.

    Strings and (non-boolean) integers can; an integer stands for its decimal digits.
    """
    if isinstance(value, bool) or not isinstance(value, str | int):
        return f"ID must be a string, got {type(value).__name__}"
    text = str(value)
    if not text.strip():
        return "empty ID" if not text else "ID is only whitespace"
    try:
        escape_id(text)
    except InvalidIdError as error:
        return str(error).rstrip(".")
    return None


def record_path(resource: str, record_id: str) -> str:
    """Return the path of one record, e.g. ``/clients/a%2Fb``."""
    _check_resource(resource)
    return f"/{resource}/{escape_id(record_id)}"


def collection_path(resource: str) -> str:
    """Return the path records are created at, e.g. ``/pushedMessages/``."""
    _check_resource(resource)
    return f"/{resource}/"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_api_url(url: str) -> str:
    """Check the API base URL and return it without a trailing slash.

    Plain ``http://`` would send the secret key in clear text, so it is allowed only for
    loopback hosts (the local sandbox).

    Raises:
        ConfigError: For anything but https, or http on a loopback host.
    """
    parts = urlsplit(url.strip()) if isinstance(url, str) else None
    if parts is None or not parts.hostname or parts.scheme not in {"http", "https"}:
        msg = f"api_url {url!r} is not an http(s) URL; use e.g. https://app.chatra.io/api."
        raise ConfigError(msg)
    if parts.username or parts.password or parts.query or parts.fragment:
        msg = "api_url must not carry credentials, a query or a fragment; keys go in key settings."
        raise ConfigError(msg)
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        msg = (
            f"api_url uses plain http for host {parts.hostname!r}, which would send the keys "
            "unencrypted; use https (plain http is allowed only for 127.0.0.1 or localhost)."
        )
        raise ConfigError(msg)
    return url.strip().rstrip("/")
