"""One run's delivery: each row checked against the ledger, sent at most once, and counted.

A row is its own unit of work. For a row to send: claim the key in the ledger (``pending``,
committed), POST through chatra_client, then record ``sent`` with Chatra's ID (committed).
What each error from chatra_client means here:

- OutcomeUnknownError (the POST went out and no success came back: a 5xx, which a gateway
  may give after Chatra stored the message, a read timeout or a dropped connection):
  ``unknown``, counted unconfirmed, never sent again unless `resend_unconfirmed`. After
  `max_unconfirmed_in_a_row` of them with no confirmed answer between, the run stops, so a
  network fault leaves a few rows to check by hand rather than every row.
- NotFoundError / RejectedError (400/404/422, e.g. an unknown client): ``failed`` as rejected,
  dead-lettered; tried again on a later run when `retry_failed` is on.
- AuthenticationError (401/403): one GET checks the keys. Refused: ``failed`` as not sent,
  and the run stops at once. Accepted: a 403 was about this row (say, a client Chatra will
  not let this account message), so it is rejected like a 4xx.
- RateLimitStoreError (the shared pace cannot be used, so the POST never went out): ``failed``
  as not sent, and the run stops at once.
- RetriesExhaustedError: chatra_client retries a POST only on a 429 or a connection that
  failed before the request went out; only those end here, so the POST surely had no effect. The key
  is ``failed`` as not sent (always tried again on the next run, whatever `retry_failed`
  says) and the run stops: Chatra has refused a whole retry budget, so carrying on would only
  spend the same budget on every remaining row. No STATE is passed on after that row, so the
  next run reads it again and the ledger skips what was already sent.

A row deferred by `max_sends_per_run`, or rejected while `retry_failed` is on, is meant to go
out on a later run; with an incremental tap that only happens if the tap reads it again, so
from that row on no STATE is passed on (`state_held`): the next run resumes before it, and
the ledger skips the rows already settled.

A ledger that fails mid-run (damaged, disk full, unreachable) stops the run after the
summary, with one line naming it and what to do.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import sys
import threading
import typing as t
from contextlib import contextmanager

from chatra_client import (
    AuthenticationError,
    ChatraClient,
    ChatraError,
    ConfigError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimiter,
    RateLimitStoreError,
    RejectedError,
    RetriesExhaustedError,
)
from target_chatra_push.input_keys import InputKeys, conflict
from target_chatra_push.keys import describe_properties, key_hint
from target_chatra_push.keys_earlier import stored_key
from target_chatra_push.ledger_model import (
    UNCONFIRMED,
    FailureKind,
    LedgerError,
    LedgerWaitStoppedError,
    RunMark,
    account_id,
    describe_failure,
)
from target_chatra_push.ledger_open import open_run_ledger
from target_chatra_push.outputs import (
    DeadLetterFile,
    OutputError,
    PreviewFile,
    SentIdsFile,
    unwritable,
)
from target_chatra_push.policy import Decision, decide
from target_chatra_push.preview_page import MessagePage, page_path
from target_chatra_push.rendering import build_outbound, key_properties_of
from target_chatra_push.summary import Outcome, RunSummary
from target_chatra_push.values import InvalidRowError

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from pathlib import Path

    from chatra_client import ConnectionSettings
    from chatra_client.stopping import StopSignals
    from target_chatra_push.ledger_model import Entry, LedgerStore
    from target_chatra_push.mapping import MessageMapping
    from target_chatra_push.policy import DeliveryOptions
    from target_chatra_push.rendering import Outbound


class RunStoppedError(Exception):
    """The run stopped and nothing more is sent; the message is the one line the user sees."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


_OUTCOME_OF = {
    Decision.DUPLICATE: Outcome.DUPLICATE,
    Decision.UNCONFIRMED: Outcome.UNCONFIRMED,
    Decision.NOT_RETRIED: Outcome.NOT_RETRIED,
    Decision.DEFERRED: Outcome.DEFERRED,
}

_LOG_LEVEL_OF = {Decision.DUPLICATE: logging.DEBUG, Decision.UNCONFIRMED: logging.WARNING}
_REPEATED = "repeated within this input"


def _ledger_failures() -> tuple[type[BaseException], ...]:
    """What a ledger raises when its database fails.

    SQLAlchemy's errors count only once a PostgreSQL ledger has loaded it: loading it just to
    name its errors would cost every SQLite run a quarter second.
    """
    failures: tuple[type[BaseException], ...] = (sqlite3.Error, LedgerError)
    sqlalchemy_errors = sys.modules.get("sqlalchemy.exc")
    if sqlalchemy_errors is None:
        return failures
    return (*failures, sqlalchemy_errors.SQLAlchemyError)


class Delivery:
    """Sends rows of every stream of one run, sharing one ledger, client, cap and summary."""

    def __init__(
        self,
        options: DeliveryOptions,
        *,
        connection: ConnectionSettings | None,
        logger: logging.Logger,
        stop_signals: StopSignals | None = None,
    ) -> None:
        """Prepare a run; the ledger, files and HTTP client are opened with the first row.

        Args:
            options: The delivery settings.
            connection: Keys and HTTP settings; None only for a dry run without keys.
            logger: Where row outcomes and the summary are logged.
            stop_signals: The run's stop signals, which end a wait for the ledger at once.
        """
        self.options = options
        self.summary = RunSummary(dry_run=options.dry_run)
        self._connection = connection
        self._logger = logger
        self._stop_signals = stop_signals
        self._ledger: LedgerStore | None = None
        self._started = False
        self._run = RunMark.of_this_process()
        self._keyed: dict[str, tuple[str, ...]] = {}
        self.state_held: str | None = None
        """Why STATE is no longer passed on in this run, if it is not."""
        self._client: ChatraClient | None = None
        self._dead_letters = DeadLetterFile(options.dead_letter_path)
        self._preview = PreviewFile(options.preview_path)
        self._sent_ids: dict[Path, SentIdsFile] = {}
        page = page_path(options)
        self._page = MessagePage(page, dry_run=options.dry_run) if page else None
        self._seen = InputKeys()
        self._sends = 0
        self._unconfirmed_in_a_row = 0
        self._credentials_checked = False
        self._broken_ledger = False
        self._finished = False

    # Start: everything the run needs, before its first row is settled

    def _start(self) -> None:
        """Open the ledger, then prove every file the run writes can be written.

        The ledger comes first: it is marked used before any stop, so that a run stopped
        here leaves no report beside an empty ledger (which the next run would refuse).

        Raises:
            RunStoppedError: When the ledger cannot be used or a file cannot be written.
        """
        if self._started:
            return
        self._started = True
        self._open_ledger()
        for setting, path in self.options.files_to_write():
            why = unwritable(path)
            if why is not None:
                self._stop(
                    f"The run cannot write {setting} {path} ({why}). Nothing was sent; point "
                    f"{setting} at a folder the run may write, then run again."
                )

    def _open_ledger(self) -> None:
        connection = self._connection
        account = (
            account_id(connection.credentials.public_key, connection.api_url)
            if connection is not None
            else None
        )
        stop = threading.Event()
        waking = self._stop_signals.waking(stop) if self._stop_signals else contextlib.nullcontext()
        try:
            with waking:
                self._ledger = open_run_ledger(
                    self.options, account=account, run=self._run, logger=self._logger, stop=stop
                )
        except LedgerWaitStoppedError as exc:
            signum = self._stop_signals.received if self._stop_signals else None
            self._stop(str(exc), exit_code=128 + signum if signum else 1)
        except LedgerError as exc:
            self._stop(f"{exc} Nothing was sent.")
        except _ledger_failures() as exc:  # damaged, or unreachable mid-way
            self._broken_ledger = True
            self._stop(describe_failure(self._location(), exc))

    def _write_ledger(self) -> LedgerStore:
        ledger = self._ledger
        if ledger is None or ledger.read_only:
            msg = "The ledger is read-only in a dry run."
            raise RuntimeError(msg)
        return ledger

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn a failing ledger or output file into a stop: the summary, then one line."""
        try:
            yield
        except _ledger_failures() as exc:
            self._broken_ledger = True
            self._stop(describe_failure(self._location(), exc))
        except OutputError as exc:
            self._stop(
                f"{exc}. Nothing more was sent; make room or fix the folder, then run again: "
                "rows not settled are read again then."
            )

    def _chatra(self) -> ChatraClient:
        if self._client is None:
            if self._connection is None:
                msg = "No Chatra API keys are configured."
                raise RuntimeError(msg)
            self._client = ChatraClient(
                self._connection,
                limiter=RateLimiter.for_settings(self._connection),
                logger=self._logger.getChild("chatra"),
            )
        return self._client

    # The rules

    def _decide(self, entry: Entry | None, payload_hash: str) -> tuple[Decision, str]:
        return decide(entry, payload_hash, self.options, self._sends)

    def _stop(self, message: str, exit_code: int = 1) -> t.NoReturn:
        self.summary.stopped = message
        self.finish()
        raise RunStoppedError(message, exit_code)

    def stop_for_bad_input(self, problem: str) -> t.NoReturn:
        """End the run at a line of input it cannot read: summary, report and ledger as ever.

        Raises:
            RunStoppedError: Always, with exit code 1.
        """
        self._stop(
            f"{problem} Every row before it is settled and nothing after it was read; fix the "
            "input, then run again: rows after the last STATE passed on are read again."
        )

    def stop_for_signal(self, signum: int) -> t.NoReturn:
        """End the run after a stop signal: summary, report and ledger as after any stop.

        Raises:
            RunStoppedError: Always, with exit code 128 + `signum`.
        """
        self._stop(
            f"Stopped by signal {signum}: every row read so far is settled; rows after the "
            "last STATE passed on are read again by the next run, which sends what is left.",
            exit_code=128 + signum,
        )

    def _count(
        self,
        stream: str,
        outcome: Outcome,
        key: str | None,
        outbound: Outbound | None = None,
        reason: str | None = None,
    ) -> Outcome:
        self.summary.add(stream, outcome, key)
        if self._page is not None:
            self._page.rows.add(stream, outcome, key, outbound, reason)
        return outcome

    # Rows

    def deliver(
        self,
        stream: str,
        mapping: MessageMapping,
        record: Mapping[str, t.Any],
        key_properties: Sequence[str],
        *,
        problem: str | None = None,
        line: int | None = None,
    ) -> Outcome:
        """Settle one row: send it, skip it, or dead-letter it.

        Args:
            stream: The stream name.
            mapping: The stream's mapping.
            record: The row.
            key_properties: The stream's key properties.
            problem: Why the row failed the stream's schema, if it did.
            line: The row's line in the input, for messages.

        Returns:
            What happened to the row.

        Raises:
            RunStoppedError: When the run must stop (a file or the ledger cannot be used,
                refused keys, Chatra unavailable, a changed dedupe key, or a bad row with
                `on_error: fail`); everything before this row is settled.
        """
        self._start()
        properties = key_properties_of(mapping, key_properties)
        with self._guard():
            self._check_key_properties(stream, properties)
            try:
                if problem is not None:
                    raise InvalidRowError("wrong_type", problem)
                outbound = build_outbound(mapping, record, key_properties)
            except InvalidRowError as invalid:
                return self._invalid(stream, key_hint(properties, record), record, invalid)
            first = self._seen.first(stream, outbound, line)
            if first is not None:
                return self._repeated(stream, record, outbound, conflict(first, outbound, line))
            key = outbound.key
            if self._ledger is not None:
                outbound = stored_key(
                    self._ledger,
                    outbound,
                    stream=stream,
                    record=record,
                    properties=properties,
                    logger=self._logger,
                )
            if self.options.dry_run:
                outcome = self._preview_row(stream, outbound)
            else:
                outcome = self._send_row(stream, mapping, record, outbound)
            self._seen.remember_outcome(stream, key, outcome)
            return outcome

    def _check_key_properties(self, stream: str, properties: tuple[str, ...]) -> None:
        """Stop before sending when a stream is keyed differently from what the ledger holds."""
        known = self._keyed.get(stream)
        if known is None:
            ledger = self._ledger
            recorded = ledger.key_properties(stream) if ledger is not None else None
            if recorded is None and ledger is not None and not ledger.read_only:
                ledger.record_key_properties(stream, properties)
            known = properties if recorded is None else recorded
            self._keyed[stream] = known
        if known == properties:
            return
        keep = (
            f"set dedupe_key_properties to {describe_properties(known)} (under "
            f"stream_settings.{stream} for this stream alone)"
            if known
            else f'drop the key properties with stream_maps: {{"{stream}": '
            '{"__key_properties__": []}}'
        )
        self._stop(
            f"Stream {stream} is now keyed by {describe_properties(properties)}, but the "
            f"ledger {self._location()} keyed it by {describe_properties(known)}: every row "
            f"would get a new key and be sent again. Nothing more was sent. To keep the old "
            f"key, {keep}."
        )

    def _location(self) -> str:
        if self._ledger is not None:
            return self._ledger.location
        if self.options.ledger_url:
            from target_chatra_push.ledger_postgres import PostgresLedger  # noqa: PLC0415

            return PostgresLedger.describe_url(self.options.ledger_url)
        return str(self.options.ledger_path.resolve())

    def _repeated(
        self,
        stream: str,
        record: Mapping[str, t.Any],
        outbound: Outbound,
        conflicting: InvalidRowError | None,
    ) -> Outcome:
        """A row whose key this input held before: a duplicate, or dead-lettered if it differs."""
        if conflicting is not None:
            return self._invalid(stream, outbound.key, record, conflicting)
        self._logger.debug("Stream %s key %s: duplicate, %s.", stream, outbound.key, _REPEATED)
        if self.options.dry_run:
            self._preview.add(
                stream=stream,
                key=outbound.key,
                action="duplicate",
                outbound=outbound,
                reason=_REPEATED,
            )
        return self._count(stream, Outcome.DUPLICATE, outbound.key, outbound, _REPEATED)

    def _invalid(
        self,
        stream: str,
        key: str | None,
        record: Mapping[str, t.Any],
        invalid: InvalidRowError,
    ) -> Outcome:
        self._logger.warning(
            "Stream %s key %s: invalid row, not sent (%s).", stream, key, invalid.reason
        )
        if self.options.dry_run:
            self._preview.add(
                stream=stream, key=key, action="invalid", reason=invalid.reason, code=invalid.code
            )
            return self._count(stream, Outcome.INVALID, key, reason=invalid.reason)
        self._dead_letters.add(
            stream=stream,
            key=key,
            kind="invalid",
            code=invalid.code,
            reason=invalid.reason,
            record=record,
        )
        self._count(stream, Outcome.INVALID, key, reason=invalid.reason)
        if self.options.stop_on_bad_row:
            self._stop(
                f"Stopped at an invalid row (on_error is fail): stream {stream}, key {key}: "
                f"{invalid.reason}. Fix the row (see {self.options.dead_letter_path}) or set "
                "on_error to continue."
            )
        return Outcome.INVALID

    def _hold_state(self, stream: str, key: str, why: str) -> None:
        if self.state_held is None:
            self.state_held = f"stream {stream} key {key} ({why})"

    def _preview_row(self, stream: str, outbound: Outbound) -> Outcome:
        ledger = self._ledger
        entry = ledger.get(stream, outbound.key) if ledger else None
        decision, why = self._decide(entry, outbound.payload_hash)
        self._preview.add(
            stream=stream, key=outbound.key, action=decision.value, outbound=outbound, reason=why
        )
        if decision is not Decision.SEND:
            return self._count(stream, _OUTCOME_OF[decision], outbound.key, outbound, why)
        self._sends += 1
        return self._count(stream, Outcome.PREVIEWED, outbound.key, outbound)

    def _send_row(
        self,
        stream: str,
        mapping: MessageMapping,
        record: Mapping[str, t.Any],
        outbound: Outbound,
    ) -> Outcome:
        ledger = self._write_ledger()
        key, payload_hash = outbound.key, outbound.payload_hash
        entry, claimed = ledger.claim(
            stream,
            key,
            payload_hash,
            lambda e: self._decide(e, payload_hash)[0] is Decision.SEND,
            self._run,
        )
        decision, why = self._decide(entry, payload_hash)
        if not claimed:
            level = _LOG_LEVEL_OF.get(decision, logging.INFO)
            self._logger.log(
                level, "Stream %s key %s: %s, not sent (%s).", stream, key, decision, why
            )
            if decision is Decision.DEFERRED:
                self._hold_state(stream, key, "deferred by max_sends_per_run")
            elif decision is Decision.UNCONFIRMED and entry is not None and entry.run:
                self._logger.info(
                    "Stream %s key %s: claimed by the run of %s.", stream, key, entry.run
                )
            return self._count(stream, _OUTCOME_OF[decision], key, outbound, why)
        if entry is not None:
            self._logger.info("Stream %s key %s: sending again (%s).", stream, key, why)
        self._sends += 1
        return self._post(stream, mapping, record, outbound)

    def _post(
        self,
        stream: str,
        mapping: MessageMapping,
        record: Mapping[str, t.Any],
        outbound: Outbound,
    ) -> Outcome:
        """POST a claimed row and record the outcome in the ledger."""
        ledger = self._write_ledger()
        key = outbound.key
        try:
            created = self._chatra().create(outbound.resource, outbound.body)
        except OutcomeUnknownError as exc:
            ledger.mark_unknown(stream, key, str(exc))
            self._logger.warning(
                "Stream %s key %s: unconfirmed, the POST went out but no success came back "
                "(%s); it will not be sent again unless resend_unconfirmed is set.",
                stream,
                key,
                f"HTTP {exc.status}" if exc.status else "no answer",
            )
            why = (
                f"the POST went out and HTTP {exc.status} came back"
                if exc.status
                else "the answer to the POST was lost"
            )
            self._count(stream, Outcome.UNCONFIRMED, key, outbound, why)
            self._unconfirmed_in_a_row += 1
            limit = self.options.max_unconfirmed_in_a_row
            if limit and self._unconfirmed_in_a_row >= limit:
                self._stop(
                    f"The answers to the last {self._unconfirmed_in_a_row} POSTs were lost "
                    f"(last: stream {stream}, key {key}), so Chatra or the network is failing. "
                    "Nothing more was sent; check the unconfirmed rows in Chatra, then run "
                    "again to send the rest."
                )
            return Outcome.UNCONFIRMED
        except (NotFoundError, RejectedError) as exc:
            self._unconfirmed_in_a_row = 0
            return self._rejected(stream, record, outbound, exc)
        except (AuthenticationError, RateLimitStoreError) as exc:
            if (
                isinstance(exc, AuthenticationError)
                and exc.status == 403
                and self._keys_accepted(stream, key)
            ):
                self._unconfirmed_in_a_row = 0
                return self._rejected(stream, record, outbound, exc)
            ledger.mark_failed(stream, key, str(exc), FailureKind.NOT_SENT)
            self._count(stream, Outcome.DEFERRED, key, outbound, str(exc))
            self._stop(f"{exc} Nothing more was sent.")
        except RetriesExhaustedError as exc:
            ledger.mark_failed(stream, key, str(exc), FailureKind.NOT_SENT)
            self._count(stream, Outcome.DEFERRED, key, outbound, str(exc))
            self._stop(
                f"Chatra kept refusing stream {stream} key {key}: {exc} Nothing more was sent; "
                "run again later and the rows not yet sent go out then."
            )
        except Exception as exc:
            # Unforeseen: the POST may have gone out, so treat it like a lost answer.
            ledger.mark_unknown(stream, key, f"{type(exc).__name__}: {exc}")
            raise
        self._unconfirmed_in_a_row = 0
        message_id = created.get("id")
        message_id = message_id if isinstance(message_id, str) and message_id else None
        try:
            # The ID goes to the sent-ID file first: a crash in between then leaves the key
            # `pending` (reported unconfirmed) rather than a send the read-back cannot see.
            if message_id is not None and mapping.sent_ids_path is not None:
                self._sent_ids_file(mapping.sent_ids_path).add(message_id)
            ledger.mark_sent(stream, key, message_id)
        except (OutputError, *_ledger_failures()):  # type: ignore[misc]
            # It went out: count it so, and say how to record it; the guard then stops the run.
            self._count(stream, Outcome.SENT, key, outbound)
            self._logger.warning(
                "Stream %s key %s: sent, but not recorded as sent: the ledger keeps it "
                "pending, so no run sends it again. Once the run is fixed, record it with "
                "`chatra-push-ledger settle --stream %s '%s' --as sent`.",
                stream,
                key,
                stream,
                key,
            )
            raise
        if message_id is None:
            self._logger.warning(
                "Stream %s key %s: sent, but Chatra's answer held no message ID.", stream, key
            )
        else:
            self._logger.debug("Stream %s key %s: sent as %s.", stream, key, message_id)
        return self._count(stream, Outcome.SENT, key, outbound)

    def _keys_accepted(self, stream: str, key: str) -> bool:
        """After a 403 on a POST: do the keys still work? One GET tells (false if it fails)."""
        try:
            self._chatra().check_credentials()
        except (ChatraError, ConfigError):
            return False
        self._logger.info(
            "Stream %s key %s: HTTP 403, but Chatra accepts the keys: the refusal is about "
            "this row.",
            stream,
            key,
        )
        return True

    def _rejected(
        self,
        stream: str,
        record: Mapping[str, t.Any],
        outbound: Outbound,
        exc: ChatraError,
    ) -> Outcome:
        key = outbound.key
        self._write_ledger().mark_failed(stream, key, str(exc), FailureKind.REJECTED)
        self._dead_letters.add(
            stream=stream,
            key=key,
            kind="rejected",
            code=f"http_{exc.status}" if exc.status else "rejected",
            reason=str(exc),
            status=exc.status,
            record=record,
            outbound=outbound,
        )
        retry = "tried again next run" if self.options.retry_failed else "not retried"
        self._logger.warning(
            "Stream %s key %s: rejected by Chatra, %s: %s", stream, key, retry, exc
        )
        if self.options.retry_failed:
            self._hold_state(stream, key, "rejected, to be tried again")
        self._count(stream, Outcome.REJECTED, key, outbound, str(exc))
        if self.options.stop_on_bad_row:
            self._stop(
                f"Stopped at a rejected row (on_error is fail): stream {stream}, key {key}: {exc} "
                "Fix the row or set on_error to continue."
            )
        return Outcome.REJECTED

    def _sent_ids_file(self, path: Path) -> SentIdsFile:
        if path not in self._sent_ids:
            self._sent_ids[path] = SentIdsFile(path)
        return self._sent_ids[path]

    # meltano config test

    def check_credentials(self) -> None:
        """Prove the keys with one harmless GET instead of sending the test row (once a run).

        Raises:
            RunStoppedError: When Chatra refuses the keys or cannot be reached, or `api_url`
                is not the Chatra API.
        """
        if self._credentials_checked:
            return
        self._credentials_checked = True
        if self._connection is None:
            self._logger.info(
                "Test row of meltano_test_stream not sent; no API keys configured to check."
            )
            return
        try:
            self._chatra().check_credentials()
        except (AuthenticationError, ConfigError, RateLimitStoreError) as exc:
            self._stop(str(exc))
        except RetriesExhaustedError as exc:
            self._stop(f"Chatra could not be reached to check the keys: {exc}")
        self._logger.info("Test row of meltano_test_stream not sent; Chatra accepted the API keys.")

    # End of run

    def finish(self) -> None:
        """Log the summary, write the report and close everything; safe to call twice."""
        if self._finished:
            return
        self._finished = True
        if self._ledger is not None and not self._broken_ledger:
            with contextlib.suppress(*_ledger_failures()):
                self.summary.in_ledger = self._ledger.entries(statuses=UNCONFIRMED)
        self.summary.log(self._logger)
        if self.state_held is not None:
            self._logger.warning(
                "No STATE was passed on after %s: the next run reads those rows again, "
                "and the ledger skips what was already settled.",
                self.state_held,
            )
        if self.options.report_path is not None:
            try:
                self.summary.write(self.options.report_path)
            except OSError as exc:
                self._logger.warning(
                    "Report not written to %s: %s", self.options.report_path, exc.strerror or exc
                )
        if self._page is not None:
            self._page.write(self._logger, self.summary.stopped)
        self._dead_letters.close()
        self._preview.close()
        for sent_ids in self._sent_ids.values():
            sent_ids.close()
        if self._ledger is not None:
            with contextlib.suppress(*_ledger_failures()):
                self._ledger.close()
        if self._client is not None:
            self._client.close()
