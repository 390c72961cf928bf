"""What every benchmark needs: sizes, a working folder, and the report it adds to."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from bench.harness import executable

if t.TYPE_CHECKING:
    from pathlib import Path

    from bench.report import Report


@dataclass(frozen=True)
class Sizes:
    """Record counts and window lengths (the issue's values by default)."""

    overhead_ids: int = 5_000
    scaling_small: int = 10_000
    scaling_large: int = 100_000
    target_rows: int = 5_000
    page_rows: int = 10_000
    window: float = 90.0
    rpm: float = 600.0
    latency_ms: float = 200.0
    # Seconds a plugin gets to start before a window's first request; the window is measured
    # from the first request the sandbox sees, so start-up is never counted in a rate.
    startup_margin: float = 6.0
    inbox_senders: int = 50
    inbox_window: float = 20.0
    # Issue 16: IDs of the simulated backfill; issue 18: IDs in state, of which new.
    state_sim_ids: int = 100_000
    million_ids: int = 1_000_000
    million_new: int = 2_000
    refresh_clients: int = 10_000
    refresh_changed: int = 50
    # Issue 25: message IDs of `meltano run` against dlt; webhook events of the kill, its
    # STATE interval (None: the default) and when the kill comes after a STATE.
    meltano_ids: tuple[int, ...] = (2_000, 20_000)
    webhook_events: int = 400_000
    webhook_flush_seconds: float | None = None
    webhook_kill_after: float = 5.0
    # Issue 27: chat messages the analytics models are built over.
    dbt_messages: int = 1_000_000

    @classmethod
    def quick(cls) -> Sizes:
        """Tiny sizes for the smoke test: every code path, none of the statistics."""
        return cls(
            overhead_ids=100,
            scaling_small=100,
            scaling_large=400,
            target_rows=100,
            page_rows=200,
            window=2.0,
            rpm=600.0,
            latency_ms=50.0,
            startup_margin=3.0,
            inbox_senders=4,
            inbox_window=1.0,
            state_sim_ids=2_000,
            million_ids=20_000,
            million_new=200,
            refresh_clients=200,
            refresh_changed=5,
            meltano_ids=(),
            webhook_events=20_000,
            webhook_flush_seconds=0.3,
            webhook_kill_after=0.15,
            dbt_messages=2_000,
        )


@dataclass
class Context:
    """One benchmark run."""

    workdir: Path
    report: Report
    sizes: Sizes

    def folder(self, name: str) -> Path:
        """A fresh sub-folder of the working folder."""
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @staticmethod
    def tap() -> str:
        """The tap's console script."""
        return executable("tap-chatra")

    @staticmethod
    def target() -> str:
        """The target's console script."""
        return executable("target-chatra-push")
