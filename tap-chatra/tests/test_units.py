"""The small modules on their own: records, per-ID state, progress and the ordered worker pool."""

from __future__ import annotations

import copy
import json
import logging
import threading
import time

import pytest
from singer_sdk.singerlib.json import serialize_json

from tap_chatra.id_map import IdMap, minute_key, read_ids
from tap_chatra.id_state import IdState, RefreshRun, fingerprint, plan_fetches
from tap_chatra.progress import Progress, format_duration
from tap_chatra.records import RecordShaper, utc_datetime_from_ms
from tap_chatra.workers import Cancelled, WorkerPool, in_order

LOGGER = logging.getLogger("tap-chatra.units")
SCHEMA = json.loads(
    json.dumps(
        {
            "properties": {
                "id": {"type": "string"},
                "text": {"type": ["string", "null"]},
                "createdAt": {"type": ["integer", "null"]},
                "created_at": {"type": ["string", "null"], "format": "date-time"},
                "score": {"type": ["number", "null"]},
                "extra": {"type": "object"},
            }
        }
    )
)


def test_shaper_keeps_unknown_and_mistyped_keys_in_extra_and_logs_each_once(caplog) -> None:
    shaper = RecordShaper("messages", SCHEMA, LOGGER)
    first = shaper.shape(
        {"id": "A", "text": 5, "createdAt": 1481892808000, "score": 3, "new": [1], "extra": 1},
        "A",
    )
    second = shaper.shape({"id": "B", "new": {"x": 1}, "text": "hi"}, "B")

    assert first == {
        "id": "A",
        "text": None,
        "createdAt": 1481892808000,
        "created_at": "2016-12-16T12:53:28+00:00",
        "score": 3,
        "extra": {"text": 5, "new": [1], "extra": 1},
    }
    assert second["extra"] == {"new": {"x": 1}}
    assert second["created_at"] is None
    assert [r.getMessage() for r in caplog.records] == [
        (
            "messages: API key 'text' arrived as integer, not as the schema says; "
            "it is kept in the 'extra' column."
        ),
        "messages: API key 'new' is not in the schema; it is kept in the 'extra' column.",
        (
            "messages: API key 'extra' has the name of a column the tap derives; "
            "it is kept in the 'extra' column."
        ),
    ]


def test_shaper_checks_nested_values_the_schema_declares(caplog) -> None:
    schema = {
        "properties": {
            "id": {"type": "string"},
            "file": {
                "type": ["object", "null"],
                "properties": {"size": {"type": ["integer", "null"]}},
            },
            "pages": {"type": ["array", "null"], "items": {"type": "string"}},
            "extra": {"type": "object"},
        }
    }
    shaper = RecordShaper("messages", schema, LOGGER)
    good = {"id": "A", "file": {"size": 10, "other": "x"}, "pages": ["/a"]}
    assert shaper.shape(good, "A") == {**good, "extra": {}}

    bad = {"id": "B", "file": {"size": "10 KB"}, "pages": ["/a", 7]}
    record = shaper.shape(bad, "B")
    assert (record["file"], record["pages"]) == (None, None)
    assert record["extra"] == {"file": {"size": "10 KB"}, "pages": ["/a", 7]}
    assert [r.getMessage() for r in caplog.records] == [
        f"messages: API key '{key}' holds a nested value of a type the schema does not allow; "
        "it is kept in the 'extra' column."
        for key in ("file", "pages")
    ]


def test_shaper_uses_the_requested_id_when_the_body_has_none() -> None:
    shaper = RecordShaper("clients", SCHEMA, LOGGER)
    assert shaper.shape({"text": "x"}, "requested")["id"] == "requested"


@pytest.mark.parametrize("value", [None, "1481892808000", True, 10**20])
def test_created_at_is_null_for_unusable_values(value) -> None:
    assert utc_datetime_from_ms(value) is None


def test_fingerprint_ignores_key_order_and_sees_any_change() -> None:
    body = {"id": "A", "info": {"a": 1, "b": [1, 2]}}
    same = {"info": {"b": [1, 2], "a": 1}, "id": "A"}
    assert fingerprint(body) == fingerprint(same)
    assert fingerprint(body) != fingerprint({"id": "A", "info": {"a": 1, "b": [2, 1]}})
    assert len(fingerprint(body)) == 6


def test_id_state_prefers_the_newer_of_fetched_and_missing() -> None:
    # Meltano's merge of partial state can leave an ID in both maps.
    bookmark = {"fetched": {"A": 200, "B": "100:fp0001"}, "missing": {"A": 150, "B": 300}}
    state = IdState(bookmark, logger=LOGGER)
    assert state.missing_at("A") is None
    assert state.missing_at("B") == 300
    assert state.fingerprint("B") == "fp0001"
    state.mark_fetched("B", 400, "fp0002")
    # Written back grouped by minute; the 404 older than A's fetch is dropped.
    assert json.loads(serialize_json(bookmark)) == {
        "fetched": {"1970-01-01T00:03": ["A"], "1970-01-01T00:06": {"B": "fp0002"}},
        "missing": {},
    }


def test_id_state_reads_both_layouts_mixed_and_the_newest_entry_wins() -> None:
    # A complete STATE of the earlier layout with a partial one of this layout merged onto
    # it (key by key, as Meltano does): an ID may be in both.
    given = {
        "fetched": {
            "A": 1_700_000_000,
            "B": "1700000000:oldfp1",
            "C": 1_700_000_000,
            "2023-11-14T22:20": {"B": "newfp2"},
            "2023-11-14T22:00": {"C": "oldfp3"},
            "not a minute": ["D"],
        },
        "missing": {"E": 1_700_000_100},
    }
    fetched = given["fetched"]
    original = json.loads(json.dumps(fetched))
    state = IdState(given, logger=LOGGER)
    assert fetched == original  # read, not changed: the bookmark gets a map of its own
    assert state.fetched_at("A") == 1_700_000_000 // 60 * 60
    assert (state.fetched_at("B"), state.fingerprint("B")) == (1_700_000_400, "newfp2")
    assert (state.fetched_at("C"), state.fingerprint("C")) == (1_699_999_980, None)
    assert state.fetched_at("D") is None
    assert state.missing_at("E") == 1_700_000_100 // 60 * 60
    assert len(state) == 3


def test_id_state_skips_entries_it_cannot_read_and_writes_only_what_it_read() -> None:
    bookmark = {
        "fetched": {
            "inf": float("inf"),
            "nan": float("nan"),
            "far": 10**20,
            "negative": -5,
            "digits": "\u0661\u0662:fp",  # Arabic-Indic digits
            "superscript": "\u00b2",
            "ok": "1700000000:fp",
            "9999-99-99T99:99": ["bad-minute"],
            "2023-11-14T22:13": ["listed", 7, None, {"x": 1}],
            "2023-11-14T22:14": {"client": 5, "other": "fp2"},
        },
        "missing": "not a map",
    }
    state = IdState(bookmark, logger=LOGGER)
    assert sorted(read_ids(json.loads(serialize_json(bookmark))["fetched"])) == [
        "client",
        "listed",
        "ok",
        "other",
    ]
    assert state.fingerprint("client") is None
    assert state.fingerprint("other") == "fp2"
    assert RefreshRun({"refresh": {"started": float("inf")}}, logger=LOGGER).start(120.5) == 120


def test_id_map_encodes_only_what_changed_and_compares_by_content() -> None:
    ids = IdMap()
    for n in range(3):
        ids.put(f"m{n}", 100 + n)
    before = copy.deepcopy(ids)
    assert before == ids
    first = ids.frozen().parts
    ids.put("m3", 102)
    assert ids != before
    after = ids.frozen().parts
    # The untouched minutes are the very same encoded strings.
    assert after[0] is first[0]
    assert after[1] is first[1]
    assert json.loads(serialize_json({"m": ids})) == {
        "m": {minute_key(100): ["m0"], minute_key(101): ["m1"], minute_key(102): ["m2", "m3"]}
    }
    ids.put("m0", 102, "fp")  # moved: its old minute goes
    assert read_ids(json.loads(ids.encoded_json)) == {
        "m1": (101 * 60, None),
        "m2": (102 * 60, None),
        "m3": (102 * 60, None),
        "m0": (102 * 60, "fp"),
    }


def test_failing_ids_are_grouped_by_minute_with_count_and_reason_and_read_in_both_layouts() -> None:
    # The earlier layout: "time:count:reason" per ID; B's failure predates its fetch.
    bookmark = {
        "fetched": {"B": 6_000},
        "failing": {"A": "6030:2:HTTP 503", "B": "5000:1:no answer"},
    }
    state = IdState(bookmark, logger=LOGGER)
    assert (state.failing_at("A"), state.failures("A")) == (6_000, 2)
    assert (state.failing_at("B"), state.failures("B")) == (None, 0)
    assert state.mark_failing("A", 7_250, "HTTP 502 body is empty and longer than forty chars") == 3
    assert state.mark_failing("C", 7_210, "redirect loop") == 1
    assert json.loads(serialize_json(bookmark))["failing"] == {
        minute_key(120): {"A": "3:HTTP 502 body is empty and longer than f", "C": "1:redirect loop"}
    }
    state.mark_missing("C", 7_300)
    state.clear_failing("A")
    assert json.loads(serialize_json(bookmark))["failing"] == {}
    # A bookmark that never had an ID fail does not grow the key.
    untouched: dict[str, object] = {}
    IdState(untouched, logger=LOGGER)
    assert "failing" not in untouched


def test_a_failure_after_the_clock_went_back_is_still_counted() -> None:
    # STATE from a machine whose clock ran ahead: "A" was fetched in minute 100.
    bookmark: dict[str, object] = {"fetched": {minute_key(100): ["A"]}}
    state = IdState(bookmark, logger=LOGGER)
    assert state.mark_failing("A", 60, "HTTP 503") == 1
    assert (state.failing_at("A"), state.failures("A")) == (6_000, 1)
    assert state.mark_failing("A", 120, "HTTP 503") == 2


def test_id_state_survives_garbage_state(caplog) -> None:
    bookmark = {"fetched": ["not", "a", "map"], "missing": {"A": "soon"}}
    state = IdState(bookmark, logger=LOGGER)
    assert state.fetched_at("A") is None
    assert state.missing_at("A") is None
    assert "STATE key 'fetched' is not an object; starting it afresh." in caplog.messages


def test_plan_for_messages_skips_fetched_and_missing_not_due() -> None:
    state = IdState({"fetched": {"A": 10}, "missing": {"B": 1000, "C": 10}}, logger=LOGGER)
    plan = plan_fetches(
        ["A", "B", "C", "D"], state, now=2000, missing_retry_seconds=1500, is_due=None
    )
    assert plan.to_fetch == ["C", "D"]
    assert (plan.already_fetched, plan.missing_not_due) == (1, 1)


def test_plan_for_clients_asks_the_rule_about_fetched_ids_only() -> None:
    state = IdState(
        {"fetched": {"A": "540:x", "B": "60:y"}, "missing": {"C": 600, "D": 60}}, logger=LOGGER
    )
    asked: list[tuple[str, int]] = []

    def is_due(record_id: str, fetched_at: int) -> bool:
        asked.append((record_id, fetched_at))
        return fetched_at < 100

    plan = plan_fetches(
        ["A", "B", "C", "D", "E"], state, now=700, missing_retry_seconds=200, is_due=is_due
    )
    # C answered 404 lately; D's 404 is due again; E was never fetched.
    assert plan.to_fetch == ["B", "D", "E"]
    assert (plan.not_due, plan.missing_not_due) == (1, 1)
    assert asked == [("A", 540), ("B", 60)]


def test_refresh_run_starts_after_the_previous_one_and_resumes_an_interrupted_one() -> None:
    bookmark: dict = {}
    refresh = RefreshRun(bookmark, logger=LOGGER)
    assert refresh.start(1000.7) == 960  # on a whole minute: fetch times are kept to the minute
    assert refresh.start(1005.0) == 960  # not finished: resumed
    refresh.finish(1000.9)
    assert json.loads(serialize_json(bookmark)) == {"refresh": {"started": 960, "finished": 1000}}
    # A new run in the same minute must not take the old refresh's clients for its own.
    assert refresh.start(1010.95) == 1020


def test_format_duration() -> None:
    assert [format_duration(s) for s in (9.4, 250, 7500)] == ["9s", "4m 10s", "2h 05m"]


def test_progress_line_with_a_fake_clock(caplog) -> None:
    now = [100.0]
    progress = Progress("messages", 300, LOGGER, interval=30, clock=lambda: now[0])
    for _ in range(60):
        progress.advance()
    now[0] = 129.0
    progress.maybe_log()
    assert caplog.messages == []
    now[0] = 160.0
    progress.maybe_log()
    assert caplog.messages == ["messages: 60/300 IDs done, 1.0/s, ETA 4m 00s"]
    assert progress.seconds_until_due() == 30


def test_in_order_yields_in_submission_order_despite_uneven_latency() -> None:
    delays = {"a": 0.05, "b": 0.0, "c": 0.03, "d": 0.0}
    with WorkerPool(3, name="test") as pool:

        def start(item: str):
            def call() -> str:
                time.sleep(delays[item])
                return item.upper()

            return call

        results = [
            (item, future.result()) for item, future in in_order(pool, delays, start, ahead=2)
        ]
    assert results == [("a", "A"), ("b", "B"), ("c", "C"), ("d", "D")]


def test_in_order_reports_errors_in_place_and_keeps_at_most_ahead_plus_one_submitted() -> None:
    submitted: list[str] = []
    with WorkerPool(2, name="test") as pool:

        def start(item: str):
            submitted.append(item)
            if item == "bad":
                raise ValueError(item)
            return lambda: item

        pairs = in_order(pool, ["x", "bad", "y", "z"], start, ahead=1)
        _, first = next(pairs)
        assert first.result() == "x"
        assert submitted == ["x"]  # the first call goes out alone
        item, failed = next(pairs)
        assert item == "bad"
        assert submitted == ["x", "bad", "y"]
        with pytest.raises(ValueError, match="bad"):
            failed.result()


def test_in_order_fans_out_only_once_the_first_call_has_answered() -> None:
    submitted: list[str] = []
    answer = threading.Event()
    with WorkerPool(4, name="test") as pool:

        def start(item: str):
            submitted.append(item)

            def call() -> str:
                answer.wait(5)
                return item

            return call

        pairs = in_order(pool, ["a", "b", "c", "d", "e"], start, ahead=4)
        _, first = next(pairs)
        time.sleep(0.05)
        assert submitted == ["a"]
        answer.set()
        assert first.result() == "a"
        next(pairs)
        assert submitted == ["a", "b", "c", "d", "e"]


def test_closing_the_pool_cancels_queued_jobs_and_interrupts_sleeps() -> None:
    pool = WorkerPool(1, name="test")
    started = threading.Event()

    def sleeper() -> str:
        started.set()
        pool.interruptible_sleep(30)
        return "slept"

    running = pool.submit(sleeper)
    queued = pool.submit(lambda: "never")
    started.wait(5)
    began = time.monotonic()
    pool.close()
    with pytest.raises(Cancelled):
        running.result(timeout=5)
    with pytest.raises(Cancelled):
        queued.result(timeout=5)
    assert time.monotonic() - began < 2


def test_closing_the_pool_lets_a_call_in_flight_finish_but_waits_no_longer_than_grace() -> None:
    pool = WorkerPool(2, name="test")
    release = threading.Event()
    started = threading.Barrier(3)

    def in_flight(seconds: float) -> str:
        started.wait(5)
        release.wait(seconds)
        return "done"

    quick = pool.submit(lambda: in_flight(0.3))
    stuck = pool.submit(lambda: in_flight(30))
    started.wait(5)
    began = time.monotonic()
    pool.close(grace=1.0)
    waited = time.monotonic() - began

    assert quick.done()
    assert quick.result() == "done"  # ended before close() returned: its log lines come first
    assert not stuck.done()
    assert 0.9 <= waited < 3
    release.set()


def test_clients_get_typed_visit_times_beside_chatras_epoch_milliseconds() -> None:
    from tap_chatra.tap import TapChatra  # noqa: PLC0415 - only this test needs the tap

    schema = TapChatra(config={}, validate_config=False).streams["clients"].schema
    shaper = RecordShaper("clients", schema, LOGGER)
    pages = [
        {"url": "https://shop.example.com/", "visitedAt": 1481892808000},
        {"url": "https://shop.example.com/cart", "visitedAt": None},
        {"url": "https://shop.example.com/x", "visited_at": "as Chatra sent it"},
    ]
    body = {"id": "C", "lastVisitAt": 1481892838000, "createdAt": 1481892000000}
    body["lastVisitPages"] = copy.deepcopy(pages)

    record = shaper.shape(body, "C")

    assert record["last_visit_at"] == "2016-12-16T12:53:58+00:00"
    assert record["lastVisitAt"] == 1481892838000
    assert record["created_at"] == "2016-12-16T12:40:00+00:00"
    assert record["lastVisitPages"] == [
        {**pages[0], "visited_at": "2016-12-16T12:53:28+00:00"},
        {**pages[1], "visited_at": None},
        pages[2],
    ]
    assert body["lastVisitPages"] == pages  # the answer itself is left as it came
    assert record["extra"] == {}
    assert schema["properties"]["last_visit_at"]["format"] == "date-time"
    page_schema = schema["properties"]["lastVisitPages"]["items"]["properties"]
    assert page_schema["visited_at"]["format"] == "date-time"
