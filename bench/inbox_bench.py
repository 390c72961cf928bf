"""The webhook inbox under load: 32 senders for 20 s against each store.

`chatra-webhooks serve` runs as its own process (fsync on every commit: SQLite in WAL with
synchronous=FULL; PostgreSQL as the machine's server is configured, reported beside the
figures). The senders (bench/inbox_load.py) run on asyncio in this process. Afterwards the
store is read back: an event answered 200 but missing from it is lost, and must never be.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import typing as t
import uuid

import psycopg

from bench.harness import executable
from bench.inbox_load import run_load
from bench.report import Figure
from chatra_webhooks.settings import normalize_store_url
from chatra_webhooks.sql_store import SqlEventStore

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from bench.context import Context

INGEST_TOKEN = "bench-ingest-" + "0" * 32
POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER = "127.0.0.1", 5432, "postgres"
STOP_TIMEOUT = 30
SQLITE_RATE_GOAL = 500.0
SQLITE_P99_GOAL_MS = 100.0


def _admin() -> psycopg.Connection[t.Any]:
    return psycopg.connect(
        host=POSTGRES_HOST,
        port=POSTGRES_PORT,
        user=POSTGRES_USER,
        dbname="postgres",
        autocommit=True,
        connect_timeout=5,
    )


@contextlib.contextmanager
def _postgres_store(ctx: Context) -> Iterator[str | None]:
    """A throwaway database on the local server, or None (noted) when there is none."""
    name = f"inbox_bench_{uuid.uuid4().hex[:10]}"
    try:
        with _admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
            settings = {
                key: conn.execute(f"SHOW {key}").fetchone()
                for key in ("fsync", "synchronous_commit")
            }
    except psycopg.Error as exc:
        ctx.report.detail("inbox postgresql", f"skipped: no PostgreSQL on 127.0.0.1:5432 ({exc})")
        yield None
        return
    shown = ", ".join(f"{key}={row[0] if row else '?'}" for key, row in settings.items())
    ctx.report.detail("inbox postgresql", f"server settings: {shown}")
    try:
        yield f"postgresql://{POSTGRES_USER}@{POSTGRES_HOST}:{POSTGRES_PORT}/{name}"
    finally:
        with _admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a running process, from /proc."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:  # noqa: PTH123
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stored_client_ids(store_url: str) -> set[str | None]:
    store = SqlEventStore(normalize_store_url(store_url))
    try:
        return {event.client_id for event in store.iter_after(0)}
    finally:
        store.close()


def _measure(ctx: Context, engine: str, store_url: str) -> None:
    item = f"inbox {engine}"
    folder = ctx.folder(f"inbox-{engine}")
    env = {
        **os.environ,
        "CHATRA_WEBHOOKS_INGEST_TOKEN": INGEST_TOKEN,
        "CHATRA_WEBHOOKS_READ_TOKEN": "bench-read",
    }
    command = [executable("chatra-webhooks"), "serve", "--port", "0", "--store", store_url]
    with (folder / "stderr.log").open("w", encoding="utf-8") as stderr:
        server = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env
        )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        if not first.startswith("listening on "):
            msg = f"chatra-webhooks did not start: {(folder / 'stderr.log').read_text()[-500:]}"
            raise RuntimeError(msg)
        ingest_url = f"{first.removeprefix('listening on ').strip()}/chatra/{INGEST_TOKEN}"
        senders, window = ctx.sizes.inbox_senders, ctx.sizes.inbox_window
        cpu_before = _cpu_seconds(server.pid)
        result = run_load(lambda: ingest_url, senders=senders, seconds=window, prefix="b")
        server_cpu = _cpu_seconds(server.pid) - cpu_before
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(STOP_TIMEOUT)
    lost = len(set(result.accepted) - _stored_client_ids(store_url))
    sqlite = engine == "sqlite"
    ctx.report.add(
        Figure(
            item,
            f"events stored per second ({senders} senders, {window:.0f} s, fsync on)",
            result.rate,
            "/s",
            ">=" if sqlite else None,
            SQLITE_RATE_GOAL if sqlite else None,
            digits=0,
            miss_note="Measured on a shared 2-core machine: the senders, the server and any "
            "other load share the cores (see the load average above).",
        ),
        Figure(item, "latency p50", result.percentile(0.5) * 1000, "ms", digits=1),
        Figure(
            item,
            "latency p99",
            result.percentile(0.99) * 1000,
            "ms",
            "<=" if sqlite else None,
            SQLITE_P99_GOAL_MS if sqlite else None,
            digits=1,
        ),
        Figure(item, "events answered 200 but not stored (lost)", lost, "", "==", 0, digits=0),
        Figure(
            item,
            "server CPU time per event",
            server_cpu * 1000 / max(1, len(result.accepted)),
            "ms",
            digits=2,
        ),
    )
    ctx.report.detail(
        item,
        f"accepted {len(result.accepted):,}, failed {result.failures:,}, "
        f"in {result.seconds:.1f} s; store {store_url.split('://', maxsplit=1)[0]}",
    )


def throughput(ctx: Context) -> None:
    """The inbox on SQLite, then on PostgreSQL (skipped, with a note, without a server)."""
    _measure(ctx, "sqlite", f"sqlite:///{ctx.folder('inbox-store') / 'inbox.sqlite'}")
    with _postgres_store(ctx) as url:
        if url is not None:
            _measure(ctx, "postgresql", url)
