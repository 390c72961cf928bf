"""The three Chatra streams: messages, pushed messages and clients."""

from __future__ import annotations

import typing as t
from functools import cached_property

from singer_sdk import SchemaDirectory, StreamSchema
from typing_extensions import override

from chatra_client import id_problem
from tap_chatra import schemas
from tap_chatra.client import ChatraStream
from tap_chatra.client_refresh import NamedClients, RefreshRule, known_clients
from tap_chatra.id_state import Plan, RefreshRun, fingerprint, plan_fetches
from tap_chatra.settings import DEFAULT_FINGERPRINT_IGNORE
from tap_chatra.webhook_ids import WebhookIdsStream

if t.TYPE_CHECKING:
    from tap_chatra.run_cursor import Interrupted

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


class ClientsStream(ChatraStream):
    """Clients, fetched again when due (client_refresh.py), emitted only when they changed."""

    name = "clients"
    resource = "clients"
    path = "/clients/{id}"
    schema = StreamSchema(SCHEMAS, key="clients")
    refreshes_every_run = True
    resume_rule = (
        "each is fetched again when a webhook event or a message names it, or once its last "
        "fetch is client_refresh_hours old, and emitted only if it changed"
    )
    _refresh_started = 0

    @cached_property
    def refresh_run(self) -> RefreshRun:
        """This run's refresh of the clients due."""
        return RefreshRun(self.stream_state, logger=self.logger)

    @cached_property
    def named(self) -> NamedClients:
        """Clients named by webhook events or messages since their last fetch."""
        return NamedClients(self.stream_state, logger=self.logger)

    @override
    def read_id_state(self) -> None:
        super().read_id_state()
        _ = self.refresh_run, self.named

    @override
    def source_ids(self, configured: list[str] | None = None) -> list[str]:
        return known_clients(super().source_ids(configured), self.named, self.id_state)

    @override
    def change_fingerprint(self, body: dict[str, t.Any]) -> str:
        ignored = self._fingerprint_ignore
        return fingerprint({key: value for key, value in body.items() if key not in ignored})

    @cached_property
    def _fingerprint_ignore(self) -> frozenset[str]:
        names = self.config.get("client_fingerprint_ignore", DEFAULT_FINGERPRINT_IGNORE)
        return frozenset(name for name in names or () if isinstance(name, str))

    @override
    def plan(self, now: float, *, configured: list[str] | None = None) -> Plan:
        self._refresh_started = self.refresh_run.start(now)
        rule = RefreshRule(
            self.named,
            refresh_started=self._refresh_started,
            refresh_seconds=float(self.config.get("client_refresh_hours", 24)) * 3600,
        )
        return plan_fetches(
            self.source_ids(configured),
            self.id_state,
            now=int(now),
            missing_retry_seconds=self._chatra.missing_retry_seconds,
            is_due=rule.is_due,
        )

    def note_named(self, client_id: str, now: int) -> None:
        """Note that a message or a webhook event named this client now.

        A client already named since its last fetch keeps that name: it is due either way,
        and it keeps its place in the order STATE lists the names, which a resumed clients
        stream plans in (run_cursor.py). A backfill names the same client again and again.
        """
        named_at = self.named.named_at(client_id)
        if named_at is not None:
            fetched_at = self.id_state.fetched_at(client_id)
            if fetched_at is None or named_at >= fetched_at:
                return
        self.named.add(client_id, now)

    @override
    def after_fetch(self, record_id: str) -> None:
        self.named.fetched(record_id)

    @override
    def replan(self, interrupted: Interrupted) -> Plan:
        # Planning again resumes the interrupted run's refresh (RefreshRun.start), which its
        # STATE holds as started; if that plan is not the one the cursor counted, this run
        # starts its own refresh as it would have.
        marks = self.refresh_run.marks()
        plan = super().replan(interrupted)
        if not interrupted.matches(plan.to_fetch):
            self.refresh_run.restore(marks)
        return plan

    @override
    def resume_stamp(self, started: int) -> int:
        # As `stamp` did in the interrupted run: no earlier than its refresh's start.
        return max(started, self._refresh_started)

    @override
    def stamp(self) -> int:
        # A refresh may start a moment ahead of the clock (see RefreshRun.start); a client done
        # before then is stamped with the start, so a resumed run counts it as done.
        return max(super().stamp(), self._refresh_started)

    @override
    def finish(self, now: float) -> None:
        self.refresh_run.finish(now)
