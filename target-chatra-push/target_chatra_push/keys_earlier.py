"""The key forms of earlier ledgers, so that a ledger written by an older target keeps working.

- Schema 1 keyed rows by the raw values, and unkeyed rows by a hash of client and text joined
  by a newline.
- Schema 2 made values canonical, but merged distinct ones: every decimal string or number
  became its shortest decimal (`"1.10"` and `"1.1"`, `2` and `"2.0"` were one key), and a
  date-time string was cut to microseconds.

A row is looked up under its current key first (keys.py), then under each earlier form the
ledger may hold, newest first. A match under an earlier form is the row as that ledger knows
it: nothing it sent is sent again. Where the earlier form merged distinct values, a match may
be another row that shared the old key; such a row is not sent either (at most once wins),
and the delivery warns when its message differs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import hashlib
import re
import typing as t

from target_chatra_push.keys import HASH_PREFIX, key_values
from target_chatra_push.ledger_model import SCHEMA_1_KEYS, SCHEMA_2_KEYS
from target_chatra_push.values import InvalidRowError, canonical_json

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Mapping, Sequence

    from target_chatra_push.ledger_model import LedgerStore
    from target_chatra_push.rendering import Outbound

_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")
_DATETIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d")


def _schema_2_number(value: decimal.Decimal) -> int | str:
    if value == value.to_integral_value():
        return int(value)
    return format(value.normalize(), "f")


def _schema_2_datetime(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat()


def _schema_2_value(prop: str, value: object) -> object:
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float | decimal.Decimal):
        number = decimal.Decimal(repr(value)) if isinstance(value, float) else value
        if not number.is_finite():
            raise InvalidRowError("missing_key", f"no dedupe key: '{prop}' is not a finite number")
        return _schema_2_number(number)
    if isinstance(value, dt.datetime):
        return _schema_2_datetime(value)
    if isinstance(value, str):
        if _DECIMAL.fullmatch(value):
            return _schema_2_number(decimal.Decimal(value))
        if _DATETIME.match(value):
            try:
                return _schema_2_datetime(dt.datetime.fromisoformat(value))
            except ValueError:
                return value
    return value


def schema_2_key(
    properties: Sequence[str], record: Mapping[str, t.Any], client_id: str, text: str
) -> str:
    """The key a schema-2 ledger gave the row."""
    if not properties:
        return HASH_PREFIX + hashlib.sha256(canonical_json([client_id, text]).encode()).hexdigest()
    values = key_values(properties, record)
    return canonical_json([_schema_2_value(p, v) for p, v in zip(properties, values, strict=True)])


def schema_1_key(
    properties: Sequence[str], record: Mapping[str, t.Any], client_id: str, text: str
) -> str:
    """The key a schema-1 ledger gave the row."""
    if not properties:
        return HASH_PREFIX + hashlib.sha256(f"{client_id}\n{text}".encode()).hexdigest()
    return canonical_json(key_values(properties, record))


EARLIER_KEY_FORMS: dict[str, Callable[[Sequence[str], Mapping[str, t.Any], str, str], str]] = {
    SCHEMA_2_KEYS: schema_2_key,
    SCHEMA_1_KEYS: schema_1_key,
}
"""Each earlier key form by the name ledgers record it under (ledger_model.py)."""


def stored_key(
    ledger: LedgerStore,
    outbound: Outbound,
    *,
    stream: str,
    record: Mapping[str, t.Any],
    properties: Sequence[str],
    logger: logging.Logger,
) -> Outbound:
    """The row under the key the ledger stored it by: its own, or an earlier form's.

    A WARNING to `logger` says when the earlier key holds a different message.
    """
    if not ledger.earlier_key_forms or ledger.get(stream, outbound.key) is not None:
        return outbound
    body = outbound.body
    for form in ledger.earlier_key_forms:
        earlier = EARLIER_KEY_FORMS[form](properties, record, body["clientId"], body["text"])
        entry = ledger.get(stream, earlier) if earlier != outbound.key else None
        if entry is None:
            continue
        if entry.payload_hash != outbound.payload_hash:
            logger.warning(
                "Stream %s key %s: the ledger holds it as %s, a key an older target gave it, "
                "with a different message: it may be another row that the older key merged "
                "with this one. Handled as that key (set resend_changed to send changed "
                "messages).",
                stream,
                outbound.key,
                earlier,
            )
        return dataclasses.replace(outbound, key=earlier)
    return outbound
