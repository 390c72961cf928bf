"""The store's narrow interface: append an event, read events after a sequence number.

`SqlEventStore` is the one implementation (SQLite or PostgreSQL); the app and the command
line depend only on this interface.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

if t.TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Iterator
    from concurrent.futures import Future

    from chatra_webhooks.events import IncomingEvent


class StoreError(RuntimeError):
    """The store cannot be opened or does not answer; the message says what to check."""


class EventRefusedError(StoreError):
    """The store refused this one event (the others of its batch were committed).

    Sending it again will not help: it is answered as a bad request, not as a store outage.
    """


@dataclass(frozen=True)
class Appended:
    """Where an appended event is: its sequence number, and whether it was there already."""

    seq: int
    duplicate: bool


@dataclass(frozen=True)
class StoredEvent:
    """An event as stored; `body` is the JSON text (see `events.stored_body` to serve it)."""

    seq: int
    received_at: dt.datetime
    event_name: str | None
    client_id: str | None
    chat_id: str | None
    body: str


@dataclass(frozen=True)
class Page:
    """Events read after a sequence number.

    Attributes:
        events: The events, in `seq` order.
        last_seq: The `seq` of the last event read (None when none was): a reader's next
            `after`.
        has_more: Whether more events were waiting after `last_seq` when the page was read.
    """

    events: list[StoredEvent]
    last_seq: int | None
    has_more: bool


class EventStore(t.Protocol):
    """Durable, ordered, deduplicated storage of webhook events."""

    def append(self, event: IncomingEvent) -> Appended:
        """Store `event` durably (committed) unless a body with its hash is stored already."""

    def append_soon(self, event: IncomingEvent) -> Future[Appended]:
        """Like `append`, without waiting: the future resolves once the event is committed.

        The app awaits it (`asyncio.wrap_future`) instead of parking a thread per request.
        """

    def read(self, after: int, limit: int) -> Page:
        """Up to `limit` events with `seq > after`, in `seq` order, never skipping one."""

    def iter_after(self, after: int) -> Iterator[StoredEvent]:
        """Every event with `seq > after`, in order, read a page at a time."""

    def prune(self, before: dt.datetime) -> int:
        """Delete events received before `before`; return how many."""

    def ping(self) -> None:
        """Raise `StoreError` unless the store answers."""

    def close(self) -> None:
        """Finish pending writes and release connections."""
