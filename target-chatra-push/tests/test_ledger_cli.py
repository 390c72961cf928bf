"""`chatra-push-ledger`: settle unconfirmed keys by hand, then the target acts on it."""

from __future__ import annotations

import json
import subprocess
import sys
import typing as t
from dataclasses import dataclass
from pathlib import Path

import pytest

from target_chatra_push.ledger import Ledger, Status
from target_chatra_push.ledger_cli import main
from target_chatra_push.ledger_model import RunMark

if t.TYPE_CHECKING:
    from collections.abc import Callable

CLI = str(Path(sys.executable).parent / "chatra-push-ledger")


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run the command in this process (the console script is tested once, below)."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = main(args)
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


@pytest.fixture
def unconfirmed(sandbox_with, kit):
    """Five orders whose answers were lost: all unconfirmed; the sandbox answers again."""
    sandbox = sandbox_with(post_reset_after_commit_rate=1.0)
    config = kit.config(sandbox, max_unconfirmed_in_a_row=0)
    kit.run(config, "orders.singer")
    sandbox.configure(post_reset_after_commit_rate=0.0)
    config_file = kit.root / "target.json"
    config_file.write_text(json.dumps(config), encoding="utf-8")
    return sandbox, config, str(config_file)


def test_list_shows_the_unconfirmed_keys(unconfirmed, cli):
    _, _, config_file = unconfirmed
    listed = cli("--config", config_file, "list")

    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [(stream, key, status) for stream, key, status, *_ in rows] == [
        ("orders", f"[{n}]", "unknown") for n in range(100, 105)
    ]
    assert cli("--config", config_file, "list", "--status", "sent").stdout == ""


def test_settled_as_sent_is_never_sent_and_as_not_sent_goes_out(unconfirmed, kit, cli):
    sandbox, config, config_file = unconfirmed
    assert cli("--config", config_file, "settle", "[100]", "--as", "sent").returncode == 0
    done = cli("--ledger-path", str(kit.ledger_path), "settle", "[101]", "--as", "not-sent")

    assert done.returncode == 0, done.stderr
    assert "goes out when next seen" in done.stdout
    run = kit.run(config, "orders.singer")

    assert (run.count("duplicate"), run.count("sent"), run.count("unconfirmed")) == (1, 1, 3)
    assert len(sandbox.sends()) == 6
    ledger = kit.ledger()
    assert (ledger["[100]"].status, ledger["[101]"].status) == (Status.SENT, Status.SENT)
    assert [e["key"] for e in kit.report()["unconfirmed_in_ledger"]] == ["[102]", "[103]", "[104]"]


def test_settling_a_key_that_is_not_unconfirmed_changes_nothing(unconfirmed, kit, cli):
    _, _, config_file = unconfirmed
    cli("--config", config_file, "settle", "[100]", "--as", "sent")
    again = cli("--config", config_file, "settle", "[100]", "--as", "not-sent")
    missing = cli("--config", config_file, "settle", "[999]", "--as", "sent")

    assert again.returncode == 1
    found, refused = again.stderr.strip().splitlines()
    assert found.startswith(f"chatra-push-ledger: using the SQLite ledger {kit.ledger_path}")
    assert found.endswith(", 5 key(s).")
    assert refused == (
        "chatra-push-ledger: Key [100] of stream orders is sent, not unconfirmed; unchanged."
    )
    assert missing.returncode == 1
    assert "No key [999]" in missing.stderr
    assert kit.ledger()["[100]"].status is Status.SENT


def test_the_console_script_says_no_ledger_in_one_line(tmp_path):
    result = subprocess.run(
        [CLI, "--ledger-path", str(tmp_path / "none.sqlite"), "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "There is no ledger at" in result.stderr


def test_list_tells_a_crashed_runs_pending_key_from_a_live_ones(kit, cli):
    crashed = Ledger.open(kit.ledger_path)
    crashed.claim("orders", "[7]", "h", lambda e: True, RunMark("box", 4242, "2026-01-01"))
    crashed.close()  # as if killed mid-send: the key stays pending

    ended = cli("--ledger-path", str(kit.ledger_path), "list")
    holder = Ledger.open(kit.ledger_path, lock_wait=0)  # a run holds the ledger now
    try:
        live = cli("--ledger-path", str(kit.ledger_path), "list")
    finally:
        holder.close()

    assert ended.stdout.rstrip("\n").endswith("run: host box, pid 4242, started 2026-01-01 (ended)")
    assert live.stdout.rstrip("\n").endswith("(may still be running)")
