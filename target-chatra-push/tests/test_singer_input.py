"""Bad Singer input: one line naming the input line, the summary of what was done, no traceback."""

from __future__ import annotations

import json
import logging

import pytest

SECRET = "Secret row text"
ROW = {"order_id": 900, "client_id": "client-ada", "text": SECRET}

# (what the fourth line of the input is, what the stop must say about it)
BAD_LINES = [
    pytest.param('{"type": "RECORD", "stream": "ord', "not valid JSON (", id="cut-short"),
    pytest.param(json.dumps([ROW]), "it is not a Singer message", id="not-an-object"),
    pytest.param(
        json.dumps({"type": "RECORD", "stream": "orders"}),
        "a RECORD message needs its row as a JSON object ('record')",
        id="record-without-record",
    ),
    pytest.param(
        json.dumps({"type": "RECORD", "stream": "orders", "record": [ROW]}),
        "a RECORD message needs its row as a JSON object ('record')",
        id="record-not-an-object",
    ),
    pytest.param(
        json.dumps({"type": "RECORD", "stream": "orders", "record": None}),
        "a RECORD message needs its row as a JSON object ('record')",
        id="record-null",
    ),
    pytest.param(
        json.dumps({"type": "RECORD", "record": ROW}),
        "a RECORD message needs a stream name ('stream')",
        id="record-without-stream",
    ),
    pytest.param(
        json.dumps({"type": "RECORD", "stream": "refunds", "record": ROW}),
        "a RECORD of stream refunds came before its SCHEMA",
        id="record-before-schema",
    ),
    pytest.param(
        json.dumps(
            {
                "type": "BATCH",
                "stream": "orders",
                "encoding": {"format": "jsonl", "compression": "gzip"},
                "manifest": ["file:///tmp/orders-1.jsonl.gz"],
            }
        ),
        "it is a BATCH message, which target-chatra-push does not read",
        id="batch",
    ),
    pytest.param(
        json.dumps({"type": "SCHEMA", "stream": "refunds", "schema": {"type": "object"}}),
        "a SCHEMA message needs a JSON schema with 'properties' ('schema')",
        id="schema-without-properties",
    ),
    pytest.param(
        json.dumps(
            {
                "type": "SCHEMA",
                "stream": "refunds",
                "key_properties": "order_id",
                "schema": {"type": "object", "properties": {}},
            }
        ),
        "'key_properties' of a SCHEMA message must be a list of property names",
        id="key-properties-not-a-list",
    ),
    pytest.param(
        json.dumps(
            {
                "type": "SCHEMA",
                "stream": "refunds",
                "schema": {"type": "object", "properties": {"n": {"type": "nonsense"}}},
            }
        ),
        "the SCHEMA is not a valid JSON schema",
        id="schema-not-valid",
    ),
    pytest.param(json.dumps({"type": "STATE"}), "a STATE message needs its state", id="state"),
    pytest.param(json.dumps({"type": "RECORDS"}), "it has no known message type", id="type"),
    pytest.param(json.dumps({"type": 5}), "it has no known message type", id="type-number"),
    pytest.param(
        '{"type": "STATE", "value": ' + "7" * 5000 + "}",
        "a number in it is too long to read",
        id="huge-int",
    ),
]


def _input(kit, bad_line: str) -> str:
    orders = kit.resource("orders.singer").splitlines()
    return "\n".join([*orders[:3], bad_line, *orders[3:]]) + "\n"


@pytest.mark.parametrize(("bad_line", "what"), BAD_LINES)
def test_bad_input_stops_the_run_at_its_line(sandbox, kit, caplog, bad_line, what):
    run = kit.run(kit.config(sandbox), _input(kit, bad_line), stops=True)

    assert run.stopped.startswith(f"Line 4 of the input is bad: {what}")
    assert run.stopped.count("\n") == 0
    assert SECRET not in caplog.text  # the line may hold personal data: it is never quoted
    assert run.count("sent") == 2
    assert len(sandbox.sends()) == 2  # nothing after the bad line was read
    summary = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Summary:")]
    assert summary[0].startswith("Summary: stream orders: sent 2,")
    assert kit.report()["stopped"] == run.stopped


def test_blank_lines_carry_nothing_and_are_skipped(sandbox, kit):
    run = kit.run(kit.config(sandbox), _input(kit, "   "))

    assert run.count("sent") == 5


def test_the_line_number_counts_blank_lines(sandbox, kit):
    orders = kit.resource("orders.singer").splitlines()
    text = "\n".join([orders[0], "", orders[1], "{", *orders[2:]]) + "\n"

    run = kit.run(kit.config(sandbox), text, stops=True)

    assert run.stopped.startswith("Line 4 of the input is bad: not valid JSON")


def test_a_bad_line_in_a_dry_run_stops_it_the_same_way(kit, caplog):
    caplog.set_level(logging.INFO)
    run = kit.run(kit.config(None, dry_run=True), _input(kit, "{"), stops=True)

    assert run.stopped.startswith("Line 4 of the input is bad: not valid JSON")
    assert run.count("previewed") == 2
    assert "Summary: the run stopped early" in caplog.text
