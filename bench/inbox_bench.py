"""The webhook inbox under load: 50 keep-alive senders for 20 s against each store.

`chatra-webhooks serve` runs as its own process (fsync on every commit: SQLite in WAL with
synchronous=FULL; PostgreSQL as the machine's server is configured, reported beside the
figures). The senders (bench/inbox_load.py) run on asyncio in this process. Afterwards the
store is read back: an event answered 200 but missing from it is lost, and must never be.
In the same run, the same senders measure the floor: a minimal receiver on the standard
library's HTTP server and a fresh store of the same engine (bench/inbox_floor.py).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import typing as t
import uuid
from dataclasses import dataclass

import psycopg

from bench.harness import ROOT, executable
from bench.inbox_load import LoadResult, run_load
from bench.report import Figure
from chatra_webhooks.settings import normalize_store_url
from chatra_webhooks.sql_store import SqlEventStore

if t.TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from bench.context import Context

INGEST_TOKEN = "bench-ingest-" + "0" * 32
READ_TOKEN = "bench-read-" + "1" * 32
POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER = "127.0.0.1", 5432, "postgres"
STOP_TIMEOUT = 30


@dataclass(frozen=True)
class Goals:
    """The issue's goals for one store."""

    rate: float
    p99_ms: float


GOALS = {"sqlite": Goals(rate=1000.0, p99_ms=50.0), "postgresql": Goals(rate=800.0, p99_ms=80.0)}
MISS_NOTE = (
    "Measured on a shared 2-core machine: the senders, the server and any other load share "
    "the cores (see the load average above); compare with the floor of the same run."
)


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
def _postgres_store(ctx: Context, *, describe: bool = True) -> Iterator[str | None]:
    """A throwaway database on the local server, or None (noted) when there is none.

    `describe`: note the server's durability settings in the report.
    """
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
    if describe:
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


@dataclass
class Served:
    """What one receiver did under the senders."""

    result: LoadResult
    cpu_seconds: float

    @property
    def cpu_ms_per_event(self) -> float:
        """The receiver's CPU time per accepted event."""
        return self.cpu_seconds * 1000 / max(1, len(self.result.accepted))


def _under_load(ctx: Context, command: list[str], folder: Path) -> Served:
    """Start a receiver that prints `listening on URL`, run the senders, stop it."""
    env = {
        **os.environ,
        "CHATRA_WEBHOOKS_INGEST_TOKEN": INGEST_TOKEN,
        "CHATRA_WEBHOOKS_READ_TOKEN": READ_TOKEN,
    }
    with (folder / "stderr.log").open("w", encoding="utf-8") as stderr:
        server = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, cwd=ROOT
        )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        if not first.startswith("listening on "):
            msg = f"{command[0]} did not start: {(folder / 'stderr.log').read_text()[-500:]}"
            raise RuntimeError(msg)
        ingest_url = f"{first.removeprefix('listening on ').strip()}/chatra/{INGEST_TOKEN}"
        senders, window = ctx.sizes.inbox_senders, ctx.sizes.inbox_window
        cpu_before = _cpu_seconds(server.pid)
        result = run_load(lambda: ingest_url, senders=senders, seconds=window, prefix="b")
        cpu = _cpu_seconds(server.pid) - cpu_before
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(STOP_TIMEOUT)
    return Served(result, cpu)


def _measure(ctx: Context, engine: str, store_url: str, floor_url: str) -> None:
    item = f"inbox {engine}"
    serve = [executable("chatra-webhooks"), "serve", "--port", "0", "--store", store_url]
    inbox = _under_load(ctx, serve, ctx.folder(f"inbox-{engine}"))
    floor_command = [sys.executable, "-m", "bench.inbox_floor", "--store", floor_url]
    floor = _under_load(ctx, floor_command, ctx.folder(f"inbox-floor-{engine}"))
    lost = len(set(inbox.result.accepted) - _stored_client_ids(store_url))
    goals = GOALS[engine]
    senders, window = ctx.sizes.inbox_senders, ctx.sizes.inbox_window
    ctx.report.add(
        Figure(
            item,
            f"events stored per second ({senders} keep-alive senders, {window:.0f} s, fsync on)",
            inbox.result.rate,
            "/s",
            ">=",
            goals.rate,
            digits=0,
            miss_note=MISS_NOTE,
        ),
        Figure(item, "latency p50", inbox.result.percentile(0.5) * 1000, "ms", digits=1),
        Figure(
            item,
            "latency p99",
            inbox.result.percentile(0.99) * 1000,
            "ms",
            "<=",
            goals.p99_ms,
            digits=1,
            miss_note=MISS_NOTE,
        ),
        Figure(item, "events answered 200 but not stored (lost)", lost, "", "==", 0, digits=0),
        Figure(item, "server CPU time per event", inbox.cpu_ms_per_event, "ms", digits=2),
        Figure(item, "floor: stdlib receiver, events per second", floor.result.rate, "/s",
               digits=0),
        Figure(item, "floor: stdlib receiver, latency p99",
               floor.result.percentile(0.99) * 1000, "ms", digits=1),
        Figure(item, "floor: stdlib receiver, CPU time per event", floor.cpu_ms_per_event, "ms"),
    )  # fmt: skip
    ctx.report.detail(
        item,
        f"inbox: accepted {len(inbox.result.accepted):,}, failed {inbox.result.failures:,}, "
        f"in {inbox.result.seconds:.1f} s; floor: accepted {len(floor.result.accepted):,}, "
        f"failed {floor.result.failures:,}; store {store_url.split('://', maxsplit=1)[0]}",
    )


def throughput(ctx: Context) -> None:
    """The inbox and its floor on SQLite, then on PostgreSQL (skipped, with a note, without a
    server)."""
    folder = ctx.folder("inbox-store")
    _measure(
        ctx,
        "sqlite",
        f"sqlite:///{folder / 'inbox.sqlite'}",
        f"sqlite:///{folder / 'floor.sqlite'}",
    )
    with _postgres_store(ctx) as url, _postgres_store(ctx) as floor_url:
        if url is not None and floor_url is not None:
            _measure(ctx, "postgresql", url, floor_url)
