"""Dedupe keys: one key per message, whatever the value types and schema formats say.

A key is the JSON list of the key properties' values, made canonical so that the same
warehouse row keeps its key when a column changes type or format:

- numbers and plain decimal strings: integral ones become JSON integers (``1``, ``1.0`` and
  ``"1"`` are all ``1``), others the shortest decimal string (``1.50`` and ``"1.5"`` are
  ``"1.5"``). Strings with leading zeros (``"007"``) are identifiers and stay as they are;
- date-times (parsed by the SDK, or ISO strings when the schema gives no format) become ISO
  8601 in UTC, a naive one taken as UTC;
- anything else stays as it is.

Without key properties the key is a hash of the client ID and the text, encoded as a JSON
pair so that no two different pairs give the same input to the hash.

Ledgers written before these rules (schema 1) keyed rows by the raw values and by a hash of
client and text joined by a newline; `legacy_key` gives that form, so that such a ledger
still finds what it sent.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import re
import typing as t

from target_chatra_push.values import InvalidRowError, canonical_json, printable

if t.TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

HASH_PREFIX = "sha256:"
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")
_DATETIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d")


def _canonical_number(value: decimal.Decimal) -> int | str:
    if value == value.to_integral_value():
        return int(value)
    return format(value.normalize(), "f")


def _canonical_datetime(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat()


def canonical_value(prop: str, value: object) -> object:
    """The canonical form of one key value (see the module docstring).

    Raises:
        InvalidRowError: For a number that is not finite, which cannot identify a row.
    """
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float | decimal.Decimal):
        number = decimal.Decimal(repr(value)) if isinstance(value, float) else value
        if not number.is_finite():
            raise InvalidRowError("missing_key", f"no dedupe key: '{prop}' is not a finite number")
        return _canonical_number(number)
    if isinstance(value, dt.datetime):
        return _canonical_datetime(value)
    if isinstance(value, str):
        if _DECIMAL.fullmatch(value):
            return _canonical_number(decimal.Decimal(value))
        if _DATETIME.match(value):
            try:
                return _canonical_datetime(dt.datetime.fromisoformat(value))
            except ValueError:
                return value
    return value


def _values(properties: Sequence[str], record: Mapping[str, t.Any]) -> list[object]:
    values = []
    for prop in properties:
        value = record.get(prop)
        if value is None:
            raise InvalidRowError("missing_key", f"no dedupe key: '{prop}' is missing or null")
        values.append(value)
    return values


def dedupe_key(
    properties: Sequence[str], record: Mapping[str, t.Any], client_id: str, text: str
) -> str:
    """The canonical key of a row.

    Raises:
        InvalidRowError: When a key property is missing, null or not a finite number.
    """
    if not properties:
        digest = hashlib.sha256(canonical_json([client_id, text]).encode())
        return HASH_PREFIX + digest.hexdigest()
    values = _values(properties, record)
    return canonical_json([canonical_value(p, v) for p, v in zip(properties, values, strict=True)])


def legacy_key(
    properties: Sequence[str], record: Mapping[str, t.Any], client_id: str, text: str
) -> str:
    """The key a schema-1 ledger gave the same row."""
    if not properties:
        return HASH_PREFIX + hashlib.sha256(f"{client_id}\n{text}".encode()).hexdigest()
    return canonical_json(_values(properties, record))


def key_hint(properties: Sequence[str], record: Mapping[str, t.Any]) -> str | None:
    """The key of a row that could not become a message, when it can be told."""
    try:
        key = dedupe_key(properties, record, "", "") if properties else None
    except InvalidRowError:
        return None
    return printable(key) if key is not None else None


def describe_properties(properties: Sequence[str]) -> str:
    """How a stream is keyed, in words, for messages."""
    if not properties:
        return "a hash of client ID and text (no key properties)"
    return canonical_json(list(properties))
