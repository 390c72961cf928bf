"""The command line: one-line start-up errors, SIGTERM, export for tap-chatra, and prune."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import typing as t
from dataclasses import dataclass

import pytest
import requests
import sqlalchemy as sa

from chatra_webhooks.cli import main
from chatra_webhooks.events import parse_body
from chatra_webhooks.schema import EVENTS
from chatra_webhooks.settings import normalize_store_url
from chatra_webhooks.sql_store import SqlEventStore
from chatra_webhooks.testing import ROTATED_TOKEN
from tap_chatra.event_files import EventFile
from tap_chatra.events import ids_in_event

if t.TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from subprocess import CompletedProcess

    from chatra_webhooks.testing import InboxProcess

    CallCli = Callable[..., "Finished"]
    RunCli = Callable[..., CompletedProcess[str]]


@dataclass
class Finished:
    """How an in-process `chatra-webhooks` run ended."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    inbox_environment: dict[str, str],
) -> CallCli:
    """Return `(*args, **env) -> Finished`: `chatra-webhooks` run in this process (no start-up
    cost), with the tests' tokens and no other CHATRA_WEBHOOKS_ variable unless given."""

    def call(*args: str, **env: str) -> Finished:
        for name in os.environ:
            if name.startswith("CHATRA_WEBHOOKS_"):
                monkeypatch.delenv(name)
        for name, value in {**inbox_environment, **env}.items():
            if name.startswith("CHATRA_WEBHOOKS_"):
                monkeypatch.setenv(name, value)
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return Finished(code, out, err)

    return call


def assert_one_line_error(run: Finished | CompletedProcess[str], code: int, *parts: str) -> None:
    assert run.returncode == code, run.stderr
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("chatra-webhooks: ")
    for part in parts:
        assert part in lines[0]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"CHATRA_WEBHOOKS_INGEST_TOKEN": ""}, "CHATRA_WEBHOOKS_INGEST_TOKEN is not set"),
        ({"CHATRA_WEBHOOKS_INGEST_TOKEN": "short-token"}, "has 11 characters, fewer than 32"),
        ({"CHATRA_WEBHOOKS_INGEST_TOKEN": "a" * 40 + ",short"}, "token 2 has 5 characters"),
        ({"CHATRA_WEBHOOKS_INGEST_TOKEN": "a/" * 20}, "cannot stand in a URL path"),
        ({"CHATRA_WEBHOOKS_READ_TOKEN": " "}, "CHATRA_WEBHOOKS_READ_TOKEN is not set"),
        (
            {"CHATRA_WEBHOOKS_READ_TOKEN": "short-token"},
            "CHATRA_WEBHOOKS_READ_TOKEN has 11 characters, fewer than 32",
        ),
        (
            {"CHATRA_WEBHOOKS_READ_TOKEN": ROTATED_TOKEN},
            (
                "CHATRA_WEBHOOKS_READ_TOKEN is the same as ingest token 2 of "
                "CHATRA_WEBHOOKS_INGEST_TOKEN"
            ),
        ),
        ({"CHATRA_WEBHOOKS_PUBLIC_METRICS": "perhaps"}, "CHATRA_WEBHOOKS_PUBLIC_METRICS is"),
    ],
    ids=["no-ingest", "short", "short-second", "slash", "no-read", "short-read", "same", "flag"],
)
def test_bad_tokens_stop_the_start_with_one_line(
    cli: CallCli, tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    run = cli("serve", "--port", "0", "--store", f"sqlite:///{tmp_path}/s.sqlite", **env)
    assert_one_line_error(run, 2, expected)
    assert "short-token" not in run.stderr
    assert ROTATED_TOKEN not in run.stderr
    assert not (tmp_path / "s.sqlite").exists()


def test_bad_store_urls_stop_the_start_with_one_line(cli: CallCli) -> None:
    assert_one_line_error(
        cli("serve", "--port", "0", "--store", "mysql://x@y/z"), 2, "'mysql' is not supported"
    )
    unreachable = "postgresql://someone:pass-word-123@127.0.0.1:1/none"
    run = cli("serve", "--port", "0", "--store", unreachable)
    assert_one_line_error(run, 1, "cannot open the store")
    assert "pass-word-123" not in run.stderr


def test_a_port_in_use_is_one_line(cli: CallCli, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = cli("serve", "--port", str(port), "--store", f"sqlite:///{tmp_path}/s.sqlite")
    assert_one_line_error(run, 1, f"cannot listen on 127.0.0.1:{port}")


def test_the_real_command_fails_in_one_line_too(run_cli: RunCli, tmp_path: Path) -> None:
    run = run_cli(
        "serve", "--store", f"sqlite:///{tmp_path}/s.sqlite", CHATRA_WEBHOOKS_READ_TOKEN=""
    )
    assert_one_line_error(run, 2, "CHATRA_WEBHOOKS_READ_TOKEN is not set")


def test_settings_come_from_variables_and_sigterm_stops_cleanly(
    webhook_inbox_factory: Callable[..., InboxProcess], tmp_path: Path
) -> None:
    store = tmp_path / "new-folder" / "from-env.sqlite"
    inbox = webhook_inbox_factory(
        "", CHATRA_WEBHOOKS_STORE=f"sqlite:///{store}", CHATRA_WEBHOOKS_MAX_BODY="200"
    )
    small = {"eventName": "chatStarted", "client": {"id": "c1"}}
    large = {**small, "padding": "x" * 200}

    assert requests.post(inbox.ingest_url(), json=small, timeout=10).status_code == 200
    assert requests.post(inbox.ingest_url(), json=large, timeout=10).status_code == 413
    assert store.exists()
    assert inbox.stop() == 0
    assert "Traceback" not in inbox.log()


def add_events(store_url: str, count: int, received_at: dt.datetime | None = None) -> None:
    store = SqlEventStore(normalize_store_url(store_url))
    try:
        for number in range(count):
            body = {
                "eventName": "chatFragment",
                "client": {"id": f"client-{number}", "chatId": f"chat-{number}"},
                "messages": [{"id": f"message-{number}", "type": "client", "text": "Hi\nthere"}],
            }
            store.append(parse_body(json.dumps(body, indent=2).encode()))
    finally:
        store.close()
    if received_at is not None:
        engine = sa.create_engine(normalize_store_url(store_url))
        with engine.begin() as conn:
            conn.execute(sa.update(EVENTS).values(received_at=received_at))
        engine.dispose()


def test_export_writes_what_tap_chatra_reads(cli: CallCli, store_url: str, tmp_path: Path) -> None:
    add_events(store_url, 5)
    output = tmp_path / "events.jsonl"

    run = cli("export", "--store", store_url, "--output", str(output))

    assert run.returncode == 0, run.stderr
    assert "exported 5 events; the last seq is 5" in run.stderr
    lines = output.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == ""
    assert [json.loads(line)["client"]["id"] for line in lines[:-1]] == [
        f"client-{n}" for n in range(5)
    ]
    # The file tap-chatra reads as webhook_events_file, with the IDs each event names.
    events = EventFile(output, {}, logging.getLogger("test")).events("webhook_events")
    found = [ids_in_event(event.payload) for event in events]
    assert [client for ids in found for client in ids.clients] == [f"client-{n}" for n in range(5)]
    assert [message for ids in found for message in ids.messages] == [
        f"message-{n}" for n in range(5)
    ]

    after = cli("export", "--store", store_url, "--after", "3")
    assert [json.loads(line)["client"]["id"] for line in after.stdout.splitlines()] == [
        "client-3",
        "client-4",
    ]


def test_prune_deletes_only_old_events(cli: CallCli, store_url: str) -> None:
    add_events(store_url, 3, received_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=40))
    add_events(store_url, 1)  # client-0 again: a duplicate, still 40 days old
    acknowledge(store_url, {"tap": 3})

    kept = cli("prune", "--store", store_url, "--older-than", "41")
    pruned = cli("prune", "--store", store_url, "--older-than", "30")

    assert kept.stderr == "chatra-webhooks: deleted 0 events received more than 41 days ago\n"
    assert pruned.stderr == "chatra-webhooks: deleted 3 events received more than 30 days ago\n"
    assert cli("export", "--store", store_url).stdout == ""


def acknowledge(store_url: str, positions: dict[str, int]) -> None:
    """What readers do through `GET /events?reader=NAME&ack=SEQ`."""
    store = SqlEventStore(normalize_store_url(store_url))
    try:
        for reader, seq in positions.items():
            store.acknowledge(reader, seq)
    finally:
        store.close()


def exported_clients(cli: CallCli, store_url: str) -> list[str]:
    lines = cli("export", "--store", store_url).stdout.splitlines()
    return [json.loads(line)["client"]["id"] for line in lines]


def test_prune_deletes_nothing_no_reader_has_acknowledged(cli: CallCli, store_url: str) -> None:
    """Finding 4: prune deleted events no reader had read yet, silently."""
    add_events(store_url, 3, received_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=40))

    kept = cli("prune", "--store", store_url, "--older-than", "30")

    assert kept.returncode == 0
    assert kept.stderr.splitlines() == [
        "chatra-webhooks: deleted 0 events received more than 30 days ago",
        (
            "chatra-webhooks: kept 3 older events: no reader has acknowledged any event yet "
            "(tap-chatra does on every read of the inbox); pass --past-readers to prune by age "
            "alone"
        ),
    ]
    assert exported_clients(cli, store_url) == ["client-0", "client-1", "client-2"]

    forced = cli("prune", "--store", store_url, "--older-than", "30", "--past-readers")
    assert forced.stderr.splitlines() == [
        (
            "chatra-webhooks: deleted 3 events received more than 30 days ago, 3 of them not yet "
            "acknowledged by a reader (--past-readers)"
        )
    ]
    assert exported_clients(cli, store_url) == []


def test_prune_stops_at_the_slowest_reader_and_says_so(cli: CallCli, store_url: str) -> None:
    add_events(store_url, 5, received_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=40))
    acknowledge(store_url, {"tap-chatra:webhook_events": 4, "tap-chatra:chat_messages": 2})

    pruned = cli("prune", "--store", store_url, "--older-than", "30")

    lines = pruned.stderr.splitlines()
    assert lines[0] == "chatra-webhooks: deleted 2 events received more than 30 days ago"
    assert lines[1].startswith(
        "chatra-webhooks: kept 3 older events after seq 2, where reader "
        "tap-chatra:chat_messages stands (acknowledged 20"
    )
    assert lines[1].endswith(
        "); pass --past-readers to delete them anyway, or `chatra-webhooks readers --forget "
        "tap-chatra:chat_messages` if it no longer reads"
    )
    assert exported_clients(cli, store_url) == ["client-2", "client-3", "client-4"]

    listed = cli("readers", "--store", store_url).stdout.splitlines()
    assert [line.split()[:4] for line in listed] == [
        ["tap-chatra:chat_messages", "up", "to", "seq"],
        ["tap-chatra:webhook_events", "up", "to", "seq"],
    ]
    assert [line.split()[4] for line in listed] == ["2,", "4,"]

    forgot = cli("readers", "--store", store_url, "--forget", "tap-chatra:chat_messages")
    assert [line.split()[0] for line in forgot.stdout.splitlines()] == ["tap-chatra:webhook_events"]
    again = cli("prune", "--store", store_url, "--older-than", "30")
    assert again.stderr.splitlines()[0].endswith("deleted 2 events received more than 30 days ago")
    assert exported_clients(cli, store_url) == ["client-4"]
    assert_one_line_error(
        cli("readers", "--store", store_url, "--forget", "nobody"), 1, "no reader is named"
    )


def test_export_and_prune_need_an_existing_store(cli: CallCli, tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path}/missing.sqlite"
    assert_one_line_error(cli("export", "--store", missing), 1, "does not exist")
    assert_one_line_error(
        cli("prune", "--store", missing, "--older-than", "1"), 1, "does not exist"
    )
    assert not (tmp_path / "missing.sqlite").exists()
