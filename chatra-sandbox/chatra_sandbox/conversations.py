"""Simulated conversations and the webhook payloads Chatra would send for them.

A conversation is one client's chat: a client record, a few client and agent messages, and
the events ``chatStarted``, one or more ``chatFragment`` and a final ``chatTranscript``.
Everything is derived from the store seed and the conversation's index, so a test knows in
advance what it will get.

What is unknown about Chatra's payloads (see the shared API notes) varies between
conversations, deterministically: the text under ``text`` or under ``message``; messages with
an ``id`` and ``createdAt``, with only ``createdAt``, or with neither; keys no documentation
mentions, on the event and on messages; an empty or a filled ``agents`` array.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chatra_sandbox.generate import (
    UNDOCUMENTED_KEY,
    make_client,
    make_file,
    plain_client_id,
    record_rng,
)

if TYPE_CHECKING:
    from chatra_sandbox.data import Record, SandboxStore
    from chatra_sandbox.generate import Agent

#: Index base of simulated clients, apart from seeded and added ones.
_SIMULATED_CLIENT_BASE = 2_000_000_000
# 2024-01-01T00:00:00Z in epoch milliseconds: simulated chats happen after the seeded data.
_CHATS_START_MS = 1_704_067_200_000

_CLIENT_LINES = (
    "Hi! Where is my order?",
    "I was charged twice this month.",
    "Can I return the blue jacket? 🧥",
    "Gibt es den Rabattcode noch?",
    "ありがとうございます",
    'It says "payment declined"\nbut my card works.',
    "OK, thanks.",
)
AGENT_LINES = (
    "Hello! Let me look that up.",
    "I have refunded the second charge.",
    "Sure, here is the return label: https://example.com/r/9",
    "Ja, der Code gilt bis Sonntag.",
    "Anything else I can help with?",
)


@dataclass(frozen=True)
class PayloadStyle:
    """How one conversation's payloads spell what is unknown about Chatra's."""

    text_key: str
    with_ids: bool
    with_created_at: bool
    extra_keys: bool
    list_agents: bool


@dataclass
class Conversation:
    """One simulated chat: its client, its messages (as stored) and its payload style."""

    index: int
    client: Record
    messages: list[Record]
    style: PayloadStyle
    fragments: list[list[Record]] = field(default_factory=list)

    @property
    def client_id(self) -> str:
        """The client's ID."""
        return str(self.client["id"])

    @property
    def chat_id(self) -> str:
        """The chat's ID."""
        return str(self.client["chatId"])

    def events(self, agents: dict[str, Agent]) -> list[dict[str, Any]]:
        """The webhook payloads of this chat, in the order Chatra would send them."""
        started = event_payload("chatStarted", self.client, [], agents, self.style)
        fragments = [
            event_payload("chatFragment", self.client, part, agents, self.style)
            for part in self.fragments
        ]
        transcript = event_payload("chatTranscript", self.client, self.messages, agents, self.style)
        return [started, *fragments, transcript]


def payload_style(rng: random.Random) -> PayloadStyle:
    """Pick one conversation's spelling of the unknowns."""
    with_ids = rng.random() < 0.5
    return PayloadStyle(
        text_key=rng.choice(("text", "message")),
        with_ids=with_ids,
        with_created_at=with_ids or rng.random() < 0.5,
        extra_keys=rng.random() < 0.4,
        list_agents=rng.random() < 0.7,
    )


def webhook_message(message: Record, style: PayloadStyle) -> dict[str, Any]:
    """A stored message as a webhook payload carries it, in the given style."""
    item: dict[str, Any] = {"type": message["type"], style.text_key: message["text"]}
    if style.with_ids:
        item["id"] = message["id"]
    if style.with_created_at:
        item["createdAt"] = message["createdAt"]
    for key in ("agentId", "agentName", "file", "isPushed", "receivedFrom"):
        if key in message:
            item[key] = message[key]
    if style.extra_keys:
        item["html"] = f"<p>{message['text']}</p>"
    return item


def event_payload(
    event_name: str,
    client: Record,
    messages: list[Record],
    agents: dict[str, Agent],
    style: PayloadStyle,
) -> dict[str, Any]:
    """One webhook body: the event name, the client, its messages and the agents involved."""
    payload: dict[str, Any] = {
        "eventName": event_name,
        "client": {
            "id": client["id"],
            "chatId": client["chatId"],
            "displayedName": client["displayedName"],
            "info": client.get("info", {}),
        },
    }
    if event_name != "chatStarted":
        payload["messages"] = [webhook_message(message, style) for message in messages]
    agent_ids = dict.fromkeys(m["agentId"] for m in messages if m.get("agentId"))
    payload["agents"] = (
        [{"id": agent_id, "name": agents[agent_id].name} for agent_id in agent_ids]
        if style.list_agents
        else []
    )
    if style.extra_keys:
        payload[UNDOCUMENTED_KEY] = {"enabled": True}
    return payload


def _client_id(rng: random.Random, index: int) -> str:
    # Every fifth chat's client is one the website named, with characters a URL must escape.
    return f"web+{index}@shop.example.com" if index % 5 == 2 else plain_client_id(rng)


def new_conversation(store: SandboxStore, index: int) -> Conversation:
    """Make conversation ``index`` and store its client and messages, so GETs answer for them."""
    rng = record_rng(store.seed, "conversations", index)
    style = payload_style(rng)
    client_id = _client_id(rng, index)
    with store.lock:
        while client_id in store.clients:
            client_id = plain_client_id(rng)
        client = make_client(store.seed, _SIMULATED_CLIENT_BASE + index, client_id)
        client.pop(UNDOCUMENTED_KEY, None)
        store.clients[client_id] = client
    agents = list(store.agents.values())
    agent = rng.choice(agents)
    created = _CHATS_START_MS + index * 3_600_000
    client_lines = rng.sample(_CLIENT_LINES, rng.randrange(1, 4))
    agent_lines = rng.sample(AGENT_LINES, len(client_lines))
    messages: list[Record] = []
    for client_line, agent_line in zip(client_lines, agent_lines, strict=True):
        for kind, text in (("client", client_line), ("agent", agent_line)):
            created += rng.randrange(5_000, 120_000)
            message: Record = {
                "id": store.new_message_id(),
                "type": kind,
                "text": text,
                "clientId": client_id,
                "createdAt": created,
                "isPushed": False,
            }
            if kind == "agent":
                message["agentId"], message["agentName"] = agent.id, agent.name
            elif not messages and rng.random() < 0.3:
                # At most one file per chat: two alike, without IDs or times, would be one row.
                message["file"] = make_file(rng)
                message["text"] = message["file"]["filename"]
            with store.lock:
                store.messages[message["id"]] = message
            messages.append(message)
    conversation = Conversation(index, client, messages, style)
    conversation.fragments = split_into_fragments(messages, rng)
    return conversation


def split_into_fragments(messages: list[Record], rng: random.Random) -> list[list[Record]]:
    """Cut a chat's messages into the one or two ``chatFragment`` events that carry them."""
    cut = rng.randrange(1, len(messages)) if len(messages) > 1 else 1
    return [part for part in (messages[:cut], messages[cut:]) if part]


def api_message_payload(store: SandboxStore, message: Record) -> dict[str, Any] | None:
    """The ``chatFragment`` a message sent through the API raises, or None for no client."""
    client = store.clients.get(message.get("clientId") or "")
    if client is None:
        return None
    rng = random.Random(f"{store.seed}:api-fragment:{message['id']}")
    style = PayloadStyle(
        text_key=rng.choice(("text", "message")),
        with_ids=True,
        with_created_at=True,
        extra_keys=False,
        list_agents=True,
    )
    return event_payload("chatFragment", client, [message], store.agents, style)
