"""tap-chatra: settings, streams in sync order, and the CLI's error handling."""

from __future__ import annotations

import sys
import time
import typing as t
from functools import cached_property

from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.helpers.capabilities import PluginCapabilities, TapCapabilities
from singer_sdk.tap_base import CliTestOptionValue
from typing_extensions import override

from chatra_client import ChatraClient, ChatraError, ConnectionSettings, connection_properties
from chatra_client.plugin import ChatraPlugin
from chatra_client.stopping import StopSignals
from tap_chatra.client import ChatraStream
from tap_chatra.connection import HttpResources
from tap_chatra.errors import StateInputError, StopRequestedError
from tap_chatra.id_sources import IdLists, IdSourceError, collect_ids
from tap_chatra.settings import TAP_SETTINGS
from tap_chatra.state_flush import StateSizeWriter
from tap_chatra.state_input import STATE_FIX, read_state_file, state_problem
from tap_chatra.streams import ClientsStream, MessagesStream, PushedMessagesStream
from tap_chatra.webhook_ids import WebhookIdsStream
from tap_chatra.webhook_streams import (
    ChatMessagesStream,
    EventStream,
    WebhookEventsStream,
    check_webhook_settings,
    unread_webhook_source,
)

if t.TYPE_CHECKING:
    import click
    from singer_sdk import Stream
    from singer_sdk.helpers.capabilities import CapabilitiesEnum
    from singer_sdk.plugin_base import _ConfigInput

    from tap_chatra.events import EventIds

#: Webhook events sync first, so that the IDs they name are fetched in the same run; clients
#: sync last, so that they include the clients of the messages just fetched.
SYNC_ORDER = ("webhook_events", "chat_messages", "messages", "pushed_messages", "clients")


class _Checked:
    """A checked `--state` text handed to the SDK as the file it reads, without a copy.

    io.StringIO would copy it at four bytes a character: 80 MB for a million IDs' STATE.
    """

    def __init__(self, text: str) -> None:
        self._text = text

    def read(self) -> str:
        """The whole text, as the SDK reads it."""
        return self._text


class TapChatra(ChatraPlugin, Tap):
    """Singer tap for Chatra messages, pushed messages and clients, with per-record ID state."""

    name = "tap-chatra"
    capabilities: t.ClassVar[list[CapabilitiesEnum]] = [
        TapCapabilities.CATALOG,
        TapCapabilities.DISCOVER,
        TapCapabilities.STATE,
        PluginCapabilities.ABOUT,
        PluginCapabilities.STREAM_MAPS,
        PluginCapabilities.FLATTENING,
        PluginCapabilities.STRUCTURED_LOGGING,
    ]
    config_jsonschema: t.ClassVar[dict[str, t.Any]] = th.PropertiesList(
        *connection_properties(), *TAP_SETTINGS
    ).to_dict()

    #: Seconds between progress lines; a class attribute so tests can shorten it.
    progress_interval: float = 30.0
    #: The SDK's writer, noting the size of each STATE (the flush schedule needs it).
    message_writer_class = StateSizeWriter
    #: SIGTERM and SIGINT, handled while `invoke` runs; tests may call `request` on it.
    stop_signals = StopSignals()
    #: The last webhook event whose IDs were queued in this run (both webhook streams read it).
    events_discovered_through: int = 0

    def __init__(self, *, validate_config: bool = True, **kwargs: t.Any) -> None:
        super().__init__(validate_config=validate_config, **kwargs)
        # Malformed keys stop the run here, before any request; discovery needs no keys.
        self._connection = (
            ConnectionSettings.from_config(self.config, plugin=self.name)
            if validate_config
            else None
        )
        if validate_config:
            check_webhook_settings(self.config)
            selected = [name for name, stream in self.streams.items() if stream.selected]
            unread = unread_webhook_source(self.config, selected)
            if unread:
                self.logger.warning("%s", unread)

    @property
    def connection(self) -> ConnectionSettings:
        """The validated connection settings."""
        if self._connection is None:
            self._connection = ConnectionSettings.from_config(self.config, plugin=self.name)
        return self._connection

    @cached_property
    def http(self) -> HttpResources:
        """Auth, rate limiter, retry policy and session, shared by all streams of this run."""
        concurrency = int(self.config.get("max_concurrency", 4))
        return HttpResources.for_settings(self.connection, concurrency=concurrency)

    @cached_property
    def id_lists(self) -> IdLists:
        """The IDs of every stream, read from all sources before the first request.

        IDs of a stream fetched once, ever, that its state has already fetched are only
        counted: at a million IDs done, keeping them again would double the tap's memory.
        """
        done = {
            name: stream.id_state.is_fetched
            for name, stream in self.streams.items()
            if isinstance(stream, ChatraStream) and not stream.refreshes_every_run
        }
        return collect_ids(self.config, self.logger, done)

    @property
    def missing_retry_seconds(self) -> float:
        """How long an ID that answered 404 is left alone."""
        return float(self.config.get("missing_retry_hours", 24)) * 3600

    def state_writer_bytes(self) -> int:
        """Size in bytes of the last STATE message written."""
        writer = self.message_writer
        return writer.last_state_bytes if isinstance(writer, StateSizeWriter) else 0

    @override
    def load_state(self, state: dict[str, t.Any]) -> None:
        problem = state_problem(state)
        if problem:
            msg = f"The state given with --state {problem}; {STATE_FIX}"
            raise StateInputError(msg)
        super().load_state(state)
        # The SDK writes the STATE it was given when the sync starts: reading the per-ID maps
        # now means that STATE is already in their compact, cached encoding, and the parsed
        # JSON is let go. (The given dict is only read: see id_state.py.)
        bookmarks = state.get("bookmarks")
        resuming = [
            stream
            for name, stream in self.streams.items()
            if isinstance(stream, ChatraStream)
            and isinstance(bookmarks, dict)
            and name in bookmarks
        ]
        for stream in resuming:
            stream.read_id_state()
        # A run killed mid-stream left a cursor (run_cursor.py): take over what it did before
        # the sync's first STATE, so that a kill of this run keeps it too.
        for stream in resuming:
            stream.resume_interrupted_run()

    @override
    def discover_streams(self) -> list[Stream]:
        return [
            WebhookEventsStream(self),
            ChatMessagesStream(self),
            MessagesStream(self),
            PushedMessagesStream(self),
            ClientsStream(self),
        ]

    @property
    @override
    def streams(self) -> dict[str, Stream]:
        # The SDK orders streams by name, which would sync clients before the messages whose
        # clients they should include.
        streams = super().streams
        order = {name: position for position, name in enumerate(SYNC_ORDER)}
        return dict(sorted(streams.items(), key=lambda item: order.get(item[0], len(order))))

    def queue_message_client(self, client_id: str) -> None:
        """Have the clients stream fetch the client of a message just emitted.

        Also when the clients stream is not selected in this run: the queue lives in its
        state, so a later run that selects it fetches the client.
        """
        clients = self.streams.get("clients")
        if self.config.get("fetch_message_clients", True) and isinstance(clients, ClientsStream):
            clients.note_named(client_id, int(time.time()))

    def queue_event_ids(self, found: EventIds) -> None:
        """Have the REST streams fetch, in this run, the records a webhook event names.

        A client an event names counts as named since its last fetch (client_refresh.py), so
        it is fetched in this run whether or not it was fetched before; message IDs wait in
        their stream's queue until fetched once.
        """
        now = int(time.time())
        for name, record_ids in (
            ("messages", found.messages),
            ("pushed_messages", found.pushed_messages),
        ):
            stream = self.streams.get(name)
            if isinstance(stream, WebhookIdsStream) and stream.selected and record_ids:
                stream.webhook_ids.add(record_ids, now)
        clients = self.streams.get("clients")
        if isinstance(clients, ClientsStream) and clients.selected:
            for client_id in found.clients:
                clients.note_named(client_id, now)

    def check_connection(self) -> None:
        """Read the ID sources, then prove the keys with one harmless request.

        With a webhook source, prove that too: the inbox takes the read token, or the file
        can be read.
        """
        _ = self.id_lists
        with ChatraClient(self.connection, limiter=self.http.limiter, logger=self.logger) as api:
            api.check_credentials()
        events = self.streams.get("webhook_events")
        if isinstance(events, EventStream):
            events.check_source()

    @classmethod
    @override
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: _ConfigInput | None = None,
        state: t.IO[str] | None = None,
        catalog: t.IO[str] | None = None,
    ) -> None:
        stop = cls.stop_signals
        stop.reset()
        try:
            with stop.installed():
                state_text = None if state is None else _Checked(read_state_file(state))
                super().invoke(
                    about=about,
                    about_format=about_format,
                    config=config,
                    state=t.cast("t.IO[str] | None", state_text),
                    catalog=catalog,
                )
        except StopRequestedError as error:
            cls.logger.error("%s", error)
            sys.exit(stop.exit_code(error.signum))
        except (ChatraError, IdSourceError) as error:
            # One line that says what to do, and no traceback after it.
            cls.report_error(str(error))
            sys.exit(1)
        if stop.received is not None:
            # The signal came after the last ID: everything is done, but the run was stopped.
            cls.logger.error("Stopped by signal %d after the sync had finished.", stop.received)
            sys.exit(stop.exit_code(stop.received))

    @classmethod
    @override
    def cb_test(cls, ctx: click.Context, param: click.Option, value: str) -> None:
        # The SDK's --test syncs a record of every stream; checking the keys takes one request.
        if value != CliTestOptionValue.All.value:
            super().cb_test(ctx, param, value)
            return
        config_input = ctx.params.get("config")
        try:
            tap = cls(
                config=dict(getattr(config_input, "config", {})),
                parse_env_config=bool(getattr(config_input, "parse_env", False)),
                setup_mapper=False,
            )
            tap.check_connection()
        except (ChatraError, IdSourceError) as error:
            cls.report_error(f"Connection test failed: {error}")
            ctx.exit(1)
        cls.logger.info("Connection test passed: Chatra accepted the keys.")
        ctx.exit()
