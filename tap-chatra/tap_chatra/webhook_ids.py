"""Message IDs carried by webhook events, queued in the fetching stream's bookmark until fetched.

The events that name an ID and the fetch of that ID happen in different streams of a run. The
queue lives in the fetching stream's bookmark (`webhook_ids`, ID -> when it was queued), so
the STATE that moves the webhook streams past an event also holds the IDs it named, and a run
killed in between loses none. An ID leaves the queue once its stream has fetched it. (Clients
an event names go to the clients stream's `named` map instead: see client_refresh.py.)
"""

from __future__ import annotations

import typing as t
from functools import cached_property

from typing_extensions import override

from tap_chatra.client import ChatraStream
from tap_chatra.id_state import _child_map as child_map

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Iterable, Iterator

    from singer_sdk.helpers.types import Context

    from tap_chatra.id_state import IdState


class WebhookIds:
    """The queue inside one stream's bookmark, in the order IDs were queued."""

    def __init__(self, bookmark: dict[str, t.Any], *, logger: logging.Logger) -> None:
        self._queued = child_map(bookmark, "webhook_ids", logger)

    def add(self, record_ids: Iterable[str], now: int) -> None:
        """Queue IDs; one already queued keeps its place and takes the new time."""
        for record_id in record_ids:
            self._queued[record_id] = now

    def ids(self) -> list[str]:
        """The queued IDs."""
        return list(self._queued)

    def drop_fetched(self, state: IdState) -> None:
        """Forget the IDs fetched; one found missing stays, to be tried again when due."""
        for record_id in list(self._queued):
            if state.fetched_at(record_id) is not None:
                del self._queued[record_id]


class WebhookIdsStream(ChatraStream):
    """A REST stream that also fetches the IDs webhook events queued for it."""

    @cached_property
    def webhook_ids(self) -> WebhookIds:
        """IDs named by webhook events, waiting to be fetched."""
        return WebhookIds(self.stream_state, logger=self.logger)

    @override
    def source_ids(self, configured: list[str] | None = None) -> list[str]:
        return list(dict.fromkeys([*super().source_ids(configured), *self.webhook_ids.ids()]))

    @override
    def get_records(self, context: Context | None) -> Iterator[dict[str, t.Any]]:
        yield from super().get_records(context)
        # Every planned ID is done; the stream's final STATE follows.
        self.webhook_ids.drop_fetched(self.id_state)
