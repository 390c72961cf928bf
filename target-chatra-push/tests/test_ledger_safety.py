"""A ledger that cannot be lost, shared, mixed up or broken without a clear word."""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3

import pytest

from target_chatra_push.ledger import Ledger, Status
from target_chatra_push.ledger_model import RunMark


def _posts(sandbox) -> int:
    return len([r for r in sandbox.request_log() if r["method"] == "POST"])


def test_a_second_run_waits_then_stops_naming_the_ledger(sandbox, kit):
    holder = Ledger.open(kit.ledger_path, lock_wait=0)  # another run holds it
    holder.record_run(RunMark.of_this_process())
    try:
        run = kit.run(kit.config(sandbox, ledger_wait_seconds=0.3), "orders.singer", stops=True)
    finally:
        holder.close()

    assert run.stopped.startswith(f"Another run is using the ledger {kit.ledger_path}")
    assert "waited 0.3s" in run.stopped
    assert sandbox.request_log() == []

    after = kit.run(kit.config(sandbox), "orders.singer")
    assert after.count("sent") == 5


def test_pending_marks_name_their_run(tmp_path):
    ledger = Ledger.open(tmp_path / "ledger.sqlite")
    mark = RunMark.of_this_process()
    try:
        ledger.claim("s", "k", "h", lambda e: True, mark)
        entry = ledger.get("s", "k")
    finally:
        ledger.close()

    assert entry.run == mark
    assert (entry.run.host, entry.run.pid) == (socket.gethostname(), os.getpid())


def test_a_ledger_refuses_another_account(sandbox, kit, chatra_sandbox_factory):
    kit.run(kit.config(sandbox), "orders.singer")
    other = chatra_sandbox_factory(public_key="OTHERACCOUNTKEY00", requests_per_minute=0)
    run = kit.run(kit.config(other), "orders.singer", stops=True)

    assert "another Chatra account or API host" in run.stopped
    assert str(kit.ledger_path) in run.stopped
    assert other.request_log() == []


def test_a_new_ledger_is_announced_with_its_absolute_path(sandbox, kit, caplog):
    kit.run(kit.config(sandbox), "orders.singer")

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"Started a new ledger at {kit.ledger_path.resolve()}." in warnings[0]


@pytest.mark.parametrize("trace", ["report", "dead_letter", "sent_ids"])
def test_a_lost_ledger_refuses_to_send_until_told(sandbox, kit, trace, sent_texts):
    config = kit.config(sandbox)
    kit.run(config, "orders_bad_rows.singer")  # leaves every kind of trace
    for name in ("report_path", "dead_letter_path", "sent_ids_path"):
        if name != f"{trace}_path":
            config.pop(name)
    kit.ledger_path.unlink()
    sends_before = len(sandbox.sends())

    run = kit.run(config, "orders_bad_rows.singer", stops=True)

    assert f"There is no ledger at {kit.ledger_path.resolve()}" in run.stopped
    assert "new_ledger_ok" in run.stopped
    assert not kit.ledger_path.exists()  # refusing creates nothing, so it refuses again
    assert len(sandbox.sends()) == sends_before

    told = kit.run(config | {"new_ledger_ok": True}, "orders_bad_rows.singer")
    assert told.count("sent") == 2  # the user chose to start afresh: they go out again
    assert len(sent_texts(sandbox)) == sends_before + 2


def test_an_empty_ledger_file_is_a_lost_ledger(sandbox, kit):
    config = kit.config(sandbox)
    kit.run(config, "orders.singer")
    kit.ledger_path.write_bytes(b"")

    run = kit.run(config, "orders.singer", stops=True)

    assert "There is no ledger at" in run.stopped
    assert len(sandbox.sends()) == 5


def test_a_ledger_whose_wal_file_was_lost_refuses_to_send(sandbox, kit):
    config = kit.config(sandbox)
    kit.run(config, "orders.singer")
    # What a killed run leaves when only the main file is kept: the header still says WAL
    # (a run that closes switches it back), but the -wal file with its last commits is gone.
    db = sqlite3.connect(kit.ledger_path)
    db.execute("PRAGMA journal_mode = WAL")
    db.close()
    wal = kit.ledger_path.with_name(f"{kit.ledger_path.name}-wal")
    assert not wal.exists()

    run = kit.run(config, "orders.singer", stops=True)

    assert run.stopped.startswith(f"The ledger {kit.ledger_path}")
    assert f"{wal.name} file" in run.stopped
    assert "PRAGMA journal_mode=DELETE" in run.stopped
    assert len(sandbox.sends()) == 5

    # The remedy the line names: accept the ledger as it is; nothing already sent goes again.
    db = sqlite3.connect(kit.ledger_path)
    db.execute("PRAGMA journal_mode=DELETE")
    db.close()
    after = kit.run(config, "orders.singer")
    assert after.count("duplicate") == 5
    assert len(sandbox.sends()) == 5


def test_the_default_relative_ledger_from_another_folder_is_refused(
    sandbox, kit, tmp_path, monkeypatch
):
    config = kit.config(sandbox, ledger_path="ledger.sqlite")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    kit.run(config, "orders.singer")
    monkeypatch.chdir(tmp_path / "b")

    run = kit.run(config, "orders.singer", stops=True)

    assert f"There is no ledger at {tmp_path / 'b' / 'ledger.sqlite'}" in run.stopped
    assert len(sandbox.sends()) == 5


def test_a_damaged_ledger_stops_with_one_line_naming_it(sandbox, kit):
    config = kit.config(sandbox)
    kit.run(config, "orders.singer")
    data = bytearray(kit.ledger_path.read_bytes())
    page = 4096
    data[page : 3 * page] = b"\xa5" * (2 * page)  # wreck the pages after the header
    kit.ledger_path.write_bytes(bytes(data))

    run = kit.run(config, "orders.singer", stops=True)

    assert str(kit.ledger_path.resolve()) in run.stopped
    assert "damaged" in run.stopped or "cannot be opened" in run.stopped
    assert len(sandbox.sends()) == 5
    assert kit.report()["stopped"] == run.stopped


def _rows(count: int) -> str:
    schema = {
        "type": "SCHEMA", "stream": "bulk", "key_properties": ["id"],
        "schema": {"type": "object", "properties": {
            "id": {"type": "integer"}, "client_id": {"type": "string"}, "text": {"type": "string"},
        }},
    }  # fmt: skip
    lines = [schema] + [
        {"type": "RECORD", "stream": "bulk",
         "record": {"id": n, "client_id": "client-ada", "text": f"Message {n}"}}
        for n in range(count)
    ]  # fmt: skip
    return "".join(json.dumps(line) + "\n" for line in lines)


def test_a_full_ledger_stops_after_the_summary_with_one_line(sandbox, kit, monkeypatch, caplog):
    opened = Ledger.open

    def open_on_a_full_disk(path, **kwargs):
        ledger = opened(path, **kwargs)
        # SQLite's own limit: no page beyond those it has, as on a full disk (SQLITE_FULL).
        pages = ledger._db.execute("PRAGMA page_count").fetchone()[0]
        ledger._db.execute(f"PRAGMA max_page_count = {pages}")
        return ledger

    monkeypatch.setattr(Ledger, "open", staticmethod(open_on_a_full_disk))
    run = kit.run(kit.config(sandbox), _rows(200), stops=True)

    assert run.stopped.startswith(f"The ledger {kit.ledger_path.resolve()} could not be written")
    assert "disk is full" in run.stopped
    sent = run.count("sent")
    assert 0 < sent < 200
    assert len(sandbox.sends()) == sent  # a row whose mark failed after its POST counts too
    summary = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Summary:")]
    assert len(summary) == 2
    assert summary[0].startswith(f"Summary: stream bulk: sent {sent},")
    assert summary[1].startswith("Summary: the run stopped early")
    assert kit.report()["stopped"] == run.stopped


def test_every_unconfirmed_key_in_the_ledger_is_listed_whatever_the_input(
    sandbox_with, kit, caplog
):
    sandbox = sandbox_with(post_reset_after_commit_rate=1.0)
    config = kit.config(sandbox, max_unconfirmed_in_a_row=0)
    kit.run(config, "orders.singer")
    sandbox.configure(post_reset_after_commit_rate=0.0)
    caplog.clear()

    kit.run(config, _rows(2))  # another stream entirely

    listed = kit.report()["unconfirmed_in_ledger"]
    assert [(e["stream"], e["key"], e["status"]) for e in listed] == [
        ("orders", f"[{n}]", Status.UNKNOWN.value) for n in range(100, 105)
    ]
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Ledger:")]
    assert "stream orders has 5 unconfirmed key(s): [100], [101], [102], [103], [104]" in line
    assert "chatra-push-ledger settle" in line


def test_a_schema_1_ledger_is_upgraded_in_place(kit):
    kit.write_schema_1_ledger([("s", "k", "pending")])

    ledger = Ledger.open(kit.ledger_path)
    try:
        assert ledger.earlier_key_forms == ("schema_1",)
        entry = ledger.get("s", "k")
        assert (entry.status, entry.run) == (Status.PENDING, None)
    finally:
        ledger.close()


def test_a_dry_run_checks_its_preview_file_before_the_first_row(kit):
    blocker = kit.root / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    preview = blocker / "preview.jsonl"
    config = kit.config(None, dry_run=True, preview_path=str(preview))

    run = kit.run(config, "orders.singer", stops=True)

    assert run.stopped.startswith(f"The run cannot write preview_path {preview} (")
    assert run.count("previewed") == 0
