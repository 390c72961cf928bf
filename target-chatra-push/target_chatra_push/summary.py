"""Per-stream counts of what happened to each row, logged at the end and written as JSON."""

from __future__ import annotations

import json
import os
import typing as t
from dataclasses import dataclass, field
from enum import StrEnum

if t.TYPE_CHECKING:
    import logging
    from pathlib import Path

    from target_chatra_push.ledger_model import Entry

# Keys named in the log line; the report and `chatra-push-ledger list` have them all.
_MAX_KEYS_LOGGED = 50


class Outcome(StrEnum):
    """What happened to one row in this run."""

    SENT = "sent"
    """POSTed and confirmed by Chatra."""
    DUPLICATE = "duplicate"
    """Already sent (earlier run or earlier in this input): skipped."""
    UNCONFIRMED = "unconfirmed"
    """May have been sent (crash mid-send or lost answer): not sent again."""
    INVALID = "invalid"
    """Cannot become a message: dead-lettered, never sent."""
    REJECTED = "rejected"
    """Chatra refused it (400/404/422): dead-lettered, marked failed."""
    PREVIEWED = "previewed"
    """Dry run: would have been sent."""
    DEFERRED = "deferred"
    """Not sent this run (send cap reached, or the run stopped first): goes out next run."""
    NOT_RETRIED = "not_retried"
    """Rejected on an earlier run and `retry_failed` is off."""


@dataclass
class StreamCounts:
    """Counts of one stream, with the keys left unconfirmed."""

    counts: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))
    unconfirmed_keys: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, t.Any]:
        """JSON form."""
        return {
            **{outcome.value: n for outcome, n in self.counts.items()},
            "unconfirmed_keys": list(self.unconfirmed_keys),
        }


class RunSummary:
    """Collects outcomes per stream."""

    def __init__(self, *, dry_run: bool) -> None:
        self.dry_run = dry_run
        self.streams: dict[str, StreamCounts] = {}
        self.stopped: str | None = None
        self.in_ledger: list[Entry] = []
        """Every unconfirmed key in the ledger at the end, whatever this run's input held."""

    def add(self, stream: str, outcome: Outcome, key: str | None = None) -> None:
        """Count one row."""
        counts = self.streams.setdefault(stream, StreamCounts())
        counts.counts[outcome] += 1
        if outcome is Outcome.UNCONFIRMED and key is not None:
            counts.unconfirmed_keys.append(key)

    def count(self, outcome: Outcome, stream: str | None = None) -> int:
        """How many rows (of one stream, or all) had this outcome."""
        if stream is None:
            streams = list(self.streams.values())
        else:
            streams = [self.streams[stream]] if stream in self.streams else []
        return sum(s.counts[outcome] for s in streams)

    def lines(self) -> list[str]:
        """One line per stream, e.g. ``stream orders: sent 3, duplicate 1, ...``."""
        prefix = "dry run, " if self.dry_run else ""
        return [
            f"{prefix}stream {name}: "
            + ", ".join(f"{outcome.value} {n}" for outcome, n in counts.counts.items())
            for name, counts in sorted(self.streams.items())
        ]

    def log(self, logger: logging.Logger) -> None:
        """Log the summary at INFO, one line per stream, then the unconfirmed keys.

        The counts are of rows settled; a run that stopped early says so, since the rows
        after the stop were not read.
        """
        if not self.streams:
            logger.info(
                "Summary: %s.",
                "no row was settled before the run stopped" if self.stopped else "no rows received",
            )
        for line in self.lines():
            logger.info("Summary: %s", line)
        if self.stopped and self.streams:
            logger.info(
                "Summary: the run stopped early; these are the rows settled before it, and "
                "the rows after were not read."
            )
        for name, counts in sorted(self.streams.items()):
            if counts.unconfirmed_keys:
                logger.warning(
                    "Stream %s: %d unconfirmed key(s), not sent again (check Chatra, then set "
                    "resend_unconfirmed to send them anyway): %s",
                    name,
                    len(counts.unconfirmed_keys),
                    ", ".join(counts.unconfirmed_keys),
                )
        self._log_ledger(logger)

    def _log_ledger(self, logger: logging.Logger) -> None:
        if not self.in_ledger:
            return
        by_stream: dict[str, list[str]] = {}
        for entry in self.in_ledger:
            by_stream.setdefault(entry.stream, []).append(entry.key)
        for name, keys in sorted(by_stream.items()):
            shown = ", ".join(keys[:_MAX_KEYS_LOGGED])
            more = (
                f" and {len(keys) - _MAX_KEYS_LOGGED} more" if len(keys) > _MAX_KEYS_LOGGED else ""
            )
            logger.warning(
                "Ledger: stream %s has %d unconfirmed key(s): %s%s. Check each conversation in "
                "Chatra, then settle it: chatra-push-ledger settle --stream %s KEY --as "
                "sent|not-sent.",
                name,
                len(keys),
                shown,
                more,
                name,
            )

    def as_dict(self) -> dict[str, t.Any]:
        """JSON form of the whole report."""
        totals = {outcome.value: self.count(outcome) for outcome in Outcome}
        return {
            "dry_run": self.dry_run,
            "stopped": self.stopped,
            "totals": totals,
            "streams": {name: c.as_dict() for name, c in sorted(self.streams.items())},
            "unconfirmed_in_ledger": [
                {
                    "stream": entry.stream,
                    "key": entry.key,
                    "status": entry.status.value,
                    "since": entry.updated_at,
                    "run": str(entry.run) if entry.run else None,
                }
                for entry in self.in_ledger
            ],
        }

    def write(self, path: Path) -> None:
        """Write the report as JSON, replacing the file in one step."""
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(self.as_dict(), indent=2) + "\n", encoding="utf-8")
        temporary.replace(path)
