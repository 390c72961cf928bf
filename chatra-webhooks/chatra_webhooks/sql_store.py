"""`SqlEventStore`: the event store on SQLite or PostgreSQL, through SQLAlchemy Core."""

from __future__ import annotations

import contextlib
import datetime as dt
import typing as t

import sqlalchemy as sa

from chatra_webhooks import sql_readers
from chatra_webhooks.checkpoint import Checkpointer
from chatra_webhooks.schema import EVENTS, INBOX, WRITE_OPTIONS, as_utc, create_engine, upgrade
from chatra_webhooks.store import (
    Appended,
    EventRefusedError,
    Page,
    Pruned,
    ReaderPosition,
    StoredEvent,
    StoreError,
)
from chatra_webhooks.writer import BatchWriter

if t.TYPE_CHECKING:
    from collections.abc import Iterator
    from concurrent.futures import Future

    from chatra_webhooks.events import IncomingEvent

#: A page of the read API stops early once its bodies reach this many characters (it holds
#: at least one event); `Page.has_more` tells the reader to go on.
PAGE_BYTES = 4 * 1024 * 1024
MAX_BATCH = 256
_COLUMNS = (
    EVENTS.c.seq,
    EVENTS.c.received_at,
    EVENTS.c.event_name,
    EVENTS.c.client_id,
    EVENTS.c.chat_id,
    EVENTS.c.body,
)


# The writer's statements, built once: a statement built per batch costs more Python time
# (construction, cache key) than its execution.
_LOCK_COUNTER = (
    sa.update(INBOX)
    .where(INBOX.c.id == 1)
    .values(last_seq=INBOX.c.last_seq)
    .returning(INBOX.c.last_seq)
)
_KNOWN_BODIES = sa.select(EVENTS.c.seq, EVENTS.c.body_sha256).where(
    EVENTS.c.body_sha256.in_(sa.bindparam("hashes", expanding=True))
)
_INSERT_EVENTS = sa.insert(EVENTS)
_SET_COUNTER = (
    sa.update(INBOX)
    .where(INBOX.c.id == 1)
    .values(last_seq=sa.bindparam("last_seq", type_=sa.BigInteger))
)


def describe(exc: BaseException) -> str:
    """One line about a database error, without the statement or its parameters.

    SQLAlchemy's own message quotes both, and the parameters are webhook bodies.
    """
    cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None else exc
    if isinstance(cause, UnicodeError):
        # Its text quotes the character, which comes from a body.
        return f"{type(cause).__name__}: {getattr(cause, 'reason', 'not Unicode')}"
    first_line = (str(cause).strip().splitlines() or [""])[0]
    return f"{type(cause).__name__}: {first_line}".rstrip(": ")


def _row(event: IncomingEvent, seq: int, received_at: dt.datetime) -> dict[str, t.Any]:
    return {
        "seq": seq,
        "received_at": received_at,
        "event_name": event.event_name,
        "client_id": event.client_id,
        "chat_id": event.chat_id,
        "body": event.body,
        "body_sha256": event.body_sha256,
    }


def _refused_for_its_data(exc: Exception) -> bool:
    """Whether `exc` says the database refused a value, rather than that it cannot write."""
    cause = exc.orig if isinstance(exc, sa.exc.StatementError) and exc.orig is not None else exc
    return isinstance(exc, sa.exc.DataError | sa.exc.IntegrityError) or isinstance(
        cause, ValueError
    )


class SqlEventStore:
    """Events in SQLite or PostgreSQL; see `schema` for how sequence numbers stay safe.

    Args:
        url: A normalized SQLAlchemy URL (`sqlite:///…` or `postgresql+psycopg://…`).

    Raises:
        StoreError: If the store cannot be opened or its schema cannot be brought up to date.
    """

    def __init__(self, url: str) -> None:
        self._engine = create_engine(url)
        try:
            upgrade(self._engine)
        except sa.exc.SQLAlchemyError as exc:
            self._engine.dispose()
            msg = f"cannot open the store {self._engine.url!r}: {describe(exc)}"
            raise StoreError(msg) from None
        self._writer: BatchWriter[IncomingEvent, Appended] = BatchWriter(
            self._write_batch, max_batch=MAX_BATCH, name="chatra-webhooks-writer"
        )
        self._checkpointer = (
            Checkpointer(self._engine) if self._engine.dialect.name == "sqlite" else None
        )

    def append(self, event: IncomingEvent) -> Appended:
        """Store `event` and return once it is committed.

        Raises:
            StoreError: If the store did not commit it.
        """
        return self.append_soon(event).result()

    def append_soon(self, event: IncomingEvent) -> Future[Appended]:
        """Queue `event` for the next commit; the future resolves once it is committed.

        Raises:
            StoreError: If the store is closed (the future raises it when the commit fails).
        """
        return self._writer.submit(event)

    def _write_batch(self, events: list[IncomingEvent]) -> list[Appended | Exception]:
        try:
            return list(self._commit_batch(events))
        except Exception as exc:  # not only SQLAlchemy's: a driver raises UnicodeEncodeError
            if not _refused_for_its_data(exc):
                msg = f"the store did not commit the event: {describe(exc)}"
                return [StoreError(msg)] * len(events)
            if len(events) == 1:
                msg = f"the store refused the event: {describe(exc)}"
                return [EventRefusedError(msg)]
        # One event the database refuses fails the whole transaction: commit each alone, so
        # that only that one fails and the others are answered as usual.
        return [result for event in events for result in self._write_batch([event])]

    def _commit_batch(self, events: list[IncomingEvent]) -> list[Appended]:
        received_at = dt.datetime.now(dt.UTC)
        hashes = {event.body_sha256 for event in events}
        with self._engine.connect().execution_options(**WRITE_OPTIONS) as conn, conn.begin():
            # Locks the counter row until commit: the next writer numbers after this one, and
            # no other writer can store one of these bodies meanwhile.
            last_seq: int = conn.execute(_LOCK_COUNTER).scalar_one()
            known: dict[str, int] = {
                row.body_sha256: row.seq
                for row in conn.execute(_KNOWN_BODIES, {"hashes": list(hashes)})
            }
            results: list[Appended] = []
            rows: list[dict[str, t.Any]] = []
            for event in events:
                if event.body_sha256 in known:
                    results.append(Appended(known[event.body_sha256], duplicate=True))
                    continue
                last_seq += 1
                known[event.body_sha256] = last_seq
                results.append(Appended(last_seq, duplicate=False))
                rows.append(_row(event, last_seq, received_at))
            if rows:
                conn.execute(_INSERT_EVENTS, rows)
                conn.execute(_SET_COUNTER, {"last_seq": last_seq})
        return results

    def read(self, after: int, limit: int) -> Page:
        """Up to `limit` events after `after`, fewer past `PAGE_BYTES` of bodies.

        The sizes are read first, so that a page of large bodies never loads more of them
        than it returns.

        Raises:
            StoreError: If the store does not answer.
        """
        later = EVENTS.c.seq > after
        sizes = (
            sa.select(EVENTS.c.seq, sa.func.length(EVENTS.c.body))
            .where(later)
            .order_by(EVENTS.c.seq)
            .limit(limit + 1)
        )
        try:
            with self._engine.connect() as conn:
                found = conn.execute(sizes).all()
                taken, size = 0, 0
                for _seq, length in found[:limit]:
                    taken, size = taken + 1, size + (length or 0)
                    if size >= PAGE_BYTES:
                        break
                if not taken:
                    return Page([], None, has_more=False)
                last = found[taken - 1].seq
                rows = conn.execute(
                    sa.select(*_COLUMNS).where(later, EVENTS.c.seq <= last).order_by(EVENTS.c.seq)
                )
                events = [
                    StoredEvent(
                        seq=row.seq,
                        received_at=as_utc(row.received_at),
                        event_name=row.event_name,
                        client_id=row.client_id,
                        chat_id=row.chat_id,
                        body=row.body,
                    )
                    for row in rows
                ]
        except sa.exc.SQLAlchemyError as exc:
            msg = f"the store did not answer: {describe(exc)}"
            raise StoreError(msg) from None
        return Page(events, last, has_more=len(found) > taken)

    def iter_after(self, after: int, page_size: int = 500) -> Iterator[StoredEvent]:
        """Every event after `after`, in order, a page at a time.

        Raises:
            StoreError: If the store does not answer.
        """
        while True:
            page = self.read(after, page_size)
            yield from page.events
            if page.last_seq is None or not page.has_more:
                return
            after = page.last_seq

    def acknowledge(self, reader: str, seq: int) -> None:
        """Note that `reader` keeps every event up to `seq`.

        Raises:
            StoreError: If the store does not answer.
        """
        with self._answering("did not note the reader's position"):
            sql_readers.acknowledge(self._engine, reader, seq)

    def readers(self) -> list[ReaderPosition]:
        """Every reader's position, by name.

        Raises:
            StoreError: If the store does not answer.
        """
        with self._answering("did not answer"), self._engine.connect() as conn:
            return sql_readers.positions(conn)

    def forget_reader(self, name: str) -> bool:
        """Forget a reader; return whether it was known.

        Raises:
            StoreError: If the store does not answer.
        """
        with self._answering("did not forget the reader"):
            return sql_readers.forget(self._engine, name)

    def prune(self, before: dt.datetime, *, past_readers: bool = False) -> Pruned:
        """Delete events received before `before`, up to the slowest reader's position.

        Raises:
            StoreError: If the store does not answer.
        """
        with self._answering("did not prune"):
            return sql_readers.prune(self._engine, before, past_readers=past_readers)

    @contextlib.contextmanager
    def _answering(self, what: str) -> Iterator[None]:
        try:
            yield
        except sa.exc.SQLAlchemyError as exc:
            msg = f"the store {what}: {describe(exc)}"
            raise StoreError(msg) from None

    def ping(self) -> None:
        """Check that the store answers.

        Raises:
            StoreError: If it does not.
        """
        try:
            with self._engine.connect() as conn:
                conn.execute(sa.select(INBOX.c.last_seq).where(INBOX.c.id == 1)).scalar_one()
        except sa.exc.SQLAlchemyError as exc:
            msg = f"the store did not answer: {describe(exc)}"
            raise StoreError(msg) from None

    def close(self) -> None:
        """Write what is queued, checkpoint (SQLite), then release every connection."""
        self._writer.close()
        if self._checkpointer is not None:
            self._checkpointer.close()
        self._engine.dispose()
