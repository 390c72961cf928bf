"""Opening a run's ledger so that it cannot be lost, shared or mixed up without a word.

- A new ledger is announced with a WARNING naming its absolute location. When earlier runs
  left traces (the sent-ID, dead-letter or report file) and there is no ledger, it was
  probably lost or moved (or the default relative path is used from another folder): every
  row would go out again, so the run refuses until `new_ledger_ok` says to start afresh. An
  existing ledger that no run has used (no run, key or stream recorded: say an older
  maintenance command created it) counts as new: it guards nothing.
- A run holds the ledger exclusively; a second waits `ledger_wait_seconds`, then stops. A
  stop signal ends the wait at once.
- The ledger records the account (public key and API host) and refuses another.
"""

from __future__ import annotations

import json
import typing as t

from target_chatra_push.ledger import Ledger
from target_chatra_push.ledger_model import LedgerError, LockWait

if t.TYPE_CHECKING:
    import logging
    import threading
    from pathlib import Path

    from target_chatra_push.ledger_model import LedgerStore, RunMark
    from target_chatra_push.policy import DeliveryOptions


def _is_trace(path: Path) -> bool:
    """Whether a file shows an earlier real run; a dry run's report does not.

    Any real run's report counts, even one that settled nothing: a run that refuses to start
    a new ledger writes its report too, and must not wipe out the trace it found.
    """
    if not path.is_file():
        return False
    if path.suffix != ".json":
        return True
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    return not (isinstance(report, dict) and report.get("dry_run") is True)


def _check_new(options: DeliveryOptions, location: str, *, empty: bool = False) -> None:
    """Refuse to start a new ledger where earlier sends left traces, unless told to."""
    traces = [path for path in options.trace_paths if _is_trace(path)]
    if traces and not options.new_ledger_ok:
        found = ", ".join(str(path.resolve()) for path in traces)
        what = (
            f"The ledger at {location} is empty (no run has used it)"
            if empty
            else f"There is no ledger at {location}"
        )
        msg = (
            f"{what}, but earlier runs left {found}: the ledger may "
            "have been lost or moved, and every row would be sent again. Point ledger_path "
            "(or ledger_url) at the old ledger, or set new_ledger_ok to start a new one."
        )
        raise LedgerError(msg)


def _open_writable(options: DeliveryOptions, wait: LockWait) -> tuple[LedgerStore, bool]:
    """The ledger opened for a real run, and whether it was created now."""
    if options.ledger_url:
        # SQLAlchemy is loaded only for a PostgreSQL ledger: SQLite runs start faster without it.
        from target_chatra_push.ledger_postgres import PostgresLedger  # noqa: PLC0415

        url = options.ledger_url
        created = not PostgresLedger.exists(url)
        if created:
            _check_new(options, PostgresLedger.describe_url(url))
        return PostgresLedger.open(url, lock_wait=wait), created
    path = options.ledger_path
    created = not Ledger.exists(path)
    if created:
        _check_new(options, str(path.resolve()))  # before the file is made
    return Ledger.open(path, lock_wait=wait), created


def _open_read_only(options: DeliveryOptions) -> LedgerStore | None:
    if options.ledger_url:
        from target_chatra_push.ledger_postgres import PostgresLedger  # noqa: PLC0415

        return PostgresLedger.open_read_only(options.ledger_url)
    return Ledger.open_read_only(options.ledger_path)


def open_run_ledger(
    options: DeliveryOptions,
    *,
    account: str | None,
    run: RunMark,
    logger: logging.Logger,
    stop: threading.Event | None = None,
) -> LedgerStore | None:
    """The run's ledger: locked, bound to the account and marked used (read-only in a dry run).

    Args:
        options: The delivery settings.
        account: The account to bind the ledger to; None for a dry run without keys.
        run: This run, recorded in the ledger so that it no longer counts as empty.
        logger: Where a new ledger is announced.
        stop: Ends the wait for another run's lock as soon as it is set.

    Returns:
        The ledger; None in a dry run when there is none yet.

    Raises:
        LedgerError: When it cannot be opened, is held by another run (or `stop` ended the
            wait), belongs to another account, or would be new where earlier sends left
            traces.
    """
    if options.dry_run:
        ledger = _open_read_only(options)
        if ledger is None:
            return None
        created = False
    else:
        wait = LockWait(
            options.ledger_wait_seconds,
            stop=stop,
            on_wait=lambda: logger.info(
                "Another run is using the ledger; waiting up to %gs for it (a stop signal "
                "ends the wait).",
                options.ledger_wait_seconds,
            ),
        )
        ledger, created = _open_writable(options, wait)
    try:
        if not created and not ledger.read_only and ledger.is_blank():
            _check_new(options, ledger.location, empty=True)
            logger.warning(
                "The ledger at %s is empty: no run has sent from it yet. Keep it: it is what "
                "stops messages going out twice.",
                ledger.location,
            )
        if account is not None:
            ledger.bind_account(account)
        if not ledger.read_only:
            ledger.record_run(run)
    except BaseException:
        ledger.close()
        raise
    if created:
        logger.warning(
            "Started a new ledger at %s. Keep it: it is what stops messages going out twice.",
            ledger.location,
        )
    return ledger
