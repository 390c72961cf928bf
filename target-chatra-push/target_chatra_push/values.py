"""JSON forms of row values, and the error that makes a row invalid."""

from __future__ import annotations

import datetime as dt
import json


class InvalidRowError(Exception):
    """A row that must never be sent; `reason` says why (it may quote the row's values)."""

    def __init__(self, code: str, reason: str) -> None:
        # A reason may quote a value that is not valid Unicode; it is logged and written.
        reason = printable(reason)
        super().__init__(reason)
        self.code = code
        self.reason = reason


def printable(text: str) -> str:
    """`text` with anything UTF-8 cannot encode (lone surrogates) as backslash escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def json_default(value: object) -> object:
    """JSON form of the values a parsed Singer row may hold: datetimes as ISO, others as str."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value)


def canonical_json(value: object) -> str:
    """Stable JSON: sorted keys, no spaces, datetimes in ISO form."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=json_default
    )
