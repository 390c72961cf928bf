"""A durable inbox for Chatra's webhooks, read by tap-chatra through `GET /events`.

The names below are imported on first use, so that importing a light submodule (the pytest
plugin `chatra_webhooks.testing`, the settings) does not load the server, SQLAlchemy and
Starlette.
"""

from __future__ import annotations

import importlib
import typing as t

if t.TYPE_CHECKING:
    from chatra_webhooks.app import create_app
    from chatra_webhooks.events import BodyError, IncomingEvent, parse_body
    from chatra_webhooks.settings import InboxSettings, SettingsError
    from chatra_webhooks.sql_store import SqlEventStore
    from chatra_webhooks.store import Appended, EventStore, StoredEvent, StoreError

#: Each public name and the module it comes from.
_HOMES = {
    "Appended": "store",
    "BodyError": "events",
    "EventStore": "store",
    "InboxSettings": "settings",
    "IncomingEvent": "events",
    "SettingsError": "settings",
    "SqlEventStore": "sql_store",
    "StoreError": "store",
    "StoredEvent": "store",
    "create_app": "app",
    "parse_body": "events",
}
__all__ = [
    "Appended",
    "BodyError",
    "EventStore",
    "InboxSettings",
    "IncomingEvent",
    "SettingsError",
    "SqlEventStore",
    "StoreError",
    "StoredEvent",
    "create_app",
    "parse_body",
]


def __getattr__(name: str) -> t.Any:
    if name not in _HOMES:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
