"""`make bench`: measure the tap and the target, print the figures, write bench/RESULTS.md.

    .venv/bin/python bench/run.py              # the issue's sizes and 90 s windows (~8 min)
    .venv/bin/python bench/run.py --window 30  # shorter pacing windows (noted in RESULTS.md)
    .venv/bin/python bench/run.py --only 1,4   # some items only (`--only inbox`: the inbox)
    .venv/bin/python bench/run.py --quick      # tiny sizes, a few seconds: the scripts still work

The paced windows (items 2, 5, 6, 7, 9) run at the same time, each against its own sandbox
process with its own keys, since pacing is a matter of waiting, not of CPU. The throughput
items (1, 3, 4), items 8 and 10, the preview page (15), the inbox and STATE volume (issues 16
and 18) then run one after another on an otherwise idle machine. Item 9 needs PostgreSQL
(BENCH_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
import traceback
import typing as t
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if __package__ in {None, ""}:
    # Run as a script (`python bench/run.py`): make the `bench` package importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import (
    dbt_bench,
    inbox_bench,
    meltano_bench,
    pacing_bench,
    page_bench,
    refresh_bench,
    scale_bench,
    state_bench,
    tap_bench,
    target_bench,
)
from bench import report as reporting
from bench.context import Context, Sizes

if t.TYPE_CHECKING:
    from collections.abc import Callable, Sequence

Bench = tuple[str, "Callable[[Context], None]"]
# (items, function); a function may cover two items.
WINDOWED: list[Bench] = [
    ("2", tap_bench.pacing),
    ("5", target_bench.pacing),
    ("6", tap_bench.latency),
    ("7", pacing_bench.sliding_window),
    ("9", pacing_bench.shared_budget),
]
SEQUENTIAL: list[Bench] = [
    ("1,3", tap_bench.overhead_and_scaling),
    ("4", target_bench.throughput),
    ("8", pacing_bench.wrong_keys),
    ("10", refresh_bench.client_refresh),
    ("15", page_bench.render),
    ("inbox", inbox_bench.throughput),
    ("16", state_bench.volume),
    ("18", state_bench.million),
    ("25", scale_bench.million),
    ("25", meltano_bench.versus_dlt),
    ("27", dbt_bench.build),
]
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"

PREFACE = """## How it is measured

- tap-chatra and target-chatra-push run as subprocesses from their console scripts, with
  output to a file; the sandbox runs as a separate `chatra-sandbox` process, so it never shares
  a GIL with the measured code. The baselines (bench/bare_client.py: one `requests.Session`,
  one request after another, each answer parsed and written out) run as subprocesses too, so
  both sides of a ratio pay an interpreter start. Times are wall-clock from start to exit.
- Peak memory is the process's own peak RSS (`VmHWM`, sampled every 10 ms); CPU time is
  the process's user + system time from `os.wait4`.
- Rates come from the sandbox's request log: requests within the window from the first one,
  (count - 1) intervals over the time between the first and the last. The plugin is started
  a few seconds before, so its start-up is not part of the window, and stopped with SIGTERM
  after it. The plugin is given 1.5 times more IDs or rows than fit.
- Items 2, 5, 6, 7 and 9 run at the same time against their own sandboxes with different
  keys (pacing is shared per key, so they do not slow each other); items 1, 3, 4 and 8 run
  afterwards, one at a time.
- Items 7 and 9: the sandbox counts a strict sliding window (at most 100 requests in any
  10 s at 600/min, no tolerance). Item 9 runs two taps and a target at once, each with more
  work than the whole window's budget, sharing one pace through a PostgreSQL database made
  for the run (`rate_limit_store`); the rate is theirs combined.
- Item 1's pacer cost: `RateLimiter.acquire` on the machine-wide file store, in-process, at a
  limit never reached (20,000 calls); "pacing on" runs the tap at 6,000,000/min.
- The inbox (chatra-webhooks, `--only inbox`): `chatra-webhooks serve` as its own process,
  50 asyncio senders in the bench process POSTing unique ~400-byte bodies for 20 s, each on
  its own keep-alive connection; then the store is read back and every event answered 200
  must be in it. SQLite commits in WAL with synchronous=FULL (an fsync per commit; events
  that arrive during a commit share the next one). Right after, the same senders load the
  floor (bench/inbox_floor.py): the standard library's threaded HTTP server with the same
  body check and the same store code on a fresh store of the same engine, and nothing
  else (no token, metrics, access log or body timeout). The rate and latencies depend on
  what else runs on the 2 cores (see the load average); the server's CPU time per event
  does much less, and 1000 / it is the rate one free core would give the server.
- Item 6: the tap keeps up to `max_concurrency` (default 4) GETs in flight on a small thread
  pool; every attempt, retries included, first takes its slot from the shared rate limiter,
  and results are emitted in ID order, so the limit holds and the output is the same as a
  serial run's.
- Item 10: the sandbox holds 10,000 clients; a first run fetches them all, then a run is
  given 50 new messages of 50 different clients, with the first run's STATE. Its requests
  are counted at the sandbox: one per message and one per client that is due
  (client_refresh_hours 24, the default); the same run with 0 shows what it cost before.
- Item 25 (the tap at a million IDs): a run with 1,000,000 message IDs all in its state,
  its STATE bytes against that state's size and its peak RSS; the client refresh of a million
  clients, requests per hourly run from the tap's own rule (`client_refresh.due_at`), learned
  in one run and from state written before the spread; the webhook streams SIGKILLed 5 s after
  their second STATE at the default flush, the events a run resumed from the last complete
  STATE reads again against the events between the last two STATEs.
- Item 25 (Meltano against dlt): `meltano run --full-refresh tap-chatra target-duckdb` in the
  repository's project (its own system database, warmed by one untimed run) and a dlt
  `rest_api` pipeline into DuckDB (bench/dlt_pipeline.py, in .venv/dlt-bench, pinned by
  bench/dlt-constraints.txt) on the same IDs from one unpaced sandbox, with tap-chatra alone
  and the bare loop beside them, one after another, three times; medians. The breakdown
  splits each run at its first and last request (the sandbox's log, wall clock).
- Item 15: the target's preview page of a 10,000-row dry run, opened from disk in Debian's
  chromium (Playwright, headless); the figure is the browser's own navigation timing, up to
  the end of DOMContentLoaded, by which the page's script has shown the first rows.
- Item 27 (issue 27): the tap's tables filled in DuckDB and in PostgreSQL with 1,000,000 chat
  messages (125,000 chats; bench/dbt_bench.py), then `dbt run` of the analytics models from
  the dbt plugin's venv, wall time from start to exit (dbt's start and parse included); the
  floor is one plain `GROUP BY chat_id` over the same table in the same engine."""


def _interpreter() -> str:
    """The interpreter as a user would type it: relative to the repository when inside it."""
    path = Path(sys.executable)
    root = Path(__file__).resolve().parents[1]
    return str(path.relative_to(root)) if path.is_relative_to(root) else path.name


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--window", type=float, help="seconds of each paced window (90)")
    parser.add_argument("--only", help="comma-separated items to run, e.g. 1,4")
    parser.add_argument("--output", type=Path, default=RESULTS, help="results file to write")
    parser.add_argument("--workdir", type=Path, help="keep the runs' files here")
    return parser.parse_args(argv)


def selected(benches: list[Bench], only: set[str] | None) -> list[Bench]:
    """The benchmarks covering at least one wanted item."""
    if only is None:
        return benches
    return [bench for bench in benches if only & set(bench[0].split(","))]


def run_all(ctx: Context, only: set[str] | None) -> dict[str, str]:
    """Run the chosen benchmarks; return the error of each that failed, by items."""
    errors: dict[str, str] = {}

    def guarded(bench: Bench) -> None:
        items, func = bench
        try:
            func(ctx)
        except Exception as exc:  # one failed benchmark must not hide the others' figures
            traceback.print_exc()
            errors[items] = f"{type(exc).__name__}: {exc}"

    windowed = selected(WINDOWED, only)
    if windowed:
        items = ", ".join(bench[0] for bench in windowed)
        print(f"Paced windows of {ctx.sizes.window:.0f} s (items {items}), at the same time...")
        with ThreadPoolExecutor(len(windowed)) as pool:
            list(pool.map(guarded, windowed))
    for bench in selected(SEQUENTIAL, only):
        print(f"Item {bench[0]}...")
        guarded(bench)
    return errors


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print, write RESULTS.md; exit code 1 if a benchmark failed to run."""
    args = parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes()
    if args.window is not None:
        sizes = Sizes(**{**sizes.__dict__, "window": args.window})
    only = set(args.only.split(",")) if args.only else None
    command = shlex.join(
        [_interpreter(), "bench/run.py", *(sys.argv[1:] if argv is None else argv)]
    )
    report = reporting.Report(command=command)
    environment = reporting.machine()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="chatra-bench-") as scratch:
        workdir = args.workdir or Path(scratch)
        errors = run_all(Context(workdir, report, sizes), only)
    report.seconds = time.perf_counter() - start
    report.figures.sort(key=lambda figure: figure.item.split()[0])
    preface = [PREFACE]
    if sizes != Sizes():
        preface.append(
            f"\nNot the issue's sizes: {sizes}. The figures are for checking the scripts, "
            "not for comparison."
            if args.quick
            else f"\nPaced windows shortened to {sizes.window:.0f} s (the issue asks for 90 s)."
        )
    for items, error in errors.items():
        report.detail(f"errors (items {items})", error)
    text = reporting.render(report, environment=environment, preface=preface)
    print()
    print("\n".join(reporting.figure_table(report.figures)))
    for items, error in errors.items():
        print(f"ERROR in item(s) {items}: {error}")
    reporting.write(args.output, text)
    print(f"\nWritten to {args.output} ({report.seconds:.0f} s).")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
