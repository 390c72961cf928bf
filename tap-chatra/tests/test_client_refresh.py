"""Change-driven client refresh: the rule on its own, then runs counted at the sandbox."""

from __future__ import annotations

import json
import logging

import pytest
from singer_sdk.singerlib.json import serialize_json

from tap_chatra.client_refresh import NamedClients, RefreshRule, known_clients
from tap_chatra.id_map import minute_key
from tap_chatra.id_state import IdState, RefreshRun, plan_fetches

LOGGER = logging.getLogger("tap-chatra.client-refresh")
HOUR = 3600
NOW = 1_800_000_000


def _plan(bookmark: dict, configured: list[str], *, hours: float, now: int = NOW) -> list[str]:
    state = IdState(bookmark, logger=LOGGER)
    named = NamedClients(bookmark, logger=LOGGER)
    rule = RefreshRule(
        named,
        refresh_started=RefreshRun(bookmark, logger=LOGGER).start(now),
        refresh_seconds=hours * HOUR,
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


def test_a_client_older_than_client_refresh_hours_is_fetched() -> None:
    bookmark = {
        "fetched": {
            "stale": f"{NOW - 25 * HOUR}:fp",
            "fresh": f"{NOW - 23 * HOUR}:fp",
        }
    }
    # Known from state alone, like the client of a message fetched long ago.
    assert _plan(bookmark, [], hours=24) == ["stale"]
    assert _plan(bookmark, [], hours=22.5) == ["stale", "fresh"]


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
        "refresh": {"started": started, "finished": started - 7200},
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
