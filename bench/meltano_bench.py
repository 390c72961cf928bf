"""Issue 25: `meltano run tap-chatra target-duckdb` against a dlt `rest_api` pipeline into DuckDB.

Both fetch the same message IDs from one sandbox (unpaced) and load them into a DuckDB file of
their own, each as its own process, in the same run; the median of three runs of each. Beside
them, for the breakdown: tap-chatra alone into a file, and the bare `requests` loop. Where the
time goes comes from the sandbox's request log (wall clock): start-up until the first
request, fetching from the first to the last, and the end after the last request; and from
the logs: how many lines, how many of them METRIC lines.

dlt runs in a virtualenv of the bench's own (.venv/dlt-bench, pinned by
bench/dlt-constraints.txt), created on first use; the Meltano plugins (tap-chatra,
target-duckdb) are installed in the repository's project by `meltano install`, as
`make demo` does. Meltano's system database is the bench's own, made by one untimed run.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import typing as t

from bench.harness import BIN, ROOT, Sandbox, run_bare, run_measured, write_json, write_lines
from bench.report import Figure

if t.TYPE_CHECKING:
    from pathlib import Path

    from bench.context import Context
    from bench.harness import RunResult

ITEM = "25 Meltano vs dlt"
DLT_VENV = ROOT / ".venv" / "dlt-bench"
DLT_CONSTRAINTS = ROOT / "bench" / "dlt-constraints.txt"
DLT_REQUIREMENT = "dlt[duckdb]==1.31.0"
#: What the `meltano run` inherits from the bench's environment: nothing that configures it.
ISOLATED_PREFIXES = ("MELTANO_", "TAP_CHATRA_", "TARGET_DUCKDB_", "LOGLEVEL")
GOALS = {2_000: 1.2, 20_000: 1.05}
REPEATS = 3


def ensure_dlt_venv() -> Path:
    """The bench's dlt interpreter, its virtualenv created and pinned if missing."""
    python = DLT_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(DLT_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "-c", str(DLT_CONSTRAINTS),
             DLT_REQUIREMENT],
            check=True,
        )  # fmt: skip
    return python


def meltano_environ(folder: Path, **settings: str) -> dict[str, str]:
    """An environment for `meltano` with the bench's own system database, plus `settings`."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(ISOLATED_PREFIXES)}
    return {
        **environ,
        "MELTANO_PROJECT_ROOT": str(ROOT),
        "MELTANO_DATABASE_URI": f"sqlite:///{folder / 'meltano.db'}",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "NO_COLOR": "1",
        **settings,
    }


def ensure_meltano_plugins(environ: dict[str, str]) -> None:
    """Install tap-chatra and target-duckdb in the project (quick when they already are)."""
    subprocess.run(
        [str(BIN / "meltano"), "install", "tap-chatra", "target-duckdb"],
        env=environ,
        check=True,
        capture_output=True,
    )


def _span(log: list[dict[str, t.Any]], started: float, ended: float) -> dict[str, float]:
    """Start-up, fetching and end of one run, in seconds, from the sandbox's request log."""
    first, last = log[0]["t"], log[-1]["t"]
    return {"start": first - started, "fetch": last - first, "end": ended - last}


def _lines(path: Path) -> tuple[int, int]:
    """(log lines, METRIC lines among them) of a run's stderr."""
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return len(text), sum("METRIC" in line for line in text)


class Runner:
    """Runs each contender once against one sandbox, noting the timeline of each run."""

    def __init__(
        self, ctx: Context, sandbox: Sandbox, folder: Path, dlt_python: Path, system_db: Path
    ) -> None:
        self.ctx = ctx
        self.sandbox = sandbox
        self.folder = folder
        self.dlt_python = dlt_python
        self.ids_file = write_lines(folder / "ids.txt", sandbox.ids("messages"))
        self.count = len(sandbox.ids("messages"))
        self.meltano_env = meltano_environ(
            system_db,
            TAP_CHATRA_API_URL=sandbox.api_url,
            TAP_CHATRA_API_KEY_PAIR=sandbox.key_pair,
            TAP_CHATRA_MESSAGE_IDS_FILE=str(self.ids_file),
            TAP_CHATRA_PUSHED_MESSAGE_IDS_FILE="",
            TAP_CHATRA_CLIENT_IDS_FILE="",
            TAP_CHATRA_WEBHOOK_INBOX_URL="",
            TAP_CHATRA_REQUESTS_PER_MINUTE="0",
            TAP_CHATRA_FETCH_MESSAGE_CLIENTS="false",
        )

    def _timed(self, name: str, run: t.Callable[[Path], RunResult]) -> dict[str, t.Any]:
        run_dir = self.folder / name
        run_dir.mkdir(parents=True, exist_ok=True)
        self.sandbox.reset_log()
        started = time.time()  # the sandbox logs time.time()
        result = run(run_dir)
        ended = started + result.wall
        result.check(name)
        log = self.sandbox.requests_log()
        if len(log) != self.count:
            msg = f"{name} made {len(log)} requests for {self.count} IDs."
            raise RuntimeError(msg)
        lines, metric_lines = _lines(result.stderr)
        return {
            "wall": result.wall,
            "cpu": result.cpu,
            **_span(log, started, ended),
            "lines": lines,
            "metric_lines": metric_lines,
        }

    def meltano(self, repeat: int) -> dict[str, t.Any]:
        """`meltano run tap-chatra target-duckdb` (a full refresh, into its own DuckDB file)."""

        def run(run_dir: Path) -> RunResult:
            command = [str(BIN / "meltano"), "--environment=dev", "run", "--full-refresh",
                       "tap-chatra", "target-duckdb"]  # fmt: skip
            env = {**self.meltano_env, "TARGET_DUCKDB_PATH": str(run_dir / f"m{repeat}.duckdb")}
            return run_measured(
                command, stdout=run_dir / "meltano.out", stderr=run_dir / "meltano.err", env=env
            )

        return self._timed(f"meltano-{repeat}", run)

    def dlt(self, repeat: int) -> dict[str, t.Any]:
        """The dlt rest_api pipeline into its own DuckDB file."""

        def run(run_dir: Path) -> RunResult:
            command = [str(self.dlt_python), str(ROOT / "bench" / "dlt_pipeline.py"),
                       self.sandbox.api_url, str(self.ids_file), str(run_dir / "dlt.duckdb"),
                       str(run_dir / "pipelines")]  # fmt: skip
            env = {"BENCH_KEY_PAIR": self.sandbox.key_pair, "RUNTIME__DLTHUB_TELEMETRY": "false"}
            return run_measured(
                command, stdout=run_dir / "dlt.out", stderr=run_dir / "dlt.err", env=env
            )

        return self._timed(f"dlt-{repeat}", run)

    def tap(self, repeat: int) -> dict[str, t.Any]:
        """tap-chatra alone, its output into a file."""

        def run(run_dir: Path) -> RunResult:
            config = write_json(run_dir / "tap.json", {
                "api_key_pair": self.sandbox.key_pair, "api_url": self.sandbox.api_url,
                "requests_per_minute": 0, "message_ids_file": str(self.ids_file),
                "fetch_message_clients": False,
            })  # fmt: skip
            return run_measured(
                [self.ctx.tap(), "--config", str(config)],
                stdout=run_dir / "tap.out",
                stderr=run_dir / "tap.err",
            )

        return self._timed(f"tap-{repeat}", run)

    def bare(self, repeat: int) -> dict[str, t.Any]:
        """The bare `requests` loop (bench/bare_client.py)."""

        def run(run_dir: Path) -> RunResult:
            return run_bare("get", self.sandbox, "messages", self.ids_file, run_dir)

        return self._timed(f"bare-{repeat}", run)


def _median(runs: list[dict[str, t.Any]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def _describe(name: str, m: dict[str, float]) -> str:
    return (
        f"{name}: {m['wall']:.2f} s (CPU {m['cpu']:.2f} s): start-up to the first request "
        f"{m['start']:.2f} s, fetching {m['fetch']:.2f} s, after the last request "
        f"{m['end']:.2f} s; {m['lines']:.0f} log lines, {m['metric_lines']:.0f} of them METRIC"
    )


def versus_dlt(ctx: Context) -> None:
    """Time `meltano run` and the dlt pipeline on the same IDs, with the breakdown."""
    sizes = ctx.sizes
    folder = ctx.folder("meltano-vs-dlt")
    if not sizes.meltano_ids:
        ctx.report.detail(
            ITEM,
            "not run with --quick: it installs dlt in a virtualenv of its own and the Meltano "
            "plugins, for minutes; `make bench` does",
        )
        return
    dlt_python = ensure_dlt_venv()
    environ = meltano_environ(folder)
    ensure_meltano_plugins(environ)
    warm_up = True
    for count in sizes.meltano_ids:
        with Sandbox(ctx.folder(f"meltano-vs-dlt/{count}/sandbox"), messages=count) as sandbox:
            runner = Runner(ctx, sandbox, ctx.folder(f"meltano-vs-dlt/{count}"), dlt_python, folder)
            if warm_up:  # Meltano's system database is created by the first run: not timed
                runner.meltano(-1)
                warm_up = False
            runs: dict[str, list[dict[str, t.Any]]] = {"meltano": [], "dlt": [], "tap": [],
                                                       "bare": []}  # fmt: skip
            for repeat in range(REPEATS):
                for name, runs_of in runs.items():
                    runs_of.append(getattr(runner, name)(repeat))
        medians = {name: _median(of) for name, of in runs.items()}
        ratio = medians["meltano"]["wall"] / medians["dlt"]["wall"]
        goal = GOALS.get(count)
        ctx.report.add(
            Figure(ITEM, f"meltano run / dlt rest_api, {count:,} IDs (median of {REPEATS})",
                   ratio, "", "<=" if goal else None, goal,
                   miss_note="See the breakdown under Raw measurements: what is left is "
                             "Meltano's own start-up and the target's load after the last "
                             "request."),
        )  # fmt: skip
        labels = {
            "meltano": "meltano run tap-chatra target-duckdb",
            "dlt": "dlt rest_api -> duckdb",
            "tap": "tap-chatra alone, into a file",
            "bare": "bare requests loop",
        }
        for name, label in labels.items():
            ctx.report.detail(ITEM, f"{count:,} IDs, " + _describe(label, medians[name]))
        walls = "; ".join(
            f"{name} " + ", ".join(f"{run['wall']:.2f}" for run in of) for name, of in runs.items()
        )
        ctx.report.detail(ITEM, f"{count:,} IDs, each run (s): {walls}")
