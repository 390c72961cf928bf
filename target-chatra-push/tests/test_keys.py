"""Dedupe keys that do not change with value types, schema formats or SCHEMA messages."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import logging

import pytest

from target_chatra_push.keys import dedupe_key, legacy_key
from target_chatra_push.ledger import Status


@pytest.mark.parametrize(
    "value", [1, 1.0, decimal.Decimal("1.0"), decimal.Decimal("1"), "1", "1.000"]
)
def test_one_number_is_one_key_whatever_its_type(value):
    assert dedupe_key(["id"], {"id": value}, "c", "t") == "[1]"


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("007", '["007"]'),
        (decimal.Decimal("1.50"), '["1.5"]'),
        ("1.5", '["1.5"]'),
        (True, "[true]"),
    ],
)
def test_identifiers_stay_and_fractions_are_shortest(value, key):
    assert dedupe_key(["id"], {"id": value}, "c", "t") == key


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2026, 1, 2, 10, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 1, 2, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        dt.datetime(2026, 1, 2, 10, 0),  # noqa: DTZ001 - a naive date-time is taken as UTC
        "2026-01-02T10:00:00Z",
        "2026-01-02T12:00:00+02:00",
        "2026-01-02 10:00:00",
    ],
)
def test_date_times_compare_in_utc_whatever_the_format(value):
    assert dedupe_key(["at"], {"at": value}, "c", "t") == '["2026-01-02T10:00:00+00:00"]'


def test_the_hash_of_client_and_text_is_unambiguous():
    assert dedupe_key([], {}, "a\nb", "c") != dedupe_key([], {}, "a", "b\nc")
    # The old form could not tell them apart; it is kept only to read schema-1 ledgers.
    assert legacy_key([], {}, "a\nb", "c") == legacy_key([], {}, "a", "b\nc")


def _orders(kit, **changes: str) -> str:
    text = kit.resource("orders_with_states.singer")
    for old, new in changes.items():
        text = text.replace(old, new)
    return text


def test_an_id_column_turning_from_integer_to_string_sends_nothing_again(sandbox, kit):
    config = kit.config(sandbox)
    kit.run(config, "orders_with_states.singer")
    as_strings = _orders(kit, **{'"type": "integer"': '"type": "string"'})
    for order_id in range(100, 105):
        as_strings = as_strings.replace(f'"order_id": {order_id}', f'"order_id": "{order_id}"')
    run = kit.run(config, as_strings)

    assert run.count("duplicate") == 5
    assert len(sandbox.sends()) == 5


def test_a_key_timestamp_gaining_a_date_time_format_sends_nothing_again(sandbox, kit):
    def rows(with_format: bool) -> str:
        schema = {"type": "string", **({"format": "date-time"} if with_format else {})}
        lines = [
            {"type": "SCHEMA", "stream": "visits", "key_properties": ["at"],
             "schema": {"type": "object", "properties": {
                 "at": schema, "client_id": {"type": "string"}, "text": {"type": "string"}}}},
        ]  # fmt: skip
        for n, at in enumerate(["2026-01-02T12:00:00+02:00", "2026-01-03T09:30:00+00:00"]):
            record = {"at": at, "client_id": "client-ada", "text": f"Visit {n}"}
            lines.append({"type": "RECORD", "stream": "visits", "record": record})
        return "".join(json.dumps(line) + "\n" for line in lines)

    config = kit.config(sandbox)
    kit.run(config, rows(with_format=False))
    run = kit.run(config, rows(with_format=True))

    assert run.count("duplicate") == 2
    assert len(sandbox.sends()) == 2


def test_a_schema_that_drops_its_key_properties_stops_before_sending(sandbox, kit):
    config = kit.config(sandbox)
    kit.run(config, "orders.singer")
    unkeyed = _orders(kit, **{'"key_properties": ["order_id"]': '"key_properties": []'})
    run = kit.run(config, unkeyed, stops=True)

    assert len(sandbox.sends()) == 5
    assert 'keyed it by ["order_id"]' in run.stopped
    assert 'set dedupe_key_properties to ["order_id"]' in run.stopped
    assert str(kit.ledger_path) in run.stopped

    # Following the advice keeps the old key: every row is a duplicate.
    kept = kit.run(kit.config(sandbox, dedupe_key_properties=["order_id"]), unkeyed)
    assert kept.count("duplicate") == 5
    assert len(sandbox.sends()) == 5


def test_a_schema_gaining_key_properties_says_how_to_keep_the_hash(sandbox, kit):
    config = kit.config(sandbox)
    unkeyed = _orders(kit, **{'"key_properties": ["order_id"]': '"key_properties": []'})
    kit.run(config, unkeyed)
    run = kit.run(config, "orders_with_states.singer", stops=True)

    assert "__key_properties__" in run.stopped
    assert len(sandbox.sends()) == 5


def test_a_schema_1_ledger_still_finds_rows_under_their_old_keys(sandbox, kit):
    orders = kit.resource("orders.singer")
    as_strings = orders.replace('"type": "integer"', '"type": "string"')
    for order_id in range(100, 105):
        as_strings = as_strings.replace(f'"order_id": {order_id}', f'"order_id": "{order_id}"')
    old_hash = legacy_key([], {}, "client-ada", "Hi Ada, order 100 has shipped.")
    kit.write_schema_1_ledger(
        [("orders", f'["{n}"]', "sent") for n in range(100, 105)] + [("unkeyed", old_hash, "sent")]
    )
    run = kit.run(kit.config(sandbox), as_strings)
    unkeyed = orders.replace('"orders"', '"unkeyed"').replace(
        '"key_properties": ["order_id"]', '"key_properties": []'
    )
    second = kit.run(kit.config(sandbox), unkeyed)

    assert run.count("duplicate") == 5
    assert (second.count("duplicate"), second.count("sent")) == (1, 4)
    assert {e.status for e in kit.ledger().values()} == {Status.SENT}


def test_one_key_twice_with_different_text_is_a_warning_naming_the_key(sandbox, kit, caplog):
    orders = kit.resource("orders.singer").splitlines(keepends=True)
    changed = orders[1].replace("Hi Ada, order 100 has shipped.", "Secret other text")
    run = kit.run(kit.config(sandbox), "".join([*orders, changed]))

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    (warning,) = [w for w in warnings if "different message" in w]
    assert "key [100]" in warning
    assert "Secret other text" not in caplog.text
    assert "Hi Ada" not in caplog.text
    assert run.count("duplicate") == 1
    assert len(sandbox.sends()) == 5
