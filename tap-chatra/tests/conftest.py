"""Helpers for running tap-chatra against the chatra-sandbox, in process or as a CLI.

Test modules cannot import from here (pytest runs with --import-mode=importlib), so the
helpers come as the `kit` fixture.
"""

from __future__ import annotations

import http.server
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import typing as t
from collections import Counter
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pytest

from chatra_sandbox import launcher
from chatra_sandbox.conversations import new_conversation
from tap_chatra.id_map import read_ids
from tap_chatra.tap import TapChatra

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from chatra_sandbox import SandboxServer
    from chatra_sandbox.conversations import Conversation

TAP_EXECUTABLE = str(Path(sys.executable).parent / "tap-chatra")


@dataclass
class TapOutput:
    """The Singer messages of one run, parsed; `error` is what a failed in-process run raised."""

    lines: list[str] = field(default_factory=list)
    error: BaseException | None = None

    @classmethod
    def parse(cls, text: str, error: BaseException | None = None) -> TapOutput:
        return cls([line for line in text.splitlines() if line.strip()], error)

    @cached_property
    def messages(self) -> list[dict[str, t.Any]]:
        return [json.loads(line) for line in self.lines]

    def records(self, stream: str) -> list[dict[str, t.Any]]:
        return [
            m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream
        ]

    def ids(self, stream: str) -> list[str]:
        return [record["id"] for record in self.records(stream)]

    @property
    def states(self) -> list[dict[str, t.Any]]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def last_state(self) -> dict[str, t.Any]:
        return self.states[-1]

    def state_after(self, given: dict[str, t.Any]) -> dict[str, t.Any]:
        """The state the next run starts from: the last STATE, or the one given if none.

        A run writes no STATE that says nothing new; Meltano then keeps the one it had.
        """
        return self.states[-1] if self.states else given

    def counts(self) -> Counter[tuple[str, str | None]]:
        return Counter((m["type"], m.get("stream")) for m in self.messages)


class Kit:
    """Builds configs, runs the tap, reads the sandbox's request log; files go to tmp_path."""

    executable = TAP_EXECUTABLE
    parse = staticmethod(TapOutput.parse)

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path

    @staticmethod
    def config(server: SandboxServer, **settings: t.Any) -> dict[str, t.Any]:
        """Config for a sandbox: no pacing, short retries and frequent STATE, for speed."""
        return {
            "api_key_pair": server.key_pair,
            "api_url": server.api_url,
            "requests_per_minute": 0,
            "state_flush_seconds": 0.2,
            # Every state_flush_seconds: the byte budget would space small STATEs out to ~1 s.
            "state_bytes_per_hour": 0,
            "max_retries": 3,
            **settings,
        }

    @staticmethod
    def run(
        config: dict[str, t.Any],
        *,
        state: dict[str, t.Any] | None = None,
        catalog: dict[str, t.Any] | None = None,
        expect_error: bool = False,
    ) -> TapOutput:
        """Run a full sync in this process and return what it wrote to stdout."""
        buffer = io.StringIO()
        error: BaseException | None = None
        with redirect_stdout(buffer):
            try:
                TapChatra(config=config, state=state, catalog=catalog).sync_all()
            except Exception as exc:
                if not expect_error:
                    raise
                error = exc
        if expect_error and error is None:
            pytest.fail("the run was expected to fail but succeeded")
        return TapOutput.parse(buffer.getvalue(), error)

    def cli(
        self,
        *args: str,
        config: dict[str, t.Any] | None = None,
        state: dict[str, t.Any] | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run the tap-chatra executable (launcher); config and state go through tmp_path."""
        command = [TAP_EXECUTABLE, *args]
        if config is not None:
            config_path = self.tmp_path / "config.json"
            config_path.write_text(json.dumps(config))
            command += ["--config", str(config_path)]
        if state is not None:
            state_path = self.tmp_path / "state.json"
            state_path.write_text(json.dumps(state))
            command += ["--state", str(state_path)]
        return launcher.run(command, text=True, timeout=timeout, env=self.environment(env))

    def start(self, config: dict[str, t.Any], *, stderr: int) -> launcher.ScriptProcess:
        """Start the tap-chatra executable with `config` (a file in tmp_path), stdout piped."""
        config_path = self.tmp_path / "config.json"
        config_path.write_text(json.dumps(config))
        return launcher.start(
            [TAP_EXECUTABLE, "--config", str(config_path)],
            stdout=launcher.PIPE,
            stderr=stderr,
            text=True,
            env=self.environment(),
        )

    def kill_at_state(
        self, config: dict[str, t.Any], stop_when: Callable[[dict[str, t.Any]], bool]
    ) -> TapOutput:
        """Run the executable and SIGKILL it right after the first STATE `stop_when` accepts.

        Returns what it wrote, complete lines only: Meltano drops a line cut by the kill.
        """
        process = self.start(config, stderr=subprocess.DEVNULL)
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            message = json.loads(line)
            if message["type"] == "STATE" and stop_when(message["value"]):
                process.send_signal(signal.SIGKILL)
                break
        process.wait(timeout=30)
        lines += process.stdout.read().splitlines(keepends=True)
        assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
        return TapOutput.parse("".join(line for line in lines if line.endswith("\n")))

    @staticmethod
    def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
        """This process's environment without TAP_CHATRA_* settings, plus `extra`."""
        environment = {k: v for k, v in os.environ.items() if not k.startswith("TAP_CHATRA_")}
        environment.pop("LOGLEVEL", None)
        environment.update(extra or {})
        return environment

    @staticmethod
    def covered(config: dict[str, t.Any], state: dict[str, t.Any]) -> dict[str, set[str]]:
        """Per REST stream, the IDs a run resumed from `state` takes as fetched.

        Those of the bookmarks, and those an interrupted run's cursor covers (the tap itself
        reads the cursor, as it does when a run starts from that STATE).
        """
        return {name: set(ids) for name, ids in Kit.resumed_fetched(config, state).items()}

    @staticmethod
    def resumed_fetched(
        config: dict[str, t.Any], state: dict[str, t.Any]
    ) -> dict[str, dict[str, int]]:
        """Per REST stream, ID -> when fetched, as a run resumed from `state` takes it."""
        tap = TapChatra(config=config, state=json.loads(json.dumps(state)))
        fetched: dict[str, dict[str, int]] = {}
        for name in ("messages", "pushed_messages", "clients"):
            id_state = tap.streams[name].id_state  # type: ignore[attr-defined]
            fetched[name] = {
                record_id: when
                for record_id in id_state.known_ids()
                if (when := id_state.fetched_at(record_id)) is not None
            }
        return fetched

    @staticmethod
    def progress(state: dict[str, t.Any], stream: str) -> int:
        """How many of a stream's IDs a STATE shows done: in its bookmark, or by its cursor."""
        bookmark = state.get("bookmarks", {}).get(stream, {})
        run = bookmark.get("run") or {}
        return len(read_ids(bookmark.get("fetched"))) + run.get("done", 0)

    @staticmethod
    def last_line(stderr: str) -> str:
        lines = [line for line in stderr.splitlines() if line.strip()]
        return lines[-1] if lines else ""

    @staticmethod
    def gets(server: SandboxServer, resource: str | None = None) -> list[str]:
        """Record IDs of every GET the sandbox received for a resource, in order."""
        return [
            entry["record_id"]
            for entry in server.request_log()
            if entry["method"] == "GET" and (resource is None or entry["resource"] == resource)
        ]

    def events_file(
        self, server: SandboxServer, chats: int, *, first: int = 0, name: str = "events.jsonl"
    ) -> tuple[Path, list[Conversation]]:
        """Append the webhooks of `chats` new simulated chats to a JSONL file.

        Every other line is an event as the inbox exports it (seq, received_at, body), the
        others bare webhook bodies: the file source reads both.
        """
        conversations = [
            new_conversation(server.store, index) for index in range(first, first + chats)
        ]
        payloads = [event for chat in conversations for event in chat.events(server.store.agents)]
        path = self.tmp_path / name
        with path.open("a", encoding="utf-8") as file:
            for number, payload in enumerate(payloads):
                line = (
                    payload
                    if number % 2
                    else {
                        "seq": number,
                        "received_at": "2026-05-01T10:00:00+00:00",
                        "body": payload,
                    }
                )
                file.write(json.dumps(line, ensure_ascii=False) + "\n")
        return path, conversations

    def write(self, name: str, lines: Iterable[str]) -> Path:
        path = self.tmp_path / name
        path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        return path


@pytest.fixture
def kit(tmp_path: Path) -> Kit:
    return Kit(tmp_path)


@dataclass
class Answer:
    """One scripted answer of `RawApi`: status, headers, body, and a pause between bytes."""

    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    trickle: float = 0.0


class RawApi:
    """A tiny HTTP server answering each path with exactly the bytes a test scripted.

    The sandbox serves well-formed JSON only; this plays a Chatra (or a proxy) that does not:
    bodies that are not UTF-8, hold lone surrogates or NaN, redirects, trickled bodies.
    """

    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self.requests: list[str] = []
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                api.requests.append(self.path)
                answer = api.answers.get(self.path, Answer(404, b'{"message": "no such"}'))
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                if not answer.trickle:
                    self.wfile.write(answer.body)
                    return
                try:
                    for byte in answer.body:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(answer.trickle)
                except OSError:
                    return  # the client gave up, as it should

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                """Keep the test output quiet."""

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.api_url = f"{self.url}/api"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path: str, answer: Answer) -> None:
        self.answers[path] = answer

    def record(self, path: str, body: bytes) -> None:
        self.answers[path] = Answer(200, body)

    def config(self, **settings: t.Any) -> dict[str, t.Any]:
        return {
            "api_key_pair": "pub:secret",
            "api_url": self.api_url,
            "requests_per_minute": 0,
            "state_flush_seconds": 0.2,
            "max_retries": 0,
            **settings,
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def raw_api() -> Iterator[RawApi]:
    api = RawApi()
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def answer_type() -> type[Answer]:
    """The `Answer` class, for test modules (which cannot import from conftest)."""
    return Answer


@pytest.fixture(scope="module")
def module_kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    """A kit shared by a module's tests (for fixtures wider than one test)."""
    return Kit(tmp_path_factory.mktemp("kit"))
