"""`chatra-push-ledger`: list a ledger's keys and settle unconfirmed ones, without SQL.

An unconfirmed key (a crash mid-send, or a POST whose answer was lost) is never sent again
automatically. Once someone has looked at the conversation in Chatra:

    chatra-push-ledger list --status unconfirmed
    chatra-push-ledger settle '[10433]' --as sent       # it arrived: never send it
    chatra-push-ledger settle '[10433]' --as not-sent   # it did not: send it when next seen

The ledger is the target's `ledger_url`, else its `ledger_path`, read from `--config` (the
target's JSON config), from `--ledger-url`/`--ledger-path`, or from the variables
TARGET_CHATRA_PUSH_LEDGER_URL / TARGET_CHATRA_PUSH_LEDGER_PATH. Every command opens an
existing ledger only: pointed at a database or file that holds none, it refuses and creates
nothing (an empty ledger would let the next run send everything again). It names the ledger
it found on stderr, so a wrong one is noticed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import typing as t
from pathlib import Path

from target_chatra_push.ledger import Ledger
from target_chatra_push.ledger_model import UNCONFIRMED, LedgerError, Status
from target_chatra_push.settings import DEFAULT_LEDGER_PATH

if t.TYPE_CHECKING:
    from collections.abc import Sequence

    from target_chatra_push.ledger_model import Entry, LedgerStore

_STATUS_CHOICES = ("unconfirmed", "all", *(status.value for status in Status))
# Settling waits this long for a run that holds the ledger.
_SETTLE_LOCK_WAIT = 5.0


class CommandError(Exception):
    """One line for the user; the command exits with status 1."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatra-push-ledger",
        description="List target-chatra-push ledger keys and settle unconfirmed ones.",
    )
    where = parser.add_argument_group("which ledger (default: the target's defaults)")
    where.add_argument("--config", type=Path, help="the target's JSON config file")
    where.add_argument("--ledger-path", type=Path, help="a SQLite ledger file")
    where.add_argument("--ledger-url", help="a PostgreSQL ledger: postgresql://...")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="list keys, one per line")
    listing.add_argument("--status", choices=_STATUS_CHOICES, default="unconfirmed")
    listing.add_argument("--stream", help="only this stream")
    settle = commands.add_parser("settle", help="settle an unconfirmed key by hand")
    settle.add_argument("key", help="the key as listed, e.g. '[10433]'")
    settle.add_argument("--as", dest="outcome", choices=("sent", "not-sent"), required=True)
    settle.add_argument("--stream", help="the key's stream (needed if several hold it)")
    return parser


def _ledger_setting(args: argparse.Namespace) -> tuple[str | None, Path]:
    config: dict[str, t.Any] = {}
    if args.config is not None:
        try:
            config = json.loads(args.config.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            msg = f"Cannot read the config {args.config}: {exc}"
            raise CommandError(msg) from None
    url = (
        args.ledger_url
        or config.get("ledger_url")
        or os.environ.get("TARGET_CHATRA_PUSH_LEDGER_URL")
        or None
    )
    path = (
        args.ledger_path
        or config.get("ledger_path")
        or os.environ.get("TARGET_CHATRA_PUSH_LEDGER_PATH")
        or DEFAULT_LEDGER_PATH
    )
    return url, Path(path)


def _open(args: argparse.Namespace, *, write: bool) -> LedgerStore:
    url, path = _ledger_setting(args)
    ledger: LedgerStore | None
    if url:
        # SQLAlchemy is loaded only for a PostgreSQL ledger.
        from target_chatra_push.ledger_postgres import PostgresLedger  # noqa: PLC0415

        where = PostgresLedger.describe_url(url)
        if not PostgresLedger.exists(url):
            ledger = None
        elif write:
            ledger = PostgresLedger.open(url, lock_wait=_SETTLE_LOCK_WAIT, create=False)
        else:
            ledger = PostgresLedger.open_read_only(url)
    else:
        where = str(path.resolve())
        if not Ledger.exists(path):
            ledger = None
        elif write:
            ledger = Ledger.open(path, lock_wait=_SETTLE_LOCK_WAIT, create=False)
        else:
            ledger = Ledger.open_read_only(path)
    if ledger is None:
        msg = (
            f"There is no ledger at {where}; nothing was created. Give the target's "
            "--config, --ledger-path or --ledger-url."
        )
        raise CommandError(msg)
    print(f"chatra-push-ledger: using {ledger.describe()}.", file=sys.stderr)
    return ledger


def _line(entry: Entry, *, live: bool) -> str:
    run = ""
    if entry.run and entry.status is Status.PENDING:
        # Only a run holding the ledger can be mid-send; without one, the claimer ended.
        state = "may still be running" if live else "ended"
        run = f"\trun: {entry.run} ({state})"
    return f"{entry.stream}\t{entry.key}\t{entry.status.value}\t{entry.updated_at}{run}"


def _list(ledger: LedgerStore, status: str, stream: str | None) -> int:
    if status == "all":
        statuses: tuple[Status, ...] | None = None
    elif status == "unconfirmed":
        statuses = UNCONFIRMED
    else:
        statuses = (Status(status),)
    live = ledger.in_use()
    for entry in ledger.entries(stream, statuses):
        print(_line(entry, live=live))
    return 0


def _settle(ledger: LedgerStore, key: str, stream: str | None, *, sent: bool) -> int:
    holders = [e for e in ledger.entries(stream) if e.key == key]
    if not holders:
        where = f" in stream {stream}" if stream else ""
        msg = f"No key {key}{where} in the ledger {ledger.location}; see `list --status all`."
        raise CommandError(msg)
    if len(holders) > 1:
        streams = ", ".join(entry.stream for entry in holders)
        msg = f"Key {key} is in several streams ({streams}); give --stream."
        raise CommandError(msg)
    (entry,) = holders
    if not ledger.settle(entry.stream, key, sent=sent):
        status = entry.status.value
        msg = f"Key {key} of stream {entry.stream} is {status}, not unconfirmed; unchanged."
        raise CommandError(msg)
    outcome = "sent: it is never sent again" if sent else "not sent: it goes out when next seen"
    print(f"Settled stream {entry.stream} key {key} as {outcome}.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; errors are one line on stderr and exit status 1."""
    args = _parser().parse_args(argv)
    try:
        ledger = _open(args, write=args.command == "settle")
        try:
            if args.command == "list":
                return _list(ledger, args.status, args.stream)
            return _settle(ledger, args.key, args.stream, sent=args.outcome == "sent")
        finally:
            ledger.close()
    except (CommandError, LedgerError) as exc:
        print(f"chatra-push-ledger: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("chatra-push-ledger: interrupted.", file=sys.stderr)
        return 130


def run() -> None:
    """Console script entry point."""
    sys.exit(main())
