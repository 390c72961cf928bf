"""One log line per request: method, route, status, time, and what the handler noted.

The line never holds a body or a token: the ingest path is logged as its template, and a path
the app does not serve is not logged at all (a mistyped URL may still carry a token).
"""

from __future__ import annotations

import logging
import re
import time
import typing as t

from chatra_webhooks.metrics import INGEST_PREFIX, ROUTES

if t.TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from chatra_webhooks.metrics import InboxMetrics

LOGGER = logging.getLogger("chatra_webhooks.access")
#: Key in the request's state (`request.state.log_note`) of the handler's part of the line.
NOTE_KEY = "log_note"
# Like Chatra's own names (chatStarted): anything else might be text from a chat, or a
# forged log line.
_PLAIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")


def loggable_name(event_name: str | None) -> str:
    """An event name as it may be logged: names come from the body, so only plain ones."""
    if event_name is None:
        return "-"
    return event_name if _PLAIN_NAME.fullmatch(event_name) else "<unusual>"


def loggable_path(path: str) -> str:
    """The path as it may be logged."""
    if path.startswith(INGEST_PREFIX):
        return INGEST_PREFIX + "<token>"
    return path if path in ROUTES else "<other path>"


class AccessLog:
    """ASGI middleware writing the access log line and the latency metric."""

    def __init__(self, app: ASGIApp, metrics: InboxMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request, then log it and record its latency."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            elapsed = time.perf_counter() - started
            path = scope.get("path", "")
            self.metrics.observe_latency(path, elapsed)
            note = state.get(NOTE_KEY, "")
            LOGGER.info(
                "%s %s %d %.1f ms%s",
                scope.get("method", "?"),
                loggable_path(path),
                status,
                elapsed * 1000,
                f" {note}" if note else "",
            )
