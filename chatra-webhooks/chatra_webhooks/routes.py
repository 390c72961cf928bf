"""Every route of the inbox: ingest, the read API, health and metrics."""

from __future__ import annotations

import asyncio
import logging
import re
import typing as t

from anyio import to_thread
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from chatra_webhooks.access_log import NOTE_KEY, loggable_name
from chatra_webhooks.events import BodyError, parse_body
from chatra_webhooks.metrics import INGEST_PREFIX
from chatra_webhooks.pages import page_json
from chatra_webhooks.store import READER_NAME, EventRefusedError, StoreError

if t.TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from chatra_webhooks.metrics import InboxMetrics
    from chatra_webhooks.settings import InboxSettings
    from chatra_webhooks.store import EventStore

LOGGER = logging.getLogger("chatra_webhooks")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_SEQ = 2**63 - 1
_JSON_BOOLEAN = {True: b"true", False: b"false"}
#: Bodies up to this size are checked on the event loop (a thread would cost more).
INLINE_PARSE_BYTES = 16 * 1024
_READER_NAME = re.compile(READER_NAME)
# After a refused or unfinished body the connection is closed, not reused: the rest of the
# body may still be on its way.
_CLOSE = {"connection": "close"}


class _TooLargeError(Exception):
    """The body is larger than `max_body`."""


def not_found(_request: Request, _exc: Exception | None = None) -> Response:
    """The answer to an unknown path and to a wrong ingest token alike."""
    return PlainTextResponse("Not Found", status_code=404)


def _note(request: Request, text: str) -> None:
    setattr(request.state, NOTE_KEY, text)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _reader(request: Request) -> tuple[str, int] | None:
    """`reader` and `ack`: who reads, and up to which seq it keeps every event (both or none)."""
    name = request.query_params.get("reader")
    if name is None and "ack" not in request.query_params:
        return None
    if name is None or not _READER_NAME.fullmatch(name):
        msg = "reader must be 1 to 64 letters, digits, '_', '.', ':' or '-', given with ack"
        raise ValueError(msg)
    if "ack" not in request.query_params:
        msg = "ack (the last seq the reader has kept) must be given with reader"
        raise ValueError(msg)
    return name, _query_int(request, "ack", 0, 0, MAX_SEQ)


def _query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        msg = f"{name} must be a whole number from {low} to {high}"
        raise ValueError(msg)
    return int(raw)


class DirectIngest:
    """ASGI middleware serving `/chatra/<token>`, any method, ahead of Starlette's router.

    Ingest is the path under load, a request per webhook. Starlette's router and its
    exception wrappers took about a fifth of the event loop's time per event (`make bench`,
    sampled with py-spy), so the handler is called here, with Starlette's own Request and
    Response. Every other path goes on to the router. A wrong token is a 404 whatever the
    method, like an unknown path, never a 405.
    """

    def __init__(self, app: ASGIApp, handlers: Handlers) -> None:
        self.app = app
        self.handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve an ingest request, or pass any other on."""
        if scope["type"] == "http" and scope["path"].startswith(INGEST_PREFIX):
            token = scope["path"][len(INGEST_PREFIX) :]
            if token and "/" not in token:
                scope["path_params"] = {"token": token}
                response = await self.handlers.ingest(Request(scope, receive))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class Handlers:
    """The route handlers, bound to one app's settings, store and metrics."""

    def __init__(self, settings: InboxSettings, store: EventStore, metrics: InboxMetrics):
        self.settings = settings
        self.store = store
        self.metrics = metrics

    def routes(self) -> list[Route]:
        """The app's routes, but for ingest (see `DirectIngest`)."""
        return [
            Route("/events", self.events, methods=["GET"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/metrics", self.metrics_page, methods=["GET"]),
        ]

    def _reject(self, request: Request, reason: str, response: Response) -> Response:
        self.metrics.rejected.labels(reason=reason).inc()
        _note(request, f"rejected={reason}")
        return response

    async def _read_body(self, request: Request) -> bytes:
        limit = self.settings.max_body
        declared = request.headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            raise _TooLargeError
        # The ASGI messages themselves (Request.stream's generator costs more than this loop).
        chunks: list[bytes] = []
        size, more = 0, True
        async with asyncio.timeout(self.settings.body_timeout):
            while more:
                message = await request.receive()
                if message["type"] == "http.disconnect":
                    raise ClientDisconnect
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
                more = message.get("more_body", False)
                if size > limit:
                    raise _TooLargeError
        return b"".join(chunks)

    async def ingest(self, request: Request) -> Response:
        """`POST /chatra/<token>`: store a webhook body, answer 200 once it is committed."""
        token = self.settings.ingest_tokens.position(request.path_params["token"])
        if token is None:
            return self._reject(request, "unknown_token", not_found(request))
        if request.method != "POST":
            headers = {"allow": "POST"}
            return self._reject(request, "method", _error(405, "POST the event", headers))
        try:
            raw = await self._read_body(request)
        except _TooLargeError:
            limit = self.settings.max_body
            message = f"the body is larger than {limit} bytes"
            return self._reject(request, "too_large", _error(413, message, _CLOSE))
        except TimeoutError:
            seconds = self.settings.body_timeout
            message = f"the body did not arrive within {seconds:g} s"
            return self._reject(request, "timeout", _error(408, message, _CLOSE))
        except ClientDisconnect:
            return self._reject(request, "disconnected", _error(400, "disconnected", _CLOSE))
        try:
            # A large body takes milliseconds to check: not on the loop, where every other
            # request would wait for it.
            if len(raw) > INLINE_PARSE_BYTES:
                event = await to_thread.run_sync(parse_body, raw)
            else:
                event = parse_body(raw)
        except BodyError as exc:
            return self._reject(request, exc.reason, _error(400, str(exc)))
        try:
            appended = await asyncio.wrap_future(self.store.append_soon(event))
        except EventRefusedError as exc:
            LOGGER.warning("An event of %d bytes was refused by the store: %s", len(raw), exc)
            message = "the store refused this event; sending it again will not help"
            return self._reject(request, "store_refused", _error(400, message))
        except StoreError as exc:
            LOGGER.warning("An event of %d bytes was not stored: %s", len(raw), exc)
            message = "the event could not be stored; send it again"
            return self._reject(request, "store_unavailable", _error(503, message))
        if appended.duplicate:
            self.metrics.duplicates.inc()
        else:
            self.metrics.count_stored(event.event_name)
        _note(
            request,
            f"event={loggable_name(event.event_name)} bytes={len(raw)} seq={appended.seq}"
            f" token={token}" + (" duplicate" if appended.duplicate else ""),
        )
        answer = b'{"seq":%d,"duplicate":%s}' % (appended.seq, _JSON_BOOLEAN[appended.duplicate])
        return Response(answer, media_type="application/json")

    def _unauthorized(self, request: Request) -> Response | None:
        """The 401 for a request without the read token, or None when it has it."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and self.settings.read_token.accepts(token.strip()):
            return None
        headers = {"www-authenticate": "Bearer"}
        message = "send the read token as 'Authorization: Bearer <token>'"
        return self._reject(request, "unauthorized", _error(401, message, headers))

    async def events(self, request: Request) -> Response:
        """`GET /events?after=SEQ&limit=N[&reader=NAME&ack=SEQ]`: events after SEQ, in order.

        Needs the read token. A reader that names itself acknowledges `ack`: `prune` may
        delete events up to it.
        """
        if refused := self._unauthorized(request):
            return refused
        try:
            after = _query_int(request, "after", 0, 0, MAX_SEQ)
            limit = _query_int(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
            reader = _reader(request)
        except ValueError as exc:
            return self._reject(request, "bad_query", _error(400, str(exc)))
        try:
            body, count = await to_thread.run_sync(self._page, after, limit, reader)
        except StoreError as exc:
            LOGGER.warning("A page of events was not read: %s", exc)
            return _error(503, "the store is not available; try again")
        _note(request, f"after={after} events={count}" + (f" reader={reader[0]}" if reader else ""))
        return Response(body, media_type="application/json")

    def _page(self, after: int, limit: int, reader: tuple[str, int] | None) -> tuple[bytes, int]:
        # Reading and encoding up to PAGE_BYTES of bodies: on a worker thread.
        if reader is not None:
            self.store.acknowledge(*reader)
        page = self.store.read(after, limit)
        return page_json(page, after, self.metrics), len(page.events)

    async def healthz(self, _request: Request) -> Response:
        """`GET /healthz`: 200 when the store answers, else 503."""
        try:
            await to_thread.run_sync(self.store.ping)
        except StoreError as exc:
            LOGGER.warning("Health check failed: %s", exc)
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def metrics_page(self, request: Request) -> Response:
        """`GET /metrics`: Prometheus' text format, for the read token unless public."""
        if not self.settings.public_metrics and (refused := self._unauthorized(request)):
            return refused
        return Response(self.metrics.render(), media_type=CONTENT_TYPE_LATEST)
