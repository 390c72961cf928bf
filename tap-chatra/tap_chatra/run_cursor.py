"""While a REST stream runs, its STATE holds the bookmark of the run's start and a cursor.

Meltano stores every STATE whole. If each one listed every ID fetched so far, a run of length
L with STATE every T would write about L / (2T) times its final STATE (168 times for a 28-hour
backfill at 5 minutes). So, from the plan to the stream's end, the stream's bookmark in each
STATE is the one its run started from, plus a small entry saying how far the run got:

    "run": {"started": 1767225600, "done": 1234, "digest": "<SHA-256, hex>",
            "retry": ["<id>"], "listed": [0, 100000]}

`done`: the first `done` IDs of the run's plan (`Plan.to_fetch`, in order) are settled, their
records emitted; `digest`: SHA-256 over those IDs, kept up to date one ID at a time; `retry`:
those of them that were not fetched (404, set aside, rejected); `listed`: how many IDs each
configured source gave (inline list, ID file), so the run's sources can be read again as they
were, even if a file grew since. `started` is the `now` the plan was made with.

A run started from such a STATE first plans the interrupted run again, from that bookmark,
those sources and that `now`. If the first `done` IDs of that plan hash to `digest`, they are
the IDs the interrupted run fetched, and are marked fetched at its start (less `retry`, which
are simply tried again: the 404s and failures of the interrupted run are not kept, so a kill
costs one request for each of them); then the run plans as usual. Otherwise (the sources were
edited, reordered or shrunk, or Meltano merged a later run's STATE over the entry) one
warning says so, and the interrupted run's fetches are done again: redone, never skipped.

The STATE at the stream's end, and every one after it, is the full bookmark, without `run`.
"""

from __future__ import annotations

import copy
import hashlib
import typing as t
from contextlib import contextmanager
from dataclasses import dataclass

from tap_chatra.id_map import Encoded, IdMap, epoch_seconds

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

#: The key of the cursor in a stream's bookmark.
RUN_KEY = "run"
#: The bookmark keys the tap keeps for a REST stream (id_state.py, client_refresh.py,
#: webhook_ids.py): while a run goes on, STATE holds them as they were at its start.
STATE_KEYS = ("fetched", "missing", "failing", "named", "refresh", "webhook_ids")


def _add(digest: hashlib._Hash, record_id: str) -> None:
    # Length first, so that no two lists of IDs hash alike by where they split.
    data = record_id.encode("utf-8", "surrogatepass")
    digest.update(len(data).to_bytes(4, "big"))
    digest.update(data)


def digest_of(record_ids: Iterable[str]) -> str:
    """The cursor's digest of these IDs, in this order."""
    digest = hashlib.sha256()
    for record_id in record_ids:
        _add(digest, record_id)
    return digest.hexdigest()


def _as_it_is(value: object) -> object:
    """A value of the bookmark as it is now, unaffected by later changes to it."""
    if isinstance(value, IdMap):
        return value.frozen()  # shares the encoded minutes: no copy of a million IDs
    if isinstance(value, Encoded):
        return value
    return copy.deepcopy(value)


class RunCursor:
    """How far one stream's run got through its plan, and the bookmark it started from."""

    def __init__(self, bookmark: dict[str, t.Any], *, started: int, listed: list[int]) -> None:
        self._bookmark = bookmark
        self._start = {key: _as_it_is(bookmark[key]) for key in STATE_KEYS if key in bookmark}
        self.started = started
        self.done = 0
        self._listed = list(listed)
        self._digest = hashlib.sha256()
        # IDs of the plan not fetched in this run: lost on a kill, and so tried again.
        self._retry: list[str] = []

    def settle(self, record_id: str, *, fetched: bool) -> None:
        """The next ID of the plan is done: fetched and emitted, or not (`retry`)."""
        _add(self._digest, record_id)
        self.done += 1
        if not fetched:
            self._retry.append(record_id)

    def entry(self) -> dict[str, t.Any]:
        """The `run` entry of the bookmark."""
        return {
            "started": self.started,
            "done": self.done,
            "digest": self._digest.hexdigest(),
            # Always written, so that Meltano's merge of two partial STATEs keeps no part of
            # an earlier entry.
            "retry": list(self._retry),
            "listed": list(self._listed),
        }

    @contextmanager
    def in_bookmark(self) -> Iterator[None]:
        """Within: the bookmark holds the run's start and the cursor (to write a STATE)."""
        live = dict(self._bookmark)
        written: dict[str, t.Any] = {}
        for key, value in live.items():
            if key not in STATE_KEYS:
                written[key] = value
            elif key in self._start:
                written[key] = self._start[key]
        written.update(self._start)
        written[RUN_KEY] = self.entry()
        self._bookmark.clear()
        self._bookmark.update(written)
        try:
            yield
        finally:
            self._bookmark.clear()
            self._bookmark.update(live)


@dataclass(frozen=True)
class Interrupted:
    """The `run` entry of a STATE written by a run that did not reach its stream's end."""

    started: int
    done: int
    digest: str
    retry: frozenset[str]
    listed: tuple[int, ...]

    @classmethod
    def read(cls, value: object) -> Interrupted | None:
        """The entry, or None when it is not one this tap wrote."""
        if not isinstance(value, dict):
            return None
        started = epoch_seconds(value.get("started"))
        done, digest = value.get("done"), value.get("digest")
        retry, listed = value.get("retry", []), value.get("listed", [])
        if (
            started is None
            or isinstance(done, bool)
            or not isinstance(done, int)
            or done < 0
            or not isinstance(digest, str)
            or not isinstance(retry, list)
            or not all(isinstance(i, str) for i in retry)
            or not isinstance(listed, list)
            or not all(type(n) is int and n >= 0 for n in listed)
        ):
            return None
        return cls(started, done, digest, frozenset(retry), tuple(listed))

    def matches(self, to_fetch: list[str]) -> bool:
        """Whether a plan begins with the IDs the interrupted run settled."""
        return len(to_fetch) >= self.done and digest_of(to_fetch[: self.done]) == self.digest
