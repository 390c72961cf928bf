"""Reading the marts: one DuckDB file, or a PostgreSQL database, behind one small interface."""

from __future__ import annotations

import contextlib
import re
import typing as t

import duckdb
import psycopg
from psycopg.conninfo import conninfo_to_dict

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: The marts the report reads.
MARTS = ("chats", "agent_daily", "missed_chats")
_HAS_TABLE = (
    "select count(*) from information_schema.tables where table_schema = ? and table_name = ?"
)


class ReportError(Exception):
    """A problem the user can fix: the message says what and how, in one line."""


class Warehouse(t.Protocol):
    """Where the marts are: runs a query, returns its rows."""

    #: The warehouse as the user named it, for messages (never a password).
    where: str

    def rows(self, sql: str) -> list[tuple[t.Any, ...]]:
        """Run `sql` and return every row."""
        ...

    def has_table(self, schema: str, table: str) -> bool:
        """Whether `schema.table` exists."""
        ...


class QueryWarehouse:
    """A DuckDB file or a PostgreSQL database, through its DB-API connection (read-only)."""

    def __init__(self, connection: t.Any, where: str, placeholder: str) -> None:
        # DuckDB's connection or psycopg's: both execute and fetch alike, but DuckDB marks a
        # query parameter `?` and psycopg `%s`.
        self._connection = connection
        self.where = where
        self._placeholder = placeholder

    def rows(self, sql: str) -> list[tuple[t.Any, ...]]:
        """Run `sql` and return every row."""
        rows: list[tuple[t.Any, ...]] = self._connection.execute(sql).fetchall()
        return rows

    def has_table(self, schema: str, table: str) -> bool:
        """Whether `schema.table` exists."""
        query = _HAS_TABLE.replace("?", self._placeholder)
        found = self._connection.execute(query, (schema, table)).fetchone()
        return bool(found and found[0])


def check_schema(schema: str) -> str:
    """Return `schema` if it is a plain identifier (it is put into SQL as is).

    Raises:
        ReportError: If it is not.
    """
    if not _IDENTIFIER.fullmatch(schema):
        msg = (
            f"Schema {schema!r} is not a plain name (letters, digits, _); give the models' schema."
        )
        raise ReportError(msg)
    return schema


def check_marts(warehouse: Warehouse, schema: str, marts: Sequence[str] = MARTS) -> None:
    """Stop with one line when a mart the report reads is missing.

    Raises:
        ReportError: If one is.
    """
    for mart in marts:
        if not warehouse.has_table(schema, mart):
            msg = (
                f"No table {schema}.{mart} in {warehouse.where}: build the models first "
                "(meltano run chatra-to-warehouse, or chatra-to-postgres), or give their --schema."
            )
            raise ReportError(msg)


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@contextlib.contextmanager
def _open_duckdb(path: Path) -> Iterator[Warehouse]:
    if not path.is_file():
        msg = f"No DuckDB file at {path}; give the file the models were built in."
        raise ReportError(msg)
    try:
        connection = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as error:
        msg = f"Cannot open {path} with DuckDB: {_first_line(error)}"
        raise ReportError(msg) from None
    with connection:
        yield QueryWarehouse(connection, str(path), "?")


@contextlib.contextmanager
def _open_postgres(url: str) -> Iterator[Warehouse]:
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        # The parser's message may quote the URL, password and all: not shown.
        msg = "The PostgreSQL URL is not valid; give postgresql://USER:PASSWORD@HOST:PORT/DATABASE."
        raise ReportError(msg) from None
    host, port = parts.get("host", "localhost"), parts.get("port", 5432)
    where = f"PostgreSQL {host}:{port}/{parts.get('dbname', '')}"
    try:
        connection = psycopg.connect(url, connect_timeout=10)
    except psycopg.Error as error:
        reason = _first_line(error)
        if parts.get("password"):
            reason = reason.replace(str(parts["password"]), "***")
        msg = f"Cannot connect to {where}: {reason}"
        raise ReportError(msg) from None
    with connection:
        connection.read_only = True
        yield QueryWarehouse(connection, where, "%s")


def open_warehouse(
    *, duckdb_path: Path | None = None, postgres_url: str | None = None
) -> contextlib.AbstractContextManager[Warehouse]:
    """Open the warehouse the marts are in: a DuckDB file or a PostgreSQL URL.

    Raises:
        ReportError: If neither or both are given, or (on entering) it cannot be opened.
    """
    if duckdb_path is not None and postgres_url is None:
        return _open_duckdb(duckdb_path)
    if postgres_url is not None and duckdb_path is None:
        return _open_postgres(postgres_url)
    msg = "Give the warehouse: a DuckDB file (--duckdb) or a PostgreSQL URL (--postgres)."
    raise ReportError(msg)
