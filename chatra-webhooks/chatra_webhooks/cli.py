"""`chatra-webhooks serve | export | prune | readers`: arguments to settings, then the work.

Each option also reads a `CHATRA_WEBHOOKS_<NAME>` variable, which is how Meltano passes the
utility's settings (`meltano invoke chatra-webhooks serve`). Every failure is one line on
stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import typing as t
from pathlib import Path

import sqlalchemy as sa

from chatra_webhooks import settings as defaults
from chatra_webhooks.app import create_app
from chatra_webhooks.maintenance import (
    export_jsonl,
    prune_older_than,
    prune_report,
    reader_lines,
)
from chatra_webhooks.server import bind, serve, url_of
from chatra_webhooks.settings import (
    InboxSettings,
    SettingsError,
    flag_from,
    normalize_store_url,
)
from chatra_webhooks.sql_store import SqlEventStore
from chatra_webhooks.store import StoreError

if t.TYPE_CHECKING:
    from collections import Counter
    from collections.abc import Callable, Sequence

PROG = "chatra-webhooks"
ENV_PREFIX = "CHATRA_WEBHOOKS_"


def _env(name: str, default: object) -> t.Any:
    return os.environ.get(ENV_PREFIX + name.upper(), default)


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(value: str) -> float:
        try:
            number = kind(value)
        except ValueError:
            number = -1
        if number <= 0:
            msg = f"expected a positive number, got {value!r}"
            raise argparse.ArgumentTypeError(msg)
        return number

    return parse


def _add_store(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        default=_env("store", defaults.DEFAULT_STORE_URL),
        help="sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB "
        f"(default: %(default)s; variable {ENV_PREFIX}STORE)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="receive Chatra's webhooks",
        description=f"Receive webhooks at POST /chatra/<token>. Tokens come from "
        f"{defaults.INGEST_TOKEN_VARIABLE} and {defaults.READ_TOKEN_VARIABLE}.",
    )
    add = serve.add_argument
    add("--host", default=_env("host", defaults.DEFAULT_HOST), help="address (%(default)s)")
    add("--port", type=int, default=_env("port", defaults.DEFAULT_PORT), help="0: a free port")
    _add_store(serve)
    add(
        "--max-body",
        type=_positive(int),
        default=_env("max_body", defaults.DEFAULT_MAX_BODY),
        help="largest accepted body in bytes (%(default)s)",
    )
    add(
        "--body-timeout",
        type=_positive(float),
        default=_env("body_timeout", defaults.DEFAULT_BODY_TIMEOUT),
        help="seconds a sender gets to send its whole body (%(default)s)",
    )
    add(
        "--public-metrics",
        action="store_true",
        help="answer GET /metrics without the read token (for a Prometheus inside a private "
        f"network; variable {defaults.PUBLIC_METRICS_VARIABLE})",
    )
    export = commands.add_parser("export", help="write the stored bodies as JSONL")
    _add_store(export)
    export.add_argument("--after", type=int, default=0, help="only events with a larger seq")
    export.add_argument("--output", type=Path, help="file to write (default: stdout)")
    prune = commands.add_parser(
        "prune",
        help="delete old events that every reader has read",
        description="Delete events received more than DAYS days ago, but none past the "
        "position the slowest reader has acknowledged (see `readers`).",
    )
    _add_store(prune)
    prune.add_argument(
        "--older-than",
        type=_positive(float),
        required=True,
        metavar="DAYS",
        help="delete events received more than DAYS days ago",
    )
    prune.add_argument(
        "--past-readers",
        action="store_true",
        help="delete them even if a reader has not acknowledged them, or no reader is known",
    )
    readers = commands.add_parser(
        "readers",
        help="list the readers' positions",
        description="List where each reader stands (tap-chatra acknowledges its position "
        "on every read); prune deletes nothing past the slowest.",
    )
    _add_store(readers)
    readers.add_argument(
        "--forget", metavar="NAME", help="forget a reader that no longer reads, then list"
    )
    return parser


def _open_store(url: str, *, must_exist: bool) -> SqlEventStore:
    normalized = normalize_store_url(url)
    if must_exist and normalized.startswith("sqlite"):
        database = sa.engine.make_url(normalized).database
        if database and not Path(database).exists():
            msg = f"the store {database} does not exist; check --store"
            raise StoreError(msg)
    return SqlEventStore(normalized)


def _serve(args: argparse.Namespace) -> int:
    settings = InboxSettings.from_environment(
        os.environ,
        store_url=normalize_store_url(args.store),
        host=args.host,
        port=int(args.port),
        max_body=int(args.max_body),
        body_timeout=float(args.body_timeout),
        public_metrics=args.public_metrics
        or flag_from(os.environ, defaults.PUBLIC_METRICS_VARIABLE),
    )
    store = _open_store(settings.store_url, must_exist=False)
    try:
        try:
            sock = bind(settings.host, settings.port)
        except OSError as exc:
            msg = f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}"
            raise StoreError(msg) from None
        print(f"listening on {url_of(sock)}", flush=True)
        _lean_log_records()
        serve(create_app(settings, store), sock)
    finally:
        store.close()
    return 0


def _lean_log_records() -> None:
    """Leave out of every log record what no line shows: thread, process, caller's line.

    The server writes a line per request, and logging would look these up for each (the
    logging HOWTO's "Optimization" section names these switches, `_srcfile` included).
    """
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None


def _export(args: argparse.Namespace) -> int:
    store = _open_store(args.store, must_exist=True)
    try:
        if args.output is None:
            exported = export_jsonl(store, sys.stdout, args.after)
        else:
            with args.output.open("w", encoding="utf-8") as out:
                exported = export_jsonl(store, out, args.after)
    finally:
        store.close()
    print(
        f"{PROG}: exported {exported.count} events; the last seq is {exported.last_seq}",
        file=sys.stderr,
    )
    if exported.repaired:
        print(
            f"{PROG}: repaired {exported.repaired.total()} events that were not strict JSON "
            f"({_counts(exported.repaired)})",
            file=sys.stderr,
        )
    if exported.skipped:
        print(
            f"{PROG}: skipped {exported.skipped.total()} events that cannot be served as a "
            f"JSON object ({_counts(exported.skipped)})",
            file=sys.stderr,
        )
    return 0


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{name}: {count}" for name, count in sorted(counter.items()))


def _prune(args: argparse.Namespace) -> int:
    store = _open_store(args.store, must_exist=True)
    try:
        pruned = prune_older_than(store, args.older_than, past_readers=args.past_readers)
    finally:
        store.close()
    for line in prune_report(pruned, args.older_than):
        print(f"{PROG}: {line}", file=sys.stderr)
    return 0


def _readers(args: argparse.Namespace) -> int:
    store = _open_store(args.store, must_exist=True)
    try:
        if args.forget is not None and not store.forget_reader(args.forget):
            msg = f"no reader is named {args.forget!r}; see `{PROG} readers`"
            raise StoreError(msg)
        readers = store.readers()
    finally:
        store.close()
    for line in reader_lines(readers):
        print(line)
    return 0


class _LogFormatter(logging.Formatter):
    """The standard format, with the time's text made once a second instead of once a line.

    The access log writes a line per request; strftime was a visible part of each.
    """

    _second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        """The record's time as `logging.Formatter` writes it by default."""
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second, text = self._second
        if second != int(record.created):
            text = time.strftime(self.default_time_format, self.converter(record.created))
            self._second = (int(record.created), text)
        return f"{text},{int(record.msecs):03d}"


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "serve": _serve,
    "export": _export,
    "prune": _prune,
    "readers": _readers,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the exit status."""
    args = build_parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LogFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    try:
        return COMMANDS[args.command](args)
    except SettingsError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except (StoreError, OSError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
