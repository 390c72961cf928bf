"""Opening a run's ledger so that it cannot be lost, shared or mixed up without a word.

- A new ledger is announced with a WARNING naming its absolute location. When earlier runs
  left traces (the sent-ID, dead-letter or report file) and there is no ledger, it was
  probably lost or moved (or the default relative path is used from another folder): every
  row would go out again, so the run refuses until `new_ledger_ok` says to start afresh.
- A run holds the ledger exclusively; a second waits `ledger_wait_seconds`, then stops.
- The ledger records the account (public key and API host) and refuses another.
"""

from __future__ import annotations

import json
import typing as t

from target_chatra_push.ledger import Ledger
from target_chatra_push.ledger_model import LedgerError

if t.TYPE_CHECKING:
    import logging
    from pathlib import Path

    from target_chatra_push.ledger_model import LedgerStore
    from target_chatra_push.policy import DeliveryOptions


def _open_postgres(options: DeliveryOptions, *, read_only: bool) -> tuple[LedgerStore | None, bool]:
    # SQLAlchemy is loaded only for a PostgreSQL ledger: SQLite runs start faster without it.
    from target_chatra_push.ledger_postgres import PostgresLedger  # noqa: PLC0415

    url = t.cast("str", options.ledger_url)
    if read_only:
        return PostgresLedger.open_read_only(url), False
    created = not PostgresLedger.exists(url)
    if created:
        _check_new(options, PostgresLedger.describe_url(url))
    return PostgresLedger.open(url, lock_wait=options.ledger_wait_seconds), created


def _is_trace(path: Path) -> bool:
    """Whether a file shows an earlier real run; a dry run's report does not."""
    if not path.is_file():
        return False
    if path.suffix != ".json":
        return True
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    return not (isinstance(report, dict) and report.get("dry_run") is True)


def _check_new(options: DeliveryOptions, location: str) -> None:
    """Refuse to start a new ledger where earlier sends left traces, unless told to."""
    traces = [path for path in options.trace_paths if _is_trace(path)]
    if traces and not options.new_ledger_ok:
        found = ", ".join(str(path.resolve()) for path in traces)
        msg = (
            f"There is no ledger at {location}, but earlier runs left {found}: the ledger may "
            "have been lost or moved, and every row would be sent again. Point ledger_path "
            "(or ledger_url) at the old ledger, or set new_ledger_ok to start a new one."
        )
        raise LedgerError(msg)


def open_run_ledger(
    options: DeliveryOptions, *, account: str | None, logger: logging.Logger
) -> LedgerStore | None:
    """The run's ledger: locked and bound to the account (read-only in a dry run).

    Returns:
        The ledger; None in a dry run when there is none yet.

    Raises:
        LedgerError: When it cannot be opened, is held by another run, belongs to another
            account, or would be new where earlier sends left traces.
    """
    read_only = options.dry_run
    ledger: LedgerStore | None
    if options.ledger_url:
        ledger, created = _open_postgres(options, read_only=read_only)
    else:
        path = options.ledger_path
        if read_only:
            ledger = Ledger.open_read_only(path)
            created = False
        else:
            created = not Ledger.exists(path)
            if created:
                _check_new(options, str(path.resolve()))
            ledger = Ledger.open(path, lock_wait=options.ledger_wait_seconds)
    if ledger is None:
        return None
    if created:
        logger.warning(
            "Started a new ledger at %s. Keep it: it is what stops messages going out twice.",
            ledger.location,
        )
    if account is not None:
        try:
            ledger.bind_account(account)
        except LedgerError:
            ledger.close()
            raise
    return ledger
