"""The pace of one account shared by every machine through a PostgreSQL row.

One row per account (the hash of its public key) in `chatra_rate_limit`, created on first
use. A change runs in one transaction that locks the row (`SELECT ... FOR UPDATE`), reads the
database's clock, and writes the new pace: the database's clock is the one every host agrees
on, so clock skew between machines cannot put two requests into one slot.
"""

from __future__ import annotations

import contextlib
import typing as t

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from chatra_client.errors import ConfigError, RateLimitStoreError
from chatra_client.pace_store import Pace

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from chatra_client.pace_store import Change

# Any fixed number: it only serialises creating the table between processes starting at once.
_CREATE_LOCK = 0x43484154

_METADATA = sa.MetaData()
_TABLE = sa.Table(
    "chatra_rate_limit",
    _METADATA,
    sa.Column("bucket", sa.String(64), primary_key=True),
    sa.Column("next_slot", sa.Double, nullable=False),
    sa.Column("throttled_at", sa.Double, nullable=False),
    sa.Column("slowdown", sa.Double, nullable=False),
)
_NOW = sa.select(sa.func.extract("epoch", sa.func.clock_timestamp()))


def safe_url(url: sa.URL) -> str:
    """The URL without its password, for messages."""
    return url.render_as_string(hide_password=True)


def parse_url(value: str) -> sa.URL:
    """The SQLAlchemy URL (psycopg 3 driver) of a `rate_limit_store` value.

    Raises:
        ConfigError: When the value is not a valid URL; the message never repeats it, since
            it may hold a password.
    """
    try:
        url = sa.make_url(value.strip())
    except (sa.exc.ArgumentError, ValueError):
        msg = "rate_limit_store is not a valid postgresql:// URL; check its spelling and port."
        raise ConfigError(msg) from None
    return url.set(drivername="postgresql+psycopg")


class PostgresPaceStore:
    """The pace of every process, on any machine, that names this database.

    Args:
        url: The database (`rate_limit_store`).
        bucket: The account's row.
        connect_timeout: Seconds to wait for the server before the run fails.

    Raises:
        RateLimitStoreError: When the database cannot be reached or the table not made.
    """

    def __init__(self, url: str, bucket: str, *, connect_timeout: int = 5) -> None:
        self._url = parse_url(url)
        self._bucket = bucket
        self._engine = sa.create_engine(
            self._url,
            pool_size=1,
            pool_pre_ping=True,
            connect_args={"connect_timeout": connect_timeout},
        )
        with _store_errors(self._url), self._engine.begin() as conn:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_CREATE_LOCK)))
            _METADATA.create_all(conn)
            conn.execute(
                insert(_TABLE)
                .values(bucket=bucket, next_slot=0.0, throttled_at=0.0, slowdown=1.0)
                .on_conflict_do_nothing()
            )

    def update(self, change: Change) -> float:
        """Apply `change` to the account's row in one transaction."""
        with _store_errors(self._url), self._engine.begin() as conn:
            row = conn.execute(
                sa.select(_TABLE.c.next_slot, _TABLE.c.throttled_at, _TABLE.c.slowdown)
                .where(_TABLE.c.bucket == self._bucket)
                .with_for_update()
            ).one()
            # Read only once the lock is held: a clock read while waiting would be stale.
            now = float(conn.execute(_NOW).scalar_one())
            result, new = change(now, Pace(*row))
            conn.execute(
                sa.update(_TABLE)
                .where(_TABLE.c.bucket == self._bucket)
                .values(
                    next_slot=new.next_slot, throttled_at=new.throttled_at, slowdown=new.slowdown
                )
            )
        return result

    def close(self) -> None:
        """Close the database connections."""
        self._engine.dispose()


@contextlib.contextmanager
def _store_errors(url: sa.URL) -> Iterator[None]:
    """Turn a database error into one RateLimitStoreError line, without the password."""
    try:
        yield
    except sa.exc.SQLAlchemyError as exc:
        cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig else exc
        reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        msg = (
            f"rate_limit_store {safe_url(url)} cannot be used ({reason}); fix the database or "
            "the URL, or unset rate_limit_store to pace on this machine only."
        )
        raise RateLimitStoreError(msg) from None
