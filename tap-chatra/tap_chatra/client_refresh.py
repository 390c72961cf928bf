"""Which clients a run fetches: those that changed, or may have, and none of the others.

A client is fetched when it was never fetched; when a webhook event or a newly fetched
message named it since its last fetch (it was part of a chat, so it may have changed); or
when it is due for its refresh (nothing tells the tap about an edit made in Chatra's
dashboard, so every client is looked at now and then). With 0 hours, every known client is
fetched on every run.

Refreshes are spread evenly over the window of `client_refresh_hours` (R): each client has
its own time in every window, R times a fraction drawn from a hash of its ID, and is due at
the first of those times that is at least R/2 after its last fetch. So a client refreshed on
time is refreshed every R, and clients learned together (a backfill, an import) fall due
spread over a whole window, between R/2 and 3R/2 after it, not all at once R later. A client
whose last fetch is older than the spread (the run that first planned with it, kept in the
`refresh` marks as `spread`) is due no earlier than its first time after that: state written
before it falls due spread over a window too, never at once, and never later than R after it.

Known clients are the configured ones, the named ones and every client in the stream's
per-ID state: a client stays known (and refreshed) until a full refresh forgets the state.

The names wait in the clients bookmark under `named` (grouped by the minute they were first
named since the client's last fetch, like the other per-ID maps; see
ClientsStream.note_named) until the client is fetched, so a client named by a run
that did not sync clients is fetched by the next one that does. A fetch takes the ID out of
`named` at once; the time is there for Meltano's merge of a killed run's partial STATE, which
can bring back a name that the fetch after it had already covered. Times are kept to the
minute, so a name in the minute of the last fetch counts as newer: at worst one request more.
"""

from __future__ import annotations

import hashlib
import math
import typing as t
from dataclasses import dataclass

from tap_chatra.id_map import MINUTE
from tap_chatra.id_state import _id_map, _plain

if t.TYPE_CHECKING:
    import logging

    from tap_chatra.id_state import IdState


class NamedClients:
    """Clients named by webhook events or messages since their last fetch."""

    def __init__(self, bookmark: dict[str, t.Any], *, logger: logging.Logger) -> None:
        self._named = _id_map(bookmark, "named", logger)
        # The earlier layout queued message clients for good under `queued` (a list, or an
        # object of IDs); they are known from state now, and one never fetched is still
        # fetched once, as if named long ago.
        legacy = _plain(bookmark.pop("queued", None))
        if isinstance(legacy, dict | list):
            for client_id in legacy:
                if isinstance(client_id, str) and client_id not in self._named:
                    self._named.put(client_id, 0)

    def add(self, client_id: str, now: int) -> None:
        """Note that something named this client now."""
        self._named.put(client_id, now // MINUTE)

    def named_at(self, client_id: str) -> int | None:
        """When the client was last named (the start of that minute), or None."""
        minute = self._named.minute(client_id)
        return None if minute is None else minute * MINUTE

    def fetched(self, client_id: str) -> None:
        """The client was fetched: it is no longer named."""
        self._named.remove(client_id)

    def ids(self) -> list[str]:
        """The named clients."""
        return list(self._named)

    def ids_as_written(self) -> list[str]:
        """The named clients, in the order STATE lists them: by when last named."""
        return self._named.written_ids()


def refresh_phase(client_id: str) -> float:
    """Where in every refresh window the client falls due, as a fraction in [0, 1)."""
    data = client_id.encode("utf-8", "surrogatepass")
    digest = hashlib.blake2b(data, digest_size=8, person=b"chatra-refresh").digest()
    return int.from_bytes(digest, "big") / 2**64


def due_at(client_id: str, fetched_at: int, refresh_seconds: float, spread_from: int) -> float:
    """When a client last fetched at `fetched_at` (epoch seconds) is next due for a refresh.

    Its first own time (`refresh_phase` of every window since the epoch) at least half a
    window after that fetch, and, for a fetch before `spread_from`, at or after that.
    """
    earliest = fetched_at + refresh_seconds / 2
    if fetched_at < spread_from:
        earliest = max(earliest, spread_from)
    offset = refresh_phase(client_id) * refresh_seconds
    return offset + math.ceil((earliest - offset) / refresh_seconds) * refresh_seconds


@dataclass(frozen=True)
class RefreshRule:
    """Whether a known client is due again, given when it was last fetched.

    `refresh_started` is when this run's refresh began (earlier, when it resumes one that was
    interrupted), so that a client done before the interruption is not fetched twice.
    `spread_from` is when refreshes began to be spread (see above).
    """

    named: NamedClients
    refresh_started: int
    refresh_seconds: float
    spread_from: int = 0

    def is_due(self, client_id: str, fetched_at: int) -> bool:
        """Named since its last fetch, or due for its refresh by this refresh's start."""
        named_at = self.named.named_at(client_id)
        if named_at is not None and named_at >= fetched_at:
            return True
        if self.refresh_seconds <= 0:
            return fetched_at < self.refresh_started
        due = due_at(client_id, fetched_at, self.refresh_seconds, self.spread_from)
        return due <= self.refresh_started


def known_clients(configured: list[str], named: NamedClients, state: IdState) -> list[str]:
    """Every client the stream tracks, in order: configured, named, then the rest of state.

    Named and state IDs in the order STATE lists them, so that a run resumed from a STATE
    written part-way through the clients stream plans the interrupted run again alike
    (run_cursor.py); the order in memory depends on the history of this process.
    """
    named_ids = named.ids_as_written()
    return list(dict.fromkeys([*configured, *named_ids, *state.known_ids_as_written()]))
