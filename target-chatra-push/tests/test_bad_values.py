"""Nothing in a row stops the run: any value is sent, or makes its row invalid (dead letter).

Property-based: Hypothesis feeds arbitrary JSON (with lone surrogates, huge and non-finite
numbers, nesting) into every property the mapping reads: client, text, agent, group, the
key, and a template's variables.
"""

from __future__ import annotations

import decimal
import json
import logging
import typing as t

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from target_chatra_push.delivery import Delivery
from target_chatra_push.ledger_model import Status
from target_chatra_push.mapping import resolve_mapping
from target_chatra_push.policy import DeliveryOptions
from target_chatra_push.rendering import build_outbound
from target_chatra_push.summary import Outcome
from target_chatra_push.values import InvalidRowError

if t.TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

# Lone surrogates: what an emoji cut in half upstream leaves.
_SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)
_TEXT = st.text() | st.text(st.characters() | _SURROGATES, min_size=1)
_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.decimals() | _TEXT
JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=6,
)
_PROPERTIES = ("client_id", "text", "agent", "group", "order_id", "first_name")
ROWS = st.fixed_dictionaries({}, optional=dict.fromkeys(_PROPERTIES, JSON))

PLAIN = {"agent_id_property": "agent", "dedupe_key_properties": ["order_id"]}
TEMPLATED = {
    "group_id_property": "group",
    "text_template": "Hi {{ first_name }}, order {{ order_id }} {{ row.text }}",
}


def _utf8(value: object) -> None:
    json.dumps(value, ensure_ascii=False, default=str).encode("utf-8")


@settings(max_examples=100, deadline=None)
@given(row=ROWS, templated=st.booleans())
def test_any_row_becomes_a_valid_request_or_an_invalid_row(row, templated):
    mapping = resolve_mapping(TEMPLATED if templated else PLAIN, None)
    try:
        outbound = build_outbound(mapping, row, ["order_id"])
    except InvalidRowError as invalid:
        invalid.reason.encode("utf-8")  # it is logged and written: always encodable
        return
    _utf8([outbound.key, outbound.body])
    assert 1 <= len(outbound.body["text"]) <= 5000
    assert isinstance(outbound.body["clientId"], str)


@pytest.fixture
def delivery(tmp_path: Path) -> Iterator[Delivery]:
    """One run's delivery, shared by every example of a test: rows without a client."""
    options = DeliveryOptions(
        ledger_path=tmp_path / "ledger.sqlite", dead_letter_path=tmp_path / "dead-letter.jsonl"
    )
    run = Delivery(options, connection=None, logger=logging.getLogger("test-bad-values"))
    yield run
    run.finish()


def _dead_letters(path: Path) -> list[str]:
    if not path.exists():
        return []
    # JSON lines end in \n; a value may hold other line breaks (U+0085, U+2028).
    return path.read_text(encoding="utf-8").split("\n")[:-1]


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(ROWS, min_size=1, max_size=5))
def test_any_rows_are_settled_without_a_crash_and_every_dead_letter_is_json(delivery, rows):
    mapping = resolve_mapping(PLAIN | {"client_id_property": "missing"}, None)
    before = len(_dead_letters(delivery.options.dead_letter_path))
    outcomes = [delivery.deliver("s", mapping, row, ["order_id"]) for row in rows]

    # No row has a client (the column is missing), so none is sent, and all are dead letters.
    assert set(outcomes) <= {Outcome.INVALID, Outcome.DUPLICATE}
    letters = _dead_letters(delivery.options.dead_letter_path)[before:]
    assert len(letters) == outcomes.count(Outcome.INVALID)
    assert all(json.loads(letter)["kind"] == "invalid" for letter in letters)


def _row_line(record: dict[str, t.Any]) -> str:
    return json.dumps({"type": "RECORD", "stream": "orders", "record": record}) + "\n"


def test_a_lone_surrogate_in_the_text_dead_letters_that_row_and_the_run_goes_on(
    sandbox, kit, sent_texts
):
    lines = kit.resource("orders_with_states.singer").splitlines(keepends=True)
    half_emoji = {"order_id": 99, "client_id": "client-ada", "text": "Hi \ud83d", "first_name": "A"}
    run = kit.run(kit.config(sandbox), "".join([lines[0], _row_line(half_emoji), *lines[1:]]))

    assert run.count("invalid") == 1
    assert run.count("sent") == 5
    assert len(sent_texts(sandbox)) == 5
    (letter,) = kit.dead_letters()
    assert letter["key"] == "[99]"
    assert "lone surrogate" in letter["reason"]
    assert letter["record"]["text"] == "Hi \ud83d"  # kept as it came, as a JSON escape
    assert [state["bookmarks"]["orders"]["replication_key_value"] for state in run.states] == [
        101, 102, 104,
    ]  # fmt: skip


def test_a_lone_surrogate_in_a_key_is_an_invalid_row_too(sandbox, kit):
    schema = kit.resource("orders.singer").splitlines(keepends=True)[0]
    schema = schema.replace('"order_id": {"type": "integer"}', '"order_id": {"type": "string"}')
    bad = {"order_id": "A-\udc00", "client_id": "client-ada", "text": "Hello", "first_name": "A"}
    good = {"order_id": "A-1", "client_id": "client-bob", "text": "Hello", "first_name": "B"}
    run = kit.run(kit.config(sandbox), schema + _row_line(bad) + _row_line(good))

    assert (run.count("invalid"), run.count("sent")) == (1, 1)
    (letter,) = kit.dead_letters()
    assert letter["key"] == '["A-\\udc00"]'


def test_non_finite_and_huge_numbers_in_a_key(sandbox, kit):
    for value, valid in [(decimal.Decimal("NaN"), False), (10**40, True), (1e300, True)]:
        mapping = resolve_mapping({"dedupe_key_properties": ["n"]}, None)
        row = {"n": value, "client_id": "c", "text": "t"}
        try:
            build_outbound(mapping, row, [])
        except InvalidRowError:
            assert not valid
        else:
            assert valid


_CLIENTS = st.sampled_from(["client-ada", "client-bob", "client-nobody"]) | JSON
_RECORDS = st.fixed_dictionaries(
    {"client_id": _CLIENTS},
    optional={"order_id": JSON, "first_name": JSON, "note": JSON, "text": JSON},
)
_ANY_JSON_SCHEMA = {
    "type": "SCHEMA",
    "stream": "orders",
    "key_properties": ["order_id"],
    "schema": {"type": "object", "properties": {name: {} for name in (*_PROPERTIES, "note")}},
}
TEMPLATE = "Hi {{ first_name | default('there') }}: {{ note }} (order {{ order_id }})"


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(records=st.lists(_RECORDS, min_size=1, max_size=6), templated=st.booleans())
def test_any_records_are_sent_at_most_once_or_reported(sandbox, new_kit, records, templated):
    kit = new_kit()
    lines = [_ANY_JSON_SCHEMA] + [
        {"type": "RECORD", "stream": "orders", "record": record} for record in records
    ]
    singer = "".join(json.dumps(line, default=str) + "\n" for line in lines)
    config = kit.config(sandbox, **({"text_template": TEMPLATE} if templated else {}))
    posts_before = len(_posts(sandbox))

    first = kit.run(config, singer)  # a traceback or a stop fails the example

    posts = _posts(sandbox)[posts_before:]
    sent = [post for post in posts if post["status"] == 200]
    assert len(sent) == first.count("sent")
    totals = first.target.delivery.summary.as_dict()["totals"]
    assert sum(totals.values()) == len(records)  # every row is accounted for
    reported = totals["invalid"] + totals["rejected"]
    assert len(_dead_letter_lines(kit)) == reported
    assert len([e for e in kit.ledger().values() if e.status is Status.SENT]) == len(sent)

    again = kit.run(config, singer)  # the same rows again: nothing goes out twice

    assert again.count("sent") == 0
    again_posts = _posts(sandbox)[posts_before + len(posts) :]
    assert [post for post in again_posts if post["status"] == 200] == []


def _posts(sandbox) -> list[dict[str, t.Any]]:
    return [entry for entry in sandbox.request_log() if entry["method"] == "POST"]


def _dead_letter_lines(kit) -> list[str]:
    return _dead_letters(kit.dead_letter_path)
