"""The base stream: one GET per ID through the SDK's request hooks, a few in flight at once.

Records are emitted in ID order from the main thread; per-ID state is updated only after the
record it covers has been written, so every STATE message covers exactly what was emitted.
While a stream runs, its STATE holds the bookmark of the run's start and a cursor into the
run's plan instead of every ID fetched so far (run_cursor.py).
"""

from __future__ import annotations

import functools
import logging
import sys
import time
import typing as t
from collections import Counter
from functools import cached_property

import requests
from singer_sdk.singerlib.catalog import REPLICATION_INCREMENTAL
from singer_sdk.streams import RESTStream
from singer_sdk.streams.rest import PageContext
from typing_extensions import override

from chatra_client import (
    ChatraError,
    InvalidIdError,
    NotFoundError,
    RejectedError,
    RetriesExhaustedError,
    raise_for_response,
    record_path,
    retrying,
)
from tap_chatra.bodies import UnusableBodyError, decode_object
from tap_chatra.errors import (
    SetAsideError,
    StopRequestedError,
    SystemicFailureError,
    UnexpectedBodyError,
    unusable_answer,
)
from tap_chatra.id_map import MINUTE
from tap_chatra.id_sources import IdSourceError, collect_ids
from tap_chatra.id_state import IdState, Plan, plan_fetches
from tap_chatra.progress import Periodic, Progress, format_duration
from tap_chatra.records import RecordShaper
from tap_chatra.run_cursor import RUN_KEY, Interrupted, RunCursor
from tap_chatra.set_aside import SetAsideLog
from tap_chatra.state_flush import FlushSchedule
from tap_chatra.workers import Cancelled, WorkerPool, in_order

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from concurrent.futures import Future

    from singer_sdk.helpers.types import Auth, Context, RequestFunc

    from tap_chatra.tap import TapChatra

Body: t.TypeAlias = dict[str, t.Any]

#: How many answers naming another ID are logged one by one; the rest are counted.
_MAX_LISTED = 20


class ChatraStream(RESTStream[None]):
    """A Chatra resource fetched one record per ID, with per-ID state."""

    #: The API resource name, e.g. ``pushedMessages``.
    resource: t.ClassVar[str]
    #: Clients are fetched again when due and emitted only when changed; messages only once.
    refreshes_every_run: t.ClassVar[bool] = False
    #: What a run resumed from STATE does with an ID fetched before, for the log.
    resume_rule: t.ClassVar[str] = "each is not fetched again"
    primary_keys: t.ClassVar[tuple[str, ...]] = ("id",)

    def __init__(self, tap: TapChatra) -> None:
        super().__init__(tap)
        self._chatra = tap
        self._pool: WorkerPool | None = None
        self._set_aside = SetAsideLog(self.name)
        self._cursor: RunCursor | None = None
        # In the catalog's metadata too, as `forced-replication-method`.
        self.forced_replication_method = REPLICATION_INCREMENTAL

    # Replication: incremental by ID. STATE keeps each ID's fetch (id_state.py), so a run
    # fetches only what is new or due; there is no one column to resume from, so no
    # replication key.

    @property
    @override
    def replication_method(self) -> str:
        # Whatever a catalog asks: the per-ID state is what every run resumes from.
        return REPLICATION_INCREMENTAL

    @override
    def _increment_stream_state(
        self, latest_record: dict[str, t.Any], *, context: Context | None = None
    ) -> None:
        """Nothing: the per-ID state is updated by the stream itself, once a record is written.

        Changes SDK 0.54 behaviour: for an INCREMENTAL stream the SDK advances a single
        replication-key bookmark after each record, and raises when there is no replication
        key. tests/test_sdk_internals.py fails if an SDK upgrade stops calling this hook.
        """

    def log_resume(self) -> None:
        """Say what this stream's STATE holds, which the run resumes from."""
        fetched = len(self.id_state)
        if fetched:
            self.logger.info(
                "%s: incremental by ID: resuming from STATE, which holds %d IDs fetched by "
                "earlier runs; %s.",
                self.name,
                fetched,
                self.resume_rule,
            )
        else:
            self.logger.info(
                "%s: incremental by ID: no ID fetched before in STATE, so every ID given is new.",
                self.name,
            )

    # HTTP: the SDK's hooks, backed by chatra_client.

    @property
    @override
    def url_base(self) -> str:
        return self._chatra.connection.api_url

    @property
    @override
    def authenticator(self) -> Auth:
        return self._chatra.http.auth

    @property
    @override
    def requests_session(self) -> requests.Session:
        return self._chatra.http.session

    @property
    @override
    def timeout(self) -> float:  # type: ignore[override]  # requests takes float seconds
        return self._chatra.connection.request_timeout

    @override
    def get_url(self, context: Context | None) -> str:
        record_id = (context or {}).get("id", "")
        return self.url_base + record_path(self.resource, record_id)

    @override
    def get_new_paginator(self) -> None:
        return None

    @override
    def request_decorator(self, func: RequestFunc) -> RequestFunc:
        http = self._chatra.http
        return retrying(
            func,
            policy=http.policy,
            limiter=http.limiter,
            logger=self.logger,
            describe=f"{self.name}: GET",
            sleep=self._pool.interruptible_sleep if self._pool else time.sleep,
            stopping=self._pool.stopping if self._pool else None,
        )

    @override
    def validate_response(self, response: requests.Response) -> None:
        request = response.request
        raise_for_response(response, context=f"{self.name}: {request.method} {request.path_url}")

    @override
    def response_error_message(self, response: requests.Response) -> str:
        # Never the body: it may hold chat text, which is personal data.
        request = response.request
        status = response.status_code
        return f"{self.name}: {request.method} {request.path_url} answered HTTP {status}"

    @override
    def log(self, message: str, *args: t.Any, level: int = logging.INFO, **kwargs: t.Any) -> None:
        # The SDK logs "An unhandled error occurred while syncing" before it re-raises; an
        # error of this tap ends the run with its own one line (TapChatra.invoke), which that
        # extra line would precede and call unhandled.
        # An ID file's error is one line too (id_lists are read when the first stream plans).
        if level >= logging.ERROR and isinstance(sys.exc_info()[1], ChatraError | IdSourceError):
            return
        super().log(message, *args, level=level, **kwargs)

    @override
    def parse_response(self, response: requests.Response) -> Iterable[Body]:
        try:
            body = decode_object(response.content)
        except UnusableBodyError as problem:
            status = response.status_code
            msg = (
                f"{self.name}: GET {response.request.path_url} answered HTTP {status} without "
                f"a JSON object (the body {problem}); is api_url right?"
            )
            short = f"HTTP {status} body {problem}"
            raise UnexpectedBodyError(msg, short=short, status=status) from None
        yield body

    # Per-ID state.

    @cached_property
    def id_state(self) -> IdState:
        """This stream's per-ID map, inside its STATE bookmark."""
        return IdState(self.stream_state, logger=self.logger)

    def read_id_state(self) -> None:
        """Read this stream's per-ID state from its bookmark now rather than when first used."""
        _ = self.id_state

    def emit_state_now(self) -> int:
        """Write a STATE message now; it covers every record written so far.

        Returns the size in bytes of the last STATE written (this one, or the one before if
        nothing changed since).

        The one place that changes SDK behaviour through its internals. The SDK writes STATE
        only every `STATE_MSG_FREQUENCY` (10,000) records and at the end of a stream, and only
        if a RECORD was written since the last one (`state_manager.is_flushed`). Per-ID state
        also changes without a RECORD (404s, unchanged clients) and must reach Meltano every
        `state_flush_seconds` of an hours-long run, so this marks the state unflushed and calls
        the SDK's own writer, which still skips a STATE equal to the last one written.
        tests/test_sdk_internals.py fails if an SDK upgrade changes either.
        """
        self.state_manager.is_flushed = False
        self._write_state_message()
        return self._chatra.state_writer_bytes()

    @override
    def _write_state_message(self) -> None:
        """The SDK's writer of STATE; while a run goes on, with its cursor (run_cursor.py).

        Every STATE of a run goes through here, the SDK's own (every `STATE_MSG_FREQUENCY`
        records) too, so none lists the IDs of an unfinished run one by one.
        tests/test_sdk_internals.py fails if an SDK upgrade writes STATE another way.
        """
        cursor = self._cursor
        if cursor is None or self.state_manager.is_flushed:
            super()._write_state_message()
            return
        with cursor.in_bookmark():
            super()._write_state_message()

    # A run's cursor (run_cursor.py).

    def begin_run(self, started: int) -> None:
        """From here on, STATE holds this bookmark as it is now and a cursor into the plan.

        `started` is the `now` the plan was made with; the plan must be this stream's
        `plan(started)`, and its IDs go to `fetched` or `settled` in order.
        """
        listed = self._chatra.id_lists.listed[self.name]
        self._cursor = RunCursor(self.stream_state, started=started, listed=listed)

    def end_run(self) -> None:
        """The run is over (done, stopped or failed): STATE is the full bookmark again."""
        self._cursor = None

    def fetched(self, record_id: str, now: int, digest: str | None = None) -> None:
        """Record a fetch (emitted, or unchanged) of the plan's next ID."""
        self.id_state.mark_fetched(record_id, now, digest)
        self.after_fetch(record_id)
        if self._cursor is not None:
            self._cursor.settle(record_id, fetched=True)

    def settled(self, record_id: str) -> None:
        """The plan's next ID is done without a fetch (404, set aside, rejected, invalid).

        Its mark in per-ID state reaches only the STATE at the stream's end: a run killed
        before that tries the ID again (one request), which the cursor notes under `retry`.
        """
        if self._cursor is not None:
            self._cursor.settle(record_id, fetched=False)

    def resume_interrupted_run(self) -> None:
        """Take over what a killed run did, from the cursor its last STATE left, if any.

        Plans that run again (the same bookmark, the same sources as it read them, its
        `now`); when the start of that plan is what the cursor says was done, its IDs are
        marked fetched at the run's start. Otherwise they are fetched again, with a warning.
        """
        value = self.stream_state.pop(RUN_KEY, None)
        if value is None:
            return
        interrupted = Interrupted.read(value)
        if interrupted is None:
            self.logger.warning(
                "%s: STATE key '%s' is not readable; the interrupted run's fetches are done again.",
                self.name,
                RUN_KEY,
            )
            return
        if not interrupted.done:
            return
        plan = self.replan(interrupted)
        if not interrupted.matches(plan.to_fetch):
            self.logger.warning(
                "%s: the interrupted run's %d fetches are done again: its ID sources changed "
                "since (edited, reordered or shortened), or its STATE was merged with a later "
                "one's.",
                self.name,
                interrupted.done,
            )
            return
        stamp = self.resume_stamp(interrupted.started)
        resumed = 0
        for record_id in plan.to_fetch[: interrupted.done]:
            if record_id in interrupted.retry:
                continue
            fetched_at = self.id_state.fetched_at(record_id)
            if fetched_at is None or fetched_at < stamp // MINUTE * MINUTE:
                self.id_state.mark_fetched(record_id, stamp)
                self.after_fetch(record_id)
            resumed += 1
        self.logger.info(
            "%s: resuming an interrupted run: %d IDs it fetched are not fetched again%s.",
            self.name,
            resumed,
            f", {len(interrupted.retry)} it did not fetch are tried again"
            if interrupted.retry
            else "",
        )

    def replan(self, interrupted: Interrupted) -> Plan:
        """The plan an interrupted run made, from the bookmark it started from."""
        done = {self.name: self.id_state.is_fetched} if not self.refreshes_every_run else {}
        sources = collect_ids(
            self.config, self.logger, done, limits={self.name: interrupted.listed}
        )
        return self.plan(interrupted.started, configured=sources.for_stream(self.name))

    def resume_stamp(self, started: int) -> int:
        """The time to record for an ID an interrupted run that started then fetched."""
        return started

    # What to fetch; subclasses add to these.

    def source_ids(self, configured: list[str] | None = None) -> list[str]:
        """Every ID this stream was given, in order, without duplicates.

        `configured`: the IDs of the config list and the ID file, if not as read for this run.
        """
        return self._chatra.id_lists.for_stream(self.name) if configured is None else configured

    def plan(self, now: float, *, configured: list[str] | None = None) -> Plan:
        """Which of the source IDs to fetch in this run (see `source_ids`)."""
        plan = plan_fetches(
            self.source_ids(configured),
            self.id_state,
            now=int(now),
            missing_retry_seconds=self._chatra.missing_retry_seconds,
            is_due=None,
        )
        if configured is None:
            # Those the ID sources already left out as fetched (TapChatra.id_lists).
            plan.already_fetched += self._chatra.id_lists.left_out[self.name]
        return plan

    def stamp(self) -> int:
        """The time to record for a fetch or a 404 now, in whole epoch seconds."""
        return int(time.time())

    def after_emit(self, body: Body) -> None:
        """Called once a record has been written (and before STATE can mention it).

        Gets the answer as Chatra sent it: catalog selection and stream maps change only the
        record, and what the tap learns from an answer must not depend on them.
        """

    def after_fetch(self, record_id: str) -> None:
        """Called when an ID's fetch is recorded in state (emitted or unchanged)."""

    def change_fingerprint(self, body: Body) -> str | None:  # noqa: ARG002 - for subclasses
        """A digest of what counts as a change, for streams fetched every run; None for others."""
        return None

    def finish(self, now: float) -> None:
        """Called when every planned ID is done, before the stream's final STATE."""

    # The sync loop.

    def _starter(self, fetch: RequestFunc) -> Callable[[str], Callable[[], Body]]:
        def start(record_id: str) -> Callable[[], Body]:
            context = {"id": record_id}
            page: PageContext[None] = PageContext(stream_context=context, next_page_token=None)
            http_request = self.get_http_request(page=page)
            prepared = self.build_prepared_request(
                method=http_request.method,
                url=http_request.url,
                params=http_request.encode_params(),
                headers=http_request.headers,
            )
            return functools.partial(self._fetch_body, fetch, prepared, context)

        return start

    def _fetch_body(
        self, fetch: RequestFunc, prepared: requests.PreparedRequest, context: Context
    ) -> Body:
        try:
            response = fetch(prepared, context)
        except ChatraError:
            raise
        except (requests.RequestException, ValueError) as error:
            # Transport errors were retried inside `fetch`; what is left (a redirect loop, a
            # redirect to a malformed URL, which requests raises as a bare ValueError) is not.
            raise unusable_answer(error, f"{self.name}: GET {prepared.path_url}") from None
        return next(iter(self.parse_response(response)))

    def _log_plan(self, plan: Plan) -> None:
        skipped = [
            (plan.already_fetched, "already fetched"),
            (plan.not_due, "fetched recently and not named since (client_refresh_hours)"),
            (plan.missing_not_due, "missing (404) and not yet due for a retry"),
            (plan.failing_not_due, "set aside as failing and not yet due for a retry"),
        ]
        reasons = ", ".join(f"{count} {why}" for count, why in skipped if count)
        self.logger.info(
            "%s: %d IDs to fetch: %s%s.",
            self.name,
            len(plan.to_fetch),
            self._planned_time(len(plan.to_fetch)),
            f"; skipped {reasons}" if reasons else "",
        )

    def _planned_time(self, requests: int) -> str:
        """How long that many requests take at the configured pace (retries not counted)."""
        interval = self._chatra.http.limiter.interval
        if not interval:
            return f"{requests} requests, unpaced"
        per_minute = 60 / interval
        return (
            f"{requests} requests, about {format_duration(requests * interval)} at "
            f"{per_minute:.1f} a minute"
        )

    @override
    def get_records(self, context: Context | None) -> Iterator[Body]:
        self._stop_if_asked()
        self.log_resume()
        now = int(time.time())
        plan = self.plan(now)
        self._log_plan(plan)
        concurrency = int(self.config.get("max_concurrency", 4))
        progress = Progress(
            self.name, len(plan.to_fetch), self.logger, interval=self._chatra.progress_interval
        )
        schedule = FlushSchedule.from_config(self.config)
        periodic: Periodic[Body] = Periodic(
            progress, self.emit_state_now, schedule, state_bytes=self._chatra.state_writer_bytes()
        )
        counts: Counter[str] = Counter()
        self._set_aside = SetAsideLog(self.name)
        with (
            WorkerPool(concurrency, name=f"{self.tap_name}-{self.name}") as pool,
            self._chatra.stop_signals.waking(pool.stopping),
        ):
            self._pool = pool
            self.begin_run(now)
            try:
                fetch = self.request_decorator(self._request)
                calls = in_order(pool, plan.to_fetch, self._starter(fetch), ahead=2 * concurrency)
                with self.get_http_request_counter() as request_counter:
                    for record_id, future in calls:
                        body = self._settle(record_id, future, periodic, counts)
                        request_counter.increment()
                        if body is None:
                            self.settled(record_id)
                        else:
                            yield from self._emit_if_new(record_id, body, counts)
                        progress.advance()
                        self._stop_if_asked()
                        periodic.run_due()
            finally:
                self.end_run()
                self._pool = None
        self.finish(time.time())
        self.logger.info("%s", self._summary(counts))
        if summary := self._set_aside.summary():
            self.logger.warning("%s", summary)
        self._fail_if_systemic(final=True)

    def _stop_if_asked(self) -> None:
        """End the run here if SIGTERM or SIGINT arrived, after STATE for what was emitted."""
        signum = self._chatra.stop_signals.received
        if signum is None:
            return
        self.end_run()  # the full STATE: it keeps this run's 404s and failures too
        self.emit_state_now()
        msg = (
            f"Stopped by signal {signum} during stream '{self.name}'; STATE covers every "
            "record emitted, and the next run resumes from there."
        )
        raise StopRequestedError(msg, signum=signum)

    def _settle(
        self, record_id: str, future: Future[Body], periodic: Periodic[Body], counts: Counter[str]
    ) -> Body | None:
        """Wait for one fetch; record a 404, a rejection or a failure; stop on anything fatal."""
        try:
            return periodic.wait(future)
        except InvalidIdError as error:
            # Configured IDs are checked on reading; a client ID from a message body is not.
            self.logger.warning("%s: %s; skipped.", self.name, error)
            counts["invalid"] += 1
            return None
        except NotFoundError:
            self.logger.warning(
                "%s: ID %r not found (HTTP 404); recorded as missing.", self.name, record_id
            )
            counts["missing"] += 1
            self._set_aside.answered()
        except RejectedError as error:
            self.logger.warning("%s: ID %r skipped: %s", self.name, record_id, error)
            counts["rejected"] += 1
            self._set_aside.answered()
        except (RetriesExhaustedError, SetAsideError, Cancelled) as error:
            # A stop request cancels the fetches in hand: they are not this ID's fault.
            self._stop_if_asked()
            if isinstance(error, Cancelled):
                raise
            self._set_aside_failing(record_id, error, counts)
            return None
        except Exception:
            # 401/403 or anything unforeseen: the run stops here, and STATE first covers
            # every record already written.
            self.end_run()
            self.emit_state_now()
            raise
        self.id_state.mark_missing(record_id, self.stamp())
        return None

    def _set_aside_failing(
        self, record_id: str, error: RetriesExhaustedError | SetAsideError, counts: Counter[str]
    ) -> None:
        if isinstance(error, SetAsideError):
            short = error.short
        else:
            short = f"HTTP {error.status}" if error.status else "no answer"
        failures = self.id_state.mark_failing(record_id, self.stamp(), short)
        self.logger.warning(
            "%s: ID %r set aside (failed %d run%s in a row), retried on a later run: %s",
            self.name,
            record_id,
            failures,
            "" if failures == 1 else "s",
            error,
        )
        counts["set aside"] += 1
        self._set_aside.set_aside(record_id, short, str(error), failures=failures)
        self._fail_if_systemic(final=False)

    def _fail_if_systemic(self, *, final: bool) -> None:
        """Stop the run when most IDs fail: one bad ID is set aside, not this."""
        reason = self._set_aside.systemic(final=final)
        if reason:
            # Not these IDs' fault: the next run tries them at once, with no growing wait.
            for record_id in self._set_aside.reasons:
                self.id_state.clear_failing(record_id)
            self.end_run()
            self.emit_state_now()
            raise SystemicFailureError(reason)

    def _emit_if_new(self, record_id: str, body: Body, counts: Counter[str]) -> Iterator[Body]:
        self._set_aside.answered()
        self._check_answer_id(record_id, body, counts)
        digest = self.change_fingerprint(body)
        if digest is None or self.id_state.fingerprint(record_id) != digest:
            record = self._shaper.shape(body, record_id)
            yield record
            # Only now has the SDK written the record, so state may cover it.
            counts["emitted"] += 1
            self.after_emit(body)
        else:
            counts["unchanged"] += 1
        self.fetched(record_id, self.stamp(), digest)

    def _check_answer_id(self, record_id: str, body: Body, counts: Counter[str]) -> None:
        answered = body.get("id")
        if answered is None or str(answered) == record_id:
            return
        counts["answered for another ID"] += 1
        if counts["answered for another ID"] <= _MAX_LISTED:
            self.logger.warning(
                "%s: asked for ID %r, Chatra answered with ID %r; emitted as %r, with the "
                "answer's ID in the '%s' column.",
                self.name,
                record_id,
                answered,
                record_id,
                "extra",
            )

    @cached_property
    def _shaper(self) -> RecordShaper:
        return RecordShaper(self.name, self.schema, self.logger)

    def _summary(self, counts: Counter[str]) -> str:
        parts = [f"{counts['emitted']} records emitted"]
        if self.refreshes_every_run:
            parts.append(f"{counts['unchanged']} unchanged (not emitted)")
        parts.append(f"{counts['missing']} not found")
        kinds = ("set aside", "rejected", "invalid", "answered for another ID")
        parts.extend(f"{counts[kind]} {kind}" for kind in kinds if counts[kind])
        return f"{self.name}: done: " + ", ".join(parts) + "."
