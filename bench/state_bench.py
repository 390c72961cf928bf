"""Issues 16 and 18 (item 10): STATE volume over a long backfill, and STATE at a million IDs.

Issue 16 simulates a 28-hour backfill in-process: the tap's own messages stream, per-ID state,
flush schedule and STATE writer, driven by a fake clock at one fetch a second (Chatra's 60 a
minute), so the day is not waited out. Issue 18 runs the tap as a process with a million IDs in
its state, and times single STATE flushes in-process.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import random
import statistics
import string
import time
import typing as t
from contextlib import redirect_stdout

from bench.harness import Sandbox, read_singer, run_measured, window_rate, write_json, write_lines
from bench.report import Figure
from tap_chatra.id_map import IdMap
from tap_chatra.progress import Periodic, Progress
from tap_chatra.state_flush import FlushSchedule
from tap_chatra.tap import TapChatra

if t.TYPE_CHECKING:
    from pathlib import Path

    from bench.context import Context
    from bench.harness import RunResult
    from tap_chatra.client import ChatraStream

ITEM16 = "16 STATE volume"
ITEM18 = "18 STATE at 1M IDs"
#: The simulated run starts here (2026-01-01T00:00Z); only differences matter.
EPOCH = 1_767_225_600
OFFLINE = {"api_key_pair": "bench-public:bench-secret", "api_url": "http://127.0.0.1:9/api"}
LOGGER = logging.getLogger("bench.state")


def chatra_like_ids(count: int, seed: int = 7) -> list[str]:
    """Distinct 17-character IDs drawn like Chatra's message IDs."""
    rng = random.Random(seed)
    alphabet = string.ascii_letters + string.digits
    ids: dict[str, None] = {}
    while len(ids) < count:
        ids["".join(rng.choices(alphabet, k=17))] = None
    return list(ids)


class _CountingSink(io.TextIOBase):
    """Stands in for stdout: counts STATE lines and bytes; keeps the lines if asked."""

    def __init__(self, *, keep: bool = False) -> None:
        self.lines = 0
        self.bytes = 0
        self.kept: list[str] = []
        self._keep = keep
        self._line: list[str] = []

    def write(self, text: str) -> int:
        self.bytes += len(text)
        self.lines += text.count("\n")
        if self._keep:
            self._line.append(text)
            if text.endswith("\n"):
                self.kept.append("".join(self._line))
                self._line.clear()
        return len(text)


#: How many intermediate STATEs a simulated kill resumes from (besides the worst gaps).
RESUMED_SAMPLE = 12


def _redone_after_kills(
    config: dict[str, t.Any], planned: list[str], states: list[str], covered: list[int]
) -> tuple[int, int]:
    """(most fetches redone, most IDs skipped) over kills just before a sample of STATEs.

    A kill just before STATE i + 1 leaves STATE i; by then the first covered[i + 1] IDs of
    the plan were fetched. A run resumed from STATE i plans (the tap's own resume of the
    cursor, then its plan): what it fetches of those is redone; an ID fetched by neither is
    skipped (never, if the cursor is right).
    """
    gaps = sorted(range(len(states) - 1), key=lambda i: covered[i + 1] - covered[i])
    step = max(1, (len(states) - 1) // RESUMED_SAMPLE)
    sample = sorted({*gaps[-3:], *range(0, len(states) - 1, step), len(states) - 2})
    most_redone = most_skipped = 0
    for index in sample:
        state = json.loads(states[index])["value"]
        tap = TapChatra(config=config, state=state)
        stream = t.cast("ChatraStream", tap.streams["messages"])
        to_fetch = set(stream.plan(EPOCH + 10**6).to_fetch)
        before_kill = set(planned[: covered[index + 1]])
        most_redone = max(most_redone, len(to_fetch & before_kill))
        most_skipped = max(most_skipped, len(set(planned) - before_kill - to_fetch))
    return most_redone, most_skipped


def simulate_backfill(
    ids: list[str],
    settings: dict[str, t.Any],
    folder: Path,
    state: dict[str, t.Any] | None = None,
) -> dict[str, t.Any]:
    """A backfill at one fetch a second on a fake clock; what its STATE messages cost.

    The stream's own run path (plan, cursor, `fetched` for each ID, its STATE writer and
    flush schedule), without HTTP; then kills are simulated by resuming from its STATEs.
    """
    ids_file = write_lines(folder / "ids.txt", ids)
    config = {**OFFLINE, "message_ids_file": str(ids_file), "fetch_message_clients": False}
    tap = TapChatra(config={**config, **settings}, state=state)
    stream = t.cast("ChatraStream", tap.streams["messages"])
    clock = [0.0]
    done = [0]
    covered: list[int] = [0]  # IDs covered by each STATE, in order

    def flush() -> int:
        size = stream.emit_state_now()
        covered.append(done[0])
        return size

    progress = Progress("messages", len(ids), LOGGER, interval=1e12, clock=lambda: clock[0])
    schedule = FlushSchedule.from_config(tap.config)
    periodic: Periodic[None] = Periodic(progress, flush, schedule, clock=lambda: clock[0])
    sink = _CountingSink(keep=True)
    with redirect_stdout(sink):
        plan = stream.plan(EPOCH)
        stream.begin_run(EPOCH)
        for record_id in plan.to_fetch:
            clock[0] += 1.0
            stream.fetched(record_id, int(EPOCH + clock[0]))
            done[0] += 1
            periodic.run_due()
        stream.end_run()
        final = flush()  # the STATE that follows the stream's end
    gaps = [later - earlier for earlier, later in itertools.pairwise(covered)]
    # STATE 0 stands for the empty state the run started from (a kill before the first
    # STATE redoes the first gap).
    start = json.dumps({"type": "STATE", "value": state or {}})
    states = [start, *sink.kept]
    most_redone, most_skipped = _redone_after_kills(config, plan.to_fetch, states, covered)
    return {
        "hours": clock[0] / 3600,
        "states": sink.lines,
        "total": sink.bytes,
        "final": final,
        "most_redone": most_redone,
        "most_skipped": most_skipped,
        # A kill at a uniformly random moment redoes on average sum(gap^2) / (2 * total).
        "mean_redone": sum(g * g for g in gaps) / (2 * len(ids)),
        "final_state": json.loads(sink.kept[-1])["value"],
    }


def volume(ctx: Context) -> None:
    """Issue 16: a simulated 28-hour backfill of 100,000 IDs, at the defaults and at 10 minutes."""
    n = ctx.sizes.state_sim_ids
    ids = chatra_like_ids(n)
    runs = {
        "defaults": {},
        "state_max_flush_seconds 600": {"state_max_flush_seconds": 600},
        "every 10 s (state_bytes_per_hour 0)": {"state_bytes_per_hour": 0},
    }
    results = {
        name: simulate_backfill(ids, settings, ctx.folder(f"state-volume/{position}"))
        for position, (name, settings) in enumerate(runs.items())
    }
    # What is left of the problem: intermediate STATEs are the size of the state a run starts
    # from, so a second backfill as long as the first writes that size every 5 minutes.
    results[f"{n:,} more IDs, after the first {n:,}"] = simulate_backfill(
        chatra_like_ids(n, seed=11),
        {},
        ctx.folder("state-volume/second"),
        state=results["defaults"]["final_state"],
    )
    for name, r in results.items():
        ctx.report.detail(
            ITEM16,
            f"{name}: {r['hours']:.1f} h simulated, {r['states']:,.0f} STATE messages, "
            f"{r['total'] / 1e6:,.1f} MB in all ({r['total'] / r['final']:.0f} x the final "
            f"{r['final'] / 1e6:.2f} MB), a kill redoes at most {r['most_redone']:,.0f} fetches "
            f"(resumed from its STATEs; {r['mean_redone']:,.0f} on average), skips "
            f"{r['most_skipped']:,.0f}",
        )
    default = results["defaults"]
    ratio_note = (
        "Intermediate STATEs hold the run's start and a cursor, so they stay the size of the "
        "state the run started from; a run that starts from a large state writes that size "
        "every state_max_flush_seconds."
    )
    ctx.report.add(
        Figure(ITEM16, f"STATE messages ({n:,} IDs, 1 fetch/s)", default["states"], "", digits=0),
        Figure(ITEM16, "total STATE bytes", default["total"] / 1e6, "MB", digits=1),
        Figure(ITEM16, "total / final STATE size", default["total"] / default["final"], "",
               "<=", 100, digits=0, miss_note=ratio_note),
        Figure(ITEM16, "most fetches a kill redoes", default["most_redone"], "", "<=", 300,
               digits=0),
        Figure(ITEM16, "IDs a kill skips", default["most_skipped"], "", "<=", 0, digits=0),
        Figure(ITEM16, "final STATE bytes per ID", default["final"] / n, "B", "<=", 31, digits=1),
    )  # fmt: skip


def _million_state(folder: Path, done: list[str]) -> Path:
    """A STATE file with every ID in `done` fetched, a minute's worth (60) per minute."""
    fetched = IdMap()
    base = EPOCH // 60 - len(done) // 60 - 1
    for position, record_id in enumerate(done):
        fetched.put(record_id, base + position // 60)
    path = folder / "state.json"
    path.write_text(
        '{"bookmarks":{"messages":{"fetched":' + fetched.encoded_json + ',"missing":{}}}}',
        encoding="utf-8",
    )
    return path


def _run_tap(ctx: Context, folder: Path, config: dict[str, t.Any], state: Path | None) -> RunResult:
    config_path = write_json(folder / "tap.json", config)
    command = [ctx.tap(), "--config", str(config_path)]
    if state is not None:
        command += ["--state", str(state)]
    result = run_measured(command, stdout=folder / "tap.out", stderr=folder / "tap.err")
    result.check("tap-chatra")
    return result


def _flush_cost(state: Path, new_ids: list[str]) -> tuple[float, float]:
    """(first STATE, median of later ones) in seconds, in-process, one new ID before each."""
    tap = TapChatra(config=OFFLINE, state=json.loads(state.read_text(encoding="utf-8")))
    stream = t.cast("ChatraStream", tap.streams["messages"])
    times: list[float] = []
    with redirect_stdout(_CountingSink()):
        start = time.perf_counter()
        tap.state_writer.write_state(tap.state)
        first = time.perf_counter() - start
        for record_id in new_ids:
            stream.id_state.mark_fetched(record_id, EPOCH)
            start = time.perf_counter()
            stream.emit_state_now()
            times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def million(ctx: Context) -> None:
    """Issue 18, item 10: a run with a million IDs done; one flush; throughput beside them."""
    sizes = ctx.sizes
    n, new = sizes.million_ids, sizes.million_new
    folder = ctx.folder("state-million")
    ids = chatra_like_ids(n - new, seed=8)
    state = _million_state(folder, ids)
    state_mb = state.stat().st_size / 1e6

    done_dir = ctx.folder("state-million/all-done")
    ids_file = write_lines(done_dir / "ids.txt", ids)
    config = {**OFFLINE, "message_ids_file": str(ids_file), "fetch_message_clients": False}
    idle = _run_tap(ctx, done_dir, config, state)
    idle_out = read_singer(idle.stdout)
    ctx.report.detail(
        ITEM18,
        f"{n - new:,} IDs all done ({state_mb:.1f} MB STATE in): {idle.wall:.1f} s, CPU "
        f"{idle.cpu:.1f} s, peak RSS {idle.peak_rss_mb:.0f} MiB, {idle_out.states} STATE "
        f"messages, {idle.stdout.stat().st_size / 1e6:.1f} MB written",
    )
    first, flush = _flush_cost(state, chatra_like_ids(20, seed=9))

    with Sandbox(ctx.folder("state-million/sandbox"), clients=20, messages=new) as sandbox:
        fresh = sandbox.ids("messages")
        rates: dict[str, float] = {}
        # The defaults, and STATE every second whatever its size (a flush cost that grew
        # with the state would show there).
        every_second = {"state_flush_seconds": 1, "state_bytes_per_hour": 0}
        for name, known, flush_settings in (
            ("empty state", None, {}),
            (f"{n - new:,} IDs in state", state, {}),
            (f"{n - new:,} IDs in state, STATE every second", state, every_second),
        ):
            run_dir = ctx.folder(f"state-million/run-{len(rates)}")
            listed = fresh if known is None else [*ids, *fresh]
            run_ids = write_lines(run_dir / "ids.txt", listed)
            sandbox.reset_log()
            run_config = {
                **config,
                "api_key_pair": sandbox.key_pair,
                "api_url": sandbox.api_url,
                "requests_per_minute": 0,
                "message_ids_file": str(run_ids),
                **flush_settings,
            }
            result = _run_tap(ctx, run_dir, run_config, known)
            output = read_singer(result.stdout)
            emitted = output.records["messages"]
            count, span, per_minute = window_rate(sandbox.requests_log())
            rates[name] = per_minute / 60
            ctx.report.detail(
                ITEM18,
                f"{new:,} new IDs, {name}: {emitted:,} records, {count:,} requests in "
                f"{span:.1f} s ({per_minute / 60:,.0f}/s), {output.states} STATE messages, run "
                f"{result.wall:.1f} s, peak RSS {result.peak_rss_mb:.0f} MiB",
            )
    empty, full, stressed = rates.values()
    ctx.report.add(
        Figure(ITEM18, f"run with all {n - new:,} IDs done: time", idle.wall, "s", digits=1),
        Figure(ITEM18, "same: peak memory", idle.peak_rss_mb, "MiB", "<=", 300, digits=0),
        Figure(ITEM18, "first STATE (encodes every ID)", first, "s", digits=2),
        Figure(ITEM18, "one STATE flush after a fetch", flush, "s", "<=", 0.5, digits=3),
        Figure(ITEM18, f"records/s, {new:,} new beside {n - new:,} / empty state", full / empty,
               "", ">=", 0.9, digits=2),
        Figure(ITEM18, "same, with STATE every second / empty state", stressed / empty, "",
               digits=2),
    )  # fmt: skip
