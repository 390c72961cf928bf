"""The webhook streams reading a real inbox (`chatra-webhooks serve`, SQLite store) over HTTP."""

from __future__ import annotations

import json

import pytest
import requests

from chatra_webhooks.settings import normalize_store_url
from chatra_webhooks.sql_store import PAGE_BYTES, SqlEventStore
from tap_chatra.inbox import InboxPaginator
from tap_chatra.webhook_streams import EventStream


@pytest.fixture
def fed_inbox(webhook_inbox_factory, chatra_sandbox_factory, tmp_path):
    """An inbox, and a sandbox that posts its webhooks there."""
    inbox = webhook_inbox_factory(f"sqlite:///{tmp_path / 'inbox.sqlite'}")
    sandbox = chatra_sandbox_factory(
        seed=4, clients=0, messages=0, pushed_messages=0, requests_per_minute=0,
        webhook_url=inbox.ingest_url(),
    )  # fmt: skip
    return inbox, sandbox


def _inbox_config(kit, inbox, sandbox, **settings):
    inbox_settings = {"webhook_inbox_url": inbox.url, "webhook_inbox_token": inbox.read_token}
    return kit.config(sandbox, **{**inbox_settings, **settings})


def test_pages_of_the_inbox_become_rows_and_a_rerun_reads_only_what_is_new(
    fed_inbox, kit, monkeypatch
) -> None:
    inbox, sandbox = fed_inbox
    monkeypatch.setattr(EventStream, "page_size", 5)
    chats = sandbox.simulate_chats(3)
    delivered = len(sandbox.webhook_deliveries())
    assert delivered > 10, "enough events for several pages"
    config = _inbox_config(kit, inbox, sandbox)

    first = kit.run(config)

    events = first.records("webhook_events")
    assert [event["seq"] for event in events] == list(range(1, delivered + 1))
    assert all(event["received_at"] for event in events)
    assert len(first.records("chat_messages")) == sum(len(chat.messages) for chat in chats)
    assert sorted(first.ids("clients")) == sorted(chat.client_id for chat in chats)

    requests_before = len(sandbox.request_log())
    second = kit.run(config, state=first.last_state)
    assert [m for m in second.messages if m["type"] == "RECORD"] == []
    assert sandbox.request_log()[requests_before:] == []

    new_chats = sandbox.simulate_chats(1)
    third = kit.run(config, state=second.last_state)
    assert [event["seq"] for event in third.records("webhook_events")] == list(
        range(delivered + 1, len(sandbox.webhook_deliveries()) + 1)
    )
    assert len(third.records("chat_messages")) == len(new_chats[0].messages)
    assert third.ids("clients") == [new_chats[0].client_id]


def test_chat_messages_read_their_last_event_again_after_a_kill(fed_inbox, kit) -> None:
    # A STATE may be written while an event's messages are half emitted: the bookmark then
    # names that event, and the next run reads it again (its rows are keyed, so no duplicate).
    inbox, sandbox = fed_inbox
    [chat] = sandbox.simulate_chats(1)
    transcript_seq = len(sandbox.webhook_deliveries())
    state = {
        "bookmarks": {
            "webhook_events": {"replication_key": "seq", "replication_key_value": transcript_seq},
            "chat_messages": {"replication_key": "seq", "replication_key_value": transcript_seq},
        }
    }
    output = kit.run(_inbox_config(kit, inbox, sandbox), state=state)
    assert output.records("webhook_events") == []
    rows = output.records("chat_messages")
    assert {row["seq"] for row in rows} == {transcript_seq}
    assert len(rows) == len(chat.messages)


def test_full_refresh_reads_everything_again(fed_inbox, kit) -> None:
    inbox, sandbox = fed_inbox
    sandbox.simulate_chats(1)
    config = _inbox_config(kit, inbox, sandbox)
    first = kit.run(config)
    again = kit.run(config)  # no state: what `meltano run --full-refresh` passes
    assert again.records("webhook_events") == first.records("webhook_events")


def test_a_wrong_read_token_stops_with_one_line(fed_inbox, kit) -> None:
    inbox, sandbox = fed_inbox
    config = _inbox_config(kit, inbox, sandbox, webhook_inbox_token="not-the-read-token")
    result = kit.cli(config=config)
    assert result.returncode == 1
    assert kit.last_line(result.stderr).endswith(
        "webhook_events: the webhook inbox refused webhook_inbox_token (HTTP 401); give the "
        "tap the inbox's read token (CHATRA_WEBHOOKS_READ_TOKEN)."
    )
    assert "Traceback" not in result.stderr
    assert "not-the-read-token" not in result.stderr + result.stdout
    assert sandbox.request_log() == []


def test_an_inbox_that_does_not_answer_stops_with_one_line(fed_inbox, kit) -> None:
    inbox, sandbox = fed_inbox
    inbox.stop()
    result = kit.cli(config=_inbox_config(kit, inbox, sandbox))
    assert result.returncode == 1
    assert kit.last_line(result.stderr).endswith(
        f"webhook_events: the webhook inbox at {inbox.url} did not answer (ConnectionError); "
        "is it running, and is webhook_inbox_url right?"
    )
    assert "Traceback" not in result.stderr
    assert inbox.read_token not in result.stderr + result.stdout


def test_debug_logs_hold_neither_the_read_token_nor_chat_text(fed_inbox, kit) -> None:
    inbox, sandbox = fed_inbox
    chats = sandbox.simulate_chats(2)
    result = kit.cli(
        config=_inbox_config(kit, inbox, sandbox),
        env={"LOGLEVEL": "DEBUG", "TAP_CHATRA_LOGLEVEL": "DEBUG"},
    )
    assert result.returncode == 0, kit.last_line(result.stderr)
    assert " | DEBUG " in result.stderr, "nothing logged at DEBUG; the test proves nothing"
    assert inbox.read_token not in result.stderr
    texts = {m["text"] for chat in chats for m in chat.messages}
    assert texts <= {r["text"] for r in kit.parse(result.stdout).records("chat_messages")}
    assert [text for text in texts if text in result.stderr] == []


def test_the_connection_test_checks_the_read_token_too(fed_inbox, kit) -> None:
    inbox, sandbox = fed_inbox
    good = kit.cli("--test", config=_inbox_config(kit, inbox, sandbox))
    assert good.returncode == 0, kit.last_line(good.stderr)

    wrong = _inbox_config(kit, inbox, sandbox, webhook_inbox_token="not-the-read-token")
    bad = kit.cli("--test", config=wrong)
    assert bad.returncode == 1
    last = kit.last_line(bad.stderr)
    assert "Connection test failed" in last
    assert "refused webhook_inbox_token (HTTP 401)" in last
    assert "Traceback" not in bad.stderr


def test_events_larger_than_a_page_are_all_read_in_one_run(fed_inbox, kit) -> None:
    """Finding 3: a page holds at most PAGE_BYTES of bodies; a short page is not the end."""
    inbox, sandbox = fed_inbox
    padding = "x" * (PAGE_BYTES // 5)
    sent = [
        inbox.post(json.dumps({"eventName": "chatTranscript", "n": n, "padding": padding}))
        for n in range(10)
    ]
    assert [answer.status_code for answer in sent] == [200] * 10
    first_page = inbox.read_events(0, 500, headers=inbox.auth).json()
    assert 1 <= len(first_page["events"]) < 10, "the page cap must cut the first page short"

    output = kit.run(_inbox_config(kit, inbox, sandbox))

    assert [event["payload"]["n"] for event in output.records("webhook_events")] == list(range(10))
    assert output.last_state["bookmarks"]["webhook_events"]["replication_key_value"] == 10


def _page(body: dict) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response._content = json.dumps(body).encode()
    return response


@pytest.mark.parametrize(
    ("page", "more"),
    [
        ({"events": [{"seq": 1}], "next_after": 1, "has_more": False}, False),
        ({"events": [], "next_after": 7, "has_more": True}, True),
        # An inbox from before has_more: a page with events may be followed by more.
        ({"events": [{"seq": 1}], "next_after": 1}, True),
        ({"events": [], "next_after": 0}, False),
    ],
    ids=["told-empty", "skipped-rows", "old-inbox", "old-inbox-empty"],
)
def test_the_paginator_goes_on_until_the_inbox_says_it_is_empty(page, more) -> None:
    assert InboxPaginator(0).has_more(_page(page)) is more


def _positions(inbox) -> dict[str, int]:
    store = SqlEventStore(normalize_store_url(inbox.store_url))
    try:
        return {reader.name: reader.acked_seq for reader in store.readers()}
    finally:
        store.close()


def test_each_run_acknowledges_where_its_state_started(fed_inbox, kit) -> None:
    """The inbox's prune deletes nothing past these positions (finding 4)."""
    inbox, sandbox = fed_inbox
    sandbox.simulate_chats(2)
    delivered = len(sandbox.webhook_deliveries())
    config = _inbox_config(kit, inbox, sandbox)

    first = kit.run(config)
    assert _positions(inbox) == {"tap-chatra:chat_messages": 0, "tap-chatra:webhook_events": 0}

    kit.run(config, state=first.last_state)
    assert _positions(inbox) == {
        "tap-chatra:chat_messages": delivered,
        "tap-chatra:webhook_events": delivered,
    }
