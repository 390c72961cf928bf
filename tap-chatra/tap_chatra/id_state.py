"""Per-ID state inside each stream's STATE bookmark: maps keyed by ID, so every lookup is O(1).

The SDK's own per-partition state is a list scanned linearly for every lookup, which makes a
100k-ID backfill quadratic; these maps do not. Layout of one bookmark (times in epoch seconds):

    messages, pushed_messages:
        {"fetched": {"<id>": 1700000000}, "missing": {"<id>": 1700000000},
         "failing": {"<id>": "1700000000:2:HTTP 503"}}
    clients:
        {"fetched": {"<id>": "1700000000:AbCdEf"}, "missing": {...}, "failing": {...},
         "refresh": {"started": 1700000000, "finished": 1700000100},
         "named": {"<id>": 1700000050}}

A client's value packs the fetch time with a 32-bit fingerprint of the version last emitted,
which keeps even a 40-character client ID under 64 bytes of STATE. `refresh` marks the run
that refreshes the clients due, so a run resumed after a crash skips the clients that the
interrupted run already did; `named` holds the clients named since their last fetch (see
client_refresh.py). `failing` holds IDs set aside after their retries ran out (or their
answer was unusable): when, how many runs in a row, and why.

Meltano merges a failed run's partial STATE onto the last complete one key by key, and never
deletes a key, so an ID may appear both as fetched and as missing: the newer entry wins.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import typing as t
from dataclasses import dataclass

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Iterable, Mapping

FINGERPRINT_BYTES = 4
#: A failing ID is tried again after 10 minutes, then 20, 40, ... up to the missing-ID wait.
FAILING_RETRY_BASE_SECONDS = 600
_MAX_REASON = 40


def fingerprint(body: Mapping[str, t.Any]) -> str:
    """A short, stable digest of a record body (key order does not matter)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.blake2b(canonical.encode(), digest_size=FINGERPRINT_BYTES).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def _child_map(bookmark: dict[str, t.Any], key: str, logger: logging.Logger) -> dict[str, t.Any]:
    value = bookmark.get(key)
    if value is None:
        value = bookmark[key] = {}
    elif not isinstance(value, dict):
        logger.warning("STATE key '%s' is not an object; starting it afresh.", key)
        value = bookmark[key] = {}
    return value


def _as_time(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, str):
        head = value.partition(":")[0]
        return int(head) if head.isascii() and head.isdigit() else None
    return None


def failing_retry_seconds(failures: int, cap: float) -> float:
    """How long an ID that failed `failures` runs in a row is left alone: doubling, capped."""
    doublings = min(max(failures, 1) - 1, 32)
    return max(0.0, min(cap, FAILING_RETRY_BASE_SECONDS * 2.0**doublings))


class IdState:
    """When each ID was fetched (with a fingerprint, for clients) or found missing."""

    def __init__(self, bookmark: dict[str, t.Any], *, logger: logging.Logger) -> None:
        self._fetched = _child_map(bookmark, "fetched", logger)
        self._missing = _child_map(bookmark, "missing", logger)
        # Added to the bookmark only once an ID fails, so most STATE never carries it.
        self._bookmark = bookmark
        self._failing = _child_map(bookmark, "failing", logger) if "failing" in bookmark else {}

    def __len__(self) -> int:
        return len(self._fetched)

    def known_ids(self) -> list[str]:
        """Every ID with an entry: fetched, missing or failing."""
        return list(dict.fromkeys([*self._fetched, *self._missing, *self._failing]))

    def fetched_at(self, record_id: str) -> int | None:
        """When the ID was last fetched, or None."""
        return _as_time(self._fetched.get(record_id))

    def fingerprint(self, record_id: str) -> str | None:
        """Fingerprint of the version last emitted, or None."""
        value = self._fetched.get(record_id)
        if isinstance(value, str) and ":" in value:
            return value.partition(":")[2]
        return None

    def missing_at(self, record_id: str) -> int | None:
        """When the ID last answered 404, unless it was fetched since."""
        missing = _as_time(self._missing.get(record_id))
        if missing is None:
            return None
        fetched = self.fetched_at(record_id)
        return missing if fetched is None or missing > fetched else None

    def failing_at(self, record_id: str) -> int | None:
        """When the ID was last set aside as failing, unless it was fetched or missing since."""
        failed = _as_time(self._failing.get(record_id))
        if failed is None:
            return None
        since = max(self.fetched_at(record_id) or -1, _as_time(self._missing.get(record_id)) or -1)
        return failed if failed > since else None

    def failures(self, record_id: str) -> int:
        """How many runs in a row set the ID aside (0 when it is not failing)."""
        if self.failing_at(record_id) is None:
            return 0
        count = str(self._failing[record_id]).split(":", 2)[1:2]
        return int(count[0]) if count and count[0].isascii() and count[0].isdigit() else 1

    def mark_fetched(self, record_id: str, now: int, fingerprint: str | None = None) -> None:
        """Record a successful fetch; a fingerprint is stored with clients."""
        self._fetched[record_id] = now if fingerprint is None else f"{now}:{fingerprint}"
        self._missing.pop(record_id, None)
        self._failing.pop(record_id, None)

    def mark_missing(self, record_id: str, now: int) -> None:
        """Record a 404. A client's last fingerprint is kept, so an unchanged return is quiet."""
        self._missing[record_id] = now
        self._failing.pop(record_id, None)

    def mark_failing(self, record_id: str, now: int, reason: str) -> int:
        """Set the ID aside after its retries ran out; return how many runs in a row failed."""
        failures = self.failures(record_id) + 1
        self._failing[record_id] = f"{now}:{failures}:{reason[:_MAX_REASON]}"
        self._bookmark["failing"] = self._failing
        return failures

    def clear_failing(self, record_id: str) -> None:
        """Forget that the ID is failing (a systemic failure was not its fault)."""
        self._failing.pop(record_id, None)


class RefreshRun:
    """The run that refreshes the clients due: when it started, and whether it finished."""

    def __init__(self, bookmark: dict[str, t.Any], *, logger: logging.Logger) -> None:
        self._marks = _child_map(bookmark, "refresh", logger)

    def start(self, now: float) -> int:
        """Start a refresh, or resume one that was interrupted; return when it started.

        Fetch times are whole seconds, so a new refresh starts after the second in which the
        previous one finished: nothing an earlier refresh did is ever taken for done. (Only
        when two runs start within one second does that lie a moment ahead; clients fetched
        meanwhile are stamped with the start.)
        """
        started = _as_time(self._marks.get("started"))
        finished = _as_time(self._marks.get("finished"))
        if started is not None and (finished is None or finished < started):
            return started
        self._marks["started"] = started = max(int(now), (finished or 0) + 1)
        return started

    def finish(self, now: float) -> None:
        """Mark the refresh complete."""
        self._marks["finished"] = max(int(now), _as_time(self._marks.get("started")) or 0)


@dataclass
class Plan:
    """Which IDs a stream fetches in this run, and why the others are skipped."""

    to_fetch: list[str]
    already_fetched: int = 0
    missing_not_due: int = 0
    failing_not_due: int = 0
    not_due: int = 0


def plan_fetches(
    record_ids: Iterable[str],
    state: IdState,
    *,
    now: int,
    missing_retry_seconds: float,
    is_due: Callable[[str, int], bool] | None,
) -> Plan:
    """Decide what to fetch: IDs never fetched, or due again.

    With `is_due` (clients), an ID fetched before is fetched again when `is_due(ID, last
    fetch time)` says so; without it (messages), an ID once fetched is never fetched again.
    A missing ID is tried again only `missing_retry_seconds` after its last 404; a failing
    one after `failing_retry_seconds`, which grows with each failed run up to that.
    """
    plan = Plan(to_fetch=[])
    for record_id in record_ids:
        fetched = state.fetched_at(record_id)
        missing = state.missing_at(record_id)
        failing = state.failing_at(record_id)
        if fetched is not None:
            if is_due is None:
                plan.already_fetched += 1
                continue
            if not is_due(record_id, fetched):
                plan.not_due += 1
                continue
        if failing is not None and now - failing < failing_retry_seconds(
            state.failures(record_id), missing_retry_seconds
        ):
            plan.failing_not_due += 1
            continue
        if (
            missing is not None
            and missing_retry_seconds > 0
            and now - missing < missing_retry_seconds
        ):
            plan.missing_not_due += 1
            continue
        plan.to_fetch.append(record_id)
    return plan
