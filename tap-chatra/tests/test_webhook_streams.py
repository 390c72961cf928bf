"""webhook_events and chat_messages from webhook_events_file, and the IDs events hand on."""

from __future__ import annotations

import json
import logging

import pytest

from tap_chatra.events import event_row, message_key, message_rows
from tap_chatra.id_map import read_ids
from tap_chatra.tap import TapChatra


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def _text(message: dict) -> str:
    return message.get("text", message.get("message"))


def test_simulated_chats_become_events_messages_and_fetched_ids(chatra_sandbox, kit) -> None:
    path, chats = kit.events_file(chatra_sandbox, 8)
    lines = path.read_text(encoding="utf-8").splitlines()
    output = kit.run(kit.config(chatra_sandbox, webhook_events_file=str(path)))

    events = output.records("webhook_events")
    assert [event["seq"] for event in events] == list(range(1, len(lines) + 1))
    assert {event["received_at"] for event in events[::2]} == {"2026-05-01T10:00:00+00:00"}
    assert {event["received_at"] for event in events[1::2]} == {None}
    for event, line in zip(events, lines, strict=True):
        value = json.loads(line)
        assert event["payload"] == value.get("body", value)
        assert event["event_name"] == event["payload"]["eventName"]
        assert event["client_id"] == event["payload"]["client"]["id"]
        assert event["chat_id"] == event["payload"]["client"]["chatId"]

    rows = output.records("chat_messages")
    assert len(rows) == len({row["key"] for row in rows})
    assert len(rows) == sum(len(chat.messages) for chat in chats)
    by_text = {(row["chat_id"], row["text"]): row for row in rows}
    for chat in chats:
        for message in chat.messages:
            row = by_text[chat.chat_id, message["text"]]
            assert row["client_id"] == chat.client_id
            assert row["type"] == message["type"]
            assert row["agent_id"] == message.get("agentId")
            assert row["agent_name"] == message.get("agentName")
            assert row["file"] == message.get("file")
            assert row["is_pushed"] is False
            if chat.style.with_ids:
                assert row["key"] == row["id"] == message["id"]
            else:
                assert row["id"] is None
                assert row["key"].startswith("sha256:")
            assert (row["created_at"] is not None) == chat.style.with_created_at
            assert ("html" in row["extra"]) == chat.style.extra_keys
            assert row["event_name"] in {"chatFragment", "chatTranscript"}
    # A message comes in a fragment first and again in the transcript: the row is the first.
    assert {row["event_name"] for row in rows} == {"chatFragment"}

    # Every client an event named, and every message ID an event carried, fetched in this run.
    assert sorted(output.ids("clients")) == sorted(chat.client_id for chat in chats)
    carried = [m["id"] for chat in chats if chat.style.with_ids for m in chat.messages]
    assert carried, "the seed should give some chats with message IDs"
    assert sorted(output.ids("messages")) == sorted(carried)
    assert sorted(kit.gets(chatra_sandbox, "messages")) == sorted(carried)


def test_a_second_run_emits_nothing_and_makes_no_request(chatra_sandbox, kit) -> None:
    path, _ = kit.events_file(chatra_sandbox, 3)
    config = kit.config(chatra_sandbox, webhook_events_file=str(path))
    first = kit.run(config)
    requests_before = len(chatra_sandbox.request_log())

    second = kit.run(config, state=first.last_state)

    assert second.counts()[("RECORD", "webhook_events")] == 0
    assert second.counts()[("RECORD", "chat_messages")] == 0
    assert not [m for m in second.messages if m["type"] == "RECORD"]
    assert chatra_sandbox.request_log()[requests_before:] == []


def test_a_growing_file_is_read_on_from_where_the_last_run_stopped(chatra_sandbox, kit) -> None:
    path, _ = kit.events_file(chatra_sandbox, 2)
    config = kit.config(chatra_sandbox, webhook_events_file=str(path))
    first = kit.run(config)
    last_seq = first.records("webhook_events")[-1]["seq"]

    _, new_chats = kit.events_file(chatra_sandbox, 2, first=2)
    requests_before = len(chatra_sandbox.request_log())
    second = kit.run(config, state=first.last_state)

    new_lines = len(path.read_text(encoding="utf-8").splitlines()) - last_seq
    seqs = [event["seq"] for event in second.records("webhook_events")]
    assert seqs == list(range(last_seq + 1, last_seq + 1 + new_lines))
    new_clients = {chat.client_id for chat in new_chats}
    assert {event["client_id"] for event in second.records("webhook_events")} == new_clients
    assert len(second.records("chat_messages")) == sum(len(chat.messages) for chat in new_chats)
    fetched = {entry["record_id"] for entry in chatra_sandbox.request_log()[requests_before:]}
    new_message_ids = {m["id"] for c in new_chats if c.style.with_ids for m in c.messages}
    assert fetched == new_clients | new_message_ids


def test_a_replaced_file_is_read_from_the_start_with_a_warning(chatra_sandbox, kit, caplog) -> None:
    path, _ = kit.events_file(chatra_sandbox, 2)
    config = kit.config(chatra_sandbox, webhook_events_file=str(path))
    first = kit.run(config)
    last_seq = first.records("webhook_events")[-1]["seq"]

    path.unlink()
    path, chats = kit.events_file(chatra_sandbox, 1, first=5)
    caplog.clear()
    second = kit.run(config, state=first.last_state)

    events = second.records("webhook_events")
    assert [event["client_id"] for event in events] == [chats[0].client_id] * len(events)
    # Numbering goes on: a seq never names two events.
    assert [event["seq"] for event in events] == list(
        range(last_seq + 1, last_seq + 1 + len(events))
    )
    assert len(second.records("chat_messages")) == len(chats[0].messages)
    assert (
        f"webhook_events: webhook_events_file {path} was replaced or truncated since the last "
        "run; reading it from the start."
    ) in _warnings(caplog)


def test_a_truncated_file_is_read_from_the_start(chatra_sandbox, kit, caplog) -> None:
    path, _ = kit.events_file(chatra_sandbox, 2)
    config = kit.config(chatra_sandbox, webhook_events_file=str(path))
    first = kit.run(config)
    first_line = path.read_text(encoding="utf-8").splitlines()[0]
    path.write_text(first_line + "\n", encoding="utf-8")

    second = kit.run(config, state=first.last_state)

    assert len(second.records("webhook_events")) == 1
    assert any("was replaced or truncated" in warning for warning in _warnings(caplog))


def test_a_line_still_being_written_waits_for_the_next_run(chatra_sandbox, kit) -> None:
    path, _chats = kit.events_file(chatra_sandbox, 1)
    complete = path.read_text(encoding="utf-8")
    count = len(complete.splitlines())
    payload = json.dumps({"eventName": "chatStarted", "client": {"id": "late-client"}})
    path.write_text(complete + payload[:20], encoding="utf-8")
    config = kit.config(chatra_sandbox, webhook_events_file=str(path))

    first = kit.run(config)
    assert len(first.records("webhook_events")) == count

    path.write_text(complete + payload + "\n", encoding="utf-8")
    second = kit.run(config, state=first.last_state)
    [event] = second.records("webhook_events")
    assert event["seq"] == count + 1
    assert event["client_id"] == "late-client"


def test_bad_lines_and_ids_are_reported_and_skipped(chatra_sandbox, kit, caplog) -> None:
    events = [
        {
            "eventName": "chatStarted",
            "client": {"id": "client-1", "chatId": "c1", "info": {"shop": "x"}},
            "messages": [{"type": "client", "text": "Hi!"}],
        },
        {
            "eventName": "chatFragment",
            "client": {"id": "client-2"},
            "messages": [
                {"id": "MSG1", "type": "client", "message": "Hello"},
                {"id": "PUSH1", "type": "agent", "text": "Offer", "isPushed": True},
            ],
            "agents": [{"id": "agent-1"}],
        },
        {"eventName": "chatTranscript", "client": {"id": "client-1"}, "messages": []},
        {"eventName": "chatFragment", "client": {"id": "  "}},
    ]
    lines = [json.dumps(event) for event in events]
    path = kit.write("events.jsonl", [*lines[:2], "garbage", "[1, 2]", *lines[2:]])
    config = kit.config(chatra_sandbox, webhook_events_file=str(path), client_ids=["client-0"])

    output = kit.run(config)

    assert len(output.records("webhook_events")) == 4
    assert sorted(kit.gets(chatra_sandbox, "clients")) == ["client-0", "client-1", "client-2"]
    assert kit.gets(chatra_sandbox, "messages") == ["MSG1"]
    assert kit.gets(chatra_sandbox, "pushedMessages") == ["PUSH1"]
    warnings = _warnings(caplog)
    for stream in ("webhook_events", "chat_messages"):
        assert f"{stream}: webhook_events_file {path}, line 3: not valid JSON; skipped." in warnings
        assert (
            f"{stream}: webhook_events_file {path}, line 4: not a JSON object; skipped."
        ) in warnings
    # The IDs of an event are handed on once, by the first stream to read it.
    assert (
        warnings.count("webhook_events: event seq 4: client.id: ID is only whitespace; skipped.")
        == 1
    )
    assert not [w for w in warnings if w.startswith("chat_messages: event seq")]


def test_webhook_file_drives_a_sync_with_message_clients_deduplicated(chatra_sandbox, kit) -> None:
    message_ids = chatra_sandbox.ids("messages")[:6]
    clients_of_messages = [chatra_sandbox.store.messages[m]["clientId"] for m in message_ids]
    events = [
        {"eventName": "chatFragment", "client": {"id": client}, "messages": [{"id": message}]}
        for message, client in zip(message_ids, clients_of_messages, strict=True)
    ]
    path = kit.write("events.jsonl", [json.dumps(event) for event in events])
    output = kit.run(kit.config(chatra_sandbox, webhook_events_file=str(path)))

    assert output.ids("messages") == message_ids
    unique_clients = list(dict.fromkeys(clients_of_messages))
    assert output.ids("clients") == unique_clients
    # Each client once, although webhooks and messages both named it.
    assert sorted(kit.gets(chatra_sandbox, "clients")) == sorted(unique_clients)


def test_event_ids_wait_in_state_until_fetched(chatra_sandbox, kit) -> None:
    # The webhook streams' bookmark moves past an event in the same STATE that queues its IDs,
    # so a run that dies before the REST streams fetch them leaves them queued, not lost.
    message_id = chatra_sandbox.ids("messages")[0]
    client_id = chatra_sandbox.store.messages[message_id]["clientId"]
    event = {
        "eventName": "chatFragment",
        "client": {"id": client_id},
        "messages": [{"id": message_id}],
    }
    path = kit.write("events.jsonl", [json.dumps(event)])
    config = kit.config(chatra_sandbox, webhook_events_file=str(path))
    catalog = json.loads(kit.cli("--discover", config=config).stdout)
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] == "chat_messages":
            entry["metadata"][0]["metadata"]["selected"] = False
    # A run killed after webhook_events: its STATE, as the target would have passed it on.
    output = kit.run(config, catalog=catalog)
    after_events = output.states[0]["bookmarks"]
    assert list(after_events["messages"]["webhook_ids"]) == [message_id]
    assert list(read_ids(after_events["clients"]["named"])) == [client_id]

    resumed = kit.run(config, state=output.states[0], catalog=catalog)
    assert resumed.records("webhook_events") == []
    assert resumed.ids("messages") == [message_id]
    assert resumed.ids("clients") == [client_id]
    assert resumed.last_state["bookmarks"]["messages"]["webhook_ids"] == {}
    assert read_ids(resumed.last_state["bookmarks"]["clients"]["named"]) == {}


def test_a_client_named_again_is_fetched_again_even_without_message_clients(
    chatra_sandbox, kit
) -> None:
    client_id = chatra_sandbox.ids("clients")[0]
    event = {"eventName": "chatStarted", "client": {"id": client_id}}
    path = kit.write("events.jsonl", [json.dumps(event)])
    config = kit.config(chatra_sandbox, webhook_events_file=str(path), fetch_message_clients=False)
    first = kit.run(config)
    assert kit.gets(chatra_sandbox, "clients") == [client_id]

    chatra_sandbox.store.update_client(client_id, name="Changed Since")
    with path.open("a", encoding="utf-8") as file:
        file.write(json.dumps(event) + "\n")
    second = kit.run(config, state=first.last_state)
    assert kit.gets(chatra_sandbox, "clients") == [client_id, client_id]
    assert [r["name"] for r in second.records("clients")] == ["Changed Since"]
    third = kit.run(config, state=second.last_state)
    assert kit.gets(chatra_sandbox, "clients") == [client_id, client_id]
    assert third.records("clients") == []


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"webhook_inbox_url": "http://127.0.0.1:1", "webhook_events_file": "x.jsonl"},
            "Set webhook_inbox_url or webhook_events_file, not both: they feed the same streams.",
        ),
        (
            {"webhook_inbox_url": "http://127.0.0.1:1"},
            "webhook_inbox_url is set but webhook_inbox_token is missing; set the read token.",
        ),
        (
            {"webhook_inbox_url": "http://hooks.example.com", "webhook_inbox_token": "t"},
            (
                "webhook_inbox_url 'http://hooks.example.com' must be an https URL (plain http "
                "only for 127.0.0.1 or localhost: the read token would travel unencrypted)."
            ),
        ),
    ],
)
def test_webhook_settings_that_cannot_work_stop_with_one_line(
    chatra_sandbox, kit, settings, message
) -> None:
    result = kit.cli(config=kit.config(chatra_sandbox, **settings))
    assert result.returncode == 1
    assert kit.last_line(result.stderr).endswith(message)
    assert "Traceback" not in result.stderr


def test_a_missing_events_file_is_one_clear_error(chatra_sandbox, kit) -> None:
    missing = kit.tmp_path / "nowhere.jsonl"
    result = kit.cli(config=kit.config(chatra_sandbox, webhook_events_file=str(missing)))
    assert result.returncode == 1
    assert kit.last_line(result.stderr).endswith(
        f"webhook_events_file: cannot read {missing}: No such file or directory."
    )
    assert "Traceback" not in result.stderr
    assert chatra_sandbox.request_log() == []


def _event(messages: list[dict], name: str = "chatFragment") -> dict:
    payload = {"eventName": name, "client": {"id": "cl", "chatId": "chat-1"}, "messages": messages}
    return event_row(7, payload)


def test_message_rows_accept_every_spelling_and_keep_the_unknown() -> None:
    rows = list(
        message_rows(
            _event(
                [
                    {"type": "client", "message": "Hi", "createdAt": 1_700_000_000_000},
                    {"id": "M1", "type": "agent", "text": "Hello", "agentId": "A", "x": 1},
                    {"type": "client", "text": "both", "message": "spellings"},
                    {"type": "agent", "text": 42},
                    "not a message",
                ]
            )
        )
    )
    assert [row["text"] for row in rows] == ["Hi", "Hello", "both", None]
    assert rows[0]["key"] == message_key("chat-1", 1_700_000_000_000, "client", "Hi")
    assert rows[0]["created_at"] == "2023-11-14T22:13:20+00:00"
    assert rows[1]["key"] == "M1"
    assert rows[1]["agent_id"] == "A"
    assert rows[1]["extra"] == {"x": 1}
    assert rows[2]["extra"] == {"message": "spellings"}
    assert rows[3]["extra"] == {"text": 42}
    assert {row["seq"] for row in rows} == {7}
    assert {row["chat_id"] for row in rows} == {"chat-1"}


def test_a_message_without_id_has_the_same_key_in_fragment_and_transcript() -> None:
    message = {"type": "client", "text": "Where is my order?"}
    fragment = next(message_rows(_event([message])))
    transcript = next(message_rows(_event([{**message, "html": "<p>"}], "chatTranscript")))
    assert fragment["key"] == transcript["key"]
    other_chat = event_row(
        8, {"eventName": "chatFragment", "client": {"chatId": "chat-2"}, "messages": [message]}
    )
    assert next(message_rows(other_chat))["key"] != fragment["key"]


def test_only_fragments_and_transcripts_carry_chat_messages() -> None:
    assert list(message_rows(_event([{"type": "client", "text": "Hi"}], "chatStarted"))) == []


def test_the_connection_test_checks_that_the_events_file_can_be_read(chatra_sandbox, kit) -> None:
    missing = kit.tmp_path / "nowhere.jsonl"
    result = kit.cli("--test", config=kit.config(chatra_sandbox, webhook_events_file=str(missing)))
    assert result.returncode == 1
    assert kit.last_line(result.stderr).endswith(
        f"webhook_events_file: cannot read {missing}: No such file or directory."
    )


def _selecting(config: dict, streams: set[str]) -> dict:
    catalog = TapChatra(config=config).catalog_dict
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = entry["tap_stream_id"] in streams
    return catalog


def test_a_webhook_source_no_selected_stream_reads_is_a_warning(chatra_sandbox, kit, caplog):
    path, _ = kit.events_file(chatra_sandbox, 3)
    config = kit.config(chatra_sandbox, webhook_events_file=str(path))

    kit.run(config, catalog=_selecting(config, {"messages", "clients"}))
    unread = [w for w in _warnings(caplog) if "reads no webhook events" in w]
    assert len(unread) == 1
    assert unread[0].startswith("webhook_events_file is set, but neither webhook_events nor")

    caplog.clear()
    kit.run(config, catalog=_selecting(config, {"chat_messages", "messages", "clients"}))
    assert not [w for w in _warnings(caplog) if "reads no webhook events" in w]


def test_a_kill_reads_again_at_most_the_events_of_one_flush_interval(chatra_sandbox, kit) -> None:
    # STATE follows the webhook streams by the same schedule as the per-ID streams, not only
    # at their end or every 10,000 records: after kill -9 the next run reads again only the
    # events since the last STATE Meltano received.
    total = 8_000
    path = kit.write(
        "events.jsonl",
        (
            json.dumps(
                {
                    "eventName": "chatFragment",
                    "messages": [{"type": "client", "text": f"hello {n}", "createdAt": n}],
                }
            )
            for n in range(total)
        ),
    )
    config = kit.config(
        chatra_sandbox,
        webhook_events_file=str(path),
        fetch_message_clients=False,
        state_flush_seconds=0.1,
    )
    mid_stream: list[int] = []

    def second_state_mid_stream(state: dict) -> bool:
        done = state.get("bookmarks", {}).get("webhook_events", {}).get("replication_key_value")
        if isinstance(done, int) and done < total:
            mid_stream.append(done)
        return len(mid_stream) == 2

    killed = kit.kill_at_state(config, second_state_mid_stream)
    resumed_from = killed.last_state["bookmarks"]["webhook_events"]["replication_key_value"]
    first = [row["seq"] for row in killed.records("webhook_events")]
    resumed = kit.run(config, state=killed.last_state)
    second = [row["seq"] for row in resumed.records("webhook_events")]

    assert sorted(set(first) | set(second)) == list(range(1, total + 1))  # none lost
    again = set(first) & set(second)
    assert all(seq > resumed_from for seq in again)
    # At most what one interval wrote: the events between the two STATEs before the kill.
    interval = mid_stream[1] - mid_stream[0]
    assert 0 < interval < total / 4
    assert len(again) <= interval
