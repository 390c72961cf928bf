"""`create_app(settings, store)`: the inbox as an ASGI app, with no global state."""

from __future__ import annotations

import typing as t

from starlette.applications import Starlette
from starlette.middleware import Middleware

from chatra_webhooks.access_log import AccessLog
from chatra_webhooks.metrics import InboxMetrics
from chatra_webhooks.routes import DirectIngest, Handlers, not_found

if t.TYPE_CHECKING:
    from chatra_webhooks.settings import InboxSettings
    from chatra_webhooks.store import EventStore


def create_app(settings: InboxSettings, store: EventStore) -> Starlette:
    """The inbox's app; `app.state.metrics` holds its Prometheus metrics."""
    metrics = InboxMetrics()
    handlers = Handlers(settings, store, metrics)
    app = Starlette(
        routes=handlers.routes(),
        middleware=[
            Middleware(AccessLog, metrics=metrics),
            Middleware(DirectIngest, handlers=handlers),
        ],
        exception_handlers={404: not_found},
    )
    app.state.metrics = metrics
    return app
