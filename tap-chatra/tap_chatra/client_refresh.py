"""Which clients a run fetches: those that changed, or may have, and none of the others.

A client is fetched when it was never fetched; when a webhook event or a newly fetched
message named it since its last fetch (it was part of a chat, so it may have changed); or
when its last fetch is older than `client_refresh_hours` (nothing tells the tap about an
edit made in Chatra's dashboard, so every client is looked at now and then). With 0 hours,
every known client is fetched on every run.

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


@dataclass(frozen=True)
class RefreshRule:
    """Whether a known client is due again, given when it was last fetched.

    `refresh_started` is when this run's refresh began (earlier, when it resumes one that was
    interrupted), so that a client done before the interruption is not fetched twice.
    """

    named: NamedClients
    refresh_started: int
    refresh_seconds: float

    def is_due(self, client_id: str, fetched_at: int) -> bool:
        """Named since its last fetch, or last fetched longer ago than the refresh age."""
        named_at = self.named.named_at(client_id)
        if named_at is not None and named_at >= fetched_at:
            return True
        return fetched_at < self.refresh_started - self.refresh_seconds


def known_clients(configured: list[str], named: NamedClients, state: IdState) -> list[str]:
    """Every client the stream tracks, in order: configured, named, then the rest of state.

    Named and state IDs in the order STATE lists them, so that a run resumed from a STATE
    written part-way through the clients stream plans the interrupted run again alike
    (run_cursor.py); the order in memory depends on the history of this process.
    """
    named_ids = named.ids_as_written()
    return list(dict.fromkeys([*configured, *named_ids, *state.known_ids_as_written()]))
