"""Reader positions and pruning on SQLite or PostgreSQL: what `SqlEventStore` may delete.

A reader acknowledges a position when it reads (`GET /events?reader=NAME&ack=SEQ`): it keeps
every event up to SEQ. `prune` deletes old events only up to the slowest reader's position,
and nothing at all while no reader is known, unless told to go past the readers.
"""

from __future__ import annotations

import datetime as dt
import typing as t

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from chatra_webhooks.schema import EVENTS, READERS, WRITE_OPTIONS, as_utc
from chatra_webhooks.store import Pruned, ReaderPosition

if t.TYPE_CHECKING:
    from sqlalchemy.sql.dml import Insert


def _upsert(dialect: str, values: dict[str, t.Any]) -> Insert:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(READERS).values(**values)
    return statement.on_conflict_do_update(
        index_elements=[READERS.c.name],
        set_={"acked_seq": statement.excluded.acked_seq, "acked_at": statement.excluded.acked_at},
    )


def acknowledge(engine: sa.Engine, reader: str, seq: int) -> None:
    """Set `reader`'s position to `seq`, now (a reader that read from an older one moves back)."""
    values = {"name": reader, "acked_seq": seq, "acked_at": dt.datetime.now(dt.UTC)}
    with engine.connect().execution_options(**WRITE_OPTIONS) as conn, conn.begin():
        conn.execute(_upsert(conn.dialect.name, values))


def positions(conn: sa.Connection) -> list[ReaderPosition]:
    """Every reader's position, by name."""
    rows = conn.execute(sa.select(READERS).order_by(READERS.c.name))
    return [ReaderPosition(row.name, row.acked_seq, as_utc(row.acked_at)) for row in rows]


def forget(engine: sa.Engine, name: str) -> bool:
    """Delete a reader's position; return whether there was one."""
    with engine.connect().execution_options(**WRITE_OPTIONS) as conn, conn.begin():
        return bool(conn.execute(sa.delete(READERS).where(READERS.c.name == name)).rowcount)


def prune(engine: sa.Engine, before: dt.datetime, *, past_readers: bool) -> Pruned:
    """Delete events received before `before`, up to the slowest reader unless `past_readers`."""
    old = EVENTS.c.received_at < before
    with engine.connect().execution_options(**WRITE_OPTIONS) as conn, conn.begin():
        readers = positions(conn)
        # No reader known: none has acknowledged anything.
        bound = min((reader.acked_seq for reader in readers), default=0)
        unread = sa.and_(old, EVENTS.c.seq > bound)
        count = sa.select(sa.func.count()).select_from(EVENTS)
        unread_count = int(conn.execute(count.where(unread)).scalar_one())
        deleted = conn.execute(
            sa.delete(EVENTS).where(old if past_readers else sa.and_(old, EVENTS.c.seq <= bound))
        )
    return Pruned(
        deleted=int(deleted.rowcount),
        kept=0 if past_readers else unread_count,
        unread_deleted=unread_count if past_readers else 0,
        readers=readers,
    )
