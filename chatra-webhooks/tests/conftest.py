"""Fixtures: a store URL on each engine, and one inbox process per engine for a test module.

`store_url` is parametrized over SQLite (a file in the test's folder) and PostgreSQL (a
database of its own on the server the repository's root conftest finds), so every test that
uses it runs on both engines. The inbox process itself, and `webhook_inbox_factory`, come
from `chatra_webhooks.testing` (a pytest plugin).
"""

from __future__ import annotations

import contextlib
import logging
import typing as t

import psycopg
import pytest

from chatra_sandbox import launcher
from chatra_webhooks.testing import BIN, InboxProcess, inbox_env

if t.TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from conftest import PostgresServer


@pytest.fixture(autouse=True)
def _no_urls_in_captured_logs(caplog: pytest.LogCaptureFixture) -> None:
    """urllib3 logs every URL at DEBUG, the ingest token in its path included: keep it out
    of the output a failing test shows."""
    caplog.set_level(logging.INFO, logger="urllib3.connectionpool")


@contextlib.contextmanager
def store_url_for(engine: str, request: pytest.FixtureRequest, folder: Path) -> Iterator[str]:
    """A fresh store URL on `engine` (`sqlite` or `postgresql`)."""
    if engine == "sqlite":
        yield f"sqlite:///{folder / 'inbox.sqlite'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    with server.scratch_database("inbox") as name:
        yield server.url(name)


STORE_TABLES = ("chatra_webhooks_events", "chatra_webhooks_inbox", "chatra_webhooks_readers")
ENGINES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def postgres_inbox_database(postgres_server: PostgresServer) -> Iterator[str]:
    """A database for the store tests of this session (each test empties it first)."""
    with postgres_server.scratch_database("inbox") as name:
        yield postgres_server.url(name)


@pytest.fixture(params=ENGINES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store on each engine: a new SQLite file, or the emptied test database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'inbox.sqlite'}"
    url: str = request.getfixturevalue("postgres_inbox_database")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {', '.join(STORE_TABLES)}")
    return url


@pytest.fixture
def inbox_environment() -> dict[str, str]:
    """The environment `webhook_inbox_factory` and `run_cli` give the inbox (the tests' tokens)."""
    return inbox_env()


#: Settings of the module-wide `inbox`: short enough for a test to wait them out.
BODY_TIMEOUT = 1.5
MAX_BODY = 64 * 1024


@pytest.fixture(scope="module", params=ENGINES)
def inbox(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InboxProcess]:
    """One inbox per engine for a whole test module (`--body-timeout 1.5 --max-body 64K`)."""
    folder = tmp_path_factory.mktemp("inbox")
    with store_url_for(request.param, request, folder) as url:
        args = ("--body-timeout", str(BODY_TIMEOUT), "--max-body", str(MAX_BODY))
        process = InboxProcess(url, folder, args, inbox_env()).start()
        try:
            yield process
        finally:
            process.stop()


@pytest.fixture
def run_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Return `(*args, **env) -> finished `chatra-webhooks ARGS` process`."""

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return launcher.run(
            [str(BIN / "chatra-webhooks"), *args], text=True, timeout=60, env=inbox_env(**env)
        )

    return run
