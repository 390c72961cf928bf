"""Days of realistic chat traffic: agents, response delays, unanswered chats, returning clients.

``simulate_chats`` plays out chats with made-up times in 2024 and every spelling Chatra's
payloads may have; this module makes the history an analytics model is built on and checked
against: ``days`` days of chats ending at ``end``, more in office hours than at night, each
answered by one agent (sometimes joined by a second) after a delay drawn from a log-normal
distribution whose median differs per agent, and some left unanswered, mostly at night.
A chat still running at ``end`` stops there, so the last chats may wait for their answer.

Every message of this history carries ``createdAt``: the webhooks of a replayed history all
arrive now, long after the fact, so their time of receipt says nothing about when a message
was written. Whether they carry an ``id``, and the other unknowns, vary as in
``simulate_chats``. Everything comes from the store seed and ``end``: the same arguments give
the same chats, message IDs included, on a fresh store.
"""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chatra_sandbox.conversations import (
    AGENT_LINES,
    Conversation,
    payload_style,
    split_into_fragments,
)
from chatra_sandbox.generate import UNDOCUMENTED_KEY, make_client, plain_client_id

if TYPE_CHECKING:
    from chatra_sandbox.data import Record, SandboxStore
    from chatra_sandbox.generate import Agent

#: Index base of history clients, apart from seeded, added and simulated ones.
_HISTORY_CLIENT_BASE = 3_000_000_000
_DAY_MS = 86_400_000
_SECOND_MS = 1_000

#: How likely a chat starts in each UTC hour of the day (office hours in Europe and the US).
_HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 10, 9, 8, 9, 10, 10, 9, 8, 6, 5, 4, 3, 2, 1)
#: Hours in which agents are at work; outside them far more chats go unanswered.
_STAFFED_HOURS = range(7, 20)
#: Share of agents' chats each agent takes, and how much slower than the median each answers.
_AGENT_LOAD = (0.34, 0.26, 0.2, 0.12, 0.08)
_AGENT_PACE = (0.7, 1.0, 1.3, 1.8, 2.6)

_CLIENT_OPENERS = (
    "Hi! Where is my order?",
    "I was charged twice this month.",
    "Can I return the blue jacket? 🧥",
    "Gibt es den Rabattcode noch?",
    "注文をキャンセルしたいです。",
    'It says "payment declined"\nbut my card works.',
    "Do you ship to Canada?",
    "My discount code <b>SPRING</b> is not accepted & I'm stuck",
    '<script>alert("order 1042")</script> never arrived',
)
#: What a client adds while waiting for the first answer.
_CLIENT_NUDGES = ("Hello?", "Is anyone there?", "Any news?", "It's order 1042.")
_CLIENT_REPLIES = (
    "OK, thanks.",
    "That worked, thank you!",
    "Still nothing here...",
    "Great 👍",
)
_AGENT_LINES = (*AGENT_LINES, "Your parcel left our warehouse yesterday.")


@dataclass(frozen=True)
class TrafficShape:
    """What a history looks like.

    Attributes:
        days: Days of history, ending at ``end_ms``.
        chats_per_day: Chats on an average day (a weekend day has fewer).
        end_ms: The end of the history, in epoch milliseconds; nothing happens after it.
        median_first_response_s: Median wait for the first answer, for an agent of average pace.
        unanswered_share: Share of chats in office hours that no agent answers (four times
            as many at night, at most 90%).
        returning_share: Share of chats by a client who chatted on an earlier day.
    """

    days: int
    chats_per_day: int
    end_ms: int
    median_first_response_s: float = 75.0
    unanswered_share: float = 0.08
    returning_share: float = 0.2

    def __post_init__(self) -> None:
        if self.days < 1 or self.chats_per_day < 1:
            msg = "A history needs at least one day and one chat a day."
            raise ValueError(msg)


def _lognormal_ms(rng: random.Random, median_s: float, sigma: float, cap_s: float) -> int:
    return int(min(rng.lognormvariate(math.log(median_s), sigma), cap_s) * _SECOND_MS)


def _weighted_index(rng: random.Random, weights: tuple[float, ...]) -> int:
    return rng.choices(range(len(weights)), weights=weights)[0]


@dataclass
class _HistoryClients:
    """The clients of a history: who chatted when, so that some come back a day later."""

    store: SandboxStore
    last_chat_ms: dict[str, int] = dataclasses.field(default_factory=dict)
    made: int = 0

    def client_for(self, rng: random.Random, start_ms: int, returning_share: float) -> Record:
        earlier = [cid for cid, at in self.last_chat_ms.items() if at <= start_ms - _DAY_MS]
        if earlier and rng.random() < returning_share:
            client_id = rng.choice(sorted(earlier))
            self.last_chat_ms[client_id] = start_ms
            return self.store.clients[client_id]
        self.made += 1
        with self.store.lock:
            client_id = plain_client_id(rng)
            while client_id in self.store.clients:
                client_id = plain_client_id(rng)
            client = make_client(self.store.seed, _HISTORY_CLIENT_BASE + self.made, client_id)
            client.pop(UNDOCUMENTED_KEY, None)
            self.store.clients[client_id] = client
        self.last_chat_ms[client_id] = start_ms
        return client


def _message(
    store: SandboxStore,
    client: Record,
    kind: str,
    text: str,
    at_ms: int,
    *,
    agent: Agent | None = None,
) -> Record:
    message: Record = {
        "id": store.new_message_id(),
        "type": kind,
        "text": text,
        "clientId": client["id"],
        "createdAt": at_ms,
        "isPushed": False,
    }
    if agent is not None:
        message["agentId"], message["agentName"] = agent.id, agent.name
    return message


def _chat_messages(
    store: SandboxStore, rng: random.Random, client: Record, start_ms: int, shape: TrafficShape
) -> list[Record]:
    """One chat's messages, in time order, up to the end of the history."""
    agents = list(store.agents.values())
    hour = (start_ms % _DAY_MS) // 3_600_000
    unanswered = shape.unanswered_share * (1 if hour in _STAFFED_HOURS else 4)
    messages = [_message(store, client, "client", rng.choice(_CLIENT_OPENERS), start_ms)]
    at = start_ms
    if rng.random() < 0.3:
        at += _lognormal_ms(rng, 20, 0.6, 300)
        messages.append(_message(store, client, "client", rng.choice(_CLIENT_NUDGES), at))
    if rng.random() < min(unanswered, 0.9):
        return [m for m in messages if m["createdAt"] <= shape.end_ms]
    first = _weighted_index(rng, _AGENT_LOAD[: len(agents)])
    pace = _AGENT_PACE[first]
    at = start_ms + _lognormal_ms(rng, shape.median_first_response_s * pace, 1.0, 4 * 3600)
    at = max(at, messages[-1]["createdAt"] + _SECOND_MS)
    agent = agents[first]
    messages.append(_message(store, client, "agent", rng.choice(_AGENT_LINES), at, agent=agent))
    for _ in range(rng.randrange(0, 4)):
        at += _lognormal_ms(rng, 45, 0.9, 1800)
        messages.append(_message(store, client, "client", rng.choice(_CLIENT_REPLIES), at))
        if rng.random() < 0.15:
            # A colleague takes over.
            agent = agents[_weighted_index(rng, _AGENT_LOAD[: len(agents)])]
        at += _lognormal_ms(rng, 40 * pace, 0.8, 1800)
        messages.append(_message(store, client, "agent", rng.choice(_AGENT_LINES), at, agent=agent))
    return [m for m in messages if m["createdAt"] <= shape.end_ms]


def _chat_starts(rng: random.Random, shape: TrafficShape) -> list[int]:
    """When each chat of the history starts, in order, all before the end."""
    starts: list[int] = []
    first_day = shape.end_ms - shape.days * _DAY_MS
    for day in range(shape.days + 1):
        day_ms = first_day - first_day % _DAY_MS + day * _DAY_MS
        weekend = ((day_ms // _DAY_MS) + 3) % 7 >= 5  # 1970-01-01 was a Thursday
        mean = shape.chats_per_day * (0.5 if weekend else 1.15)
        count = max(0, round(rng.gauss(mean, math.sqrt(mean))))
        for _ in range(count):
            hour = _weighted_index(rng, _HOUR_WEIGHTS)
            start = day_ms + hour * 3_600_000 + rng.randrange(3_600_000)
            if first_day <= start < shape.end_ms:
                starts.append(start)
    return sorted(starts)


def history_conversations(store: SandboxStore, shape: TrafficShape) -> list[Conversation]:
    """Make the history's chats and store their clients and messages, so GETs answer for them.

    Returns:
        The conversations, oldest first; their webhooks are not sent here.
    """
    rng = random.Random(f"{store.seed}:history:{shape.end_ms}")
    clients = _HistoryClients(store)
    conversations = []
    for index, start in enumerate(_chat_starts(rng, shape)):
        client = clients.client_for(rng, start, shape.returning_share)
        messages = _chat_messages(store, rng, client, start, shape)
        with store.lock:
            for message in messages:
                store.messages[message["id"]] = message
        style = dataclasses.replace(payload_style(rng), with_created_at=True)
        conversation = Conversation(index, client, messages, style)
        conversation.fragments = split_into_fragments(messages, rng)
        conversations.append(conversation)
    return conversations
