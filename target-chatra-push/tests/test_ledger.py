"""The SQLite ledger: committed at every step, readable without a trace, one claim per key."""

from __future__ import annotations

import sqlite3

import pytest

from target_chatra_push.ledger import FailureKind, Ledger, LedgerError, Status


def test_each_step_is_committed_and_visible_to_another_connection(tmp_path):
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger.open(path)
    other = Ledger.open(path)
    try:
        _, claimed = ledger.claim("s", "k", "h1", lambda e: e is None)
        assert claimed
        assert other.get("s", "k").status is Status.PENDING
        ledger.mark_sent("s", "k", "MSG1")
        assert (other.get("s", "k").status, other.get("s", "k").message_id) == (
            Status.SENT,
            "MSG1",
        )
    finally:
        ledger.close()
        other.close()


def test_a_claimed_key_cannot_be_claimed_again(tmp_path):
    path = tmp_path / "ledger.sqlite"
    first, second = Ledger.open(path), Ledger.open(path)
    try:
        assert first.claim("s", "k", "h", lambda e: e is None)[1]
        entry, claimed = second.claim("s", "k", "h", lambda e: e is None)
        assert not claimed
        assert entry.status is Status.PENDING
    finally:
        first.close()
        second.close()


def test_a_retry_counts_attempts_and_clears_the_failure(tmp_path):
    ledger = Ledger.open(tmp_path / "ledger.sqlite")
    try:
        ledger.claim("s", "k", "h", lambda e: True)
        ledger.mark_failed("s", "k", "HTTP 404", FailureKind.REJECTED)
        ledger.claim("s", "k", "h2", lambda e: True)
        entry = ledger.get("s", "k")
        assert (entry.status, entry.failure_kind, entry.attempts, entry.payload_hash) == (
            Status.PENDING,
            None,
            2,
            "h2",
        )
    finally:
        ledger.close()


def _journal_mode(path):
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return db.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        db.close()


def test_a_run_writes_ahead_and_leaves_a_rollback_journal_file(tmp_path):
    path = tmp_path / "ledger.sqlite"
    first, second = Ledger.open(path), Ledger.open(path)
    first.claim("s", "k", "h", lambda e: True)
    assert {"ledger.sqlite-wal", "ledger.sqlite-shm"} <= {p.name for p in tmp_path.iterdir()}

    first.close()  # the second run still has the file open, so it stays in WAL
    second.mark_sent("s", "k", "MSG1")
    second.close()

    assert [p.name for p in tmp_path.iterdir()] == ["ledger.sqlite"]
    assert _journal_mode(path) == "delete"
    reopened = Ledger.open(path)
    assert reopened.get("s", "k").message_id == "MSG1"
    reopened.close()


def test_only_the_claim_waits_for_the_disk(tmp_path):
    # synchronous: 2 = FULL (the commit is fsync'd), 1 = NORMAL (a later fsync carries it).
    ledger = Ledger.open(tmp_path / "ledger.sqlite")
    during_claim = []

    def decide(entry):
        during_claim.append(ledger._db.execute("PRAGMA synchronous").fetchone()[0])
        return True

    try:
        ledger.claim("s", "k", "h", decide)
        assert during_claim == [2]
        assert ledger._db.execute("PRAGMA synchronous").fetchone()[0] == 1
    finally:
        ledger.close()


def test_read_only_open_creates_nothing(tmp_path):
    assert Ledger.open_read_only(tmp_path / "missing.sqlite") is None
    path = tmp_path / "ledger.sqlite"
    Ledger.open(path).close()
    before = sorted(p.name for p in tmp_path.iterdir())

    ledger = Ledger.open_read_only(path)
    assert ledger is not None
    assert ledger.get("s", "k") is None
    with pytest.raises(sqlite3.OperationalError):
        ledger.claim("s", "k", "h", lambda e: True)
    ledger.close()

    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_ledger_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "ledger.sqlite"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()

    with pytest.raises(LedgerError, match="newer target-chatra-push"):
        Ledger.open(path)


def test_a_ledger_folder_that_cannot_be_created_is_a_ledger_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")

    with pytest.raises(
        LedgerError, match=r"cannot be created \(File exists: .*a-file\); set ledger_path"
    ):
        Ledger.open(blocker / "ledger.sqlite")


def test_an_unusable_ledger_stops_the_run_before_any_send(sandbox, kit):
    kit.ledger_path.parent.mkdir(parents=True)
    kit.ledger_path.write_text("not a database")
    run = kit.run(kit.config(sandbox), "orders.singer", stops=True)

    assert "cannot be opened" in run.stopped
    assert sandbox.request_log() == []


def _as_if_killed_and_wal_lost(path):
    """A ledger whose header says WAL (a run was killed) and whose -wal file is gone."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = WAL")
    db.close()  # the last connection folds the -wal in and removes it; the header stays WAL


def test_looking_at_a_ledger_whose_wal_was_lost_leaves_no_file_beside_it(tmp_path):
    path = tmp_path / "ledger.sqlite"
    Ledger.open(path).close()
    _as_if_killed_and_wal_lost(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.sqlite"]

    assert Ledger.exists(path)  # a ledger, which opening refuses with the reason
    with pytest.raises(LedgerError, match=r"ledger\.sqlite-wal file, which may hold"):
        Ledger.open_read_only(path)
    with pytest.raises(LedgerError, match=r"ledger\.sqlite-wal file, which may hold"):
        Ledger.open(path)

    # An empty -wal beside it would hide the loss from every later look.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.sqlite"]


def test_a_killed_runs_empty_wal_file_is_no_loss(tmp_path):
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger.open(path)
    ledger.claim("s", "k", "h", lambda e: True)
    ledger.close()
    _as_if_killed_and_wal_lost(path)
    # Killed right after switching to WAL, before any write: its -wal holds nothing.
    path.with_name("ledger.sqlite-wal").write_bytes(b"")

    reopened = Ledger.open(path)
    try:
        assert reopened.get("s", "k").status is Status.PENDING
    finally:
        reopened.close()


def test_a_maintenance_open_creates_nothing(tmp_path):
    missing = tmp_path / "folder" / "ledger.sqlite"

    with pytest.raises(LedgerError, match="There is no ledger at"):
        Ledger.open(missing, create=False)
    assert not missing.parent.exists()


def test_a_schema_2_ledger_is_upgraded_and_keeps_its_keys(kit):
    ledger = Ledger.open(kit.ledger_path)
    ledger.claim("s", '["1.5"]', "h", lambda e: True)
    ledger.close()
    db = sqlite3.connect(kit.ledger_path)
    db.execute("PRAGMA user_version = 2")  # its tables are schema 2's
    db.close()

    before = Ledger.open_read_only(kit.ledger_path)
    assert before is not None
    assert before.earlier_key_forms == ("schema_2",)  # a dry run looks them up too
    before.close()
    upgraded = Ledger.open(kit.ledger_path)
    try:
        assert upgraded.earlier_key_forms == ("schema_2",)
        assert upgraded.get("s", '["1.5"]').status is Status.PENDING
    finally:
        upgraded.close()
    db = sqlite3.connect(kit.ledger_path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 3  # a schema-2 target refuses it
    db.close()
