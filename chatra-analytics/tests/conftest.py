"""Marts written by hand (as the dbt models would), on DuckDB and PostgreSQL, for the report."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb
import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import PostgresDatabase

HOSTILE_TEXT = '<script>alert("text")</script><img src=x onerror=alert(2)> & "quotes"'
HOSTILE_NAME = "</td></tr><script>alert('name')</script>"
HOSTILE_KEY = 'chat" onmouseover="alert(4)'
DAY = dt.date(2025, 3, 6)

# (chat_key, started_on offset in days, status, first_response_seconds, agent)
CHATS = [
    ("c1", 0, "answered", 12.0, "a1"),
    ("c2", 0, "answered", 45.5, "a1"),
    ("c3", 0, "unanswered", None, None),
    ("c4", 2, "answered", 30.0, "a2"),
    ("c5", 2, "answered", 4000.0, "a2"),
    ("c6", 2, "agent_only", None, None),
    ("c7", 2, "answered", 95.0, "a1"),
]
AGENT_DAILY = [
    # agent_id, agent_name, offset, chats, messages, first_responses
    ("a1", "Daniela", 0, 2, 5, 2),
    ("a1", "Daniela", 2, 1, 2, 1),
    ("a2", "<b>Marco</b>", 2, 3, 6, 2),
]


def naive_utc(*parts: int) -> dt.datetime:
    """A UTC time as the marts hold it: naive."""
    return dt.datetime(*parts, tzinfo=dt.UTC).replace(tzinfo=None)  # type: ignore[misc]


MISSED = [
    # chat_key, client_name, started_at, waited_minutes, last_client_text
    (HOSTILE_KEY, HOSTILE_NAME, naive_utc(2025, 3, 6, 9, 30), 125.5, HOSTILE_TEXT),
    ("c3", "Anna Smith", naive_utc(2025, 3, 6, 22, 5), 48.0, "Hello?\nAnyone there?"),
]
AS_OF = naive_utc(2025, 3, 8, 18, 0)

_TABLES = {
    "chats": "chat_key varchar, started_on date, status varchar, "
    "first_response_seconds double precision, first_response_agent_id varchar",
    "agent_daily": "agent_id varchar, agent_name varchar, activity_date date, chats integer, "
    "messages integer, first_responses integer",
    "missed_chats": "chat_key varchar, client_name varchar, started_at timestamp, "
    "waited_minutes double precision, last_client_text varchar, as_of timestamp",
}


def mart_rows() -> dict[str, list[tuple[Any, ...]]]:
    return {
        "chats": [
            (key, DAY + dt.timedelta(days=offset), status, seconds, agent)
            for key, offset, status, seconds, agent in CHATS
        ],
        "agent_daily": [
            (agent, name, DAY + dt.timedelta(days=offset), chats, messages, firsts)
            for agent, name, offset, chats, messages, firsts in AGENT_DAILY
        ],
        "missed_chats": [(*row, AS_OF) for row in MISSED],
    }


@dataclass
class Marts:
    """Where the hand-written marts are, and the chatra-report arguments that read them."""

    args: list[str]
    duckdb_path: Path | None = None
    postgres_url: str | None = None


@pytest.fixture
def duckdb_marts(tmp_path: Path) -> Marts:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("create schema analytics")
        for table, columns in _TABLES.items():
            conn.execute(f"create table analytics.{table} ({columns})")
            for row in mart_rows()[table]:
                marks = ", ".join("?" for _ in row)
                conn.execute(f"insert into analytics.{table} values ({marks})", list(row))
    return Marts(["--duckdb", str(path)], duckdb_path=path)


@pytest.fixture
def postgres_marts(scratch_postgres_database: PostgresDatabase) -> Marts:
    with scratch_postgres_database.connect() as conn:
        conn.execute("create schema analytics")
        for table, columns in _TABLES.items():
            conn.execute(f"create table analytics.{table} ({columns})")
            for row in mart_rows()[table]:
                marks = ", ".join("%s" for _ in row)
                conn.execute(f"insert into analytics.{table} values ({marks})", row)
    url = scratch_postgres_database.server.url(scratch_postgres_database.name)
    return Marts(["--postgres", url], postgres_url=url)
