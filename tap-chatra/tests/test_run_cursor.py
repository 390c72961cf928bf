"""Issue 16: while a stream runs, STATE holds the run's start and a cursor, not every ID so far.

A run resumed from such a STATE plans the interrupted run again and skips what its cursor
covers, if its ID sources are still the same (or only grew at the end); otherwise it warns and
does everything again. Never an ID skipped that was not fetched.
"""

from __future__ import annotations

import io
import json
import logging
import typing as t
from contextlib import redirect_stdout

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tap_chatra.id_map import read_ids
from tap_chatra.tap import TapChatra

REDONE = "the interrupted run's"
OFFLINE = {"api_key_pair": "pub:secret", "api_url": "http://127.0.0.1:9/api"}


def _mid_run(kit, output, stream: str, total: int) -> dict[str, t.Any]:
    """A STATE written part-way through `stream`, as a kill right after it would leave."""
    for state in output.states:
        if total // 4 <= kit.progress(state, stream) <= total * 3 // 4:
            return state
    msg = f"no STATE part-way through {stream}"
    raise AssertionError(msg)


def _slow(server_factory):
    # Latency, so that a run of 60 messages lasts long enough for several STATEs.
    return server_factory(latency_ms=15, requests_per_minute=0)


def test_sigkill_after_a_cursor_state_resumes_after_the_cursor(chatra_sandbox_factory, kit):
    server = _slow(chatra_sandbox_factory)
    ids = server.ids("messages")
    ids_file = kit.write("messages.txt", ids)
    config = kit.config(
        server,
        message_ids_file=str(ids_file),
        fetch_message_clients=False,
        state_flush_seconds=0.05,
        max_concurrency=2,
    )
    first = kit.kill_at_state(config, lambda state: kit.progress(state, "messages") >= 20)

    resume_from = first.last_state
    bookmark = resume_from["bookmarks"]["messages"]
    # The STATE lists no ID of the run: its bookmark is the run's start, plus the cursor.
    assert read_ids(bookmark["fetched"]) == {}
    done = bookmark["run"]["done"]
    assert done >= 20
    assert bookmark["run"]["retry"] == []
    server.reset_log()

    second = kit.run(config, state=resume_from)

    # Exactly the IDs after the cursor are asked for: none of the first `done`.
    assert sorted(kit.gets(server, "messages")) == sorted(ids[done:])
    assert set(first.ids("messages")) | set(second.ids("messages")) == set(ids)
    assert "run" not in second.last_state["bookmarks"]["messages"]
    assert set(read_ids(second.last_state["bookmarks"]["messages"]["fetched"])) == set(ids)


def test_sources_edited_between_kill_and_resume_redo_everything(
    chatra_sandbox_factory, kit, caplog
):
    server = _slow(chatra_sandbox_factory)
    ids = server.ids("messages")
    ids_file = kit.write("messages.txt", ids)
    config = kit.config(
        server, message_ids_file=str(ids_file), fetch_message_clients=False, max_concurrency=1,
        state_flush_seconds=0.05,
    )  # fmt: skip
    resume_from = _mid_run(kit, kit.run(config), "messages", len(ids))
    # An ID inserted at the top: the interrupted run's plan cannot be made again.
    edited = ["NewAtTheTop0001", *ids]
    kit.write("messages.txt", edited)
    server.reset_log()
    caplog.clear()

    with caplog.at_level(logging.WARNING):
        second = kit.run(config, state=resume_from)

    redone = [m for m in caplog.messages if REDONE in m]
    done = resume_from["bookmarks"]["messages"]["run"]["done"]
    assert redone == [
        (
            f"messages: the interrupted run's {done} fetches are done again: its ID sources "
            "changed since (edited, reordered or shortened), or its STATE was merged with a "
            "later one's."
        )
    ]
    # Nothing skipped: every ID of the file is asked for again (the new one answers 404).
    assert sorted(kit.gets(server, "messages")) == sorted(edited)
    assert sorted(second.ids("messages")) == sorted(ids)


def test_an_id_file_appended_to_keeps_the_cursor_and_its_new_ids_are_fetched(
    chatra_sandbox_factory, kit, caplog
):
    server = _slow(chatra_sandbox_factory)
    ids = server.ids("messages")
    # Two sources: the inline list is read before the file, so both grow at their ends.
    ids_file = kit.write("messages.txt", ids[10:50])
    config = kit.config(
        server, message_ids=ids[:10], message_ids_file=str(ids_file),
        fetch_message_clients=False, max_concurrency=1, state_flush_seconds=0.05,
    )  # fmt: skip
    first = kit.run(config)
    resume_from = _mid_run(kit, first, "messages", 50)
    done = resume_from["bookmarks"]["messages"]["run"]["done"]
    kit.write("messages.txt", ids[10:])
    config = {**config, "message_ids": [*ids[:10], "AddedToTheList01"]}
    server.reset_log()
    caplog.clear()

    with caplog.at_level(logging.INFO):
        second = kit.run(config, state=resume_from)

    assert not [m for m in caplog.messages if REDONE in m]
    assert (
        f"messages: resuming an interrupted run: {done} IDs it fetched are not fetched again."
        in (caplog.messages)
    )
    planned = [*ids[:10], *ids[10:50]]
    # The cursor's IDs are not asked for again; the rest and the new ones are.
    expected = {*planned[done:], *ids[50:], "AddedToTheList01"}
    assert set(kit.gets(server, "messages")) == expected
    assert set(second.ids("messages")) == expected - {"AddedToTheList01"}


def test_clients_resumed_from_a_cursor_are_marked_fetched_and_none_is_lost(
    chatra_sandbox_factory, kit
):
    server = _slow(chatra_sandbox_factory)
    clients = server.ids("clients")
    config = kit.config(
        server, client_ids=clients, max_concurrency=1, state_flush_seconds=0.03,
        client_refresh_hours=0,
    )  # fmt: skip
    first = kit.run(config)
    resume_from = _mid_run(kit, first, "clients", len(clients))
    done = resume_from["bookmarks"]["clients"]["run"]["done"]
    position = first.states.index(resume_from)
    emitted_before = set()
    states_seen = 0
    for message in first.messages:
        if message["type"] == "STATE":
            if states_seen == position:
                break
            states_seen += 1
        elif message["type"] == "RECORD":
            emitted_before.add(message["record"]["id"])
    assert set(clients[:done]) <= emitted_before
    server.reset_log()

    second = kit.run(config, state=resume_from)

    # The refresh resumes: the clients the cursor covers are not asked for again, even with
    # client_refresh_hours 0, and every client is emitted by one run or the other.
    assert sorted(kit.gets(server, "clients")) == sorted(clients[done:])
    assert emitted_before | set(second.ids("clients")) == set(clients)
    fetched = read_ids(second.last_state["bookmarks"]["clients"]["fetched"])
    assert set(fetched) == set(clients)
    # Marked without a fingerprint: the next fetch emits them again (a repeat, not a loss).
    assert all(fetched[c][1] is None for c in clients[:done])
    server.reset_log()
    third = kit.run(config, state=second.last_state)
    assert sorted(third.ids("clients")) == sorted(clients[:done])


def test_intermediate_states_stay_the_size_of_the_runs_start(chatra_sandbox_factory, kit):
    server = _slow(chatra_sandbox_factory)
    ids = server.ids("messages")
    config = kit.config(
        server, message_ids=ids, fetch_message_clients=False, max_concurrency=1,
        state_flush_seconds=0.02,
    )  # fmt: skip
    output = kit.run(config)

    def size(state: dict[str, t.Any]) -> int:
        return len(json.dumps(state["bookmarks"]["messages"], separators=(",", ":")))

    during = [s for s in output.states if "run" in s["bookmarks"].get("messages", {})]
    assert len(during) >= 5
    start = {"fetched": {}, "missing": {}}
    # The start's bookmark, plus a cursor of about 150 bytes, whatever the progress.
    assert max(size(s) for s in during) <= size({"bookmarks": {"messages": start}}) + 200
    assert size(output.last_state) >= len(ids) * 18
    assert "run" not in output.last_state["bookmarks"]["messages"]


def test_a_merged_state_with_a_stale_cursor_warns_and_skips_nothing_unfetched(
    chatra_sandbox_factory, kit, caplog
):
    from meltano.core.utils import merge  # noqa: PLC0415 - Meltano's own merge of partial state

    server = _slow(chatra_sandbox_factory)
    ids = server.ids("messages")
    config = kit.config(
        server, message_ids=ids, fetch_message_clients=False, max_concurrency=1,
        state_flush_seconds=0.05,
    )  # fmt: skip
    partial_a = _mid_run(kit, kit.run(config), "messages", len(ids))
    # Run B resumes from it and is killed before its messages stream writes a cursor: its
    # first STATE (the one it was given, the cursor taken over) is all Meltano keeps.
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        tap_b = TapChatra(config=config, state=json.loads(json.dumps(partial_a)))
        tap_b.state_writer.write_state(tap_b.state)
    partial_b = json.loads(buffer.getvalue().splitlines()[-1])["value"]
    assert "run" not in partial_b["bookmarks"]["messages"]
    # Meltano merges the partial STATEs in order; a key is never deleted, so A's cursor stays.
    merged = merge(partial_b, merge(partial_a, {}))
    assert merged["bookmarks"]["messages"]["run"] == partial_a["bookmarks"]["messages"]["run"]
    server.reset_log()
    caplog.clear()

    with caplog.at_level(logging.WARNING):
        resumed = kit.run(config, state=merged)

    assert len([m for m in caplog.messages if REDONE in m]) == 1
    done = partial_a["bookmarks"]["messages"]["run"]["done"]
    # B had taken over A's cursor: nothing it covered is fetched again, the rest all is.
    assert sorted(kit.gets(server, "messages")) == sorted(ids[done:])
    assert sorted(resumed.ids("messages")) == sorted(ids[done:])


def _interrupted_state(sources: list[str], outcomes: list[bool], now: int) -> dict[str, t.Any]:
    """The last STATE of a run of `sources` killed after len(outcomes) IDs (True: fetched)."""
    tap = TapChatra(config={**OFFLINE, "message_ids": sources})
    stream = t.cast("t.Any", tap.streams["messages"])
    plan = stream.plan(now)
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        stream.begin_run(now)
        for record_id, fetched in zip(plan.to_fetch, outcomes, strict=False):
            if fetched:
                stream.fetched(record_id, now + 5)
            else:
                stream.settled(record_id)
        stream.emit_state_now()
    return json.loads(buffer.getvalue().splitlines()[-1])["value"]


_ID = st.text(alphabet="abcdefgh", min_size=1, max_size=3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sources=st.lists(_ID, max_size=12, unique=True),
    outcomes=st.lists(st.booleans(), max_size=12),
    edit=st.sampled_from(["none", "append", "prepend", "drop first", "reverse", "replace"]),
    extra=st.lists(_ID.map(lambda s: s + "x"), min_size=1, max_size=3, unique=True),
)
def test_a_resumed_run_never_skips_an_id_that_was_not_fetched(sources, outcomes, edit, extra):
    now = 1_767_225_600
    outcomes = outcomes[: len(sources)]
    state = _interrupted_state(sources, outcomes, now)
    fetched = {i for i, ok in zip(sources, outcomes, strict=False) if ok}
    edited = {
        "none": sources,
        "append": [*sources, *extra],
        "prepend": [*extra, *sources],
        "drop first": sources[1:],
        "reverse": sources[::-1],
        "replace": [*extra, *sources[len(extra) :]],
    }[edit]

    tap = TapChatra(config={**OFFLINE, "message_ids": edited}, state=state)
    plan = t.cast("t.Any", tap.streams["messages"]).plan(now + 60)

    # Every listed ID not fetched before the kill is fetched now.
    assert set(edited) - fetched <= set(plan.to_fetch)
    if edit in {"none", "append"}:
        # The cursor was taken over: nothing it covers is fetched again.
        assert not fetched & set(plan.to_fetch)


def test_new_webhook_ids_keep_the_cursor_and_are_fetched_too(chatra_sandbox_factory, kit, caplog):
    server = _slow(chatra_sandbox_factory)
    path, _ = kit.events_file(server, 12)
    config = kit.config(
        server, webhook_events_file=str(path), fetch_message_clients=False, max_concurrency=1,
        state_flush_seconds=0.03,
    )  # fmt: skip
    first = kit.run(config)
    assert len(first.ids("messages")) >= 8
    resume_from = _mid_run(kit, first, "messages", len(first.ids("messages")))
    bookmark = resume_from["bookmarks"]["messages"]
    done = bookmark["run"]["done"]
    # The queue, as the webhook streams left it, is the run's plan, in order.
    queued = list(bookmark["webhook_ids"])
    assert queued == first.ids("messages")
    kit.events_file(server, 4, first=12)  # more chats' webhooks, appended to the file
    server.reset_log()
    caplog.clear()

    with caplog.at_level(logging.INFO):
        second = kit.run(config, state=resume_from)

    assert not [m for m in caplog.messages if REDONE in m]
    asked = kit.gets(server, "messages")
    assert not set(queued[:done]) & set(asked)
    assert set(queued[done:]) <= set(asked)
    new_ids = set(asked) - set(queued)
    assert new_ids, "the appended webhooks named no new message"
    assert set(first.ids("messages")) | set(second.ids("messages")) >= set(queued) | new_ids
