"""The webhook inbox's read API: `GET /events?after=SEQ&limit=N` with a Bearer read token.

It answers `{"events": [{"seq", "received_at", "event_name", "client_id", "chat_id", "body"}],
"next_after": SEQ, "has_more": BOOL}` in `seq` order. A page may be short (the inbox caps a
page's bytes) or even empty (it skips events it cannot serve) with more waiting, so the
paginator goes on until the inbox says `has_more: false`. (An inbox from before `has_more`:
until a page comes back empty.)

Each request also names its reader and acknowledges where the reading started, which the
stream's bookmark says is saved: the inbox's `prune` never deletes an event a reader has not
acknowledged.
"""

from __future__ import annotations

import json
import typing as t

from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.pagination import BaseAPIPaginator
from typing_extensions import override

from chatra_client import ChatraError
from tap_chatra.events import event_row

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    import requests


class InboxError(ChatraError):
    """The inbox refused the token or answered something that is not its read API."""


def _page(response: requests.Response) -> dict[str, t.Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    return body if isinstance(body, dict) else {}


def read_params(after: int, limit: int, *, reader: str, acknowledged: int) -> dict[str, t.Any]:
    """The query of one page: after `after`, by `reader`, who has kept all up to `acknowledged`."""
    return {"after": after, "limit": limit, "reader": reader, "ack": acknowledged}


class InboxPaginator(BaseAPIPaginator[int]):
    """Pages by `seq` until the inbox says nothing more is waiting."""

    @override
    def has_more(self, response: requests.Response) -> bool:
        page = _page(response)
        told = page.get("has_more")
        if isinstance(told, bool):
            return told
        events = page.get("events")
        return isinstance(events, list) and bool(events)

    @override
    def get_next(self, response: requests.Response) -> int | None:
        next_after = _page(response).get("next_after")
        return (
            next_after if isinstance(next_after, int) and next_after > self.current_value else None
        )


def check_inbox_response(response: requests.Response, *, stream: str) -> None:
    """Raise a one-line error for a refusal, a retriable error for a 5xx or a 429.

    Raises:
        InboxError: For a wrong token (401/403) or any other 4xx.
        RetriableAPIError: For a 5xx or a 429.
    """
    status = response.status_code
    if status in {401, 403}:
        msg = (
            f"{stream}: the webhook inbox refused webhook_inbox_token (HTTP {status}); "
            "give the tap the inbox's read token (CHATRA_WEBHOOKS_READ_TOKEN)."
        )
        raise InboxError(msg, status=status)
    if status == 429 or status >= 500:
        msg = f"{stream}: the webhook inbox answered HTTP {status}"
        raise RetriableAPIError(msg, response)
    if status >= 400:
        msg = (
            f"{stream}: the webhook inbox answered HTTP {status} to GET /events; "
            "is webhook_inbox_url the inbox's base URL?"
        )
        raise InboxError(msg, status=status)


def inbox_events(response: requests.Response, *, stream: str) -> Iterator[dict[str, t.Any]]:
    """The webhook_events rows of one page.

    Raises:
        InboxError: If the answer is not a page of the read API.
    """
    events = _page(response).get("events")
    if not isinstance(events, list):
        msg = (
            f"{stream}: GET /events answered HTTP {response.status_code} without a list of "
            "events; is webhook_inbox_url the inbox's base URL?"
        )
        raise InboxError(msg, status=response.status_code)
    for event in events:
        if not isinstance(event, dict) or not isinstance(event.get("seq"), int):
            continue
        received_at = event.get("received_at")
        row = event_row(
            event["seq"],
            _body(event.get("body")),
            received_at=received_at if isinstance(received_at, str) else None,
        )
        # What the inbox read from the body fills in what this tap could not.
        for column in ("event_name", "client_id", "chat_id"):
            if row[column] is None and isinstance(event.get(column), str):
                row[column] = event[column]
        yield row


def _body(value: object) -> dict[str, t.Any]:
    # The body as received: an object, or (should an inbox keep it as text) JSON in a string.
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    return value if isinstance(value, dict) else {}
