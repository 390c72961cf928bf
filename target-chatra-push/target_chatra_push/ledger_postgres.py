"""The delivery ledger in PostgreSQL, for runs on machines that keep no files.

Same tables, same protocol and same guarantees as the SQLite ledger (ledger.py): every write
is committed before it returns (PostgreSQL's commit is durable), the claim of a key is one
transaction that a second claimer cannot pass, the ledger records its account and the
properties that key each stream, and a run holds it exclusively: a session-level advisory
lock, which PostgreSQL releases when the run's connection ends, a killed run's included.
The tables live in the connection's current schema (set one with
`?options=-csearch_path%3Dname` in the URL); each schema holds one ledger.

It is written with SQLAlchemy Core and psycopg 3. The SQLite ledger keeps its own code on
Python's sqlite3: through SQLAlchemy, a send's two commits cost several times more, which
the target's throughput budget (bench item 4) cannot carry.
"""

from __future__ import annotations

import contextlib
import json
import time
import typing as t

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError

from target_chatra_push.ledger_model import (
    SCHEMA_2_KEYS,
    SCHEMA_VERSION,
    Entry,
    FailureKind,
    LedgerBusyError,
    LedgerError,
    LedgerWaitStoppedError,
    LockWait,
    RunMark,
    Status,
    newer_schema,
    now,
    other_account,
)

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable

_MAX_ERROR_LENGTH = 1000
_LOCK_POLL_SECONDS = 0.2
# One ledger per schema: the run lock is an advisory lock on a hash of the schema's name.
_TRY_LOCK = sa.text(
    "SELECT pg_try_advisory_lock(hashtextextended('target-chatra-push ledger in ' "
    "|| current_schema(), 0))"
)
_UNLOCK = sa.text(
    "SELECT pg_advisory_unlock(hashtextextended('target-chatra-push ledger in ' "
    "|| current_schema(), 0))"
)

_metadata = sa.MetaData()
deliveries = sa.Table(
    "deliveries",
    _metadata,
    sa.Column("stream", sa.Text, primary_key=True),
    sa.Column("dedupe_key", sa.Text, primary_key=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("failure_kind", sa.Text),
    sa.Column("payload_hash", sa.Text, nullable=False),
    sa.Column("message_id", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Text, nullable=False),
    sa.Column("run_host", sa.Text),
    sa.Column("run_pid", sa.Integer),
    sa.Column("run_started", sa.Text),
    sa.CheckConstraint(
        "status IN ('pending', 'sent', 'failed', 'unknown')", name="deliveries_status"
    ),
    sa.CheckConstraint("failure_kind IN ('rejected', 'not_sent')", name="deliveries_failure_kind"),
)
stream_keys = sa.Table(
    "stream_keys",
    _metadata,
    sa.Column("stream", sa.Text, primary_key=True),
    sa.Column("key_properties", sa.Text, nullable=False),
    sa.Column("recorded_at", sa.Text, nullable=False),
)
ledger_meta = sa.Table(
    "ledger_meta",
    _metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
_UNSETTLED = (Status.PENDING.value, Status.UNKNOWN.value)
# The ledger_meta flag that says rows may be stored under schema 2's key form.
_SCHEMA_2_KEYS_FLAG = "schema_2_keys"


def _engine(url: str) -> sa.Engine:
    parsed = sa.make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    if not parsed.drivername.startswith("postgresql"):
        msg = f"ledger_url must be a postgresql:// URL, got {parsed.drivername}://..."
        raise LedgerError(msg)
    return sa.create_engine(parsed, poolclass=sa.pool.NullPool)


def _entry(row: sa.Row[t.Any]) -> Entry:
    return Entry(
        stream=row.stream,
        key=row.dedupe_key,
        status=Status(row.status),
        failure_kind=FailureKind(row.failure_kind) if row.failure_kind else None,
        payload_hash=row.payload_hash,
        message_id=row.message_id,
        attempts=row.attempts,
        last_error=row.last_error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        run=RunMark(row.run_host, row.run_pid, row.run_started) if row.run_host else None,
    )


def _unreachable(location: str, exc: SQLAlchemyError) -> LedgerError:
    reason = " ".join(str(getattr(exc, "orig", None) or exc).split())[:300]
    return LedgerError(
        f"The ledger {location} cannot be reached ({reason}); check ledger_url and that "
        "PostgreSQL is up."
    )


class PostgresLedger:
    """Read and record delivery outcomes in PostgreSQL. Every write is committed at once."""

    def __init__(self, connection: sa.Connection, *, read_only: bool, location: str) -> None:
        self._db = connection
        self._locked = False
        self.read_only = read_only
        self.location = location
        self.earlier_key_forms: tuple[str, ...] = ()

    @staticmethod
    def describe_url(url: str) -> str:
        """The URL without its password, for messages."""
        try:
            return sa.make_url(url).render_as_string(hide_password=True)
        except sa.exc.ArgumentError:
            return "(ledger_url, not a valid URL)"

    @classmethod
    def exists(cls, url: str) -> bool:
        """Whether the database holds a ledger; changes nothing."""
        location = cls.describe_url(url)
        try:
            engine = _engine(url)
            with engine.connect() as connection:
                return sa.inspect(connection).has_table("deliveries")
        except SQLAlchemyError as exc:
            raise _unreachable(location, exc) from None

    @classmethod
    def _connect(cls, url: str, *, read_only: bool) -> PostgresLedger:
        location = cls.describe_url(url)
        try:
            connection = _engine(url).connect()
        except SQLAlchemyError as exc:
            raise _unreachable(location, exc) from None
        return cls(connection, read_only=read_only, location=location)

    @classmethod
    def open(
        cls,
        url: str,
        *,
        lock_wait: float | LockWait | None = None,
        create: bool = True,
    ) -> PostgresLedger:
        """Connect, take the run's lock (waiting up to `lock_wait` s) and create the tables.

        Args:
            url: The `postgresql://` URL.
            lock_wait: Take the run's lock, waiting up to this many seconds (or as a
                LockWait says); None takes none.
            create: Create the tables when missing; False opens an existing ledger only
                (maintenance commands).

        Raises:
            LedgerError: When PostgreSQL cannot be reached, another run holds the ledger,
                there is none and `create` is False, or the ledger was written by a newer
                target; LedgerWaitStoppedError when a stop ended the wait.
        """
        if not create and not cls.exists(url):
            msg = f"There is no ledger at {cls.describe_url(url)}."
            raise LedgerError(msg)
        ledger = cls._connect(url, read_only=False)
        try:
            if lock_wait is not None:
                ledger._lock(LockWait.of(lock_wait))
            ledger._prepare(create=create)
        except SQLAlchemyError as exc:
            ledger._db.close()
            raise _unreachable(ledger.location, exc) from None
        except LedgerError:
            ledger._db.close()
            raise
        return ledger

    @classmethod
    def open_read_only(cls, url: str) -> PostgresLedger | None:
        """Connect to an existing ledger without changing it; None when there is none."""
        if not cls.exists(url):
            return None
        ledger = cls._connect(url, read_only=True)
        try:
            version = int(ledger._meta("schema_version") or SCHEMA_VERSION)
            ledger.earlier_key_forms = ledger._earlier_key_forms(version)
        except SQLAlchemyError as exc:
            ledger._db.close()
            raise _unreachable(ledger.location, exc) from None
        return ledger

    def _lock(self, wait: LockWait) -> None:
        deadline = time.monotonic() + wait.seconds
        stop = wait.stop
        while not self._db.execute(_TRY_LOCK).scalar():
            self._db.commit()
            wait.started()
            if stop is not None and stop.is_set():
                raise LedgerWaitStoppedError(self.location)
            if time.monotonic() >= deadline:
                raise LedgerBusyError(self.location, wait.seconds)
            if stop is not None:
                stop.wait(_LOCK_POLL_SECONDS)
            else:
                time.sleep(_LOCK_POLL_SECONDS)
        self._db.commit()
        self._locked = True

    def _earlier_key_forms(self, version: int) -> tuple[str, ...]:
        # Schema 2 was the first PostgreSQL ledger: there are no schema-1 keys to look for.
        flagged = self._meta(_SCHEMA_2_KEYS_FLAG) == "1"
        return (SCHEMA_2_KEYS,) if version == 2 or flagged else ()

    def _prepare(self, *, create: bool) -> None:
        if create:
            _metadata.create_all(self._db)
            self._db.execute(
                insert(ledger_meta)
                .values(name="schema_version", value=str(SCHEMA_VERSION))
                .on_conflict_do_nothing()
            )
            self._db.execute(
                insert(ledger_meta).values(name="created_at", value=now()).on_conflict_do_nothing()
            )
            self._db.commit()
        version = int(self._meta("schema_version") or SCHEMA_VERSION)
        if version > SCHEMA_VERSION:
            raise newer_schema(self.location, version)
        if version < SCHEMA_VERSION:
            self._upgrade()
        self.earlier_key_forms = self._earlier_key_forms(SCHEMA_VERSION)

    def _upgrade(self) -> None:
        """Bring a schema-2 ledger to schema 3: its rows keep their keys, looked up by form."""
        version = ledger_meta.c.name == "schema_version"
        # Locked for the upgrade, so that two runs cannot both decide it.
        current = self._db.execute(
            sa.select(ledger_meta.c.value).where(version).with_for_update()
        ).scalar()
        if current is not None and int(current) < SCHEMA_VERSION:
            if self._db.execute(sa.select(deliveries.c.stream).limit(1)).first() is not None:
                self._db.execute(
                    insert(ledger_meta)
                    .values(name=_SCHEMA_2_KEYS_FLAG, value="1")
                    .on_conflict_do_nothing()
                )
            self._db.execute(ledger_meta.update().where(version).values(value=str(SCHEMA_VERSION)))
        self._db.commit()

    def is_blank(self) -> bool:
        """Whether no run has used it yet: no run, key or stream recorded."""
        keyed = self._db.execute(sa.select(deliveries.c.stream).limit(1)).first()
        streams = self._db.execute(sa.select(stream_keys.c.stream).limit(1)).first()
        self._db.commit()
        return keyed is None and streams is None and self._meta("last_run") is None

    def record_run(self, run: RunMark) -> None:
        """Note the run that opened it, which makes it a ledger in use."""
        statement = insert(ledger_meta).values(name="last_run", value=str(run))
        self._db.execute(
            statement.on_conflict_do_update(
                index_elements=[ledger_meta.c.name], set_={"value": statement.excluded.value}
            )
        )
        self._db.commit()

    def describe(self) -> str:
        """Which ledger this is, for a person: where, since when, how many keys."""
        keys = self._db.execute(sa.select(sa.func.count()).select_from(deliveries)).scalar()
        schema = self._db.execute(sa.text("SELECT current_schema()")).scalar()
        self._db.commit()
        created = self._meta("created_at")
        since = f", created {created}" if created else ""
        return f"the PostgreSQL ledger {self.location} (schema {schema}){since}, {keys} key(s)"

    def close(self) -> None:
        """Release the run's lock, then close the connection.

        Closing alone releases the lock too, but only once the server has processed the
        disconnect, after `close` returns: a run started right after could still find the
        ledger busy.
        """
        with contextlib.suppress(SQLAlchemyError):
            self._db.rollback()
            if self._locked:
                self._db.execute(_UNLOCK)
                self._db.commit()
        self._locked = False
        self._db.close()

    def in_use(self) -> bool:
        """Whether a run holds the ledger now (this connection's own lock aside)."""
        free = self._db.execute(_TRY_LOCK).scalar()
        if free:
            self._db.execute(_UNLOCK)
        self._db.commit()
        return not free

    # Metadata

    def _meta(self, name: str) -> str | None:
        value = self._db.execute(
            sa.select(ledger_meta.c.value).where(ledger_meta.c.name == name)
        ).scalar()
        self._db.commit()
        return t.cast("str | None", value)

    def bind_account(self, account: str) -> None:
        """Record the account on first use; refuse a ledger that belongs to another."""
        if not self.read_only:
            self._db.execute(
                insert(ledger_meta).values(name="account", value=account).on_conflict_do_nothing()
            )
            self._db.commit()
        recorded = self._meta("account")
        if recorded is not None and recorded != account:
            raise other_account(self.location)

    def key_properties(self, stream: str) -> tuple[str, ...] | None:
        """The properties that keyed the stream's rows so far; None if never recorded."""
        value = self._db.execute(
            sa.select(stream_keys.c.key_properties).where(stream_keys.c.stream == stream)
        ).scalar()
        self._db.commit()
        return tuple(json.loads(value)) if value is not None else None

    def record_key_properties(self, stream: str, properties: Iterable[str]) -> None:
        """Remember the properties that key a stream's rows."""
        statement = insert(stream_keys).values(
            stream=stream, key_properties=json.dumps(list(properties)), recorded_at=now()
        )
        self._db.execute(
            statement.on_conflict_do_update(
                index_elements=[stream_keys.c.stream],
                set_={
                    "key_properties": statement.excluded.key_properties,
                    "recorded_at": statement.excluded.recorded_at,
                },
            )
        )
        self._db.commit()

    # Deliveries

    def _select(self, stream: str, key: str, *, for_update: bool = False) -> Entry | None:
        query = sa.select(deliveries).where(
            deliveries.c.stream == stream, deliveries.c.dedupe_key == key
        )
        if for_update:
            query = query.with_for_update()
        row = self._db.execute(query).first()
        return _entry(row) if row else None

    def get(self, stream: str, key: str) -> Entry | None:
        """The ledger row of one key, if any."""
        entry = self._select(stream, key)
        self._db.commit()
        return entry

    def claim(
        self,
        stream: str,
        key: str,
        payload_hash: str,
        decide: Callable[[Entry | None], bool],
        run: RunMark | None = None,
    ) -> tuple[Entry | None, bool]:
        """Mark a key pending if `decide(current entry)` says to send it; atomic and durable.

        An existing row is locked (SELECT ... FOR UPDATE) while deciding; a new key is
        inserted only if no one inserted it meanwhile, else the decision is made again.
        """
        mark = run or RunMark(None, None, None)
        stamp = now()
        try:
            while True:
                entry = self._select(stream, key, for_update=True)
                if not decide(entry):
                    self._db.commit()
                    return entry, False
                values = {
                    "status": Status.PENDING.value,
                    "failure_kind": None,
                    "payload_hash": payload_hash,
                    "updated_at": stamp,
                    "run_host": mark.host,
                    "run_pid": mark.pid,
                    "run_started": mark.started,
                }
                if entry is not None:
                    self._db.execute(
                        deliveries.update()
                        .where(deliveries.c.stream == stream, deliveries.c.dedupe_key == key)
                        .values(attempts=deliveries.c.attempts + 1, **values)
                    )
                    break
                inserted = self._db.execute(
                    insert(deliveries)
                    .values(stream=stream, dedupe_key=key, attempts=1, created_at=stamp, **values)
                    .on_conflict_do_nothing()
                    .returning(deliveries.c.dedupe_key)
                ).first()
                if inserted is not None:
                    break
                self._db.rollback()  # another run inserted it first: decide again
        except BaseException:
            with contextlib.suppress(SQLAlchemyError):
                self._db.rollback()
            raise
        self._db.commit()
        return entry, True

    def _update(
        self, stream: str, key: str, values: dict[str, t.Any], *, unsettled_only: bool = False
    ) -> int:
        statement = deliveries.update().where(
            deliveries.c.stream == stream, deliveries.c.dedupe_key == key
        )
        if unsettled_only:
            statement = statement.where(deliveries.c.status.in_(_UNSETTLED))
        result = self._db.execute(statement.values(updated_at=now(), **values))
        self._db.commit()
        return result.rowcount

    def mark_sent(self, stream: str, key: str, message_id: str | None) -> None:
        """Record a confirmed send and Chatra's ID for it."""
        self._update(stream, key, {"status": "sent", "message_id": message_id, "last_error": None})

    def mark_failed(self, stream: str, key: str, error: str, kind: FailureKind) -> None:
        """Record a send that surely did not happen."""
        values = {"status": "failed", "failure_kind": kind.value}
        self._update(stream, key, {**values, "last_error": error[:_MAX_ERROR_LENGTH]})

    def mark_unknown(self, stream: str, key: str, error: str) -> None:
        """Record a send that may or may not have happened."""
        self._update(stream, key, {"status": "unknown", "last_error": error[:_MAX_ERROR_LENGTH]})

    def settle(self, stream: str, key: str, *, sent: bool) -> bool:
        """Settle an unconfirmed key by hand: sent, or not sent (then sent again when seen)."""
        if sent:
            values = {"status": "sent", "last_error": "settled by hand: sent"}
        else:
            values = {
                "status": "failed",
                "failure_kind": FailureKind.NOT_SENT.value,
                "last_error": "settled by hand: not sent",
            }
        return self._update(stream, key, values, unsettled_only=True) == 1

    def entries(
        self, stream: str | None = None, statuses: Iterable[Status] | None = None
    ) -> list[Entry]:
        """All rows (of one stream, with one of `statuses`), oldest first."""
        query = sa.select(deliveries).order_by(deliveries.c.created_at, deliveries.c.dedupe_key)
        if stream is not None:
            query = query.where(deliveries.c.stream == stream)
        if statuses is not None:
            query = query.where(deliveries.c.status.in_([status.value for status in statuses]))
        rows = self._db.execute(query).all()
        self._db.commit()
        return [_entry(row) for row in rows]
