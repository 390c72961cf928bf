"""Message templates: rendered in a sandbox, strict about missing values, compiled up front."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from singer_sdk.exceptions import ConfigValidationError

from target_chatra_push.mapping import MappingError, resolve_mapping
from target_chatra_push.rendering import build_outbound
from target_chatra_push.values import InvalidRowError

TEMPLATE = "Hi {{ first_name }}, order {{ order_id }} ({{ '%.2f' | format(amount) }}) shipped."


def test_template_renders_each_row(sandbox, kit, sent_texts):
    run = kit.run(kit.config(sandbox, text_template=TEMPLATE), "orders_templated.singer")

    assert sent_texts(sandbox) == [
        "Hi Ada, order 300 (1.00) shipped.",
        "Hi Dee, order 303 (1.00) shipped.",
    ]
    assert run.count("invalid") == 2


def test_row_lacking_a_template_variable_is_never_sent_blank(sandbox, kit):
    kit.run(kit.config(sandbox, text_template=TEMPLATE), "orders_templated.singer")

    reasons = {letter["key"]: letter["reason"] for letter in kit.dead_letters()}
    # 301 has first_name null; 302 has no first_name at all.
    assert reasons == {
        "[301]": "text_template: 'first_name' is null; say what to print instead, e.g. "
        "{{ name | default('there') }}",
        "[302]": "text_template: 'first_name' is undefined",
    }


def test_template_fallbacks_cover_missing_and_null_values(sandbox, kit, sent_texts):
    template = "Hi {{ first_name | default('there', true) }}, order {{ order_id }}."
    kit.run(kit.config(sandbox, text_template=template), "orders_templated.singer")

    assert sent_texts(sandbox) == [
        "Hi Ada, order 300.",
        "Hi there, order 301.",
        "Hi there, order 302.",
        "Hi Dee, order 303.",
    ]


def test_whole_row_is_available_as_row(sandbox, kit, sent_texts):
    kit.run(kit.config(sandbox, text_template="{{ row['client_id'] }}"), "orders.singer")

    assert sent_texts(sandbox)[0] == "client-ada"


def test_template_syntax_error_stops_the_run_before_any_send(sandbox, kit):
    with pytest.raises(ConfigValidationError) as raised:
        kit.run(kit.config(sandbox, text_template="Hi {{ first_name }"), "orders.singer")

    assert raised.value.errors == ["text_template does not compile: line 1: unexpected '}'."]
    assert sandbox.request_log() == []
    assert not kit.ledger_path.exists()


def test_per_stream_template_syntax_error_is_named(sandbox, kit):
    config = kit.config(sandbox, stream_settings={"orders": {"text_template": "{% if %}"}})
    with pytest.raises(ConfigValidationError) as raised:
        kit.run(config, "orders.singer")

    assert raised.value.errors[0].startswith("stream_settings.orders: text_template does not")
    assert sandbox.request_log() == []


def test_template_cannot_escape_the_sandbox(sandbox, kit):
    template = "{{ first_name.__class__.__mro__[1].__subclasses__() }}"
    run = kit.run(kit.config(sandbox, text_template=template), "orders.singer")

    assert sandbox.sends() == []
    assert run.count("invalid") == 5
    assert "unsafe" in kit.dead_letters()[0]["reason"]


def test_text_property_in_stream_settings_turns_a_top_level_template_off(sandbox, kit, sent_texts):
    config = kit.config(
        sandbox, text_template="templated", stream_settings={"orders": {"text_property": "text"}}
    )
    kit.run(config, "orders.singer")

    assert sent_texts(sandbox)[0] == "Hi Ada, order 100 has shipped."


def _outbound(record, **settings):
    return build_outbound(resolve_mapping(settings, None), record, ["id"])


def test_numeric_client_ids_are_sent_as_strings():
    outbound = _outbound({"id": 1, "client_id": 4242, "text": "Hi"})

    assert outbound.body["clientId"] == "4242"


@pytest.mark.parametrize(
    ("record", "code", "reason"),
    [
        ({"id": 1, "client_id": ["a"], "text": "Hi"}, "wrong_type", "'client_id' holds an array"),
        ({"id": 1, "client_id": True, "text": "Hi"}, "wrong_type", "holds a boolean"),
        ({"id": 1, "client_id": "c", "text": 12}, "wrong_type", "'text' holds a number"),
        ({"id": 1, "client_id": "c"}, "empty_text", "'text' is missing or null"),
        ({"id": 1, "client_id": "  ", "text": "Hi"}, "missing_client_id", "missing or empty"),
        ({"id": None, "client_id": "c", "text": "Hi"}, "missing_key", "'id' is missing or null"),
        ({"id": 1, "client_id": "c", "text": "é" * 5001}, "text_too_long", "5001 characters"),
    ],
)
def test_rows_that_cannot_become_a_message(record, code, reason):
    with pytest.raises(InvalidRowError) as raised:
        _outbound(record)

    assert raised.value.code == code
    assert reason in raised.value.reason


def test_text_of_exactly_5000_characters_is_fine():
    assert len(_outbound({"id": 1, "client_id": "c", "text": "é" * 5000}).body["text"]) == 5000


def test_agent_id_from_the_row_falls_back_to_the_setting():
    settings = {"mode": "agent_message", "agent_id_property": "agent", "agent_id": "default"}

    assert (
        _outbound({"id": 1, "client_id": "c", "text": "t", "agent": "a-1"}, **settings).body[
            "agentId"
        ]
        == "a-1"
    )
    assert (
        _outbound({"id": 1, "client_id": "c", "text": "t", "agent": None}, **settings).body[
            "agentId"
        ]
        == "default"
    )


AGENT_FROM_ROW = {"agent_id_property": "agent", "agent_id": "a-default"}
GROUP_FROM_ROW = {"group_id_property": "group", "group_id": "g-default"}


@pytest.mark.parametrize(
    ("settings", "row", "expected"),
    [
        (AGENT_FROM_ROW, {"agent": "a-1"}, {"agentId": "a-1"}),
        (AGENT_FROM_ROW, {"agent": None}, {"agentId": "a-default"}),
        (GROUP_FROM_ROW, {"group": "g-1"}, {"groupId": "g-1"}),
        (GROUP_FROM_ROW, {"group": ""}, {"groupId": "g-default"}),
        ({}, {}, {}),
    ],
    ids=["agent-from-row", "agent-fallback", "group-from-row", "group-fallback", "neither"],
)
def test_pushed_message_sender_from_the_row_or_the_settings(settings, row, expected):
    body = _outbound({"id": 1, "client_id": "c", "text": "t", **row}, **settings).body

    assert {k: v for k, v in body.items() if k in {"agentId", "groupId"}} == expected


def test_pushed_message_cannot_name_both_an_agent_and_a_group():
    with pytest.raises(MappingError, match="by an agent or by a group, not both"):
        resolve_mapping({**AGENT_FROM_ROW, **GROUP_FROM_ROW}, None)


def test_agent_row_without_any_sender_is_invalid():
    settings = {"mode": "agent_message", "agent_id_property": "agent"}
    with pytest.raises(InvalidRowError) as raised:
        _outbound({"id": 1, "client_id": "c", "text": "t", "agent": None}, **settings)

    assert raised.value.code == "missing_agent"


def test_template_syntax_error_on_the_command_line(sandbox, tmp_path: Path):
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "api_key_pair": sandbox.key_pair,
                "api_url": sandbox.api_url,
                "text_template": "{{ oops",
                "ledger_path": str(tmp_path / "ledger.sqlite"),
            }
        )
    )
    singer = (Path(__file__).parent / "resources" / "orders.singer").read_text("utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "target_chatra_push", "--config", str(config)],
        input=singer,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 1
    assert "text_template does not compile" in done.stderr
    assert "Traceback" not in done.stderr
    assert sandbox.request_log() == []


def test_date_time_columns_reach_the_template_as_datetimes(sandbox, kit, sent_texts):
    schema = (
        '{"type": "SCHEMA", "stream": "orders", "key_properties": ["order_id"], "schema": '
        '{"type": "object", "properties": {"order_id": {"type": "integer"}, "client_id": '
        '{"type": "string"}, "shipped_at": {"type": "string", "format": "date-time"}}}}\n'
    )
    rows = (
        '{"type": "RECORD", "stream": "orders", "record": {"order_id": 1, '
        '"client_id": "client-ada", "shipped_at": "2024-05-01T10:00:00+00:00"}}\n'
        '{"type": "RECORD", "stream": "orders", "record": {"order_id": 2, '
        '"client_id": "client-bob", "shipped_at": "not a date"}}\n'
    )
    template = "Shipped on {{ shipped_at.strftime('%d %B') }}."
    run = kit.run(kit.config(sandbox, text_template=template), schema + rows)

    assert sent_texts(sandbox) == ["Shipped on 01 May."]
    # An unparsable date becomes null, so a template printing it makes just that row invalid.
    assert run.count("invalid") == 1
