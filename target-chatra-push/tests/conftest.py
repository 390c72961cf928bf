"""Shared fixtures: a sandbox that knows the golden files' clients, and a kit to run the target.

Test modules cannot import from here (pytest runs with --import-mode=importlib), so helpers
come as fixtures: `kit` bundles config building, in-process runs and readers of every file a
run writes, all under the test's tmp_path.
"""

from __future__ import annotations

import io
import json
import sqlite3
import typing as t
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from target_chatra_push.delivery import RunStoppedError
from target_chatra_push.ledger import Entry, Ledger
from target_chatra_push.summary import Outcome
from target_chatra_push.target import TargetChatraPush

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from chatra_sandbox import SandboxServer

RESOURCES = Path(__file__).parent / "resources"
# The clients the golden .singer files send to; "client-nobody" is deliberately unknown.
GOLDEN_CLIENTS = ("client-ada", "client-bob", "client-cy", "client-dee", "client-eve")


def with_golden_clients(server: SandboxServer) -> SandboxServer:
    for client_id in GOLDEN_CLIENTS:
        server.store.add_client(client_id)
    return server


@pytest.fixture
def sandbox(chatra_sandbox: SandboxServer) -> SandboxServer:
    return with_golden_clients(chatra_sandbox)


@pytest.fixture
def sandbox_with(
    chatra_sandbox_factory: Callable[..., SandboxServer],
) -> Callable[..., SandboxServer]:
    """Start a sandbox with options (faults, latency) that knows the golden clients."""

    def start(**options: t.Any) -> SandboxServer:
        return with_golden_clients(chatra_sandbox_factory(requests_per_minute=0, **options))

    return start


@dataclass
class Run:
    target: TargetChatraPush
    stdout: str
    stopped: str | None

    @property
    def states(self) -> list[dict[str, t.Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    def count(self, outcome: str, stream: str | None = None) -> int:
        return self.target.delivery.summary.count(Outcome(outcome), stream)


class Kit:
    """Everything a test needs to run the target and read what it left behind."""

    def __init__(self, root: Path) -> None:
        self.root = root
        out = root / "out"
        self.ledger_path = out / "ledger.sqlite"
        self.dead_letter_path = out / "dead-letter.jsonl"
        self.preview_path = out / "preview.jsonl"
        self.report_path = out / "report.json"
        self.sent_ids_path = out / "sent-ids.txt"

    @staticmethod
    def resource(name: str) -> str:
        return (RESOURCES / name).read_text(encoding="utf-8")

    def config(self, server: SandboxServer | None, **overrides: t.Any) -> dict[str, t.Any]:
        config: dict[str, t.Any] = {
            "requests_per_minute": 0,
            "ledger_path": str(self.ledger_path),
            "dead_letter_path": str(self.dead_letter_path),
            "preview_path": str(self.preview_path),
            "report_path": str(self.report_path),
            "sent_ids_path": str(self.sent_ids_path),
        }
        if server is not None:
            config |= {"api_key_pair": server.key_pair, "api_url": server.api_url}
        return config | overrides

    def run(self, config: dict[str, t.Any], singer: str, *, stops: bool = False) -> Run:
        """Run the target in this process on `singer` (a resource file name, or the text)."""
        text = self.resource(singer) if singer.endswith(".singer") else singer
        target = TargetChatraPush(config=dict(config))
        stdout = io.StringIO()
        stopped = None
        with redirect_stdout(stdout):
            try:
                target.listen(io.StringIO(text))
            except RunStoppedError as stop:
                stopped = str(stop)
        assert (stopped is not None) == stops, stopped
        return Run(target=target, stdout=stdout.getvalue(), stopped=stopped)

    def ledger(self) -> dict[str, Entry]:
        ledger = Ledger.open_read_only(self.ledger_path)
        assert ledger is not None, f"no ledger at {self.ledger_path}"
        try:
            return {entry.key: entry for entry in ledger.entries()}
        finally:
            ledger.close()

    @staticmethod
    def jsonl(path: Path) -> list[dict[str, t.Any]]:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

    def dead_letters(self) -> list[dict[str, t.Any]]:
        return self.jsonl(self.dead_letter_path)

    def preview(self) -> list[dict[str, t.Any]]:
        return self.jsonl(self.preview_path)

    def report(self) -> dict[str, t.Any]:
        return t.cast("dict[str, t.Any]", json.loads(self.report_path.read_text("utf-8")))

    def write_schema_1_ledger(self, rows: list[tuple[str, str, str]]) -> None:
        """A ledger as the target wrote it before keys were canonical: (stream, key, status)."""
        self.ledger_path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.ledger_path)
        db.execute(
            "CREATE TABLE deliveries (stream TEXT NOT NULL, dedupe_key TEXT NOT NULL, status "
            "TEXT NOT NULL, failure_kind TEXT, payload_hash TEXT NOT NULL, message_id TEXT, "
            "attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, created_at TEXT NOT NULL, "
            "updated_at TEXT NOT NULL, PRIMARY KEY (stream, dedupe_key))"
        )
        db.executemany(
            "INSERT INTO deliveries VALUES (?, ?, ?, NULL, 'h', 'M', 1, NULL, 'x', 'x')", rows
        )
        db.execute("PRAGMA user_version = 1")
        db.commit()
        db.close()

    def statuses(self) -> list[str]:
        """The status of every ledger row, read while a run may be writing it."""
        if not self.ledger_path.exists():
            return []
        db = sqlite3.connect(f"{self.ledger_path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            return [row[0] for row in db.execute("SELECT status FROM deliveries")]
        except sqlite3.OperationalError:  # the table is not created yet
            return []
        finally:
            db.close()

    def sent_ids(self) -> list[str]:
        return self.sent_ids_path.read_text(encoding="utf-8").splitlines()


@pytest.fixture
def kit(tmp_path: Path) -> Kit:
    return Kit(tmp_path)


@pytest.fixture
def new_kit(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], Kit]:
    """A kit in a new folder each call, for a test that runs many times over (Hypothesis)."""
    return lambda: Kit(tmp_path_factory.mktemp("kit"))


def _texts(server: SandboxServer) -> list[str]:
    return [send["body"]["text"] for send in server.sends()]


@pytest.fixture
def sent_texts() -> Callable[[SandboxServer], list[str]]:
    """The text of every message the sandbox committed, in order."""
    return _texts
