"""Fixtures: a store URL on each engine, and the inbox as a real `chatra-webhooks serve` process.

`store_url` is parametrized over SQLite (a file in the test's folder) and PostgreSQL (a
database of its own on the server the repository's root conftest finds), so every test that
uses it runs on both engines.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from conftest import PostgresServer

BIN = Path(sys.executable).parent
INGEST_TOKEN = "ingest-" + "a1" * 20
ROTATED_TOKEN = "ingest-" + "b2" * 20
READ_TOKEN = "read-" + "c3" * 16
START_TIMEOUT = 30.0


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
        conn.execute("DROP TABLE IF EXISTS chatra_webhooks_events, chatra_webhooks_inbox")
    return url


def inbox_env(**extra: str) -> dict[str, str]:
    """The environment of an inbox process: the tests' tokens, no stray settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATRA_WEBHOOKS_")}
    env["CHATRA_WEBHOOKS_INGEST_TOKEN"] = f"{INGEST_TOKEN},{ROTATED_TOKEN}"
    env["CHATRA_WEBHOOKS_READ_TOKEN"] = READ_TOKEN
    return {**env, **extra}


@pytest.fixture
def inbox_environment() -> dict[str, str]:
    """The environment `inbox_factory` and `run_cli` give the inbox (the tests' tokens)."""
    return inbox_env()


@dataclass
class InboxProcess:
    """A `chatra-webhooks serve --port 0` process and what it printed."""

    store_url: str
    folder: Path
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=inbox_env, repr=False)
    process: subprocess.Popen[str] | None = None
    url: str = ""
    starts: int = 0
    ingest_token: str = field(default=INGEST_TOKEN, repr=False)
    rotated_token: str = field(default=ROTATED_TOKEN, repr=False)
    read_token: str = field(default=READ_TOKEN, repr=False)

    @property
    def auth(self) -> dict[str, str]:
        """Headers of an authorized read API request."""
        return {"Authorization": f"Bearer {self.read_token}"}

    @property
    def stderr_path(self) -> Path:
        """Where the process's log goes (appended to across restarts)."""
        return self.folder / "inbox-stderr.log"

    def start(self) -> InboxProcess:
        """Start the server and wait for its `listening on` line."""
        command = [str(BIN / "chatra-webhooks"), "serve", "--port", "0"]
        command += ["--store", self.store_url] if self.store_url else []
        command += self.args
        with self.stderr_path.open("a", encoding="utf-8") as stderr:
            self.process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=self.env
            )
        assert self.process.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(
            target=lambda out: lines.put(out.readline()), args=(self.process.stdout,), daemon=True
        ).start()
        try:
            first = lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            self.kill()
            pytest.fail(f"the inbox did not start within {START_TIMEOUT} s: {self.log()[-2000:]}")
        assert first.startswith("listening on http://"), (first, self.log()[-2000:])
        self.url = first.removeprefix("listening on ").strip()
        self.starts += 1
        return self

    def ingest_url(self, token: str | None = None) -> str:
        """The URL Chatra would POST to."""
        return f"{self.url}/chatra/{token or self.ingest_token}"

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> int | None:
        """SIGTERM and wait; return the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode

    def log(self) -> str:
        """Everything the process wrote to stderr so far."""
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


@pytest.fixture
def inbox_factory(tmp_path: Path) -> Iterator[Callable[..., InboxProcess]]:
    """Return `(store_url, *args, **env) -> started InboxProcess`; all stop at teardown."""
    started: list[InboxProcess] = []

    def start(store_url: str, *args: str, **env: str) -> InboxProcess:
        folder = tmp_path / f"inbox-{len(started)}"
        folder.mkdir()
        inbox = InboxProcess(store_url, folder, args, inbox_env(**env))
        started.append(inbox)
        return inbox.start()

    try:
        yield start
    finally:
        for inbox in started:
            inbox.stop()


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
        return subprocess.run(
            [str(BIN / "chatra-webhooks"), *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=inbox_env(**env),
            check=False,
        )

    return run
