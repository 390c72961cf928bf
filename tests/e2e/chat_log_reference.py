"""What the analytics models must find, computed in plain Python from the sandbox's chat log.

Independent of the SQL: the conversations the sandbox played out (their messages as stored,
with `createdAt`), and, for a chat whose webhooks carried no `createdAt`, when the inbox
received the first event that carried each message (read from the raw webhook_events table).
The definitions are the documented ones (docs/analytics.md): a chat is one chat ID's
messages with no gap over `gap_hours`; the first response is the first agent message not
before the client's first message; percentiles interpolate as PostgreSQL's percentile_cont.
"""

from __future__ import annotations

import datetime as dt
import math
import typing as t
from collections import defaultdict
from dataclasses import dataclass, field

if t.TYPE_CHECKING:
    from chatra_sandbox.conversations import Conversation

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def from_ms(ms: int) -> dt.datetime:
    """Epoch milliseconds as a naive UTC time, as the warehouse holds times."""
    return (EPOCH + dt.timedelta(milliseconds=ms)).replace(tzinfo=None)


def epoch_ms(when: dt.datetime) -> int:
    """Whole epoch milliseconds of a naive UTC time (truncated, as the chat key is)."""
    delta = when.replace(tzinfo=dt.UTC) - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def percentile(values: list[float], fraction: float) -> float:
    """The continuous percentile, interpolated as percentile_cont."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class Message:
    kind: str
    text: str
    at: dt.datetime
    agent_id: str | None
    client_id: str


@dataclass
class Chat:
    chat_id: str
    client_id: str
    messages: list[Message] = field(default_factory=list)

    @property
    def started_at(self) -> dt.datetime:
        return self.messages[0].at

    @property
    def key(self) -> str:
        return f"{self.chat_id}:{epoch_ms(self.started_at)}"

    def of(self, kind: str) -> list[Message]:
        return [m for m in self.messages if m.kind == kind]

    @property
    def first_client_at(self) -> dt.datetime | None:
        client = self.of("client")
        return client[0].at if client else None

    @property
    def first_response(self) -> Message | None:
        first = self.first_client_at
        if first is None:
            return None
        return next((m for m in self.of("agent") if m.at >= first), None)

    @property
    def status(self) -> str:
        if self.first_client_at is None:
            return "agent_only"
        return "answered" if self.first_response else "unanswered"

    @property
    def first_response_seconds(self) -> float | None:
        response, first = self.first_response, self.first_client_at
        if response is None or first is None:
            return None
        return (response.at - first).total_seconds()


#: Raw webhook_events rows: seq, received_at, payload.
Events = list[tuple[int, dt.datetime, dict[str, t.Any]]]


def first_receipts(events: Events) -> dict[tuple[str, str, str], dt.datetime]:
    """(chat ID, type, text) -> when the inbox received the first event that carried it."""
    found: dict[tuple[str, str, str], dt.datetime] = {}
    for _, received_at, payload in sorted(events, key=lambda event: event[0]):
        if payload.get("eventName") not in {"chatFragment", "chatTranscript"}:
            continue
        chat_id = payload["client"]["chatId"]
        for message in payload.get("messages", []):
            text = message.get("text", message.get("message"))
            found.setdefault((chat_id, message["type"], text), received_at)
    return found


def reference_chats(
    conversations: list[Conversation],
    events: Events,
    gap_hours: float = 6,
) -> list[Chat]:
    """The chats the models must find in these conversations."""
    receipts = first_receipts(events)
    by_chat: dict[str, list[Message]] = defaultdict(list)
    for conversation in conversations:
        for stored in conversation.messages:
            if conversation.style.with_created_at:
                at = from_ms(stored["createdAt"])
            else:
                at = receipts[(conversation.chat_id, stored["type"], stored["text"])]
            by_chat[conversation.chat_id].append(
                Message(
                    stored["type"],
                    stored["text"],
                    at,
                    stored.get("agentId"),
                    conversation.client_id,
                )
            )
    chats: list[Chat] = []
    gap = dt.timedelta(hours=gap_hours)
    for chat_id, messages in by_chat.items():
        current: Chat | None = None
        for message in sorted(messages, key=lambda m: m.at):
            if current is None or message.at > current.messages[-1].at + gap:
                current = Chat(chat_id, message.client_id)
                chats.append(current)
            current.messages.append(message)
    return chats


def reference_agent_days(chats: list[Chat]) -> dict[tuple[str, dt.date], dict[str, t.Any]]:
    """(agent ID, UTC day) -> chats, messages, first responses, median and p90."""
    days: dict[tuple[str, dt.date], dict[str, t.Any]] = defaultdict(
        lambda: {"chats": set(), "messages": 0, "responses": []}
    )
    for chat in chats:
        for message in chat.of("agent"):
            day = days[(message.agent_id or "unknown", message.at.date())]
            day["chats"].add(chat.key)
            day["messages"] += 1
        response, seconds = chat.first_response, chat.first_response_seconds
        if response is not None and seconds is not None:
            days[(response.agent_id or "unknown", response.at.date())]["responses"].append(seconds)
    return {
        key: {
            "chats": len(day["chats"]),
            "messages": day["messages"],
            "first_responses": len(day["responses"]),
            "median": percentile(day["responses"], 0.5) if day["responses"] else None,
            "p90": percentile(day["responses"], 0.9) if day["responses"] else None,
        }
        for key, day in days.items()
    }
