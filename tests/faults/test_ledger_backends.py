"""The ledger's guarantees on both backends: SQLite (a file) and PostgreSQL (`ledger_url`).

Each PostgreSQL test gets a schema of its own in the session's database (the URL sets
`search_path`), dropped afterwards.
"""

from __future__ import annotations

import time
import typing as t
import uuid
from collections import Counter
from pathlib import Path

import pytest

from target_chatra_push.ledger import Ledger
from target_chatra_push.ledger_model import FailureKind, LedgerError, RunMark, Status
from target_chatra_push.ledger_postgres import PostgresLedger
from tests.faults.test_kill import check_target_kill_and_resume, target_sandbox

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from chatra_sandbox import SandboxServer
    from conftest import PostgresDatabase
    from target_chatra_push.ledger_model import LedgerStore
    from tests.faults.conftest import Plugins


@pytest.fixture
def pg_ledger_url(postgres_database: PostgresDatabase) -> Iterator[str]:
    """A PostgreSQL ledger URL whose tables go to a fresh schema."""
    schema = f"target_ledger_{uuid.uuid4().hex[:10]}"
    with postgres_database.connect() as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield (
        postgres_database.server.url(postgres_database.name) + f"?options=-csearch_path%3D{schema}"
    )
    with postgres_database.connect() as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, t.Any]:
    """Target settings that put the ledger on one backend."""
    if request.param == "sqlite":
        return {"ledger_path": str(tmp_path / "ledger.sqlite")}
    return {"ledger_url": request.getfixturevalue("pg_ledger_url")}


def _open(backend: dict[str, t.Any], **kwargs: t.Any) -> LedgerStore:
    if "ledger_url" in backend:
        return PostgresLedger.open(backend["ledger_url"], **kwargs)
    return Ledger.open(Path(backend["ledger_path"]), **kwargs)


def test_the_ledger_protocol_on_both_backends(backend: dict[str, t.Any]) -> None:
    first, second = _open(backend), _open(backend)
    mark = RunMark.of_this_process()
    try:
        assert first.claim("s", "k", "h", lambda e: e is None, mark)[1]
        entry, claimed = second.claim("s", "k", "h", lambda e: e is None)
        assert not claimed  # committed, and visible to another connection at once
        assert (entry.status, entry.run) == (Status.PENDING, mark)
        first.mark_unknown("s", "k", "lost")
        assert second.entries(statuses=[Status.UNKNOWN])[0].key == "k"
        assert second.settle("s", "k", sent=False)
        assert not second.settle("s", "k", sent=True)  # no longer unconfirmed
        got = first.get("s", "k")
        assert (got.status, got.failure_kind) == (Status.FAILED, FailureKind.NOT_SENT)
        assert first.claim("s", "k", "h2", lambda e: True)[1]
        first.mark_sent("s", "k", "MSG1")
        got = second.get("s", "k")
        assert (got.status, got.message_id, got.attempts) == (Status.SENT, "MSG1", 2)
        assert second.key_properties("s") is None
        first.record_key_properties("s", ["order_id"])
        assert second.key_properties("s") == ("order_id",)
        first.bind_account("acct-1")
        second.bind_account("acct-1")
        with pytest.raises(LedgerError, match="another Chatra account"):
            second.bind_account("acct-2")
    finally:
        first.close()
        second.close()


def test_one_run_at_a_time_on_both_backends(backend: dict[str, t.Any]) -> None:
    holder = _open(backend, lock_wait=0)
    observer = _open(backend)
    try:
        with pytest.raises(LedgerError, match="Another run is using the ledger"):
            _open(backend, lock_wait=0.2).close()
        assert observer.in_use()
    finally:
        holder.close()
    try:
        assert not observer.in_use()
    finally:
        observer.close()
    _open(backend, lock_wait=0).close()  # released with the first


def test_two_concurrent_runs_on_one_ledger(
    plugins: Plugins,
    chatra_sandbox_factory: Callable[..., SandboxServer],
    backend: dict[str, t.Any],
) -> None:
    sandbox = chatra_sandbox_factory(
        seed=2, clients=5, messages=0, pushed_messages=0, requests_per_minute=0, latency_ms=100
    )
    # About 4 s of sends: the second run starts and gives up while the first is busy.
    rows = plugins.row_messages(plugins.valid_rows(sandbox.ids("clients"), 40), state_every=5)
    config = plugins.target_config(sandbox, ledger_wait_seconds=0.5, **backend)
    first = plugins.target_in_background(config, rows)
    try:
        deadline = time.monotonic() + 60
        while not sandbox.sends() and time.monotonic() < deadline:
            time.sleep(0.01)
        second = plugins.target(config, rows)
    finally:
        first_run = first.finish()

    second.assert_clear_failure("Another run is using the ledger")
    assert "password" not in second.stderr
    first_run.assert_clean_exit()
    sent = Counter(plugins.key_of_send(send) for send in sandbox.sends())
    assert sent == Counter(range(40)), "a row was sent twice, or not at all"


def test_a_postgres_ledger_survives_sigkill_mid_send(
    plugins: Plugins, chatra_sandbox_factory: Callable[..., SandboxServer], pg_ledger_url: str
) -> None:
    sandbox = target_sandbox(chatra_sandbox_factory, 5)
    check_target_kill_and_resume(plugins, sandbox, 5, 40, ledger_url=pg_ledger_url)


def test_a_new_postgres_ledger_where_traces_exist_is_refused(
    plugins: Plugins, chatra_sandbox_factory: Callable[..., SandboxServer], pg_ledger_url: str
) -> None:
    sandbox = chatra_sandbox_factory(clients=3, messages=0, pushed_messages=0)
    plugins.path("report.json").write_text('{"dry_run": false}', encoding="utf-8")
    rows = plugins.row_messages(plugins.valid_rows(sandbox.ids("clients"), 3))
    run = plugins.target(plugins.target_config(sandbox, ledger_url=pg_ledger_url), rows)

    run.assert_clear_failure("There is no ledger at postgresql://", "new_ledger_ok")
    assert sandbox.sends() == []
