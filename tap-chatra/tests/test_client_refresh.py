"""Change-driven client refresh: the rule on its own, then runs counted at the sandbox."""

from __future__ import annotations

import itertools
import json
import logging
from collections import Counter, defaultdict

import pytest
from singer_sdk.singerlib.json import serialize_json

from tap_chatra.client_refresh import (
    NamedClients,
    RefreshRule,
    due_at,
    known_clients,
    refresh_phase,
)
from tap_chatra.id_map import minute_key
from tap_chatra.id_state import IdState, RefreshRun, plan_fetches
from tap_chatra.tap import TapChatra

LOGGER = logging.getLogger("tap-chatra.client-refresh")
HOUR = 3600
NOW = 1_800_000_000


def _plan(bookmark: dict, configured: list[str], *, hours: float, now: int = NOW) -> list[str]:
    state = IdState(bookmark, logger=LOGGER)
    named = NamedClients(bookmark, logger=LOGGER)
    run = RefreshRun(bookmark, logger=LOGGER)
    started = run.start(now)
    rule = RefreshRule(
        named,
        refresh_started=started,
        refresh_seconds=hours * HOUR,
        spread_from=run.spread_from(started),
    )
    plan = plan_fetches(
        known_clients(configured, named, state),
        state,
        now=now,
        missing_retry_seconds=24 * HOUR,
        is_due=rule.is_due,
    )
    return plan.to_fetch


def test_a_client_never_fetched_is_fetched() -> None:
    bookmark = {"fetched": {"old": f"{NOW - HOUR}:fp"}}
    assert _plan(bookmark, ["old", "new"], hours=24) == ["new"]


def test_a_client_named_since_its_last_fetch_is_fetched_and_one_named_before_is_not() -> None:
    bookmark = {
        "fetched": {"a": f"{NOW - HOUR}:fp", "b": f"{NOW - HOUR}:fp", "c": f"{NOW - HOUR}:fp"},
        # a: named by a message or a webhook event after its fetch; c: the name came before
        # the fetch (a killed run's partial STATE merged by Meltano can bring it back).
        "named": {"a": NOW - 60, "c": NOW - 2 * HOUR},
    }
    assert _plan(bookmark, ["a", "b", "c"], hours=24) == ["a"]


def test_naming_is_kept_until_the_fetch_and_new_names_are_tracked() -> None:
    bookmark: dict = {}
    named = NamedClients(bookmark, logger=LOGGER)
    named.add("a", NOW - 60)
    named.add("b", NOW - 30)
    named.add("a", NOW)
    assert named.ids() == ["a", "b"]
    assert named.named_at("a") == NOW
    named.fetched("a")
    assert json.loads(serialize_json(bookmark)) == {"named": {minute_key(NOW // 60 - 1): ["b"]}}


def test_a_client_is_due_at_its_own_time_of_the_window_half_a_window_after_its_fetch() -> None:
    window = 24 * HOUR
    fetched = NOW - 10 * HOUR
    phases = []
    for client_id in [f"client-{n}" for n in range(500)]:
        due = due_at(client_id, fetched, window, spread_from=0)
        phase = refresh_phase(client_id)
        phases.append(phase)
        assert fetched + window / 2 <= due < fetched + 1.5 * window
        windows = (due - phase * window) / window  # whole windows after its phase
        assert windows == pytest.approx(round(windows))
        # Refreshed on time (within half a window), it is due again a whole window later.
        assert due_at(client_id, int(due) + 3 * HOUR, window, spread_from=0) == pytest.approx(
            due + window
        )
    # The phases spread over the window: each tenth of it holds about a tenth of the clients.
    tenths = Counter(int(phase * 10) for phase in phases)
    assert len(tenths) == 10
    assert max(tenths.values()) < 2 * len(phases) / 10


def test_the_plan_fetches_the_clients_whose_time_has_come() -> None:
    clients = [f"c{n}" for n in range(60)]
    fetched = {client_id: NOW - (n % 40) * HOUR for n, client_id in enumerate(clients)}
    bookmark = {
        "fetched": {client_id: f"{when}:fp" for client_id, when in fetched.items()},
        "refresh": {"started": NOW - 50 * HOUR, "finished": NOW - 50 * HOUR, "spread": 0},
    }
    started = NOW // 60 * 60
    expected = [c for c in clients if due_at(c, fetched[c] // 60 * 60, 24 * HOUR, 0) <= started]
    assert 0 < len(expected) < len(clients)
    # Known from state alone, like the client of a message fetched long ago.
    assert sorted(_plan(bookmark, [], hours=24)) == sorted(expected)
    # Fetched 40 h ago or more recently than 12 h: never due by age alone, or always.
    assert "c39" in _plan(bookmark, [], hours=24)
    assert "c11" not in _plan(bookmark, [], hours=24)


def _hourly_runs(
    tap: TapChatra, *, start: int, hours: int
) -> tuple[Counter[int], dict[str, list[int]]]:
    """Plan the clients stream once an hour and fetch what it plans: per hour, how many."""
    stream = tap.streams["clients"]
    per_hour: Counter[int] = Counter()
    fetches: dict[str, list[int]] = defaultdict(list)
    for hour in range(hours):
        now = start + hour * HOUR
        plan = stream.plan(now)
        for client_id in plan.to_fetch:
            stream.fetched(client_id, now, "fp")
            fetches[client_id].append(hour)
        stream.finish(now + 60)
        per_hour[hour] = len(plan.to_fetch)
    return per_hour, fetches


def test_clients_learned_together_are_refreshed_evenly_over_the_hours() -> None:
    # A backfill learns 10,000 clients in one run; the refreshes that follow must not all
    # fall in one hour a day later, the budget idle in between.
    clients = [f"visitor-{n:05d}-{n * 7919 % 10007}" for n in range(10_000)]
    tap = TapChatra(config={"api_key_pair": "pub:secret", "client_ids": clients})
    per_hour, fetches = _hourly_runs(tap, start=NOW, hours=4 * 24 + 1)

    assert per_hour[0] == len(clients)
    mean = len(clients) / 24  # each client once a window
    refreshes = [per_hour[hour] for hour in range(1, 4 * 24 + 1)]
    assert max(refreshes) <= 1.5 * mean, max(refreshes)
    assert sum(refreshes[:11]) == 0  # none before half a window
    # Every client refreshed, the first time within 12 to 36 hours, then every 24 hours.
    for hours in fetches.values():
        first, *later = [b - a for a, b in itertools.pairwise(hours)]
        assert 12 <= first <= 36
        assert later
        assert all(gap == 24 for gap in later)


def test_state_from_before_the_spread_falls_due_spread_over_one_window() -> None:
    # Written by a tap that refreshed every client 24 h after its fetch: 10,000 fetched in
    # one run 20 h ago, 2,000 more 30 h ago (overdue). None may come all at once, none later
    # than a window from now.
    fetched_at = {f"late-{n}": NOW - 20 * HOUR for n in range(10_000)}
    fetched_at |= {f"overdue-{n}": NOW - 30 * HOUR for n in range(2_000)}
    groups: dict[str, dict[str, str]] = defaultdict(dict)
    for client_id, when in fetched_at.items():
        groups[minute_key(when // 60)][client_id] = "fp"
    refresh = {"started": NOW - 20 * HOUR - 600, "finished": NOW - 20 * HOUR + 600}
    state = {"bookmarks": {"clients": {"fetched": dict(groups), "refresh": refresh}}}
    tap = TapChatra(config={"api_key_pair": "pub:secret"}, state=state)
    per_hour, fetches = _hourly_runs(tap, start=NOW, hours=25)

    mean = len(fetched_at) / 24
    assert max(per_hour.values()) <= 1.5 * mean, max(per_hour.values())
    assert sorted(fetches) == sorted(fetched_at)
    assert all(hours[0] <= 24 for hours in fetches.values())


def test_a_run_with_no_client_due_leaves_the_refresh_marks_as_they_were() -> None:
    refresh = {"started": NOW - 2 * HOUR, "finished": NOW - 2 * HOUR + 60, "spread": 0}
    fetched = {minute_key(NOW // 60 - 60): {"recent": "fp"}}
    state = {"bookmarks": {"clients": {"fetched": fetched, "refresh": dict(refresh)}}}
    tap = TapChatra(config={"api_key_pair": "pub:secret"}, state=state)
    stream = tap.streams["clients"]
    assert stream.plan(NOW).to_fetch == []
    stream.finish(NOW + 1)
    assert stream.stream_state["refresh"] == refresh
    # The first run that plans with a spread keeps when that was, even with nothing due.
    del state["bookmarks"]["clients"]["refresh"]["spread"]
    tap = TapChatra(config={"api_key_pair": "pub:secret"}, state=state)
    stream = tap.streams["clients"]
    assert stream.plan(NOW).to_fetch == []
    stream.finish(NOW + 1)
    assert stream.stream_state["refresh"] == {**refresh, "spread": NOW // 60 * 60}


def test_zero_hours_fetches_every_known_client_every_run() -> None:
    bookmark = {
        "fetched": {"a": f"{NOW - 60}:fp", "b": f"{NOW - 5}:fp"},
        "refresh": {"started": NOW - 120, "finished": NOW - 3},
    }
    assert _plan(bookmark, ["a", "b"], hours=0) == ["a", "b"]


def test_a_resumed_refresh_skips_what_the_interrupted_run_did() -> None:
    started = NOW - 600
    bookmark = {
        "fetched": {
            "done": f"{started + 10}:fp",
            "todo": f"{started - 30 * HOUR}:fp",
            "fresh": f"{started - HOUR}:fp",
        },
        "refresh": {"started": started, "finished": started - 7200, "spread": 0},
    }
    assert _plan(bookmark, ["done", "todo", "fresh"], hours=0) == ["todo", "fresh"]
    assert _plan(bookmark, ["done", "todo", "fresh"], hours=24) == ["todo"]
    # A client named after the interrupted run fetched it is fetched again.
    bookmark["named"] = {"done": started + 300}
    assert _plan(bookmark, ["done", "todo", "fresh"], hours=24) == ["done", "todo"]


@pytest.mark.parametrize("queued", [{"seen": 1, "unseen": 1}, ["seen", "unseen"]])
def test_clients_queued_by_an_earlier_layout_are_fetched_once_then_refreshed_by_age(
    queued: object,
) -> None:
    bookmark = {"fetched": {"seen": f"{NOW - HOUR}:fp"}, "queued": queued}
    assert _plan(bookmark, [], hours=24) == ["unseen"]
    assert "queued" not in bookmark


def test_state_stays_under_64_bytes_a_client() -> None:
    # Chatra's own example clientId is 40 characters; a site may pass any string.
    ids = [f"{n:040d}" for n in range(1000)]
    bookmark: dict = {}
    state = IdState(bookmark, logger=LOGGER)
    named = NamedClients(bookmark, logger=LOGGER)
    RefreshRun(bookmark, logger=LOGGER).start(NOW)
    for client_id in ids:
        state.mark_fetched(client_id, NOW, "AbCdEf")
    # A few named since, waiting for the next run: 5% of them.
    for client_id in ids[:50]:
        named.add(client_id, NOW + 60)
    size = len(serialize_json(bookmark))
    assert size / len(ids) < 64


def test_a_run_fetches_only_the_clients_that_messages_named(chatra_sandbox, kit, caplog) -> None:
    store = chatra_sandbox.store
    messages = chatra_sandbox.ids("messages")[:2]
    changed = [store.messages[m]["clientId"] for m in messages]
    others = [c for c in chatra_sandbox.ids("clients") if c not in changed][:8]
    config = kit.config(chatra_sandbox, client_ids=[*others, *changed])
    first = kit.run(config)
    assert sorted(first.ids("clients")) == sorted([*others, *changed])

    store.update_client(changed[0], notes="Asked about delivery.")
    chatra_sandbox.reset_log()
    caplog.clear()
    second = kit.run({**config, "message_ids": messages}, state=first.last_state)

    assert kit.gets(chatra_sandbox) == [*messages, *changed]
    assert second.ids("clients") == [changed[0]]
    assert "clients: 2 IDs to fetch: 2 requests, unpaced; skipped 8 fetched recently" in (
        caplog.text
    )
    assert (
        "named" not in second.last_state["bookmarks"]["clients"]
        or not (second.last_state["bookmarks"]["clients"]["named"])
    )

    # A later run with nothing new fetches nothing.
    chatra_sandbox.reset_log()
    kit.run({**config, "message_ids": messages}, state=second.last_state)
    assert kit.gets(chatra_sandbox) == []


def test_the_plan_says_how_long_the_requests_take_at_the_pace(chatra_sandbox, kit, caplog) -> None:
    client_ids = chatra_sandbox.ids("clients")[:3]
    config = kit.config(chatra_sandbox, client_ids=client_ids, requests_per_minute=6000)
    kit.run(config)
    assert "clients: 3 IDs to fetch: 3 requests, about 0s at 5850.0 a minute." in caplog.text
    assert "messages: 0 IDs to fetch: 0 requests, about 0s at 5850.0 a minute." in caplog.text


def test_a_client_named_again_before_its_fetch_keeps_its_first_name_and_place() -> None:
    # A backfill names a client with each of its messages; it is due from the first, and
    # moving it to the latest minute would reorder the names a resumed run plans in.
    from tap_chatra.tap import TapChatra  # noqa: PLC0415 - an offline tap, for its clients stream

    state = {"bookmarks": {"clients": {"fetched": {minute_key(NOW // 60 - 10): {"old": "fp"}}}}}
    tap = TapChatra(config={"api_key_pair": "pub:secret"}, state=state)
    clients = tap.streams["clients"]
    clients.named.add("old", NOW - 3600)  # a name from before its fetch (a merged STATE)
    for client_id, when in [("a", NOW), ("b", NOW + 60), ("a", NOW + 120), ("old", NOW + 180)]:
        clients.note_named(client_id, when)

    assert clients.named.named_at("a") == NOW
    # Named after its last fetch only now: that name counts.
    assert clients.named.named_at("old") == NOW + 180
    assert clients.named.ids_as_written() == ["a", "b", "old"]
