"""The webhook streams: events as they arrived, and the chat messages they carry.

Both read the same feed, each with its own bookmark: the webhook inbox's read API (paged by
`seq` with the SDK's paginator) when `webhook_inbox_url` is set, else `webhook_events_file`.
Every event read also hands the IDs it names to the REST streams, which sync after these.

A position is moved past an event only once everything the stream emits for it is written
(the code after each `yield` runs when the SDK asks for the next record), so a killed run
reads that event again rather than losing part of it; keys make the repeat harmless.
"""

from __future__ import annotations

import typing as t
from pathlib import Path
from urllib.parse import urlsplit

import backoff
import requests
from singer_sdk import StreamSchema
from singer_sdk.authenticators import BearerTokenAuthenticator
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.streams import RESTStream
from typing_extensions import override

from chatra_client import ChatraError, ConfigError
from chatra_client.paths import _is_loopback as is_loopback
from tap_chatra.event_files import EventFile
from tap_chatra.events import event_row, ids_in_event, message_rows
from tap_chatra.inbox import InboxPaginator, check_inbox_response, inbox_events, read_params
from tap_chatra.streams import SCHEMAS

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from singer_sdk.helpers.types import Auth, Context

    from tap_chatra.tap import TapChatra

INBOX_SETTING = "webhook_inbox_url"
FILE_SETTING = "webhook_events_file"


#: The streams that read the webhook source, and so hand its IDs on to the REST streams.
EVENT_STREAMS = ("webhook_events", "chat_messages")


def unread_webhook_source(config: Mapping[str, t.Any], selected: Iterable[str]) -> str | None:
    """Why a run would read none of its configured webhook source, or None.

    Only the event streams read the events: with both deselected, the IDs the events carry
    are found by no run, which would otherwise go unnoticed.
    """
    setting = next((name for name in (INBOX_SETTING, FILE_SETTING) if config.get(name)), None)
    if setting is None or set(EVENT_STREAMS) & set(selected):
        return None
    return (
        f"{setting} is set, but neither {' nor '.join(EVENT_STREAMS)} is selected: this run "
        "reads no webhook events, so it finds none of the message and client IDs they carry. "
        "Select one of them (a stream map can drop its records)."
    )


def check_webhook_settings(config: Mapping[str, t.Any]) -> None:
    """Stop a run whose webhook source settings cannot work, with one line.

    Raises:
        ConfigError: For both sources at once, an inbox URL without a token, or a URL that
            is not http(s) (plain http only on this machine: the token would travel in clear).
    """
    url = config.get(INBOX_SETTING)
    if not url:
        return
    if config.get(FILE_SETTING):
        msg = f"Set {INBOX_SETTING} or {FILE_SETTING}, not both: they feed the same streams."
        raise ConfigError(msg)
    if not config.get("webhook_inbox_token"):
        msg = f"{INBOX_SETTING} is set but webhook_inbox_token is missing; set the read token."
        raise ConfigError(msg)
    parts = urlsplit(str(url))
    plain_remote = parts.scheme == "http" and not is_loopback(parts.hostname or "")
    if parts.scheme not in {"http", "https"} or not parts.hostname or plain_remote:
        msg = (
            f"{INBOX_SETTING} {url!r} must be an https URL (plain http only for 127.0.0.1 "
            "or localhost: the read token would travel unencrypted)."
        )
        raise ConfigError(msg)


class InboxUnavailableError(ChatraError):
    """The inbox did not answer, or kept failing after retries."""


class EventStream(RESTStream[int]):
    """Reads webhook events, from the inbox or the file, from where this stream stopped."""

    path = "/events"
    #: Events asked for per page of the inbox's read API.
    page_size = 500
    replication_key = "seq"
    is_sorted = True

    def __init__(self, tap: TapChatra) -> None:
        super().__init__(tap)
        self._chatra = tap
        self._read_from = 0

    # The inbox's read API, through the SDK's REST machinery.

    @property
    @override
    def url_base(self) -> str:
        return str(self.config.get(INBOX_SETTING) or "").rstrip("/")

    @property
    @override
    def authenticator(self) -> Auth:
        return BearerTokenAuthenticator(token=str(self.config.get("webhook_inbox_token") or ""))

    @property
    @override
    def timeout(self) -> float:  # type: ignore[override]  # requests takes float seconds
        return float(self.config.get("request_timeout", 30))

    @override
    def backoff_max_tries(self) -> int:
        return 4

    @override
    def backoff_wait_generator(self) -> t.Generator[float, None, None]:
        # The inbox is the user's own service: a few seconds tell whether it is there.
        return backoff.expo(factor=0.5)

    @override
    def get_new_paginator(self) -> InboxPaginator:
        # Where this run starts is saved in the STATE it started from: safe to acknowledge.
        self._read_from = self.resume_after()
        return InboxPaginator(self._read_from)

    @override
    def get_url_params(
        self, context: Context | None, next_page_token: int | None
    ) -> dict[str, t.Any]:
        return read_params(
            next_page_token or 0,
            self.page_size,
            reader=f"tap-chatra:{self.name}",
            acknowledged=self._read_from,
        )

    @override
    def validate_response(self, response: requests.Response) -> None:
        check_inbox_response(response, stream=self.name)

    @override
    def response_error_message(self, response: requests.Response) -> str:
        # Never the body: it may hold chat text, which is personal data.
        return f"{self.name}: the webhook inbox answered HTTP {response.status_code}"

    @override
    def parse_response(self, response: requests.Response) -> Iterable[dict[str, t.Any]]:
        return inbox_events(response, stream=self.name)

    def check_source(self) -> None:
        """Prove that the inbox takes the read token (one request), or the file can be read.

        Raises:
            InboxError: If the inbox refuses the token or is not an inbox.
            InboxUnavailableError: If it does not answer.
            IdSourceError: If the file cannot be read.
        """
        if self.config.get(INBOX_SETTING):
            try:
                response = self.requests_session.get(
                    self.url_base + self.path,
                    params={"after": 0, "limit": 1},
                    auth=self.authenticator,
                    timeout=self.timeout,
                )
            except requests.RequestException as error:
                raise self._unavailable(error) from None
            check_inbox_response(response, stream=self.name)
            for _ in inbox_events(response, stream=self.name):
                break
        elif file_name := self.config.get(FILE_SETTING):
            EventFile(Path(file_name).expanduser(), {}, self.logger).check_readable()

    def _unavailable(self, error: Exception) -> InboxUnavailableError:
        msg = (
            f"{self.name}: the webhook inbox at {self.url_base} did not answer "
            f"({type(error).__name__}); is it running, and is {INBOX_SETTING} right?"
        )
        return InboxUnavailableError(msg)

    # Where this stream stopped.

    def resume_after(self) -> int:
        """The last inbox `seq` this stream is done with."""
        done = self.stream_state.get("events_done")
        return done if isinstance(done, int) else 0

    def _mark_done(self, seq: int) -> None:
        self.stream_state["events_done"] = seq

    # Reading events, whichever the source.

    def events(self, context: Context | None) -> Iterator[dict[str, t.Any]]:
        """Every event after this stream's position, as webhook_events rows, in `seq` order.

        Each event's IDs are queued for the REST streams when it is read; the position moves
        past it once the caller asks for the next one.
        """
        if self.config.get(INBOX_SETTING) or self.config.get(FILE_SETTING):
            bookmark = self.get_starting_replication_key_value(context)
            if isinstance(bookmark, int):
                self.logger.info("%s: resuming from STATE at event seq %d.", self.name, bookmark)
            else:
                self.logger.info("%s: no event seq in STATE: reading from the first.", self.name)
        if self.config.get(INBOX_SETTING):
            yield from self._inbox_events(context)
        elif file_name := self.config.get(FILE_SETTING):
            yield from self._file_events(Path(file_name).expanduser())

    def _inbox_events(self, context: Context | None) -> Iterator[dict[str, t.Any]]:
        try:
            for event in self.request_records(context):
                self._discover(event)
                yield event
                self._mark_done(event["seq"])
        except (RetriableAPIError, requests.RequestException) as error:
            raise self._unavailable(error) from None

    def _file_events(self, path: Path) -> Iterator[dict[str, t.Any]]:
        reader = EventFile(path, self.stream_state, self.logger)
        for event in reader.events(self.name):
            row = event_row(event.seq, event.payload, received_at=event.received_at)
            self._discover(row)
            yield row
            reader.advance(event.seq, event.end_offset, event.line)

    def _discover(self, event: dict[str, t.Any]) -> None:
        # Both streams read the same events; the IDs of each are handed on once per run.
        if event["seq"] <= self._chatra.events_discovered_through:
            return
        self._chatra.events_discovered_through = event["seq"]
        found = ids_in_event(event["payload"])
        for problem in found.problems:
            self.logger.warning("%s: event seq %d: %s; skipped.", self.name, event["seq"], problem)
        self._chatra.queue_event_ids(found)


class WebhookEventsStream(EventStream):
    """One row per webhook event, INCREMENTAL on `seq`."""

    name = "webhook_events"
    primary_keys: t.ClassVar[tuple[str, ...]] = ("seq",)
    schema = StreamSchema(SCHEMAS, key="webhook_events")

    @override
    def resume_after(self) -> int:
        # One row per event: the SDK's bookmark alone says which events are written.
        bookmark = self.get_starting_replication_key_value(None)
        return max(super().resume_after(), bookmark if isinstance(bookmark, int) else 0)

    @override
    def get_records(self, context: Context | None) -> Iterator[dict[str, t.Any]]:
        yield from self.events(context)


class ChatMessagesStream(EventStream):
    """One row per message of chatFragment and chatTranscript events, keyed on the message."""

    name = "chat_messages"
    primary_keys: t.ClassVar[tuple[str, ...]] = ("key",)
    schema = StreamSchema(SCHEMAS, key="chat_messages")

    @override
    def resume_after(self) -> int:
        # The bookmark's event may have had more messages than were written: read it again.
        bookmark = self.get_starting_replication_key_value(None)
        again = bookmark - 1 if isinstance(bookmark, int) else 0
        return max(super().resume_after(), again)

    @override
    def get_records(self, context: Context | None) -> Iterator[dict[str, t.Any]]:
        # A message seen in a fragment comes again in the transcript: one row per run.
        emitted: set[str] = set()
        for event in self.events(context):
            for row in message_rows(event):
                if row["key"] not in emitted:
                    emitted.add(row["key"])
                    yield row
