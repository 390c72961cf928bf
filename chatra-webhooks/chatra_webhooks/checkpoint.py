"""SQLite's WAL copied into the database file on a thread of its own, not inside a commit.

By default SQLite checkpoints in the commit that takes the WAL past 1,000 pages: that commit
then also waits for the database file to be written and fsynced, and so does every event of
its batch and every event queued behind it. Under load that was the slowest 1% of requests.
The inbox's connections turn automatic checkpoints off (`schema`), and this thread runs a
PASSIVE checkpoint every second, which never waits for the writer and never makes it wait.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import typing as t

import sqlalchemy as sa

LOGGER = logging.getLogger("chatra_webhooks")
INTERVAL_SECONDS = 1.0


class Checkpointer:
    """Checkpoints a SQLite store's WAL every `interval` seconds until closed.

    Args:
        engine: The store's engine (SQLite).
        interval: Seconds between two checkpoints.
    """

    def __init__(self, engine: sa.Engine, interval: float = INTERVAL_SECONDS) -> None:
        self._engine = engine
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="chatra-webhooks-checkpoint", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._checkpoint("PASSIVE")

    def _checkpoint(self, mode: str) -> None:
        try:
            with self._engine.connect() as conn:
                # On the driver's connection: outside SQLAlchemy's transaction (see schema).
                driver = t.cast("sqlite3.Connection", conn.connection.driver_connection)
                driver.execute(f"PRAGMA wal_checkpoint({mode})")
        except (sa.exc.SQLAlchemyError, sqlite3.Error) as exc:
            # The next one may work; no commit depends on it.
            LOGGER.warning("SQLite checkpoint (%s) failed: %s", mode, type(exc).__name__)

    def close(self) -> None:
        """Stop, then checkpoint everything and empty the WAL file."""
        self._stop.set()
        self._thread.join()
        self._checkpoint("TRUNCATE")
