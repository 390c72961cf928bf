"""Dedupe keys: stable when a column changes type or format, never shared by distinct values."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from target_chatra_push.keys import dedupe_key
from target_chatra_push.keys_earlier import schema_1_key
from target_chatra_push.ledger import Status


def _key(value: object) -> str:
    return dedupe_key(["id"], {"id": value}, "c", "t")


@pytest.mark.parametrize("value", [1, 1.0, decimal.Decimal("1.0"), decimal.Decimal("1"), "1"])
def test_one_number_is_one_key_whatever_its_type(value):
    assert _key(value) == "[1]"


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("007", '["007"]'),
        ("1.000", '["1.000"]'),
        (decimal.Decimal("1.50"), "[1.5]"),
        ("1.5", "[1.5]"),
        ("1.50", '["1.50"]'),
        (True, "[true]"),
    ],
)
def test_strings_stay_as_they_are_unless_they_are_a_numbers_own_text(value, key):
    assert _key(value) == key


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("1.1", "1.10"),
        (2, "2.0"),
        (1, "1.0"),
        (0, "-0"),
        (7, "+7"),
        (7, " 7"),
        (1000, "1e3"),
        ("7", "07"),
        (decimal.Decimal("1.5"), "1.50"),
        ("2026-01-02T10:00:00.1234567", "2026-01-02T10:00:00.1234568"),
    ],
)
def test_distinct_values_never_share_a_key(one, other):
    # The audit's merges: "1.1" and "1.10", 2 and "2.0" were one key.
    assert _key(one) != _key(other)


# Strings that look like numbers, and any text; date-times are left out: equal instants
# written differently are one key by design.
_NUMBER_LIKE = st.from_regex(r"[-+ ]?[0-9]{1,4}(\.[0-9]{0,3})?(e[0-9])?", fullmatch=True)
_KEY_STRINGS = _NUMBER_LIKE | st.text()


@settings(max_examples=300, deadline=None)
@given(one=_KEY_STRINGS, other=_KEY_STRINGS)
def test_two_distinct_strings_never_share_a_key(one, other):
    if one != other:
        assert _key(one) != _key(other)


@settings(max_examples=300, deadline=None)
@given(
    one=st.decimals(allow_nan=False, allow_infinity=False),
    other=st.decimals(allow_nan=False, allow_infinity=False) | st.integers(),
)
def test_numbers_share_a_key_exactly_when_they_are_equal(one, other):
    assert (_key(one) == _key(other)) == (one == other)


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
    assert _key(value) == '["2026-01-02T10:00:00+00:00"]'


def test_the_hash_of_client_and_text_is_unambiguous():
    assert dedupe_key([], {}, "a\nb", "c") != dedupe_key([], {}, "a", "b\nc")
    # The old form could not tell them apart; it is kept only to read schema-1 ledgers.
    assert schema_1_key([], {}, "a\nb", "c") == schema_1_key([], {}, "a", "b\nc")


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
    old_hash = schema_1_key([], {}, "client-ada", "Hi Ada, order 100 has shipped.")
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


def test_one_key_twice_with_different_text_sends_the_first_and_reports_both(sandbox, kit, caplog):
    orders = kit.resource("orders.singer").splitlines(keepends=True)
    changed = orders[1].replace("Hi Ada, order 100 has shipped.", "Secret other text")
    run = kit.run(kit.config(sandbox), "".join([*orders, changed]))

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    (warning,) = [w for w in warnings if "key conflict" in w]
    assert "key [100]" in warning
    assert "lines 2 and 8 of the input" in warning
    assert "the first was sent, this one is not sent" in warning
    assert "Secret other text" not in caplog.text
    assert "Hi Ada" not in caplog.text
    assert (run.count("sent"), run.count("invalid"), run.count("duplicate")) == (5, 1, 0)
    assert len(sandbox.sends()) == 5
    (letter,) = kit.dead_letters()
    assert (letter["key"], letter["code"]) == ("[100]", "key_conflict")
    assert letter["record"]["text"] == "Secret other text"


def test_one_row_twice_is_sent_once(sandbox, kit):
    orders = kit.resource("orders.singer").splitlines(keepends=True)
    run = kit.run(kit.config(sandbox), "".join([*orders, orders[1]]))

    assert (run.count("sent"), run.count("duplicate"), run.count("invalid")) == (5, 1, 0)
    assert len(sandbox.sends()) == 5


_AUDIT_IDS = ["1.1", "1.10", 2, "2.0", "1", "1.0", "007", "7"]


def _rows_keyed_by(ids: list[object]) -> str:
    schema = {
        "type": "SCHEMA", "stream": "offers", "key_properties": ["offer"],
        "schema": {"type": "object", "properties": {
            "offer": {}, "client_id": {"type": "string"}, "text": {"type": "string"}}},
    }  # fmt: skip
    lines = [schema] + [
        {"type": "RECORD", "stream": "offers",
         "record": {"offer": offer, "client_id": f"client-{n}", "text": f"Offer {offer!r}"}}
        for n, offer in enumerate(ids)
    ]  # fmt: skip
    return "".join(json.dumps(line) + "\n" for line in lines)


def test_rows_meant_for_different_clients_are_never_merged(chatra_sandbox, kit, sent_texts):
    # The audit: 4 of these 8 rows were never sent, and only a DEBUG line said so.
    for n in range(len(_AUDIT_IDS)):
        chatra_sandbox.store.add_client(f"client-{n}")
    run = kit.run(kit.config(chatra_sandbox), _rows_keyed_by(_AUDIT_IDS))

    assert run.count("sent") == 8
    assert sorted(send["body"]["clientId"] for send in chatra_sandbox.sends()) == sorted(
        f"client-{n}" for n in range(8)
    )
    assert len(kit.ledger()) == 8
    again = kit.run(kit.config(chatra_sandbox), _rows_keyed_by(_AUDIT_IDS))
    assert again.count("duplicate") == 8
    assert len(sent_texts(chatra_sandbox)) == 8
