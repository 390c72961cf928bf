"""Items 7, 8 and 9 (issue 14): a strict sliding window, wrong keys, a shared budget.

7: the tap against a strict sliding-window limit. 8: requests made with wrong keys. 9: a tap,
a second tap and a target sharing one account's pace through PostgreSQL, against a strict
sliding window. (The pacer's own cost is part of item 1, in tap_bench.)
"""

from __future__ import annotations

import contextlib
import json
import os
import typing as t
import uuid
from concurrent.futures import ThreadPoolExecutor

from bench.harness import Sandbox, run_plugin, write_json, write_lines
from bench.report import Figure
from bench.tap_bench import tap_config
from bench.target_bench import add_pacing_figures, target_config, write_rows

if t.TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from bench.context import Context
    from bench.harness import RunResult

ITEM7 = "7 sliding window"
ITEM8 = "8 wrong keys"
ITEM9 = "9 shared budget"
# A window of 10 s holds 100 requests at 600 a minute: short enough that any burst shows.
WINDOW_SECONDS = 10.0
# Where item 9 creates (and drops) a database of its own; trust authentication by default.
POSTGRES_ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _sliding_sandbox(folder: Path, name: str, rpm: float, **counts: int) -> Sandbox:
    return Sandbox(
        folder,
        public_key=f"bench-{name}",
        requests_per_minute=rpm,
        rate_limit_mode="sliding_window",
        rate_limit_window=WINDOW_SECONDS,
        **counts,
    )


def sliding_window(ctx: Context) -> None:
    """Item 7: the tap paced at a strict sliding-window limit, more IDs than fit."""
    sizes = ctx.sizes
    folder = ctx.folder("sliding-window")
    ids_needed = int(sizes.window * sizes.rpm / 60 * 1.5) + 10
    with _sliding_sandbox(folder, "sliding", sizes.rpm, messages=ids_needed) as sandbox:
        ids_file = write_lines(folder / "ids.txt", sandbox.ids("messages"))
        config = tap_config(folder, sandbox, ids_file, requests_per_minute=sizes.rpm)
        window = sizes.window + sizes.startup_margin
        run_plugin(ctx.tap(), folder, config, stop_after=window).check("tap-chatra (sliding)")
        log = sandbox.requests_log()
    add_pacing_figures(ctx, ITEM7, log, sizes.window, sizes.rpm, min_ratio=0.95)
    ctx.report.detail(
        ITEM7,
        f"sandbox: at most {sizes.rpm * WINDOW_SECONDS / 60:.0f} requests in any "
        f"{WINDOW_SECONDS:.0f} s, no tolerance; the tap paces at 97.5% of the limit.",
    )


def wrong_keys(ctx: Context) -> None:
    """Item 8: how many requests a run with a wrong secret makes before it stops."""
    folder = ctx.folder("wrong-keys")
    with Sandbox(folder, clients=50, messages=50, public_key="bench-wrong-keys") as sandbox:
        wrong = f"{sandbox.public_key}:not-the-secret"
        ids_file = write_lines(folder / "ids.txt", sandbox.ids("messages"))
        tap_dir, target_dir = ctx.folder("wrong-keys/tap"), ctx.folder("wrong-keys/target")
        config = tap_config(tap_dir, sandbox, ids_file, api_key_pair=wrong)
        tap = run_plugin(ctx.tap(), tap_dir, config)
        tap_requests = len(sandbox.requests_log())
        sandbox.reset_log()
        rows = write_rows(target_dir / "rows.singer", sandbox.ids("clients"), 50)
        # target_config writes the sandbox's own keys over any given: replace them after.
        config = target_config(target_dir, sandbox)
        write_json(config, {**json.loads(config.read_text("utf-8")), "api_key_pair": wrong})
        target = run_plugin(ctx.target(), target_dir, config, stdin=rows)
        target_requests = len(sandbox.requests_log())
    for name, result in (("tap-chatra", tap), ("target-chatra-push", target)):
        if result.returncode == 0:
            msg = f"{name} accepted a wrong secret."
            raise RuntimeError(msg)
    ctx.report.add(
        Figure(ITEM8, "requests made by the tap with wrong keys (50 IDs, 4 workers)",
               tap_requests, "", "==", 1, digits=0,
               miss_note="The tap fanned out to its workers before the first answer."),
        Figure(ITEM8, "requests made by the target with wrong keys (50 rows)",
               target_requests, "", "==", 1, digits=0),
    )  # fmt: skip


class NoPostgresError(Exception):
    """No PostgreSQL server answers at BENCH_POSTGRES_URL."""


@contextlib.contextmanager
def _bench_database() -> Iterator[str]:
    """A database of this run's own on the PostgreSQL server, dropped afterwards.

    Raises:
        NoPostgresError: When the server cannot be reached.
    """
    import psycopg  # noqa: PLC0415 - only item 9 needs a database

    name = f"chatra_bench_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise NoPostgresError(str(exc).strip().splitlines()[0]) from None
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def shared_budget(ctx: Context) -> None:
    """Item 9: two taps and a target, one account, one PostgreSQL pace, a strict limit.

    Without a PostgreSQL server the item is reported as not run, not as an error.
    """
    try:
        _shared_budget(ctx)
    except NoPostgresError as exc:
        ctx.report.detail(ITEM9, f"not run: no PostgreSQL server ({exc}); set BENCH_POSTGRES_URL")
        print(f"Item 9 not run: no PostgreSQL server ({exc}).")


def _shared_budget(ctx: Context) -> None:
    sizes = ctx.sizes
    folder = ctx.folder("shared-budget")
    # Each process gets more work than the whole budget of the window, so none runs dry.
    per_process = int(sizes.window * sizes.rpm / 60 * 1.5) + 10
    with (
        _bench_database() as store,
        _sliding_sandbox(
            folder, "shared", sizes.rpm, clients=200, messages=2 * per_process
        ) as sandbox,
    ):
        shared = {"requests_per_minute": sizes.rpm, "rate_limit_store": store}
        messages = sandbox.ids("messages")
        runs: dict[str, tuple[str, Path, Path]] = {}
        for n, part in enumerate((messages[:per_process], messages[per_process:])):
            run_dir = ctx.folder(f"shared-budget/tap{n + 1}")
            ids_file = write_lines(run_dir / "ids.txt", part)
            config = tap_config(run_dir, sandbox, ids_file, **shared)
            runs[f"tap{n + 1}"] = (ctx.tap(), run_dir, config)
        target_dir = ctx.folder("shared-budget/target")
        rows = write_rows(target_dir / "rows.singer", sandbox.ids("clients"), per_process)
        runs["target"] = (ctx.target(), target_dir, target_config(target_dir, sandbox, **shared))
        window = sizes.window + sizes.startup_margin
        with ThreadPoolExecutor(len(runs)) as pool:
            futures = {
                name: pool.submit(
                    run_plugin,
                    program,
                    run_dir,
                    config,
                    stdin=rows if name == "target" else None,
                    stop_after=window,
                )
                for name, (program, run_dir, config) in runs.items()
            }
            results: dict[str, RunResult] = {name: f.result() for name, f in futures.items()}
        for name, result in results.items():
            result.check(f"{name} (shared budget)")
        log = sandbox.requests_log()
    add_pacing_figures(ctx, ITEM9, log, sizes.window, sizes.rpm, min_ratio=0.95)
    first = log[0]["t"] if log else 0.0
    in_window = [entry for entry in log if entry["t"] - first <= sizes.window]
    gets = sum(1 for entry in in_window if entry["method"] == "GET")
    ctx.report.detail(
        ITEM9,
        f"in the window: {gets:,} GETs by the two taps, {len(in_window) - gets:,} POSTs by the "
        f"target; each process had {per_process:,} requests to make, on its own PostgreSQL "
        "connection.",
    )
