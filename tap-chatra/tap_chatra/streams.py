"""The three Chatra streams: messages, pushed messages and clients."""

from __future__ import annotations

import typing as t
from functools import cached_property

from singer_sdk import SchemaDirectory, StreamSchema
from typing_extensions import override

from chatra_client import id_problem
from tap_chatra import schemas
from tap_chatra.id_state import Plan, RefreshRun, fingerprint, plan_fetches
from tap_chatra.settings import DEFAULT_FINGERPRINT_IGNORE
from tap_chatra.webhook_ids import WebhookIdsStream

SCHEMAS = SchemaDirectory(schemas)


class MessagesStream(WebhookIdsStream):
    """Messages, each fetched once: a message never changes after it was fetched."""

    name = "messages"
    resource = "messages"
    path = "/messages/{id}"
    schema = StreamSchema(SCHEMAS, key="messages")

    @override
    def after_emit(self, body: dict[str, t.Any]) -> None:
        client_id = body.get("clientId")
        if client_id is None:
            return
        problem = id_problem(client_id)
        if problem:
            self.logger.warning(
                "%s: message %r has a clientId that cannot be fetched (%s); skipped.",
                self.name,
                body.get("id"),
                problem,
            )
            return
        self._chatra.queue_message_client(str(client_id))


class PushedMessagesStream(MessagesStream):
    """Messages sent through the pushedMessages API; same shape as messages."""

    name = "pushed_messages"
    resource = "pushedMessages"
    path = "/pushedMessages/{id}"


class ClientsStream(WebhookIdsStream):
    """Clients, fetched again every run and emitted only when their content changed."""

    name = "clients"
    resource = "clients"
    path = "/clients/{id}"
    schema = StreamSchema(SCHEMAS, key="clients")
    refreshes_every_run = True
    _refresh_started = 0

    @cached_property
    def refresh_run(self) -> RefreshRun:
        """This run's refresh of every client, and the clients queued by message streams."""
        return RefreshRun(self.stream_state, logger=self.logger)

    @override
    def read_id_state(self) -> None:
        super().read_id_state()
        _ = self.refresh_run

    @override
    def source_ids(self) -> list[str]:
        configured = super().source_ids()
        if not self.config.get("fetch_message_clients", True):
            return configured
        return list(dict.fromkeys([*configured, *self.refresh_run.queued()]))

    @override
    def change_fingerprint(self, body: dict[str, t.Any]) -> str:
        ignored = self._fingerprint_ignore
        return fingerprint({key: value for key, value in body.items() if key not in ignored})

    @cached_property
    def _fingerprint_ignore(self) -> frozenset[str]:
        names = self.config.get("client_fingerprint_ignore", DEFAULT_FINGERPRINT_IGNORE)
        return frozenset(name for name in names or () if isinstance(name, str))

    @override
    def plan(self, now: float) -> Plan:
        self._refresh_started = self.refresh_run.start(now)
        return plan_fetches(
            self.source_ids(),
            self.id_state,
            now=int(now),
            missing_retry_seconds=self._chatra.missing_retry_seconds,
            refresh_started=self._refresh_started,
        )

    @override
    def stamp(self) -> int:
        # A refresh may start a moment ahead of the clock (see RefreshRun.start); a client done
        # before then is stamped with the start, so a resumed run counts it as done.
        return max(super().stamp(), self._refresh_started)

    @override
    def finish(self, now: float) -> None:
        self.refresh_run.finish(now)
