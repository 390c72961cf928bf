"""Issue 25: the tap at a million IDs: a no-op run's STATE and memory, refresh spread, kills.

- A run with every one of a million IDs already in state: the STATE bytes it writes (against
  the final STATE, the state it started from) and its peak RSS.
- The client refresh of a million clients learned in one run, and of a million from state
  written before the spread (all fetched in one run 20 hours before): requests per hour over
  the following window, from the tap's own rule (client_refresh.due_at), against the mean.
- The webhook streams at the default flush, SIGKILLed half an interval after a STATE, then
  resumed from the last complete STATE: the events read again against the events one flush
  interval covered.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import typing as t
from collections import Counter

from bench.harness import read_singer, run_measured, write_json, write_lines
from bench.report import Figure
from bench.state_bench import OFFLINE, _million_state, chatra_like_ids
from tap_chatra.client_refresh import due_at

if t.TYPE_CHECKING:
    from pathlib import Path

    from bench.context import Context

ITEM = "25 tap at 1M IDs"
HOUR = 3600
WINDOW = 24 * HOUR
#: A run's clock in the refresh simulation (2026-01-01T00:00Z); only differences matter.
EPOCH = 1_767_225_600


def noop_run(ctx: Context) -> None:
    """A run with every ID of a million already fetched: STATE written, peak memory."""
    n = ctx.sizes.million_ids
    folder = ctx.folder("scale/noop")
    ids = chatra_like_ids(n, seed=8)
    state = _million_state(folder, ids)
    # As a run of this version leaves it: the clients' refresh spread already begun.
    text = state.read_text(encoding="utf-8")
    head = '{"bookmarks":{'
    spread = f'"clients":{{"refresh":{{"spread":{EPOCH}}}}},'
    state.write_text(head + spread + text.removeprefix(head), encoding="utf-8")
    ids_file = write_lines(folder / "ids.txt", ids)
    config = write_json(
        folder / "tap.json",
        {**OFFLINE, "message_ids_file": str(ids_file), "fetch_message_clients": False},
    )
    result = run_measured(
        [ctx.tap(), "--config", str(config), "--state", str(state)],
        stdout=folder / "tap.out",
        stderr=folder / "tap.err",
    )
    result.check("tap-chatra (no-op run)")
    written = sum(
        len(line) for line in (folder / "tap.out").read_bytes().splitlines(keepends=True)
        if line.startswith(b'{"type":"STATE"')
    )  # fmt: skip
    final = state.stat().st_size
    ctx.report.add(
        Figure(ITEM, f"STATE bytes written by a no-op run ({n:,} IDs) / final STATE",
               written / final, "", "<=", 1.0, digits=2),
        Figure(ITEM, f"peak RSS of that run ({n:,} IDs in state)", result.peak_rss_mb, "MiB",
               "<=", 230, digits=0,
               miss_note="The IDs as Python strings (~80 MiB at a million), the map from ID "
                         "to minute (~40 MiB) and the encoded minutes (~20 MiB) sit on the "
                         "interpreter's ~45 MiB; see tap-chatra/README.md."),
    )  # fmt: skip
    ctx.report.detail(
        ITEM,
        f"no-op run, {n:,} IDs in a {final / 1e6:.1f} MB state: {result.wall:.1f} s, CPU "
        f"{result.cpu:.1f} s, peak RSS {result.peak_rss_mb:.0f} MiB, {written:,} STATE bytes "
        f"written ({read_singer(folder / 'tap.out').states} STATE messages)",
    )


def _hourly(due_times: t.Iterable[float], start: int) -> Counter[int]:
    """Requests per hourly run from `start` on: a client due by a run's start is fetched then."""
    return Counter(int(-(-(due - start) // HOUR)) for due in due_times)


def refresh_spread(ctx: Context) -> None:
    """Requests per hour of the client refresh, a million clients, over the next window."""
    n = ctx.sizes.million_ids
    clients = [f"{number:040d}" for number in range(n)]
    learned = EPOCH
    # Learned together in one run (spread began with them); then state from before the
    # spread: fetched 20 hours before the first run that spreads.
    cases = {
        "learned in one run": (
            _hourly((due_at(c, learned, WINDOW, learned) for c in clients), learned),
            range(1, 2 * 24 + 1),
        ),
        "from state written before the spread": (
            _hourly((due_at(c, learned - 20 * HOUR, WINDOW, learned) for c in clients), learned),
            range(25),
        ),
    }
    mean = n / 24
    for name, (per_hour, hours) in cases.items():
        busiest = max(per_hour[hour] for hour in hours)
        ctx.report.add(
            Figure(ITEM, f"client refresh, {n:,} clients {name}: busiest hour / mean",
                   busiest / mean, "", "<=", 1.5, digits=2),
        )  # fmt: skip
        ctx.report.detail(
            ITEM,
            f"client refresh, {name}: mean {mean:,.0f} requests an hour (each client once a "
            f"{WINDOW // HOUR} h window), busiest hour {busiest:,}, quietest "
            f"{min(per_hour[hour] for hour in hours if per_hour[hour]):,} (hourly runs)",
        )


def _events_file(path: Path, count: int) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for number in range(count):
            message = {"type": "client", "text": f"hello {number}", "createdAt": number}
            out.write(json.dumps({"eventName": "chatFragment", "messages": [message]}) + "\n")
    return path


def _last_seq(path: Path) -> int:
    """The `seq` of the last webhook_events record among the complete lines of a tap's output."""
    last = 0
    with path.open("rb") as lines:
        for line in lines:
            if not line.endswith(b"\n"):
                break
            if line.startswith(b'{"type":"RECORD","stream":"webhook_events"'):
                last = json.loads(line)["record"]["seq"]
    return last


def webhook_kill(ctx: Context) -> None:
    """Kill the webhook streams at the default flush; count the events read again."""
    sizes = ctx.sizes
    folder = ctx.folder("scale/webhook-kill")
    events = _events_file(folder / "events.jsonl", sizes.webhook_events)
    flush = sizes.webhook_flush_seconds
    settings = {
        **OFFLINE,
        "webhook_events_file": str(events),
        **({"state_flush_seconds": flush} if flush else {}),
    }
    config = write_json(folder / "tap.json", settings)
    marks: list[int] = []  # replication_key_value of webhook_events in each STATE
    out_path = folder / "killed.out"
    with out_path.open("wb") as out, (folder / "killed.err").open("wb") as err:
        process = subprocess.Popen(
            [ctx.tap(), "--config", str(config)], stdout=subprocess.PIPE, stderr=err
        )
        assert process.stdout is not None
        interval = None
        for line in process.stdout:
            out.write(line)
            if line.startswith(b'{"type":"STATE"'):
                bookmark = json.loads(line)["value"]["bookmarks"].get("webhook_events", {})
                marks.append(bookmark.get("replication_key_value") or 0)
                if len(marks) == 2:
                    interval = time.monotonic()
            if interval is not None and time.monotonic() - interval >= sizes.webhook_kill_after:
                process.send_signal(signal.SIGKILL)
                break
        process.wait(timeout=60)
    if process.returncode != -signal.SIGKILL or len(marks) < 2 or marks[-1] >= sizes.webhook_events:
        msg = "the webhook streams ended before the kill: give them more events."
        raise RuntimeError(msg)
    killed = read_singer(out_path)  # complete lines only, as Meltano keeps them
    emitted = _last_seq(out_path)
    state = write_json(folder / "state.json", killed.last_state)
    resumed = run_measured(
        [ctx.tap(), "--config", str(config), "--state", str(state)],
        stdout=folder / "resumed.out",
        stderr=folder / "resumed.err",
    )
    resumed.check("tap-chatra (resumed)")
    last = killed.last_state["bookmarks"]["webhook_events"]["replication_key_value"]
    again = emitted - last
    per_interval = marks[-1] - marks[-2] if marks[-2] else marks[-1]
    ctx.report.add(
        Figure(ITEM, "webhook events read again after a kill / events of one flush interval",
               again / per_interval, "", "<=", 1.0, digits=2),
    )  # fmt: skip
    ctx.report.detail(
        ITEM,
        f"webhook kill ({sizes.webhook_events:,} events, state_flush_seconds "
        f"{flush or 'default'}): killed {sizes.webhook_kill_after:.2f} s after a STATE, "
        f"{again:,} events read again; "
        f"one flush interval wrote {per_interval:,} events; {len(marks)} STATEs before the kill",
    )


def million(ctx: Context) -> None:
    """Every figure of this item."""
    noop_run(ctx)
    refresh_spread(ctx)
    webhook_kill(ctx)
