"""A PostgreSQL server for every test suite of the repository.

Order of preference: the server that answers on 127.0.0.1:5432 (trust auth as user
`postgres` on the project's machines and in CI's service container), else a throwaway
cluster started with `initdb`/`pg_ctl` (as an unprivileged user when running as root, since
PostgreSQL refuses to run as root), else the tests that need it are skipped with the reason.
Each test session works in its own database, dropped at the end. (The webhook inbox's
fixture, `webhook_inbox_factory`, is the pytest plugin `chatra_webhooks.testing`.)

Also: test reports travel from pytest-xdist's workers as UTF-8, so a lone surrogate in a
captured log line (a test that feeds arbitrary bytes) is escaped before it is sent, rather
than ending the whole run with an internal error.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5432
DEFAULT_USER = "postgres"


@dataclass(frozen=True)
class PostgresServer:
    """Where a PostgreSQL server answers, and how it was obtained."""

    host: str
    port: int
    user: str
    origin: str

    def connect(self, dbname: str = "postgres") -> psycopg.Connection:
        """Open an autocommit connection to `dbname` (autocommit allows CREATE DATABASE)."""
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            dbname=dbname,
            connect_timeout=5,
            autocommit=True,
        )

    @contextlib.contextmanager
    def scratch_database(self, prefix: str) -> Iterator[str]:
        """A new database named `prefix` plus a random suffix; dropped at the end."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield name
        finally:
            with self.connect() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def url(self, dbname: str) -> str:
        """The `postgresql://` URL of a database on this server (trust authentication)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"


@dataclass(frozen=True)
class PostgresDatabase:
    """A database created for this test session."""

    server: PostgresServer
    name: str

    def connect(self) -> psycopg.Connection:
        """Open an autocommit connection to this database."""
        return self.server.connect(self.name)

    def env(self, prefix: str) -> dict[str, str]:
        """Meltano setting variables (e.g. TARGET_POSTGRES_HOST) pointing at this database."""
        return {
            f"{prefix}_HOST": self.server.host,
            f"{prefix}_PORT": str(self.server.port),
            f"{prefix}_USER": self.server.user,
            # Trust authentication; tap-postgres insists on a password, even an empty one.
            f"{prefix}_PASSWORD": "",
            f"{prefix}_DATABASE": self.name,
        }


def utf8_safe(value: object) -> object:
    """`value` with every string that UTF-8 cannot encode (lone surrogates) escaped."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {utf8_safe(key): utf8_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(utf8_safe(item) for item in value)
    return value


@pytest.hookimpl(wrapper=True)
def pytest_report_to_serializable(
    config: pytest.Config, report: pytest.CollectReport | pytest.TestReport
) -> Iterator[None]:
    """The report as pytest-xdist sends it, with lone surrogates escaped."""
    data = yield
    return utf8_safe(data)


def _answers(host: str, port: int, user: str) -> str | None:
    """Return None when a trust-auth connection works, else why it does not."""
    try:
        with psycopg.connect(host=host, port=port, user=user, dbname="postgres", connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"{host}:{port} did not accept user {user!r}: {str(exc).strip().splitlines()[0]}"


def _find_pg_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    # Debian and Ubuntu keep the server tools off PATH, in one folder per major version.
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    return str(candidates[0]) if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((DEFAULT_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def _throwaway_cluster() -> Iterator[PostgresServer]:
    initdb, pg_ctl = _find_pg_binary("initdb"), _find_pg_binary("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip(
            "PostgreSQL tests skipped: no server on 127.0.0.1:5432 and no initdb/pg_ctl "
            "to start a throwaway one (install the PostgreSQL server package)"
        )
    as_user: list[str] = []
    data_root = Path(tempfile.mkdtemp(prefix="chatra-e2e-pg-"))
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if not runuser:
            pytest.skip("PostgreSQL tests skipped: running as root and `runuser` is missing")
        # PostgreSQL refuses to run as root; `nobody` owns only this throwaway folder.
        as_user = [runuser, "-u", "nobody", "--"]
        shutil.chown(data_root, user="nobody")
    data_dir, log_file = data_root / "data", data_root / "server.log"
    port = _free_port()
    try:
        subprocess.run(
            [*as_user, initdb, "-D", str(data_dir), "-U", DEFAULT_USER, "--auth=trust"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(
            [
                *as_user,
                pg_ctl,
                "-D",
                str(data_dir),
                "-l",
                str(log_file),
                "-w",
                "-t",
                "60",
                "-o",
                f"-p {port} -k {data_root} -c listen_addresses={DEFAULT_HOST} -c fsync=off",
                "start",
            ],
            check=True,
            capture_output=True,
            timeout=90,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        shutil.rmtree(data_root, ignore_errors=True)
        output = getattr(exc, "stderr", b"") or b""
        detail = output.decode(errors="replace").strip().splitlines()[-1:] or [str(exc)]
        pytest.skip(f"PostgreSQL tests skipped: could not start a throwaway cluster: {detail[0]}")
    try:
        yield PostgresServer(DEFAULT_HOST, port, DEFAULT_USER, f"throwaway cluster in {data_root}")
    finally:
        subprocess.run(
            [*as_user, pg_ctl, "-D", str(data_dir), "-m", "immediate", "-w", "stop"],
            check=False,
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(data_root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server with trust auth: the local one, or a throwaway cluster."""
    why_not = _answers(DEFAULT_HOST, DEFAULT_PORT, DEFAULT_USER)
    if why_not is None:
        yield PostgresServer(DEFAULT_HOST, DEFAULT_PORT, DEFAULT_USER, "the local server")
        return
    print(f"\n{why_not}; starting a throwaway PostgreSQL cluster")
    with _throwaway_cluster() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_database(postgres_server: PostgresServer) -> Iterator[PostgresDatabase]:
    """A database of its own for this test session, dropped afterwards."""
    with postgres_server.scratch_database("chatra_e2e") as name:
        yield PostgresDatabase(postgres_server, name)


@pytest.fixture
def scratch_postgres_database(postgres_server: PostgresServer) -> Iterator[PostgresDatabase]:
    """A database of its own for one test, dropped afterwards."""
    with postgres_server.scratch_database("chatra_test") as name:
        yield PostgresDatabase(postgres_server, name)
