"""Tables of the store, the engine for a URL, and the schema upgrade run at every start.

Sequence numbers come from a counter row, not from an autoincrement or a PostgreSQL
sequence: a writer locks the row, numbers its events and commits, so numbers are handed out in
commit order with no gaps, and a reader that has seen `seq` N has seen every event below N.
(With a sequence, a transaction holding number 5 may commit after one holding 6, and a reader
paging by `seq` would pass 5 for ever.) Pruning leaves the counter alone, so a number is never
reused.

Readers (`chatra_webhooks_readers`, from version 2) say up to which number they have kept
every event; `prune` deletes nothing past the slowest of them.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from pathlib import Path

import sqlalchemy as sa

from chatra_webhooks.store import StoreError

if t.TYPE_CHECKING:
    from collections.abc import Callable

SCHEMA_VERSION = 2
METADATA = sa.MetaData()

#: One row (`id` 1): the last sequence number handed out, and the schema version.
INBOX = sa.Table(
    "chatra_webhooks_inbox",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
    sa.Column("schema_version", sa.Integer, nullable=False),
)

EVENTS = sa.Table(
    "chatra_webhooks_events",
    METADATA,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("event_name", sa.Text),
    sa.Column("client_id", sa.Text),
    sa.Column("chat_id", sa.Text),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("body_sha256", sa.String(64), nullable=False, unique=True),
)

#: Each reader's position: every event up to `acked_seq` is kept by the reader (version 2).
READERS = sa.Table(
    "chatra_webhooks_readers",
    METADATA,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("acked_seq", sa.BigInteger, nullable=False),
    sa.Column("acked_at", sa.DateTime(timezone=True), nullable=False),
)

# Any constant: replicas starting at once upgrade the schema one after another.
_UPGRADE_LOCK_KEY = 0x63686174_7261


#: Execution option naming the statement that opens a transaction on SQLite.
SQLITE_BEGIN = "chatra_webhooks_sqlite_begin"
#: Connection options of a writing transaction: on SQLite it takes the write lock at once, so
#: two writers queue on the busy timeout instead of failing when one upgrades its read lock.
WRITE_OPTIONS = {SQLITE_BEGIN: "BEGIN IMMEDIATE"}


def _sqlite_text(value: bytes) -> str:
    # SQLite does not check that TEXT is UTF-8: a row written by other means must still read.
    # Bytes that are not UTF-8 become lone surrogates, which the read API serves as U+FFFD.
    return value.decode("utf-8", "surrogateescape")


def _sqlite_connect(dbapi_connection: t.Any, _record: object) -> None:
    # The driver's own transaction handling is off; `_sqlite_begin` opens every transaction.
    dbapi_connection.isolation_level = None
    dbapi_connection.text_factory = _sqlite_text
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the writer; FULL makes every commit fsync the WAL, so an
    # event answered 200 survives a crash or a power cut, not only a killed process.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    # No checkpoint inside a commit: `checkpoint.Checkpointer` runs them on a thread.
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    conn.exec_driver_sql(conn.get_execution_options().get(SQLITE_BEGIN, "BEGIN"))


def create_engine(url: str) -> sa.Engine:
    """An engine for a normalized store URL (see `settings.normalize_store_url`).

    Raises:
        StoreError: If the URL cannot be parsed or its driver is missing.
    """
    try:
        if url.startswith("sqlite"):
            database = sa.engine.make_url(url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(url, connect_args={"timeout": 30})
            sa.event.listen(engine, "connect", _sqlite_connect)
            sa.event.listen(engine, "begin", _sqlite_begin)
            return engine
        return sa.create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8)
    except OSError as exc:
        msg = f"cannot create the store's folder: {exc.strerror or exc}: {exc.filename}"
        raise StoreError(msg) from None
    except (sa.exc.ArgumentError, ImportError, ValueError) as exc:
        # Not the error's text: it may quote the URL, password included.
        msg = (
            f"cannot use the store URL ({type(exc).__name__}): "
            "expected sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE."
        )
        raise StoreError(msg) from None


def as_utc(value: dt.datetime) -> dt.datetime:
    """A time read back from the store, in UTC.

    SQLite hands back the naive UTC time that was written; PostgreSQL an aware one.
    """
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _version_1(conn: sa.Connection) -> None:
    METADATA.create_all(conn, tables=[EVENTS])


def _version_2(conn: sa.Connection) -> None:
    METADATA.create_all(conn, tables=[READERS])


#: Each step brings the schema from the version before to its own.
UPGRADES: dict[int, Callable[[sa.Connection], None]] = {1: _version_1, 2: _version_2}


def upgrade(engine: sa.Engine) -> int:
    """Create the tables or bring them to `SCHEMA_VERSION`; return the version found.

    Raises:
        StoreError: If the store was written by a newer version of the inbox.
    """
    with engine.connect().execution_options(**WRITE_OPTIONS) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_UPGRADE_LOCK_KEY)))
        METADATA.create_all(conn, tables=[INBOX])
        found = conn.execute(sa.select(INBOX.c.schema_version).where(INBOX.c.id == 1)).scalar()
        if found is None:
            conn.execute(sa.insert(INBOX).values(id=1, last_seq=0, schema_version=0))
            found = 0
        if found > SCHEMA_VERSION:
            msg = (
                f"the store has schema version {found}, newer than this chatra-webhooks "
                f"({SCHEMA_VERSION}): upgrade chatra-webhooks."
            )
            raise StoreError(msg)
        for version in range(found + 1, SCHEMA_VERSION + 1):
            UPGRADES[version](conn)
        conn.execute(sa.update(INBOX).where(INBOX.c.id == 1).values(schema_version=SCHEMA_VERSION))
    return int(found)
