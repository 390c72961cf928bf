"""A page of the read API as JSON, with every stored event served safely.

No stored row may make a page fail: a body that is not strict JSON is served repaired (see
`events.stored_body`), one that is no JSON object (or nested too deeply) is skipped; either
is counted and logged with its `seq`, never with its content. `next_after` passes skipped
events too, so a reader never stops in front of one.
"""

from __future__ import annotations

import json
import logging
import typing as t

from chatra_webhooks.events import stored_body, without_surrogates

if t.TYPE_CHECKING:
    from chatra_webhooks.metrics import InboxMetrics
    from chatra_webhooks.store import Page, StoredEvent

LOGGER = logging.getLogger("chatra_webhooks")
#: Why a stored body cannot be served, as the log says it.
_UNSERVABLE = {
    "not_json": "not JSON",
    "not_object": "not a JSON object",
    "too_deep": "nested too deeply",
}


def _index(value: str | None) -> str | None:
    # An index column read back from bytes that were not UTF-8 (SQLite only).
    return None if value is None else without_surrogates(value)


def event_json(event: StoredEvent, body: dict[str, t.Any]) -> dict[str, t.Any]:
    """The read API's representation of an event: times in UTC, the body as an object."""
    return {
        "seq": event.seq,
        "received_at": event.received_at.isoformat().replace("+00:00", "Z"),
        "event_name": _index(event.event_name),
        "client_id": _index(event.client_id),
        "chat_id": _index(event.chat_id),
        "body": body,
    }


def _encode(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def page_json(page: Page, after: int, metrics: InboxMetrics) -> bytes:
    """`{"events": [...], "next_after": SEQ, "has_more": BOOL}` as UTF-8 JSON."""
    parts = []
    for event in page.events:
        served = stored_body(event.body)
        if served.document is None:
            (reason,) = served.repairs
            metrics.read_skipped.labels(reason=reason).inc()
            LOGGER.warning(
                "event seq %d is %s in the store; skipped (it cannot be served as a JSON object)",
                event.seq,
                _UNSERVABLE[reason],
            )
            continue
        for repair in served.repairs:
            metrics.read_repaired.labels(repair=repair).inc()
        if served.repairs:
            LOGGER.warning(
                "event seq %d served with a repair: %s", event.seq, ", ".join(served.repairs)
            )
        parts.append(_encode(event_json(event, served.document)))
    next_after = after if page.last_seq is None else page.last_seq
    tail = _encode({"next_after": next_after, "has_more": page.has_more})
    return b'{"events":[' + b",".join(parts) + b"]," + tail[1:]
