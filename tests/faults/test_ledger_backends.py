"""The ledger's guarantees on both backends: SQLite (a file) and PostgreSQL (`ledger_url`).

Each PostgreSQL test gets a schema of its own in the session's database (the URL sets
`search_path`), dropped afterwards.
"""

from __future__ import annotations

import re
import signal
import sqlite3
import time
import typing as t
import uuid
from collections import Counter
from contextlib import closing
from pathlib import Path

import psycopg
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
    from tests.faults.conftest import Plugins, Run


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


def _sql(backend: dict[str, t.Any], *statements: str) -> list[tuple[t.Any, ...]]:
    """Run statements on the ledger's own database; the rows of the last one."""
    rows: list[tuple[t.Any, ...]] = []
    if "ledger_url" in backend:
        with psycopg.connect(backend["ledger_url"], autocommit=True) as conn:
            for statement in statements:
                cursor = conn.execute(statement)
                rows = cursor.fetchall() if cursor.description else []
        return rows
    with closing(sqlite3.connect(backend["ledger_path"], isolation_level=None)) as db:
        for statement in statements:
            rows = db.execute(statement).fetchall()
    return rows


def _has_ledger(backend: dict[str, t.Any]) -> bool:
    if "ledger_url" in backend:
        return PostgresLedger.exists(backend["ledger_url"])
    return Path(backend["ledger_path"]).exists()


def _lose_the_ledger(backend: dict[str, t.Any]) -> None:
    if "ledger_url" in backend:
        _sql(backend, "DROP TABLE deliveries, stream_keys, ledger_meta")
    else:
        Path(backend["ledger_path"]).unlink()


def _ledger_cli(plugins: Plugins, backend: dict[str, t.Any], *args: str) -> Run:
    where = (
        ["--ledger-url", backend["ledger_url"]]
        if "ledger_url" in backend
        else ["--ledger-path", backend["ledger_path"]]
    )
    return plugins.run([plugins.executable("chatra-push-ledger"), *where, *args])


def _sandbox(factory: Callable[..., SandboxServer], **options: t.Any) -> SandboxServer:
    return factory(clients=3, messages=0, pushed_messages=0, requests_per_minute=0, **options)


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
    # The first run's input stays open: it holds the ledger until the second has given up,
    # however slowly the second starts on a loaded machine.
    rows = plugins.row_messages(plugins.valid_rows(sandbox.ids("clients"), 40), state_every=5)
    config = plugins.target_config(sandbox, ledger_wait_seconds=0.5, **backend)
    first = plugins.target_in_background(config, rows, input_open=True)
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


def test_a_maintenance_command_finds_no_ledger_and_creates_none(
    plugins: Plugins, backend: dict[str, t.Any]
) -> None:
    # The audit: `settle` on a PostgreSQL URL that held no ledger created an empty one.
    for args in (["settle", "[1]", "--as", "sent"], ["list"]):
        run = _ledger_cli(plugins, backend, *args)
        assert run.returncode == 1
        assert run.stderr.startswith("chatra-push-ledger: There is no ledger at ")
        assert "nothing was created" in run.stderr
        assert run.stderr.count("\n") == 1
    assert not _has_ledger(backend)


def test_a_lost_ledger_stays_refused_whatever_command_touched_it(
    plugins: Plugins,
    chatra_sandbox_factory: Callable[..., SandboxServer],
    backend: dict[str, t.Any],
) -> None:
    sandbox = _sandbox(chatra_sandbox_factory)
    rows = plugins.row_messages(plugins.valid_rows(sandbox.ids("clients"), 5))
    config = plugins.target_config(sandbox, **backend)
    plugins.target(config, rows).assert_clean_exit()
    _lose_the_ledger(backend)

    assert _ledger_cli(plugins, backend, "settle", "[1]", "--as", "sent").returncode == 1
    plugins.target(config, rows).assert_clear_failure("There is no ledger at", "new_ledger_ok")
    # An empty ledger, as an older maintenance command left it, guards nothing either.
    _open(backend).close()
    refused = plugins.target(config, rows)

    refused.assert_clear_failure("is empty (no run has used it)", "new_ledger_ok")
    assert len(sandbox.sends()) == 5, "the audit: the next run resent 5 of 5 rows"


def test_a_maintenance_command_names_the_ledger_it_found(
    plugins: Plugins,
    chatra_sandbox_factory: Callable[..., SandboxServer],
    backend: dict[str, t.Any],
) -> None:
    sandbox = _sandbox(chatra_sandbox_factory)
    rows = plugins.row_messages(plugins.valid_rows(sandbox.ids("clients"), 2))
    plugins.target(plugins.target_config(sandbox, **backend), rows).assert_clean_exit()

    listed = _ledger_cli(plugins, backend, "list", "--status", "all")

    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == 2
    (found,) = listed.stderr.splitlines()
    if "ledger_url" in backend:
        schema = re.search(r"search_path%3D(\w+)", backend["ledger_url"])
        assert schema is not None
        assert found.startswith("chatra-push-ledger: using the PostgreSQL ledger postgresql://")
        assert f"(schema {schema[1]}), created " in found
    else:
        assert found.startswith(f"chatra-push-ledger: using the SQLite ledger {plugins.folder}")
    assert found.endswith(", 2 key(s).")


def _wait_for(run: Run, needle: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while needle not in run.stderr:
        assert time.monotonic() < deadline, f"{needle!r} never came:\n{run.stderr[-2000:]}"
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_ends_the_wait_for_the_ledger_at_once(
    plugins: Plugins,
    chatra_sandbox_factory: Callable[..., SandboxServer],
    backend: dict[str, t.Any],
    signum: int,
) -> None:
    sandbox = _sandbox(chatra_sandbox_factory)
    rows = plugins.row_messages(plugins.valid_rows(sandbox.ids("clients"), 3))
    config = plugins.target_config(sandbox, ledger_wait_seconds=120, **backend)
    holder = _open(backend, lock_wait=0)  # another run holds the ledger
    try:
        waiting = plugins.target_in_background(config, rows)
        _wait_for(waiting.run, "Another run is using the ledger; waiting up to 120s")
        signalled = time.monotonic()
        waiting.process.send_signal(signum)
        run = waiting.finish(timeout=20)
        took = time.monotonic() - signalled
    finally:
        holder.close()

    # The audit: SIGTERM was ignored for 17 s, until the lock came free.
    assert took < 5, f"the run took {took:.1f}s to stop"
    assert run.returncode == 128 + signum
    run.assert_clear_failure("Stopped while waiting for the ledger", "nothing was sent")
    assert sandbox.sends() == []


def test_bad_input_leaves_the_ledger_clean_and_names_the_line(
    plugins: Plugins,
    chatra_sandbox_factory: Callable[..., SandboxServer],
    backend: dict[str, t.Any],
) -> None:
    import json  # noqa: PLC0415 - only here

    sandbox = _sandbox(chatra_sandbox_factory)
    messages = plugins.row_messages(plugins.valid_rows(sandbox.ids("clients"), 6), state_every=1)
    lines = [json.dumps(message) for message in messages]
    # Line 8 is cut short, as when a tap dies mid-line; the rows after it are never read.
    lines[7] = lines[7][:25]
    source = plugins.write_lines("input.singer", lines)
    config = plugins.write_json("target.json", plugins.target_config(sandbox, **backend))
    command = [plugins.executable("target-chatra-push"), "--config", str(config)]

    run = plugins.run(command, stdin=source)

    run.assert_clear_failure("Line 8 of the input is bad: not valid JSON")
    assert "Summary: stream rows: sent 3," in run.stderr  # what was done before it
    assert "the run stopped early" in run.stderr
    assert len(sandbox.sends()) == 3
    if "ledger_path" in backend:  # closed as after any run: no WAL left behind
        ledger = Path(backend["ledger_path"])
        assert ledger.read_bytes()[18:20] == b"\x01\x01"
        assert not ledger.with_name(f"{ledger.name}-wal").exists()
    lines[7] = json.dumps(messages[7])
    fixed = plugins.run(command, stdin=plugins.write_lines("fixed.singer", lines))
    fixed.assert_clean_exit()
    assert len(sandbox.sends()) == 6


@pytest.mark.parametrize("setting", ["sent_ids_path", "dead_letter_path", "report_path"])
def test_a_file_the_run_cannot_write_stops_it_before_the_first_send(
    plugins: Plugins,
    chatra_sandbox_factory: Callable[..., SandboxServer],
    backend: dict[str, t.Any],
    setting: str,
) -> None:
    sandbox = _sandbox(chatra_sandbox_factory)
    rows = plugins.valid_rows(sandbox.ids("clients"), 3)
    rows.insert(2, {"id": 99, "client_id": None, "text": "no client: a dead letter"})
    blocker = plugins.path("a-file")
    blocker.write_text("not a folder", encoding="utf-8")
    unwritable = blocker / "out.txt"
    config = plugins.target_config(sandbox, **backend)

    run = plugins.target(config | {setting: str(unwritable)}, plugins.row_messages(rows))

    # The audit: the POST went out, then the run crashed, and the key stayed unconfirmed.
    run.assert_clear_failure(f"The run cannot write {setting} {unwritable}", "Nothing was sent")
    assert sandbox.sends() == []
    assert _sql(backend, "SELECT count(*) FROM deliveries") == [(0,)]
    config[setting] = str(plugins.path("out.txt"))
    fixed = plugins.target(config, plugins.row_messages(rows))
    fixed.assert_clean_exit()
    assert Counter(plugins.key_of_send(send) for send in sandbox.sends()) == Counter(range(3))


def test_a_row_sent_but_not_recorded_is_counted_sent_and_named(
    plugins: Plugins,
    chatra_sandbox_factory: Callable[..., SandboxServer],
    backend: dict[str, t.Any],
) -> None:
    sandbox = _sandbox(chatra_sandbox_factory)
    rows = plugins.valid_rows(sandbox.ids("clients"), 6)
    config = plugins.target_config(sandbox, **backend)
    plugins.target(config, plugins.row_messages(rows[:2])).assert_clean_exit()
    # The database refuses to record row 4 as sent, as a full disk or a cut connection would.
    if "ledger_url" in backend:
        _sql(
            backend,
            "CREATE FUNCTION refuse_sent() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'could not extend file: No space left on device'; END $$",
            "CREATE TRIGGER refuse_sent BEFORE UPDATE ON deliveries FOR EACH ROW "
            "WHEN (NEW.status = 'sent' AND NEW.dedupe_key = '[4]') EXECUTE FUNCTION refuse_sent()",
        )
    else:
        _sql(
            backend,
            "CREATE TRIGGER refuse_sent BEFORE UPDATE ON deliveries WHEN NEW.status = 'sent' "
            "AND NEW.dedupe_key = '[4]' BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END",
        )

    run = plugins.target(config, plugins.row_messages(rows))

    run.assert_clear_failure("The ledger ")
    totals = plugins.report()["totals"]
    assert (totals["sent"], totals["duplicate"]) == (3, 2)  # rows 2, 3 and 4: all went out
    assert len(sandbox.sends()) == 5
    assert "Summary: stream rows: sent 3, duplicate 2," in run.stderr
    assert "the run stopped early" in run.stderr
    assert "chatra-push-ledger settle --stream rows '[4]' --as sent" in run.stderr
    assert _sql(backend, "SELECT status FROM deliveries WHERE dedupe_key = '[4]'") == [("pending",)]


def test_a_ledger_written_with_earlier_keys_keeps_working(
    plugins: Plugins,
    chatra_sandbox_factory: Callable[..., SandboxServer],
    backend: dict[str, t.Any],
) -> None:
    sandbox = _sandbox(chatra_sandbox_factory)
    clients = sandbox.ids("clients")
    schema = {**plugins.row_schema, "properties": {**plugins.row_schema["properties"], "id": {}}}

    def rows(*keyed: tuple[int, t.Any]) -> list[dict[str, t.Any]]:
        return [
            {"id": key, "client_id": clients[n % 3], "text": plugins.row_text(n)}
            for n, key in keyed
        ]

    config = plugins.target_config(sandbox, **backend)
    first = plugins.row_messages(rows((0, 1.5), (1, "1.1"), (2, 7)), schema=schema)
    plugins.target(config, first).assert_clean_exit()
    # Turn it into the ledger a schema-2 target left: the same rows under that target's keys.
    _sql(
        backend,
        "UPDATE deliveries SET dedupe_key = '[\"1.5\"]' WHERE dedupe_key = '[1.5]'",
        "UPDATE deliveries SET dedupe_key = '[\"1.1\"]' WHERE dedupe_key = '[1.1]'",
    )
    if "ledger_url" in backend:
        _sql(backend, "UPDATE ledger_meta SET value = '2' WHERE name = 'schema_version'")
    else:
        _sql(backend, "PRAGMA user_version = 2")

    # Row 4 ("1.10") shared the old key ["1.1"] with row 1, already sent: it is not sent.
    later = plugins.row_messages(rows((0, 1.5), (4, "1.10"), (2, 7), (3, "8.0")), schema=schema)
    run = plugins.target(config, later)

    run.assert_clean_exit()
    assert (plugins.report()["totals"]["sent"], plugins.report()["totals"]["duplicate"]) == (1, 3)
    assert 'the ledger holds it as ["1.1"], a key an older target gave it' in run.stderr
    assert sorted(plugins.key_of_send(send) for send in sandbox.sends()) == [0, 1, 2, 3]
    again = plugins.target(config, later)
    again.assert_clean_exit()
    assert plugins.report()["totals"]["duplicate"] == 4
    assert len(sandbox.sends()) == 4
