"""`meltano run tap-chatra target-postgres` and `... target-duckdb` against the sandbox."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import duckdb
import pytest

from tap_chatra.id_map import read_ids

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from chatra_sandbox import SandboxServer
    from conftest import PostgresDatabase
    from tests.e2e.conftest import MeltanoProject, SandboxSettings

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

TABLES = ("messages", "pushed_messages", "clients")
# Resources whose records are fetched once per ID, ever (clients are re-fetched when due).
FETCH_ONCE_RESOURCES = {"messages", "pushedMessages"}


class Warehouse(Protocol):
    @property
    def loader(self) -> str: ...

    @property
    def env(self) -> dict[str, str]: ...

    def ids(self, table: str) -> list[str]: ...

    def column_type(self, table: str, column: str) -> str: ...

    def value(self, table: str, record_id: str, column: str) -> Any: ...


@dataclass
class PostgresWarehouse:
    database: PostgresDatabase
    schema: str = field(default_factory=lambda: f"chatra_{uuid.uuid4().hex[:8]}")
    loader: str = "target-postgres"

    @property
    def env(self) -> dict[str, str]:
        return {
            **self.database.env("TARGET_POSTGRES"),
            "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": self.schema,
        }

    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        with self.database.connect() as conn:
            return conn.execute(sql, params).fetchall()

    def ids(self, table: str) -> list[str]:
        return [row[0] for row in self.query(f'SELECT id FROM "{self.schema}"."{table}"')]

    def column_type(self, table: str, column: str) -> str:
        rows = self.query(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s AND column_name = %s",
            self.schema,
            table,
            column,
        )
        return str(rows[0][0])

    def value(self, table: str, record_id: str, column: str) -> Any:
        sql = f'SELECT "{column}" FROM "{self.schema}"."{table}" WHERE id = %s'
        return self.query(sql, record_id)[0][0]


@dataclass
class DuckDBWarehouse:
    path: Path
    loader: str = "target-duckdb"

    @property
    def env(self) -> dict[str, str]:
        return {
            "TARGET_DUCKDB_PATH": str(self.path),
            "TARGET_DUCKDB_DEFAULT_TARGET_SCHEMA": "chatra",
        }

    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        with duckdb.connect(str(self.path), read_only=True) as conn:
            return conn.execute(sql, list(params)).fetchall()

    def ids(self, table: str) -> list[str]:
        return [row[0] for row in self.query(f"SELECT id FROM chatra.{table}")]

    def column_type(self, table: str, column: str) -> str:
        rows = self.query(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_schema = 'chatra' AND table_name = ? AND column_name = ?",
            table,
            column,
        )
        return str(rows[0][0])

    def value(self, table: str, record_id: str, column: str) -> Any:
        # target-duckdb lower-cases column names.
        sql = f'SELECT "{column.lower()}" FROM chatra.{table} WHERE id = ?'
        return self.query(sql, record_id)[0][0]


@pytest.fixture(
    params=[pytest.param("postgres", marks=pytest.mark.postgres), pytest.param("duckdb")]
)
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Warehouse:
    if request.param == "postgres":
        return PostgresWarehouse(request.getfixturevalue("postgres_database"))
    return DuckDBWarehouse(tmp_path / "warehouse.duckdb")


def expected_ids(sandbox: SandboxServer) -> dict[str, set[str]]:
    """What a full sync of every ID in the sandbox's ID files must load."""
    messages = [*sandbox.store.messages.values(), *sandbox.store.pushed_messages.values()]
    message_clients = {m["clientId"] for m in messages} & set(sandbox.store.clients)
    return {
        "messages": set(sandbox.ids("messages")),
        "pushed_messages": set(sandbox.ids("pushed_messages")),
        "clients": set(sandbox.ids("clients")) | message_clients,
    }


def assert_typed_times_and_json_columns(warehouse: Warehouse, sandbox: SandboxServer) -> None:
    """Times land as timestamps beside Chatra's epoch milliseconds; objects as jsonb in PostgreSQL.

    target-postgres makes a list of objects a jsonb[] column: each item is jsonb.
    """
    assert warehouse.column_type("clients", "last_visit_at").lower().startswith("timestamp")
    client = sandbox.ids("clients")[0]
    visit = warehouse.value("clients", client, "last_visit_at")
    visit = visit if visit.tzinfo else visit.replace(tzinfo=dt.UTC)
    assert visit.timestamp() * 1000 == sandbox.store.clients[client]["lastVisitAt"]
    if isinstance(warehouse, PostgresWarehouse):
        for table, column, udt in (
            ("clients", "info", "jsonb"),
            ("clients", "extra", "jsonb"),
            ("messages", "file", "jsonb"),
            ("clients", "lastVisitPages", "_jsonb"),
        ):
            rows = warehouse.query(
                "SELECT udt_name FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s AND column_name = %s",
                warehouse.schema,
                table,
                column,
            )
            assert rows == [(udt,)], f"{table}.{column}"
        pages = warehouse.value("clients", client, "lastVisitPages")
        assert isinstance(pages, list)
        assert pages[0]["visited_at"].endswith("+00:00")


def test_sync_loads_every_record_once_and_keeps_state(
    meltano: MeltanoProject,
    chatra_sandbox_factory: Callable[..., SandboxServer],
    sandbox_settings: SandboxSettings,
    warehouse: Warehouse,
) -> None:
    sandbox = chatra_sandbox_factory(
        seed=21, clients=12, messages=30, pushed_messages=8, requests_per_minute=0
    )
    # Every client on every run, so that the client renamed between runs is fetched again.
    env = {
        **sandbox_settings.tap(sandbox),
        **warehouse.env,
        "TAP_CHATRA_CLIENT_REFRESH_HOURS": "0",
    }
    suffix = uuid.uuid4().hex[:8]
    run = ("run", f"--state-id-suffix={suffix}", "tap-chatra", warehouse.loader)
    expected = expected_ids(sandbox)

    meltano.run(*run, env=env)

    for table in TABLES:
        loaded = warehouse.ids(table)
        assert sorted(loaded) == sorted(expected[table]), f"{table} does not match the sandbox"
    assert warehouse.column_type("messages", "created_at").lower().startswith("timestamp")
    assert_typed_times_and_json_columns(warehouse, sandbox)
    state_id = f"dev:tap-chatra-to-{warehouse.loader}:{suffix}"
    state = json.loads(meltano.run("state", "get", state_id, env=env).stdout)
    bookmarks = state["singer_state"]["bookmarks"]
    assert set(read_ids(bookmarks["messages"]["fetched"])) == expected["messages"]

    changed_client = sandbox.ids("clients")[0]
    sandbox.store.update_client(changed_client, name="Renamed Between Runs")
    requests_before = len(sandbox.request_log())

    meltano.run(*run, env=env)

    second_run = sandbox.request_log()[requests_before:]
    refetched = [r for r in second_run if r["resource"] in FETCH_ONCE_RESOURCES]
    assert refetched == [], "the second run fetched messages again"
    assert second_run, "the second run made no request at all (clients are re-checked)"
    for table in TABLES:
        loaded = warehouse.ids(table)
        assert len(loaded) == len(set(loaded)), f"duplicate rows in {table}"
        assert set(loaded) == expected[table]
    assert warehouse.value("clients", changed_client, "name") == "Renamed Between Runs"
