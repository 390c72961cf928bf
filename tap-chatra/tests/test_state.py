"""Per-ID state: fetch once, refresh clients, retry missing IDs when due, small STATE."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from tap_chatra.id_map import read_ids
from tap_chatra.tap import TapChatra


def _minute(epoch_seconds: int) -> str:
    return dt.datetime.fromtimestamp(epoch_seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M")


def _message_config(kit, server, **settings):
    files = server.write_id_files(kit.tmp_path)
    return kit.config(
        server,
        message_ids_file=str(files["messages"]),
        pushed_message_ids_file=str(files["pushed_messages"]),
        **settings,
    )


def test_second_run_fetches_and_emits_no_message_again(chatra_sandbox, kit) -> None:
    config = _message_config(kit, chatra_sandbox)
    first = kit.run(config)
    assert sorted(first.ids("messages")) == sorted(chatra_sandbox.ids("messages"))
    assert sorted(first.ids("pushed_messages")) == sorted(chatra_sandbox.ids("pushed_messages"))

    chatra_sandbox.reset_log()
    second = kit.run(config, state=first.last_state)

    assert second.records("messages") == []
    assert second.records("pushed_messages") == []
    # No message was fetched, so none named its client: the clients, fetched by the first
    # run, are not due again for client_refresh_hours.
    assert chatra_sandbox.request_log() == []
    assert second.records("clients") == []
    # Meltano's --full-refresh starts from empty state: everything is fetched again.
    third = kit.run(config)
    assert len(third.records("messages")) == len(chatra_sandbox.ids("messages"))


def test_new_ids_are_fetched_and_old_ones_not(chatra_sandbox, kit) -> None:
    ids = chatra_sandbox.ids("messages")
    first = kit.run(kit.config(chatra_sandbox, message_ids=ids[:40]))
    chatra_sandbox.reset_log()

    second = kit.run(kit.config(chatra_sandbox, message_ids=ids), state=first.last_state)

    assert second.ids("messages") == ids[40:]  # records come in ID order
    assert sorted(kit.gets(chatra_sandbox, "messages")) == sorted(ids[40:])


def test_changed_client_is_emitted_once_and_unchanged_ones_never(chatra_sandbox, kit) -> None:
    client_ids = chatra_sandbox.ids("clients")[:5]
    config = kit.config(chatra_sandbox, client_ids=client_ids, client_refresh_hours=0)
    first = kit.run(config)
    assert first.ids("clients") == client_ids

    chatra_sandbox.store.update_client(client_ids[2], notes="Now prefers phone calls.")
    chatra_sandbox.reset_log()
    second = kit.run(config, state=first.last_state)
    third = kit.run(config, state=second.last_state)

    assert second.ids("clients") == [client_ids[2]]
    assert second.records("clients")[0]["notes"] == "Now prefers phone calls."
    assert third.records("clients") == []
    # With client_refresh_hours 0, clients are fetched on every run, even when nothing is
    # emitted.
    assert sorted(kit.gets(chatra_sandbox, "clients")) == sorted(client_ids * 2)


def test_missing_id_is_retried_only_when_due(chatra_sandbox, kit) -> None:
    present = chatra_sandbox.ids("messages")[0]
    config = kit.config(
        chatra_sandbox, message_ids=[present, "NoSuchMessage0001"], fetch_message_clients=False
    )
    first = kit.run(config)
    missing = first.last_state["bookmarks"]["messages"]["missing"]
    assert list(read_ids(missing)) == ["NoSuchMessage0001"]

    chatra_sandbox.reset_log()
    kit.run(config, state=first.last_state)
    assert kit.gets(chatra_sandbox) == []

    overdue = json.loads(json.dumps(first.last_state))
    ((minute, ids),) = overdue["bookmarks"]["messages"]["missing"].items()
    earlier = dt.datetime.fromisoformat(minute) - dt.timedelta(hours=25)
    overdue["bookmarks"]["messages"]["missing"] = {earlier.strftime("%Y-%m-%dT%H:%M"): ids}
    kit.run(config, state=overdue)
    assert kit.gets(chatra_sandbox) == ["NoSuchMessage0001"]

    chatra_sandbox.reset_log()
    kit.run({**config, "missing_retry_hours": 0}, state=first.last_state)
    assert kit.gets(chatra_sandbox) == ["NoSuchMessage0001"]


def test_missing_id_that_appears_later_is_fetched_and_no_longer_missing(chatra_sandbox, kit):
    config = kit.config(chatra_sandbox, client_ids=["late-client"], missing_retry_hours=0)
    first = kit.run(config)
    assert first.records("clients") == []
    assert "late-client" in read_ids(first.last_state["bookmarks"]["clients"]["missing"])

    chatra_sandbox.store.add_client("late-client")
    second = kit.run(config, state=first.last_state)
    assert second.ids("clients") == ["late-client"]
    third = kit.run(config, state=second.last_state)
    assert third.records("clients") == []


def test_clients_of_messages_are_fetched_once_each(chatra_sandbox, kit) -> None:
    messages = chatra_sandbox.ids("messages")
    configured = chatra_sandbox.ids("clients")[:3]
    config = kit.config(chatra_sandbox, message_ids=messages, client_ids=configured)
    output = kit.run(config)

    message_clients = {record["clientId"] for record in output.records("messages")}
    expected = set(configured) | message_clients
    fetched = kit.gets(chatra_sandbox, "clients")
    assert sorted(fetched) == sorted(expected)  # each one once: no duplicates
    assert sorted(output.ids("clients")) == sorted(expected)
    # Configured IDs first, then the clients of messages in the order they were emitted.
    assert output.ids("clients")[:3] == configured


def test_no_clients_of_messages_when_disabled(chatra_sandbox, kit) -> None:
    config = kit.config(
        chatra_sandbox, message_ids=chatra_sandbox.ids("messages")[:5], fetch_message_clients=False
    )
    output = kit.run(config)
    assert len(output.records("messages")) == 5
    assert kit.gets(chatra_sandbox, "clients") == []


def test_catalog_selecting_only_clients_still_reads_configured_ids(chatra_sandbox, kit) -> None:
    config = kit.config(
        chatra_sandbox,
        message_ids=chatra_sandbox.ids("messages")[:5],
        client_ids=chatra_sandbox.ids("clients")[:2],
    )
    catalog = TapChatra(config=config).catalog_dict
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = entry["tap_stream_id"] == "clients"
    output = kit.run(config, catalog=catalog)

    assert output.ids("clients") == chatra_sandbox.ids("clients")[:2]
    assert kit.gets(chatra_sandbox, "messages") == []


def test_interrupted_client_refresh_resumes_without_refetching_done_clients(
    chatra_sandbox, kit
) -> None:
    client_ids = chatra_sandbox.ids("clients")[:6]
    config = kit.config(chatra_sandbox, client_ids=client_ids, client_refresh_hours=0)
    first = kit.run(config)
    state = json.loads(json.dumps(first.last_state))
    clients = state["bookmarks"]["clients"]
    fetched = read_ids(clients["fetched"])
    # As a run killed half-way would leave it: a refresh started (on a whole minute, as
    # refreshes do) and not finished, three clients fetched since it started (one of them
    # changed meanwhile), three in the minute before it.
    started = (int(time.time()) // 60 - 1) * 60
    clients["refresh"] = {"started": started, "finished": started - 500}
    minutes = {"since": _minute(started), "before": _minute(started - 60)}
    clients["fetched"] = {minute: {} for minute in minutes.values()}
    for position, client_id in enumerate(client_ids):
        minute = minutes["since" if position < 3 else "before"]
        clients["fetched"][minute][client_id] = fetched[client_id][1]
    chatra_sandbox.store.update_client(client_ids[4], name="Renamed Meanwhile")
    chatra_sandbox.reset_log()

    resumed = kit.run(config, state=state)

    assert sorted(kit.gets(chatra_sandbox, "clients")) == sorted(client_ids[3:])
    assert resumed.ids("clients") == [client_ids[4]]
    refresh = resumed.last_state["bookmarks"]["clients"]["refresh"]
    assert refresh["finished"] >= refresh["started"] == started


@pytest.mark.parametrize("stream", ["messages", "clients"])
def test_state_stays_under_64_bytes_per_id(chatra_sandbox, kit, stream) -> None:
    special = chatra_sandbox.store.special_client_ids()
    config = kit.config(chatra_sandbox, message_ids=chatra_sandbox.ids("messages"))
    config["client_ids"] = special
    output = kit.run(config)
    line = next(line for line in reversed(output.lines) if '"type":"STATE"' in line)
    state = json.loads(line)
    bookmark = state["value"]["bookmarks"][stream]
    count = len(read_ids(bookmark["fetched"]))
    assert count >= (len(special) + 10 if stream == "clients" else 60)
    # 40-character client IDs (Chatra's own) and odd website-set IDs are both in the sample.
    bookmark["fetched"] = {}
    empty = json.dumps(state, separators=(",", ":"), ensure_ascii=False)
    per_id = (len(line.encode()) - len(empty.encode())) / count
    assert per_id < 64, f"{per_id:.1f} bytes per {stream} ID"
    if stream == "messages":
        # Chatra's 17-character message IDs: no more than the 31 bytes the earlier layout took.
        assert per_id <= 31, f"{per_id:.1f} bytes per message ID"


def test_state_is_emitted_often_and_only_covers_records_already_written(
    chatra_sandbox_factory, kit
) -> None:
    server = chatra_sandbox_factory(latency_ms=20, requests_per_minute=0)
    config = kit.config(
        server,
        message_ids=server.ids("messages"),
        state_flush_seconds=0.1,
        max_concurrency=2,
    )
    output = kit.run(config)

    written: set[str] = set()
    mid_stream_states = 0
    for message in output.messages:
        if message["type"] == "RECORD":
            written.add(message["record"]["id"])
        elif message["type"] == "STATE":
            # What a run resumed from this STATE takes as fetched: its bookmarks and its cursor.
            for stream, fetched in kit.covered(config, message["value"]).items():
                assert fetched <= written, f"STATE for {stream} covers unwritten records"
            if 0 < kit.progress(message["value"], "messages") < len(server.ids("messages")):
                mid_stream_states += 1
    # 60 messages at ~20 ms each, two at a time: about 0.6 s, so several 0.1 s flushes.
    assert mid_stream_states >= 3


def test_state_follows_the_last_record_of_every_stream(chatra_sandbox, kit) -> None:
    output = kit.run(_message_config(kit, chatra_sandbox))
    messages = output.messages
    for stream in ("messages", "pushed_messages", "clients"):
        last = max(i for i, m in enumerate(messages) if m.get("stream") == stream)
        following = next(m for m in messages[last + 1 :] if m["type"] == "STATE")
        fetched = read_ids(following["value"]["bookmarks"][stream]["fetched"])
        assert set(fetched) == set(output.ids(stream))


def test_meltano_partial_state_merge_resumes_a_failed_run(chatra_sandbox, kit) -> None:
    from meltano.core.utils import merge  # noqa: PLC0415 - Meltano's own merge of partial state

    ids = chatra_sandbox.ids("messages")
    config = kit.config(chatra_sandbox, message_ids=[*ids, "NoSuchMessage0009"])
    completed = kit.run({**config, "message_ids": [*ids[:20], "NoSuchMessage0009"]}).last_state

    # From ids[40] on the API fails: the IDs are set aside until the failures are systemic.
    chatra_sandbox.configure(fail_ids=dict.fromkeys(ids[40:], 99))
    failed = kit.run({**config, "max_retries": 0}, state=completed, expect_error=True)
    assert failed.ids("messages") == ids[20:40]
    merged = merge(failed.last_state, json.loads(json.dumps(completed)))

    chatra_sandbox.configure(fail_ids={})
    chatra_sandbox.reset_log()
    # The IDs the systemic failure set aside are tried at once; so is the 404 (no wait).
    final = kit.run({**config, "missing_retry_hours": 0}, state=merged)

    assert final.ids("messages") == ids[40:]
    # (A set: the failed run's last in-flight requests may still land after the log reset.)
    assert set(kit.gets(chatra_sandbox, "messages")) == {*ids[40:], "NoSuchMessage0009"}


def test_stream_maps_and_flattening_keep_state_and_message_clients(chatra_sandbox, kit) -> None:
    # Aliases and flattening change only what is written: per-ID state stays under the
    # stream's own name, and the clients of messages are still fetched.
    messages = chatra_sandbox.ids("messages")
    config = kit.config(
        chatra_sandbox,
        message_ids=messages,
        stream_maps={"messages": {"__alias__": "chat_messages"}},
        flattening_enabled=True,
        flattening_max_depth=1,
    )
    first = kit.run(config)

    records = first.records("chat_messages")
    assert [record["id"] for record in records] == messages
    assert first.records("messages") == []
    message_clients = {record["clientId"] for record in records}
    assert set(first.ids("clients")) == message_clients
    assert not [r for r in records if isinstance(r.get("file"), dict)], "`file` not flattened"
    assert any(r.get("file__filename") for r in records), "no message with a file to flatten"
    assert set(read_ids(first.last_state["bookmarks"]["messages"]["fetched"])) == set(messages)

    chatra_sandbox.reset_log()
    second = kit.run(config, state=first.last_state)
    assert second.records("chat_messages") == []
    assert kit.gets(chatra_sandbox, "messages") == []
