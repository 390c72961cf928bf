"""STATE volume: intervals grow with the STATE's size, old STATE still reads, big ones logged."""

from __future__ import annotations

import io
import itertools
import json
import logging
from contextlib import redirect_stdout

import pytest
from singer_sdk.singerlib import StateMessage
from singer_sdk.singerlib.json import serialize_json

from tap_chatra.id_map import read_ids
from tap_chatra.progress import Periodic, Progress
from tap_chatra.state_flush import FlushSchedule, StateSizeWriter, state_pieces
from tap_chatra.tap import TapChatra

LOGGER = logging.getLogger("tap-chatra.volume")


def test_schedule_grows_with_the_state_between_its_bounds() -> None:
    schedule = FlushSchedule(min_seconds=10, max_seconds=300, bytes_per_hour=10_000_000)
    assert schedule.interval(1_000) == 10  # small: as often as state_flush_seconds says
    assert schedule.interval(500_000) == pytest.approx(180)  # 20 an hour: 10 MB
    assert schedule.interval(20_000_000) == 300  # the most a kill may lose wins over bytes
    assert FlushSchedule(10, 300, 0).interval(20_000_000) == 10  # no budget: every 10 s


def test_periodic_spaces_flushes_by_the_size_of_the_last_state() -> None:
    now = [0.0]
    flushes: list[float] = []
    size = [1_000]

    def flush() -> int:
        flushes.append(now[0])
        return size[0]

    progress = Progress("messages", 10_000, LOGGER, interval=1e9, clock=lambda: now[0])
    schedule = FlushSchedule(min_seconds=10, max_seconds=300, bytes_per_hour=3_600_000)
    periodic: Periodic[None] = Periodic(progress, flush, schedule, clock=lambda: now[0])
    for second in range(1, 6000):
        now[0] = float(second)
        size[0] = 100 * second  # the STATE grows by 100 bytes a second
        periodic.run_due()
    gaps = [later - earlier for earlier, later in itertools.pairwise(flushes)]
    assert gaps[0] == 10
    assert max(gaps) == 300
    # In between, each gap is the last STATE's size at 1,000 bytes a second.
    assert any(10 < gap < 300 for gap in gaps)
    assert all(gap <= 300 for gap in gaps)


def test_a_state_over_one_megabyte_is_logged_with_its_size(caplog) -> None:
    writer = StateSizeWriter()
    out = io.StringIO()
    with caplog.at_level(logging.INFO, logger="tap-chatra"), redirect_stdout(out):
        writer.write_message(StateMessage(value={"bookmarks": {"m": {"x": "y"}}}))
        small = writer.last_state_bytes
        writer.write_message(StateMessage(value={"bookmarks": {"m": {"x": "y" * 1_200_000}}}))
    lines = out.getvalue().splitlines()
    assert small == len(lines[0]) + 1
    assert writer.last_state_bytes == len(lines[1]) + 1
    assert [r.getMessage() for r in caplog.records] == ["STATE written: 1.2 MB."]


def test_state_pieces_are_the_json_the_sdk_would_write() -> None:
    state = {
        "bookmarks": {
            "messages": {"fetched": {"2023-11-14T22:13": ["a", "\u00e9\ud800"]}, "missing": {}},
            "clients": {
                "fetched": {"A": "1700000000:fp0001"},
                "refresh": {"started": 1_699_999_980},
                "queued": {"q\n": 1},
                "progress_markers": {"Note": "x", "numbers": [1, 2.5, None, True]},
            },
        }
    }
    tap = TapChatra(config={"api_key_pair": "pub:secret"}, state=state)
    message = StateMessage(value=tap.state).to_dict()
    assert "".join(state_pieces(message)) == serialize_json(message)
    # The earlier `queued` object is written back as names (from long ago).
    assert '"named":{"1970-01-01T00:00":["q\\n"]}' in serialize_json(message)


def _mid_stream_states(kit, output, total: int) -> int:
    count = 0
    for state in output.states:
        if 0 < kit.progress(state, "messages") < total:
            count += 1
    return count


@pytest.mark.parametrize(
    ("budget", "longest", "expect_mid_stream"),
    [
        (0, 100, True),  # no budget: every state_flush_seconds
        (1, 100, False),  # one byte an hour: one STATE (its size unknown before), then none
        (1, 0.1, True),  # ... unless the longest interval forces them
    ],
)
def test_the_byte_budget_spaces_states_and_the_longest_interval_bounds_it(
    chatra_sandbox_factory, kit, budget, longest, expect_mid_stream
) -> None:
    server = chatra_sandbox_factory(latency_ms=20, requests_per_minute=0)
    ids = server.ids("messages")
    config = kit.config(
        server,
        message_ids=ids,
        fetch_message_clients=False,
        max_concurrency=2,
        state_flush_seconds=0.05,
        state_bytes_per_hour=budget,
        state_max_flush_seconds=longest,
    )
    output = kit.run(config)
    assert sorted(output.ids("messages")) == sorted(ids)
    mid_stream = _mid_stream_states(kit, output, len(ids))
    # 60 messages at ~20 ms each, two at a time: at least 0.6 s.
    assert (mid_stream >= 3) if expect_mid_stream else (mid_stream <= 1)
    # Whatever the spacing, the stream's end is always followed by a STATE covering it all.
    assert set(read_ids(output.last_state["bookmarks"]["messages"]["fetched"])) == set(ids)


def test_a_state_of_the_earlier_layout_resumes_and_is_written_back_compact(
    chatra_sandbox, kit
) -> None:
    messages = chatra_sandbox.ids("messages")
    clients = chatra_sandbox.ids("clients")[:4]
    config = kit.config(chatra_sandbox, message_ids=messages, client_ids=clients)
    first = kit.run(config)
    # The same STATE as the earlier layout wrote it: one entry per ID.
    legacy = json.loads(json.dumps(first.last_state))
    for stream, bookmark in legacy["bookmarks"].items():
        for key in ("fetched", "missing"):
            entries = read_ids(bookmark.get(key))
            bookmark[key] = {
                record_id: when if fp is None else f"{when}:{fp}"
                for record_id, (when, fp) in entries.items()
            }
        if stream == "clients":
            # The clients of messages, which the earlier layout kept queued for good.
            queued = [c for c in first.ids("clients") if c not in clients]
            bookmark["queued"] = dict.fromkeys(queued, 1)
    assert legacy["bookmarks"]["messages"]["fetched"][messages[0]] > 1_700_000_000

    chatra_sandbox.reset_log()
    second = kit.run({**config, "client_refresh_hours": 0}, state=legacy)

    assert second.records("messages") == []
    assert second.records("clients") == []  # unchanged: the fingerprints were read
    # Every known client is fetched (hours 0), configured ones and those of messages.
    assert sorted(kit.gets(chatra_sandbox)) == sorted({*clients, *queued})
    written = second.last_state["bookmarks"]
    assert set(read_ids(written["messages"]["fetched"])) == set(messages)
    assert all(isinstance(ids, list) for ids in written["messages"]["fetched"].values())
    assert "queued" not in written["clients"]
    assert set(read_ids(written["clients"]["fetched"])) == {*clients, *queued}
    old_size = len(json.dumps(legacy, separators=(",", ":")))
    new_size = len(json.dumps(second.last_state, separators=(",", ":")))
    assert new_size < old_size * 0.8, (new_size, old_size)


def test_ids_fetched_for_good_are_counted_but_not_kept_from_the_id_files(tmp_path) -> None:
    # At a million IDs done, the ID file's copy of each would double the tap's memory.
    minute = "2023-11-14T22:13"
    state = {
        "bookmarks": {
            "messages": {"fetched": {minute: ["a", "b"]}},
            "clients": {"fetched": {minute: {"a": "fp0001"}}},
        }
    }
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("a\nnew\r\nb\na\n", encoding="utf-8")
    config = {"api_key_pair": "pub:secret", "message_ids_file": str(ids_file), "client_ids": ["a"]}
    tap = TapChatra(config=config, state=state)

    assert tap.id_lists.for_stream("messages") == ["new"]
    assert tap.id_lists.left_out["messages"] == 3  # counted each time listed
    assert tap.id_lists.for_stream("clients") == ["a"]  # refreshed every run: kept
    plan = tap.streams["messages"].plan(1_700_000_000)
    assert (plan.to_fetch, plan.already_fetched) == (["new"], 3)


def test_a_run_that_fetches_nothing_writes_no_state(chatra_sandbox, kit) -> None:
    # Meltano already holds the state a run starts from; at a million IDs each STATE that
    # repeats it is 20 MB stored again (the SDK writes one at the start and after each stream).
    messages = chatra_sandbox.ids("messages")[:3]
    config = kit.config(chatra_sandbox, message_ids=messages)
    first = kit.run(config)
    assert sorted(first.ids("messages")) == sorted(messages)
    assert first.ids("clients")

    chatra_sandbox.reset_log()
    again = kit.run(config, state=first.last_state)
    assert chatra_sandbox.request_log() == []
    assert again.states == []
    assert again.counts()[("RECORD", "messages")] == 0

    # One new message: the streams it changed write their STATE, and the next run starts
    # from what they say.
    extra = chatra_sandbox.ids("messages")[3]
    more = kit.run({**config, "message_ids": [*messages, extra]}, state=first.last_state)
    assert more.ids("messages") == [extra]
    assert more.states
    assert extra in read_ids(more.last_state["bookmarks"]["messages"]["fetched"])


def test_the_first_state_of_a_run_is_timed_by_the_size_of_the_state_it_started_from() -> None:
    # No STATE repeats the given one, but the flush schedule still counts its size: a run
    # from a large state must not write its first STATE after state_flush_seconds.
    ids = [f"{n:017d}" for n in range(50_000)]
    state = {"bookmarks": {"messages": {"fetched": {"2026-01-01T00:00": ids}}}}
    tap = TapChatra(config={"api_key_pair": "pub:secret"}, state=state)
    written = len(serialize_json({"type": "STATE", "value": state})) + 1
    assert tap.state_writer_bytes() == pytest.approx(written, rel=0.01)
    schedule = FlushSchedule.from_config(tap.config)
    assert schedule.interval(tap.state_writer_bytes()) == schedule.max_seconds
