"""Days of realistic chat traffic: what the analytics models are built on and checked against."""

from __future__ import annotations

import datetime as dt
import itertools
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from chatra_sandbox.data import SandboxStore
from chatra_sandbox.history import TrafficShape, history_conversations

CLI = Path(sys.executable).with_name("chatra-sandbox")
END = dt.datetime(2025, 3, 8, 18, 0, tzinfo=dt.UTC)
END_MS = int(END.timestamp() * 1000)
DAY_MS = 86_400_000


def history(seed: int = 42, days: int = 6, chats_per_day: int = 20, **shape: float):
    store = SandboxStore(seed=seed)
    traffic = TrafficShape(days=days, chats_per_day=chats_per_day, end_ms=END_MS, **shape)
    return store, history_conversations(store, traffic)


def first_response_s(messages) -> float | None:
    first_client = next(m for m in messages if m["type"] == "client")
    agent = next((m for m in messages if m["type"] == "agent"), None)
    return None if agent is None else (agent["createdAt"] - first_client["createdAt"]) / 1000


def test_a_history_spans_its_days_in_order_and_ends_at_its_end():
    store, chats = history()
    times = [m["createdAt"] for c in chats for m in c.messages]
    assert max(times) <= END_MS
    assert min(times) >= END_MS - 6 * DAY_MS
    days = {t // DAY_MS for t in times}
    assert len(days) >= 6
    starts = [c.messages[0]["createdAt"] for c in chats]
    assert starts == sorted(starts)
    for chat in chats:
        stamps = [m["createdAt"] for m in chat.messages]
        assert stamps == sorted(stamps)
        assert chat.messages[0]["type"] == "client"
        # Every message is stored, so REST GETs answer for the IDs its webhooks carry.
        assert all(store.messages[m["id"]] == m for m in chat.messages)
        assert store.clients[chat.client_id]["chatId"] == chat.chat_id
        # A replayed history's webhooks arrive long after the fact: every message has its time.
        assert chat.style.with_created_at


def test_agents_answer_after_log_normal_delays_at_their_own_pace():
    _, chats = history(days=10, chats_per_day=30)
    answered = [c for c in chats if first_response_s(c.messages) is not None]
    delays = [first_response_s(c.messages) for c in answered]
    assert all(d is not None and d > 0 for d in delays)
    median = statistics.median(d for d in delays if d is not None)
    assert 30 < median < 200
    # A long tail, as real waits have: the slowest are many times the median.
    assert max(d for d in delays if d is not None) > 8 * median
    by_agent: dict[str, list[float]] = {}
    for chat in answered:
        first_agent = next(m for m in chat.messages if m["type"] == "agent")
        by_agent.setdefault(first_agent["agentName"], []).append(first_response_s(chat.messages))
    load = Counter({name: len(values) for name, values in by_agent.items()})
    assert len(load) == 5
    busiest, quietest = load.most_common()[0], load.most_common()[-1]
    assert busiest[1] > 2 * quietest[1]
    medians = {name: statistics.median(values) for name, values in by_agent.items()}
    assert medians[busiest[0]] < medians[quietest[0]]


def test_some_chats_go_unanswered_mostly_at_night_and_some_clients_come_back():
    _, chats = history(days=10, chats_per_day=30)
    unanswered = [c for c in chats if all(m["type"] == "client" for m in c.messages)]
    assert 0.04 * len(chats) < len(unanswered) < 0.3 * len(chats)
    hours = [c.messages[0]["createdAt"] % DAY_MS // 3_600_000 for c in unanswered]
    night = [hour for hour in hours if not 7 <= hour < 20]
    assert night
    chats_per_client = Counter(c.client_id for c in chats)
    returning = [cid for cid, n in chats_per_client.items() if n > 1]
    assert returning
    for client_id in returning:
        starts = sorted(c.messages[0]["createdAt"] for c in chats if c.client_id == client_id)
        assert all(b - a >= DAY_MS for a, b in itertools.pairwise(starts))
    agents_per_chat = Counter(
        len({m["agentId"] for m in c.messages if m["type"] == "agent"}) for c in chats
    )
    assert agents_per_chat[2] > 0


def test_same_seed_and_end_same_history_other_seed_other_history():
    _, first = history(seed=5)
    _, again = history(seed=5)
    _, other = history(seed=6)
    assert [c.messages for c in first] == [c.messages for c in again]
    assert [c.client for c in first] == [c.client for c in again]
    assert [c.messages for c in first] != [c.messages for c in other]


def test_a_history_needs_a_day_and_a_chat():
    with pytest.raises(ValueError, match="at least one day"):
        TrafficShape(days=0, chats_per_day=5, end_ms=END_MS)


def test_the_server_sends_the_history_and_keeps_its_chat_log(chatra_sandbox_factory, receiver):
    sandbox = chatra_sandbox_factory(seed=9, webhook_url=receiver.url, clients=2, messages=0)
    chats = sandbox.simulate_history(2, 5, end=END)
    live = sandbox.simulate_chats(1)
    assert sandbox.conversations() == [*chats, *live]
    assert all(delivery.ok for delivery in sandbox.webhook_deliveries())
    transcripts = [b for b in receiver.bodies if b["eventName"] == "chatTranscript"]
    assert len(transcripts) == len(chats) + 1
    for chat, transcript in zip(chats, transcripts, strict=False):
        assert transcript["client"]["chatId"] == chat.chat_id
        assert [m["createdAt"] for m in transcript["messages"]] == [
            m["createdAt"] for m in chat.messages
        ]


def test_the_server_refuses_a_history_without_a_webhook_url(chatra_sandbox):
    with pytest.raises(RuntimeError, match="webhook_url"):
        chatra_sandbox.simulate_history(1, 1)


def test_cli_plays_out_a_history(receiver):
    command = [str(CLI), "--port", "0", "--webhook-url", receiver.url]
    options = ["--history-days", "2", "--chats-per-day", "4", "--history-end", "2025-03-08T18:00"]
    process = subprocess.Popen(
        [*command, *options], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        assert process.stdout.readline().startswith("chatra-sandbox listening on http://")
        line = process.stderr.readline()
        assert "simulated" in line
        assert "0 failed" in line
        assert any(b["eventName"] == "chatTranscript" for b in receiver.bodies)
    finally:
        process.terminate()
        process.wait(10)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--history-days", "2"], "--history-days needs --webhook-url"),
        (["--history-end", "yesterday"], "expected an ISO 8601 time"),
    ],
)
def test_cli_refuses_bad_history_options(options, message):
    result = subprocess.run([str(CLI), *options], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
