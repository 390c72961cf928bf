"""Dedupe keys: one key per message, and never one key for two distinct values.

A key is the JSON list of the key properties' values in a canonical form. The form keeps a
row's key when a column changes type or format, and never gives two distinct values one key:

- Numbers that are equal as numbers are one key: `7`, `7.0` and `7.00` are `[7]`; `1.5` and
  `1.50` are `[1.5]` (a JSON number, so never equal to a string).
- A string is the same key as a number only when it is exactly that number's canonical text:
  `"7"` is `[7]` and `"1.5"` is `[1.5]`. Every other string is a key of its own, as it is:
  `"007"`, `"7.0"`, `"+7"`, `"1.10"`, `" 7"`, `"-0"`. So two distinct strings never share a key.
- Date-times (parsed by the SDK, or ISO 8601 strings) are the same key when they are the same
  instant: they are written in UTC, a naive one taken as UTC. A string with more than six
  decimals of a second (more than Python's datetime holds) stays as it is.
- Booleans, other strings, objects (keys sorted) and arrays stay as they are.

Without key properties the key is a hash of the client ID and the text, encoded as a JSON
pair so that no two different pairs give the same input to the hash.

Ledgers written before these rules keyed some rows differently: keys_earlier.py gives those
forms, so that such a ledger still finds what it sent.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import re
import typing as t

from target_chatra_push.values import InvalidRowError, canonical_json, printable

if t.TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

HASH_PREFIX = "sha256:"
# A number's canonical text: no sign but '-', no leading zeros, no trailing zeros, not "-0".
_CANONICAL_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?")
_DATETIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d")
_LONG_FRACTION = re.compile(r":\d\d[.,]\d{7}")
# Integers up to this many digits are written out in full (Python reads up to 4300); other
# numbers up to 40 places either side of the point; beyond that, as 1.5E+5000.
_MAX_INTEGER_DIGITS = 4000
_MAX_PLAIN_PLACES = 40


class Number(str):
    """A number's canonical text, written into a key as a JSON number."""

    __slots__ = ()


def _canonical_number(value: decimal.Decimal) -> int | Number:
    # Exact: the default context would round to 28 digits, merging distinct numbers.
    normal = value.normalize(decimal.Context(prec=max(len(value.as_tuple().digits), 1)))
    integral = normal == normal.to_integral_value()
    if integral and normal.adjusted() < _MAX_INTEGER_DIGITS:
        return int(normal)
    if not integral and abs(normal.adjusted()) <= _MAX_PLAIN_PLACES:
        return Number(format(normal, "f"))
    return Number(str(normal))


def _canonical_datetime(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat()


def _canonical_string(value: str) -> object:
    if _CANONICAL_NUMBER.fullmatch(value) and value != "-0":
        number = _canonical_number(decimal.Decimal(value))
        # Only the exact canonical text: "1.0" would come back as 1, and stays a string.
        return number if str(number) == value else value
    if _DATETIME.match(value) and not _LONG_FRACTION.search(value):
        try:
            return _canonical_datetime(dt.datetime.fromisoformat(value))
        except ValueError:
            return value
    return value


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
        return _canonical_string(value)
    if isinstance(value, dict):
        return {str(k): canonical_value(prop, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical_value(prop, v) for v in value]
    return value


def key_json(value: object) -> str:
    """Stable JSON of canonical values: sorted keys, no spaces, `Number` as a JSON number."""
    if isinstance(value, Number):
        return str(value)
    if isinstance(value, dict):
        members = (f"{json.dumps(k, ensure_ascii=False)}:{key_json(v)}" for k, v in value.items())
        return "{" + ",".join(sorted(members)) + "}"
    if isinstance(value, list):
        return "[" + ",".join(key_json(v) for v in value) + "]"
    return canonical_json(value)


def key_values(properties: Sequence[str], record: Mapping[str, t.Any]) -> list[object]:
    """The row's values of the key properties.

    Raises:
        InvalidRowError: When one is missing or null.
    """
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
    values = key_values(properties, record)
    return key_json([canonical_value(p, v) for p, v in zip(properties, values, strict=True)])


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
