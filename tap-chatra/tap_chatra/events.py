"""Webhook events as rows: one per event, one per message an event carries, and their IDs.

Chatra's webhook payloads are only partly known (see the shared API notes): the text is under
`text` or under `message`, a message may or may not carry an `id` and a `createdAt`, and any
key may appear. So nothing is required: a message without an `id` is keyed by a hash of its
chat, time, type and text, and keys this module does not know go to `extra`.
"""

from __future__ import annotations

import hashlib
import json
import typing as t
from dataclasses import dataclass, field

from chatra_client import id_problem
from tap_chatra.records import EXTRA, fits, utc_datetime_from_ms

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

#: Events whose messages become chat_messages rows (chatStarted may repeat the first one).
MESSAGE_EVENTS = frozenset({"chatFragment", "chatTranscript"})

#: Message keys and the column each one fills; `text` and `message` are two spellings.
_MESSAGE_COLUMNS = {
    "id": "id",
    "type": "type",
    "text": "text",
    "message": "text",
    "createdAt": "created_at_ms",
    "agentId": "agent_id",
    "agentName": "agent_name",
    "file": "file",
    "isPushed": "is_pushed",
    "receivedFrom": "received_from",
}
_STRING = {"type": ["string", "null"]}
_COLUMN_TYPES: dict[str, Mapping[str, t.Any]] = {
    "id": _STRING,
    "type": _STRING,
    "text": _STRING,
    "created_at_ms": {"type": ["integer", "null"]},
    "agent_id": _STRING,
    "agent_name": _STRING,
    "file": {"type": ["object", "null"]},
    "is_pushed": {"type": ["boolean", "null"]},
    "received_from": _STRING,
}


def _string(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def event_row(
    seq: int, payload: Mapping[str, t.Any], *, received_at: str | None = None
) -> dict[str, t.Any]:
    """One webhook_events row: where the event is in the feed, what it is, and its body."""
    client = payload.get("client")
    client = client if isinstance(client, dict) else {}
    return {
        "seq": seq,
        "received_at": received_at,
        "event_name": _string(payload.get("eventName")),
        "client_id": _string(client.get("id")),
        "chat_id": _string(client.get("chatId")),
        "payload": dict(payload),
    }


def message_key(chat_id: str | None, created_at: object, kind: object, text: object) -> str:
    """The key of a message without an ID: a stable hash of its chat, time, type and text."""
    canonical = json.dumps([chat_id, created_at, kind, text], ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def message_rows(event: Mapping[str, t.Any]) -> Iterator[dict[str, t.Any]]:
    """The chat_messages rows of one webhook_events row (none for other events)."""
    if event["event_name"] not in MESSAGE_EVENTS:
        return
    messages = event["payload"].get("messages")
    for message in messages if isinstance(messages, list) else []:
        if isinstance(message, dict):
            yield _message_row(event, message)


def _message_row(event: Mapping[str, t.Any], message: Mapping[str, t.Any]) -> dict[str, t.Any]:
    row: dict[str, t.Any] = dict.fromkeys(_COLUMN_TYPES)
    extra: dict[str, t.Any] = {}
    for key, value in message.items():
        column = _MESSAGE_COLUMNS.get(key)
        # A second spelling of the text (both `text` and `message`) is kept, not overwritten.
        if column is None or not fits(value, _COLUMN_TYPES[column]) or row[column] is not None:
            extra[key] = value
        else:
            row[column] = value
    message_id = _string(row["id"])
    created_at_ms = row.pop("created_at_ms")
    row["key"] = message_id or message_key(
        event["chat_id"], created_at_ms, row["type"], row["text"]
    )
    row.update(
        chat_id=event["chat_id"],
        client_id=event["client_id"],
        created_at=utc_datetime_from_ms(created_at_ms),
        event_name=event["event_name"],
        seq=event["seq"],
    )
    row[EXTRA] = extra
    return row


@dataclass
class EventIds:
    """The record IDs one event names, and why any it names cannot be used."""

    clients: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    pushed_messages: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def ids_in_event(payload: Mapping[str, t.Any]) -> EventIds:
    """The client ID of an event, and the ID of each message that carries one.

    A message with `isPushed: true` is a pushed message; webhook messages usually carry no
    ID, which is not a problem.
    """
    found = EventIds()
    client = payload.get("client")
    if isinstance(client, dict) and "id" in client:
        reason = id_problem(client["id"])
        if reason:
            found.problems.append(f"client.id: {reason}")
        else:
            found.clients.append(str(client["id"]))
    messages = payload.get("messages")
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict) or "id" not in message:
            continue
        reason = id_problem(message["id"])
        if reason:
            found.problems.append(f"messages[].id: {reason}")
        elif message.get("isPushed") is True:
            found.pushed_messages.append(str(message["id"]))
        else:
            found.messages.append(str(message["id"]))
    return found
