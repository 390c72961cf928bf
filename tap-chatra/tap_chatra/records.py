"""Turning an API body into a record: known keys as typed, everything else kept in `extra`.

Chatra's objects are only partly documented, so nothing it returns is dropped: a top-level key
the schema does not know, or one whose value (or a value nested in it) has a type the schema
does not allow, goes into the `extra` object column unchanged, and is logged once per stream
and key.
"""

from __future__ import annotations

import datetime as dt
import typing as t

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Mapping

EXTRA = "extra"
#: Typed timestamp columns the tap adds beside Chatra's epoch-millisecond keys: column -> key.
TIME_COLUMNS = {"created_at": "createdAt", "last_visit_at": "lastVisitAt"}
#: Columns the tap computes; an API key of the same name is kept in `extra` instead.
DERIVED = frozenset({EXTRA, *TIME_COLUMNS})
#: Lists of objects whose items get a typed timestamp beside their own epoch-ms key:
#: list key -> (item key, typed item key).
TIMED_ITEMS = {"lastVisitPages": ("visitedAt", "visited_at")}


def json_type(value: object) -> str:
    """The JSON Schema type name of a decoded JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def fits(value: object, schema: Mapping[str, t.Any]) -> bool:
    """Whether a value has a type its property schema allows (no type = any).

    So must each value nested in it that the schema declares (an object's properties, an
    array's items): a target validates those too.
    """
    declared = schema.get("type")
    kind = json_type(value)
    if declared is not None:
        allowed = {declared} if isinstance(declared, str) else set(declared)
        if kind not in allowed and not (kind == "integer" and "number" in allowed):
            return False
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        return all(fits(item, properties[key]) for key, item in value.items() if key in properties)
    items = schema.get("items")
    if isinstance(value, list) and isinstance(items, dict):
        return all(fits(item, items) for item in value)
    return True


def _mismatch(value: object, schema: Mapping[str, t.Any]) -> str:
    """Why a value does not fit its property schema, for the log."""
    outer = {key: part for key, part in schema.items() if key not in {"properties", "items"}}
    if fits(value, outer):
        return "holds a nested value of a type the schema does not allow"
    return f"arrived as {json_type(value)}, not as the schema says"


def utc_datetime_from_ms(value: object) -> str | None:
    """Epoch milliseconds as an ISO 8601 UTC timestamp, or None if not a sane number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        moment = dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.isoformat()


class RecordShaper:
    """Shapes one stream's API bodies into records that match its schema."""

    def __init__(self, stream: str, schema: Mapping[str, t.Any], logger: logging.Logger) -> None:
        self._stream = stream
        self._properties: Mapping[str, Mapping[str, t.Any]] = schema["properties"]
        self._logger = logger
        self._noted: set[str] = set()

    def _keep_aside(self, key: str, why: str) -> None:
        if key not in self._noted:
            self._noted.add(key)
            self._logger.warning(
                "%s: API key '%s' %s; it is kept in the '%s' column.",
                self._stream,
                key,
                why,
                EXTRA,
            )

    def shape(self, body: Mapping[str, t.Any], record_id: str) -> dict[str, t.Any]:
        """Return the record for a body fetched as `record_id`."""
        record: dict[str, t.Any] = dict.fromkeys(self._properties)
        extra: dict[str, t.Any] = {}
        for key, value in body.items():
            schema = self._properties.get(key)
            if key in DERIVED:
                extra[key] = value
                self._keep_aside(key, "has the name of a column the tap derives")
            elif schema is None:
                extra[key] = value
                self._keep_aside(key, "is not in the schema")
            elif not fits(value, schema):
                extra[key] = value
                self._keep_aside(key, _mismatch(value, schema))
            else:
                record[key] = value
        # The record is keyed by the ID it was fetched as, which state and other records
        # refer to; an answer naming another ID keeps that ID in `extra`.
        if record.get("id") not in {None, record_id}:
            extra.setdefault("id", record["id"])
        record["id"] = record_id
        for column, key in TIME_COLUMNS.items():
            if column in self._properties:
                record[column] = utc_datetime_from_ms(record.get(key))
        for key, (item_key, typed_key) in TIMED_ITEMS.items():
            if isinstance(record.get(key), list):
                record[key] = [_with_time(item, item_key, typed_key) for item in record[key]]
        record[EXTRA] = extra
        return record


def _with_time(item: object, key: str, typed_key: str) -> object:
    """A copy of a list item with `typed_key`, the timestamp of its epoch-ms `key`, added.

    An item that already has `typed_key` (Chatra sent one) is left as it came.
    """
    if not isinstance(item, dict) or typed_key in item:
        return item
    return {**item, typed_key: utc_datetime_from_ms(item.get(key))}
