"""Per-ID state inside each stream's STATE bookmark: maps keyed by ID, so every lookup is O(1).

The SDK's own per-partition state is a list scanned linearly for every lookup, which makes a
100k-ID backfill quadratic; these maps do not. Layout of one bookmark (see id_map.py):

    messages, pushed_messages:
        {"fetched": {"2026-11-30T02:45": ["<id>", ...]}, "missing": {"<minute>": ["<id>"]},
         "failing": {"<minute>": {"<id>": "2:HTTP 503"}}}
    clients:
        {"fetched": {"2026-11-30T02:45": {"<id>": "AbCdEf"}}, "missing": {...}, "failing": {...},
         "refresh": {"started": 1700000000, "finished": 1700000100},
         "named": {"<minute>": ["<id>", ...]}}

IDs are grouped by the UTC minute of their fetch (or 404, or failure); a client carries a
32-bit fingerprint of the version last emitted. `refresh` (epoch seconds) marks the run that
refreshes the clients due, so a run resumed after a crash skips the clients that the
interrupted run already did; `named` holds the clients named by a message or a webhook event
since their last fetch, by the minute they were first named since (see client_refresh.py).
`failing` holds IDs set aside after their retries ran out (or their answer was unusable):
when, and in the fingerprint's place how many runs in a row and why; it appears only once an
ID fails. The earlier layout, with one entry per ID (`{"<id>": 1700000000}`, a client's
`"1700000000:AbCdEf"`, a failing ID's `"1700000000:2:HTTP 503"`), is still read, and written
back in this one; so is the earlier `queued` list of message clients (see client_refresh.py).

The maps in a bookmark are replaced by objects of id_map.py (plain ones such as `refresh` and
webhook_ids.py's queue by copies), never changed in place, so a state given to the tap (by an
in-process caller, or a test) stays as it was given.

Meltano merges a failed run's partial STATE onto the last complete one key by key, and never
deletes a key, so an ID may appear twice, or both as fetched and as missing: the newer entry
wins, and a 404 wins over a fetch in the same minute.
"""

from __future__ import annotations

import base64
import hashlib
import json
import typing as t
from dataclasses import dataclass

import simplejson  # type: ignore[import-untyped]  # no stubs; the SDK writes STATE with it

from tap_chatra.id_map import MINUTE, IdMap, epoch_seconds

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


def _plain(value: object) -> object:
    # A bookmark taken from another tap's live state (in-process use) holds encoded maps.
    if isinstance(value, simplejson.RawJSON):
        return json.loads(value.encoded_json)
    return value


def _child_map(bookmark: dict[str, t.Any], key: str, logger: logging.Logger) -> dict[str, t.Any]:
    """A plain map in the bookmark, as a copy of its own (see above: never changed in place)."""
    value = _plain(bookmark.get(key))
    if value is not None and not isinstance(value, dict):
        logger.warning("STATE key '%s' is not an object; starting it afresh.", key)
    copied: dict[str, t.Any] = dict(value) if isinstance(value, dict) else {}
    bookmark[key] = copied
    return copied


def _id_map(bookmark: dict[str, t.Any], key: str, logger: logging.Logger) -> IdMap:
    value = bookmark.get(key)
    if not isinstance(value, IdMap):
        value = bookmark[key] = IdMap.load(_plain(value), name=key, logger=logger)
    return value


def failing_retry_seconds(failures: int, cap: float) -> float:
    """How long an ID that failed `failures` runs in a row is left alone: doubling, capped."""
    doublings = min(max(failures, 1) - 1, 32)
    return max(0.0, min(cap, FAILING_RETRY_BASE_SECONDS * 2.0**doublings))


class IdState:
    """When each ID was fetched (with a fingerprint, for clients) or found missing.

    Times go in and come out as epoch seconds, and are kept to the minute (rounded down).
    """

    def __init__(self, bookmark: dict[str, t.Any], *, logger: logging.Logger) -> None:
        self._fetched = _id_map(bookmark, "fetched", logger)
        self._missing = _id_map(bookmark, "missing", logger)
        # Added to the bookmark only once an ID fails, so most STATE never carries it.
        self._bookmark = bookmark
        self._failing = _id_map(bookmark, "failing", logger) if "failing" in bookmark else IdMap()
        # A 404 or failure older than the ID's last fetch says nothing any more (Meltano's
        # merge of a partial STATE brings such entries back).
        for record_id in [i for i in self._failing if self.failing_at(i) is None]:
            self._failing.remove(record_id)
        for record_id in [i for i in self._missing if self.missing_at(i) is None]:
            self._missing.remove(record_id)

    def __len__(self) -> int:
        return len(self._fetched)

    def known_ids(self) -> list[str]:
        """Every ID with an entry: fetched, missing or failing."""
        return list(dict.fromkeys([*self._fetched, *self._missing, *self._failing]))

    def known_ids_as_written(self) -> list[str]:
        """`known_ids`, in the order STATE lists them (see IdMap.written_ids)."""
        maps = (self._fetched, self._missing, self._failing)
        return list(dict.fromkeys([i for m in maps for i in m.written_ids()]))

    def fetched_at(self, record_id: str) -> int | None:
        """When the ID was last fetched (the start of that minute), or None."""
        minute = self._fetched.minute(record_id)
        return None if minute is None else minute * MINUTE

    def is_fetched(self, record_id: str) -> bool:
        """Whether the ID was ever fetched."""
        return record_id in self._fetched

    def fingerprint(self, record_id: str) -> str | None:
        """Fingerprint of the version last emitted, or None."""
        return self._fetched.fingerprint(record_id)

    def missing_at(self, record_id: str) -> int | None:
        """When the ID last answered 404, unless it was fetched in a later minute."""
        missing = self._missing.minute(record_id)
        if missing is None:
            return None
        fetched = self._fetched.minute(record_id)
        return missing * MINUTE if fetched is None or missing >= fetched else None

    def failing_at(self, record_id: str) -> int | None:
        """When the ID was last set aside, unless it was fetched or missing in a later minute."""
        failed = self._failing.minute(record_id)
        if failed is None:
            return None
        since = max(self._fetched.minute(record_id) or -1, self._missing.minute(record_id) or -1)
        return failed * MINUTE if failed >= since else None

    def failures(self, record_id: str) -> int:
        """How many runs in a row set the ID aside (0 when it is not failing)."""
        if self.failing_at(record_id) is None:
            return 0
        count = (self._failing.fingerprint(record_id) or "").partition(":")[0]
        return int(count) if count.isascii() and count.isdigit() else 1

    def mark_fetched(self, record_id: str, now: int, fingerprint: str | None = None) -> None:
        """Record a successful fetch; a fingerprint is stored with clients."""
        self._fetched.put(record_id, now // MINUTE, fingerprint)
        self._missing.remove(record_id)
        self._failing.remove(record_id)

    def mark_missing(self, record_id: str, now: int) -> None:
        """Record a 404. A client's last fingerprint is kept, so an unchanged return is quiet."""
        self._missing.put(record_id, now // MINUTE)
        self._failing.remove(record_id)

    def mark_failing(self, record_id: str, now: int, reason: str) -> int:
        """Set the ID aside after its retries ran out; return how many runs in a row failed."""
        failures = self.failures(record_id) + 1
        # A clock that went back (STATE from another machine) must not hide the failure
        # behind a fetch stamped in a later minute: it is set aside no earlier than that.
        minute = max(
            now // MINUTE,
            self._fetched.minute(record_id) or 0,
            self._missing.minute(record_id) or 0,
        )
        self._failing.put(record_id, minute, f"{failures}:{reason[:_MAX_REASON]}")
        self._bookmark["failing"] = self._failing
        return failures

    def clear_failing(self, record_id: str) -> None:
        """Forget that the ID is failing (a systemic failure was not its fault)."""
        self._failing.remove(record_id)


class RefreshRun:
    """The run that refreshes the clients due: when it started, and whether it finished.

    Also when refreshes began to be spread over the window (`spread`, client_refresh.py).
    """

    def __init__(self, bookmark: dict[str, t.Any], *, logger: logging.Logger) -> None:
        marks = _plain(bookmark.get("refresh"))
        if marks is not None and not isinstance(marks, dict):
            logger.warning("STATE key 'refresh' is not an object; starting it afresh.")
        self._marks = bookmark["refresh"] = dict(marks) if isinstance(marks, dict) else {}
        self._before: dict[str, t.Any] | None = None

    def _in_progress(self) -> bool:
        started = epoch_seconds(self._marks.get("started"))
        finished = epoch_seconds(self._marks.get("finished"))
        return started is not None and (finished is None or finished < started)

    def start(self, now: float) -> int:
        """Start a refresh, or resume one that was interrupted; return when it started.

        Fetch times are kept to the minute, so a new refresh starts at a whole minute after
        the minute in which the previous one finished: nothing an earlier refresh did is ever
        taken for done. (Only when two runs start within one minute does that lie a moment
        ahead; clients fetched meanwhile are stamped with the start.)
        """
        if self._in_progress():
            return int(self._marks["started"])
        self._before = self.marks()
        finished = epoch_seconds(self._marks.get("finished"))
        after_previous = 0 if finished is None else finished // MINUTE + 1
        self._marks["started"] = started = max(int(now) // MINUTE, after_previous) * MINUTE
        return started

    def spread_from(self, started: int) -> int:
        """Since when refreshes are spread: the first refresh that planned with a spread."""
        spread = epoch_seconds(self._marks.get("spread"))
        if spread is None:
            self._marks["spread"] = spread = started
        return spread

    def nothing_to_do(self) -> None:
        """This run's refresh has no client to fetch: leave its marks as they were.

        A new refresh of nothing would change the state, and so cost a whole STATE, for
        nothing; a refresh resumed is finished as usual.
        """
        if self._before is not None:
            spread = self._marks.get("spread")
            self.restore({**self._before, "spread": spread} if spread is not None else self._before)
            self._before = None

    def marks(self) -> dict[str, t.Any]:
        """The marks as they are now, for `restore`."""
        return dict(self._marks)

    def restore(self, marks: dict[str, t.Any]) -> None:
        """Put back marks taken by `marks`."""
        self._marks.clear()
        self._marks.update(marks)

    def finish(self, now: float) -> None:
        """Mark the refresh complete (if one is under way)."""
        if self._in_progress():
            self._marks["finished"] = max(int(now), int(self._marks["started"]))


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
