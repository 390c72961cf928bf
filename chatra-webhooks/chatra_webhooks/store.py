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


#: A reader's name (`GET /events?reader=`), as the store keeps it.
READER_NAME = r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}"


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


@dataclass(frozen=True)
class ReaderPosition:
    """How far a reader has read: it keeps every event up to `acked_seq`, said at `acked_at`."""

    name: str
    acked_seq: int
    acked_at: dt.datetime


@dataclass(frozen=True)
class Pruned:
    """What `prune` did.

    Attributes:
        deleted: Events deleted.
        kept: Events old enough to delete but kept, since a reader has not acknowledged them.
        unread_deleted: Of `deleted`, those a reader had not acknowledged (`past_readers`).
        readers: Every reader's position; the slowest bounds what is deleted.
    """

    deleted: int
    kept: int
    unread_deleted: int
    readers: list[ReaderPosition]

    @property
    def slowest(self) -> ReaderPosition | None:
        """The reader furthest behind, if any reader is known."""
        return min(self.readers, key=lambda reader: reader.acked_seq, default=None)


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

    def acknowledge(self, reader: str, seq: int) -> None:
        """Note that `reader` keeps every event up to `seq` (so `prune` may delete them)."""

    def readers(self) -> list[ReaderPosition]:
        """Every reader's position, by name."""

    def forget_reader(self, name: str) -> bool:
        """Forget a reader that no longer reads; return whether it was known."""

    def prune(self, before: dt.datetime, *, past_readers: bool = False) -> Pruned:
        """Delete events received before `before` that every reader has acknowledged.

        With `past_readers`, also those a reader has not (or when no reader is known).
        """

    def ping(self) -> None:
        """Raise `StoreError` unless the store answers."""

    def close(self) -> None:
        """Finish pending writes and release connections."""
