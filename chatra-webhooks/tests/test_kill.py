"""kill -9 under load: every event answered 200 is in the store exactly once.

Senders POST unique bodies without pause while the server is SIGKILLed and started again
(on a new port; the senders follow it) several times. Each incarnation is killed only after
it has stored some events, so every kill lands in the middle of traffic. Afterwards the
store must hold every body that got a 200 exactly once, and nothing that was never sent.
"""

from __future__ import annotations

import importlib
import threading
import time
import typing as t
from collections import Counter
from pathlib import Path

import pytest

from chatra_webhooks.settings import normalize_store_url
from chatra_webhooks.sql_store import SqlEventStore

if t.TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

    from chatra_webhooks.testing import InboxProcess

ROOT = Path(__file__).resolve().parents[2]
SENDERS = 16
# Events an incarnation must have answered before it is killed, and the longest wait for them.
ACCEPTED_BEFORE_KILL = 100
MAX_WAIT = 20.0


@pytest.fixture
def load(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """`bench.inbox_load`, the senders `make bench` uses too."""
    monkeypatch.syspath_prepend(str(ROOT))
    return importlib.import_module("bench.inbox_load")


def kill_under_load(
    inbox: InboxProcess, load: ModuleType, kills: int, run_after_kill: float
) -> tuple[t.Any, list[t.Any]]:
    """Kill and restart `inbox` `kills` times under load; return the load and the store."""
    result = load.LoadResult()
    stop = threading.Event()
    senders = threading.Thread(
        target=load.run_load,
        args=(inbox.ingest_url,),
        kwargs={"senders": SENDERS, "seconds": 600, "result": result, "stop": stop},
    )
    senders.start()
    try:
        for _ in range(kills):
            target = len(result.accepted) + ACCEPTED_BEFORE_KILL
            deadline = time.monotonic() + MAX_WAIT
            while len(result.accepted) < target and time.monotonic() < deadline:
                time.sleep(0.02)
            assert len(result.accepted) >= target, "the inbox stopped answering"
            inbox.kill()
            inbox.start()
        time.sleep(run_after_kill)
    finally:
        stop.set()
        senders.join(60)
    inbox.stop()
    store = SqlEventStore(normalize_store_url(inbox.store_url))
    try:
        return result, list(store.iter_after(0))
    finally:
        store.close()


def check_nothing_lost_or_doubled(result: t.Any, events: list[t.Any], kills: int) -> None:
    stored = Counter(event.client_id for event in events)
    accepted = set(result.accepted)
    assert len(accepted) == len(result.accepted), "a body was answered 200 twice"
    assert len(accepted) >= ACCEPTED_BEFORE_KILL * kills
    assert result.failures > 0, "no request was cut off: the kills missed the traffic"
    missing = accepted - set(stored)
    assert not missing, f"{len(missing)} events answered 200 are not in the store"
    doubled = {client for client, count in stored.items() if count > 1}
    assert not doubled, f"{len(doubled)} events are stored more than once"
    assert set(stored) <= set(result.attempted)
    seqs = [event.seq for event in events]
    assert seqs == sorted(set(seqs))


@pytest.mark.parametrize(
    ("kills", "run_after_kill"),
    [
        pytest.param(3, 0.5, id="3-kills"),
        pytest.param(15, 2.0, marks=pytest.mark.soak, id="15-kills-soak"),
    ],
)
def test_kill_9_under_load_loses_and_doubles_nothing(
    store_url: str,
    webhook_inbox_factory: Callable[..., InboxProcess],
    load: ModuleType,
    kills: int,
    run_after_kill: float,
) -> None:
    inbox = webhook_inbox_factory(store_url)
    result, events = kill_under_load(inbox, load, kills, run_after_kill)
    check_nothing_lost_or_doubled(result, events, kills)
    assert inbox.starts == kills + 1
