"""A durable inbox for Chatra's webhooks, read by tap-chatra through `GET /events`."""

from __future__ import annotations

from chatra_webhooks.app import create_app
from chatra_webhooks.events import BodyError, IncomingEvent, parse_body
from chatra_webhooks.settings import InboxSettings, SettingsError
from chatra_webhooks.sql_store import SqlEventStore
from chatra_webhooks.store import Appended, EventStore, StoredEvent, StoreError

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
