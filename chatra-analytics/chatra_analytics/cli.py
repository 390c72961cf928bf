"""`chatra-report`: write the report page of the analytics models from DuckDB or PostgreSQL."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from chatra_analytics.figures import read_figures
from chatra_analytics.page import render_report, write_report
from chatra_analytics.warehouse import ReportError, open_warehouse

if TYPE_CHECKING:
    from collections.abc import Sequence

#: Read when --postgres is not given, so a password need not be on a command line.
POSTGRES_URL_VARIABLE = "CHATRA_REPORT_POSTGRES_URL"


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="chatra-report",
        description=(
            "Write one self-contained HTML page (no network needed to view it) from the "
            "analytics models: chats per day, first response times, agent load, missed chats."
        ),
    )
    parser.add_argument("--duckdb", type=Path, metavar="FILE", help="the DuckDB file of the models")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help=f"postgresql://USER:PASSWORD@HOST:PORT/DATABASE (or set {POSTGRES_URL_VARIABLE})",
    )
    parser.add_argument("--schema", default="analytics", help="the models' schema (analytics)")
    parser.add_argument(
        "--output", type=Path, default=Path("chatra-report.html"), help="the page to write"
    )
    parser.add_argument("--title", default="Chatra chats", help="the page's title")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Write the page and print its path.

    Returns:
        0, or 2 with one line on stderr when the warehouse or the models are not there.
    """
    args = build_parser().parse_args(argv)
    postgres_url = args.postgres or (
        None if args.duckdb else os.environ.get(POSTGRES_URL_VARIABLE) or None
    )
    try:
        with open_warehouse(duckdb_path=args.duckdb, postgres_url=postgres_url) as warehouse:
            figures = read_figures(warehouse, args.schema)
            source = warehouse.where
        write_report(args.output, render_report(figures, title=args.title, source=source))
    except ReportError as error:
        print(f"chatra-report: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"chatra-report: cannot write {args.output}: {error.strerror}", file=sys.stderr)
        return 2
    print(args.output.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
