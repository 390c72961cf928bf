"""Message IDs named by webhook events, queued in the message stream's bookmark until fetched.

The events that name an ID and the fetch of that ID happen in different streams of a run. The
queue lives in the fetching stream's bookmark (`queued`), so the STATE that moves the events'
bookmark past an event also holds the IDs it named, and a run killed in between loses none.
"""

from __future__ import annotations

import typing as t

from tap_chatra.id_state import _child_map as child_map

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Iterable

    from tap_chatra.id_state import IdState


class QueuedIds:
    """IDs waiting in a stream's bookmark, in the order they were queued."""

    def __init__(self, bookmark: dict[str, t.Any], *, logger: logging.Logger) -> None:
        self._queued = child_map(bookmark, "queued", logger)

    def add(self, record_ids: Iterable[str]) -> None:
        """Queue IDs; one already queued keeps its place."""
        for record_id in record_ids:
            self._queued.setdefault(record_id, 1)

    def ids(self) -> list[str]:
        """The queued IDs."""
        return list(self._queued)

    def drop_fetched(self, state: IdState) -> None:
        """Forget the IDs now fetched; a missing one stays, to be retried when due."""
        for record_id in [r for r in self._queued if state.fetched_at(r) is not None]:
            del self._queued[record_id]
