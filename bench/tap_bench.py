"""Items 1, 2, 3 and 6: the tap's overhead, pacing, state scaling and latency tolerance."""

from __future__ import annotations

import tempfile
import time
import typing as t
from pathlib import Path

from bench.harness import (
    Sandbox,
    read_singer,
    run_bare,
    run_plugin,
    write_json,
    write_lines,
)
from bench.report import Figure
from bench.target_bench import add_pacing_figures
from tap_chatra.id_map import read_ids

if t.TYPE_CHECKING:
    from bench.context import Context
    from bench.harness import RunResult

ITEM1 = "1 tap overhead"
ITEM2 = "2 tap pacing"
ITEM3 = "3 state scaling"
ITEM6 = "6 latency tolerance"


def tap_config(folder: Path, sandbox: Sandbox, ids_file: Path, **settings: t.Any) -> Path:
    """A tap config fetching the messages listed in `ids_file`, and nothing else."""
    config = {
        "api_key_pair": sandbox.key_pair,
        "api_url": sandbox.api_url,
        "requests_per_minute": 0,
        "message_ids_file": str(ids_file),
        # One request per ID, so that requests and IDs can be compared one to one.
        "fetch_message_clients": False,
        **settings,
    }
    return write_json(folder / "tap.json", config)


def overhead_and_scaling(ctx: Context) -> None:
    """Items 1 and 3, on one sandbox seeded with enough messages for the larger run."""
    sizes = ctx.sizes
    largest = max(sizes.overhead_ids, sizes.scaling_small, sizes.scaling_large)
    with Sandbox(ctx.folder("sandbox-unlimited"), clients=100, messages=largest) as sandbox:
        ids = sandbox.ids("messages")
        overhead(ctx, sandbox, ids[: sizes.overhead_ids])
        scaling(ctx, sandbox, ids)


def overhead(ctx: Context, sandbox: Sandbox, ids: list[str]) -> None:
    """Item 1: the tap against a bare `requests.Session` loop over the same IDs."""
    n = len(ids)
    folder = ctx.folder("tap-overhead")
    ids_file = write_lines(folder / "ids.txt", ids)
    bare = run_bare("get", sandbox, "messages", ids_file, folder)
    runs: dict[str, RunResult] = {}
    # "paced": pacing on, through the machine-wide file, at a limit the tap never reaches.
    variants = {
        "default": ("default concurrency", {}),
        "serial": ("serial concurrency 1", {"max_concurrency": 1}),
        "paced": ("pacing on, 6,000,000/min", {"requests_per_minute": 6_000_000}),
    }
    for name, (label, extra) in variants.items():
        run_dir = ctx.folder(f"tap-overhead/{name}")
        sandbox.reset_log()
        config = tap_config(run_dir, sandbox, ids_file, **extra)
        runs[name] = result = run_plugin(ctx.tap(), run_dir, config)
        result.check("tap-chatra")
        emitted = read_singer(result.stdout).records["messages"]
        if emitted != n:
            msg = f"tap-chatra emitted {emitted} of {n} messages."
            raise RuntimeError(msg)
        requests = len(sandbox.requests_log())
        ctx.report.detail(
            ITEM1,
            f"tap ({label}): {result.wall:.2f} s "
            f"({result.wall / n * 1000:.2f} ms/ID), {requests:,} requests, CPU {result.cpu:.2f} s, "
            f"peak RSS {result.peak_rss_mb:.0f} MiB",
        )
    default, serial = runs["default"], runs["serial"]
    ctx.report.add(
        Figure(
            ITEM1, f"tap time / bare GET loop time ({n:,} IDs)", default.wall / bare.wall, "",
            "<=", 1.5,
            miss_note=(
                "The tap's wall time includes the Singer SDK's start (imports, config and "
                "catalog) and per-record work (schema conforming, JSON output, a METRIC log "
                "line per request), measured in the raw figures below."
            ),
        ),
        Figure(ITEM1, "same, tap with max_concurrency 1", serial.wall / bare.wall, "", digits=2),
        Figure(ITEM1, "same, pacing on at a limit never reached", runs["paced"].wall / bare.wall,
               "", "<=", 1.5),
        Figure(ITEM1, "pacer cost per request (machine-wide file)", pacer_cost() * 1000, "ms",
               "<=", 0.1, digits=4),
    )  # fmt: skip
    ctx.report.detail(
        ITEM1,
        f"bare GET loop: {bare.wall:.2f} s ({bare.wall / n * 1000:.2f} ms/ID), CPU "
        f"{bare.cpu:.2f} s, peak RSS {bare.peak_rss_mb:.0f} MiB",
    )


def scaling(ctx: Context, sandbox: Sandbox, ids: list[str]) -> None:
    """Item 3: cost per ID, STATE size per ID and peak memory at two sizes."""
    sizes = ctx.sizes
    measured: dict[int, tuple[RunResult, int]] = {}
    for n in (sizes.scaling_small, sizes.scaling_large):
        folder = ctx.folder(f"state-scaling/{n}")
        ids_file = write_lines(folder / "ids.txt", ids[:n])
        result = run_plugin(ctx.tap(), folder, tap_config(folder, sandbox, ids_file))
        result.check(f"tap-chatra ({n:,} IDs)")
        output = read_singer(result.stdout)
        fetched = read_ids(
            output.last_state.get("bookmarks", {}).get("messages", {}).get("fetched")
        )
        if output.records["messages"] != n or len(fetched) != n:
            msg = (
                f"tap-chatra emitted {output.records['messages']} messages and a final STATE "
                f"with {len(fetched)} IDs, expected {n}."
            )
            raise RuntimeError(msg)
        state_bytes = len(output.last_state_line)
        measured[n] = (result, state_bytes)
        ctx.report.detail(
            ITEM3,
            f"{n:,} IDs: {result.wall:.2f} s ({result.wall / n * 1000:.3f} ms/ID), CPU "
            f"{result.cpu:.2f} s, last STATE {state_bytes:,} bytes "
            f"({state_bytes / n:.1f} bytes/ID) after {output.states} STATE messages, "
            f"peak RSS {result.peak_rss_mb:.0f} MiB",
        )
    (small, small_state), (large, large_state) = (
        measured[sizes.scaling_small],
        measured[sizes.scaling_large],
    )
    per_id_small = small.wall / sizes.scaling_small
    per_id_large = large.wall / sizes.scaling_large
    ctx.report.add(
        Figure(ITEM3, f"seconds per ID, {sizes.scaling_large:,} / {sizes.scaling_small:,} IDs",
               per_id_large / per_id_small, "", "<=", 1.2,
               miss_note="Cost per ID grew with N. Per-ID lookups are dict lookups, but every "
                         "STATE message carries the whole map (about 2 MB at 100,000 IDs), "
                         "written every state_flush_seconds; see the STATE counts below."),
        Figure(ITEM3, f"STATE bytes per ID at {sizes.scaling_small:,} IDs",
               small_state / sizes.scaling_small, "B", "<=", 64, digits=1),
        Figure(ITEM3, f"STATE bytes per ID at {sizes.scaling_large:,} IDs",
               large_state / sizes.scaling_large, "B", "<=", 64, digits=1),
        Figure(ITEM3, f"peak memory, {sizes.scaling_large:,} / {sizes.scaling_small:,} IDs",
               large.peak_rss / small.peak_rss, "", "<=", 2.0,
               miss_note="The ID lists and the per-ID state map are held in memory and grow "
                         "linearly with N (on top of the SDK's ~45 MiB base)."),
    )  # fmt: skip


def _paced_run(ctx: Context, name: str, *, latency_ms: float) -> list[dict[str, t.Any]]:
    """Run the tap at the sandbox's limit with more IDs than fit in the window; return the log."""
    sizes = ctx.sizes
    ids_needed = int(sizes.window * sizes.rpm / 60 * 1.5) + 10
    folder = ctx.folder(name)
    with Sandbox(
        folder,
        messages=ids_needed,
        public_key=f"bench-{name}",
        requests_per_minute=sizes.rpm,
        latency_ms=latency_ms,
    ) as sandbox:
        ids_file = write_lines(folder / "ids.txt", sandbox.ids("messages"))
        config = tap_config(folder, sandbox, ids_file, requests_per_minute=sizes.rpm)
        window = sizes.window + sizes.startup_margin
        result = run_plugin(ctx.tap(), folder, config, stop_after=window)
        result.check(f"tap-chatra ({name})")
        return sandbox.requests_log()


def pacing(ctx: Context) -> None:
    """Item 2: the tap at the sandbox's limit, no latency."""
    log = _paced_run(ctx, "tap-pacing", latency_ms=0)
    add_pacing_figures(ctx, ITEM2, log, ctx.sizes.window, ctx.sizes.rpm, min_ratio=0.97)


def latency(ctx: Context) -> None:
    """Item 6: the same with 200 ms of latency per request; requests overlap to keep pace."""
    sizes = ctx.sizes
    log = _paced_run(ctx, "tap-latency", latency_ms=sizes.latency_ms)
    add_pacing_figures(ctx, ITEM6, log, sizes.window, sizes.rpm, min_ratio=0.95)
    serial_ceiling = 60_000 / sizes.latency_ms / sizes.rpm
    ctx.report.detail(
        ITEM6,
        f"{sizes.latency_ms:.0f} ms latency: one request at a time could reach at most "
        f"{min(serial_ceiling, 1):.2f} of the limit; the tap keeps up to max_concurrency (4) "
        "requests in flight, each attempt paced by the shared limiter.",
    )


def pacer_cost(requests: int = 20_000) -> float:
    """Seconds per `acquire` of the local file store at a limit never reached, this process."""
    from chatra_client.pace_store import FilePaceStore  # noqa: PLC0415
    from chatra_client.ratelimit import RateLimiter  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as folder:
        limiter = RateLimiter(1e9, store=FilePaceStore(Path(folder) / "pace.bin"))
        try:
            start = time.perf_counter()
            for _ in range(requests):
                limiter.acquire()
            return (time.perf_counter() - start) / requests
        finally:
            limiter.close()
