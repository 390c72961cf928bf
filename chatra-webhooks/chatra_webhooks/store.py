"""The store's narrow interface: append an event, read events after a sequence number.

`SqlEventStore` is the one implementation (SQLite or PostgreSQL); the app and the command
line depend only on this interface.
"""

from __future__ import annotations

import json
import typing as t
from dataclasses import dataclass

if t.TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Iterator
    from concurrent.futures import Future

    from chatra_webhooks.events import IncomingEvent


class StoreError(RuntimeError):
    """The store cannot be opened or does not answer; the message says what to check."""


@dataclass(frozen=True)
class Appended:
    """Where an appended event is: its sequence number, and whether it was there already."""

    seq: int
    duplicate: bool


@dataclass(frozen=True)
class StoredEvent:
    """An event as the read API returns it."""

    seq: int
    received_at: dt.datetime
    event_name: str | None
    client_id: str | None
    chat_id: str | None
    body: str

    def to_json(self) -> dict[str, t.Any]:
        """The read API's representation: the body as a JSON object, times in UTC."""
        return {
            "seq": self.seq,
            "received_at": self.received_at.isoformat().replace("+00:00", "Z"),
            "event_name": self.event_name,
            "client_id": self.client_id,
            "chat_id": self.chat_id,
            "body": json.loads(self.body),
        }


class EventStore(t.Protocol):
    """Durable, ordered, deduplicated storage of webhook events."""

    def append(self, event: IncomingEvent) -> Appended:
        """Store `event` durably (committed) unless a body with its hash is stored already."""

    def append_soon(self, event: IncomingEvent) -> Future[Appended]:
        """Like `append`, without waiting: the future resolves once the event is committed.

        The app awaits it (`asyncio.wrap_future`) instead of parking a thread per request.
        """

    def read(self, after: int, limit: int) -> list[StoredEvent]:
        """Up to `limit` events with `seq > after`, in `seq` order, never skipping one."""

    def iter_after(self, after: int) -> Iterator[StoredEvent]:
        """Every event with `seq > after`, in order, read a page at a time."""

    def prune(self, before: dt.datetime) -> int:
        """Delete events received before `before`; return how many."""

    def ping(self) -> None:
        """Raise `StoreError` unless the store answers."""

    def close(self) -> None:
        """Finish pending writes and release connections."""
