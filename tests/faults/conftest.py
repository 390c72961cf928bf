"""Fixtures for the fault-injection suite: the tap and the target run as processes of their own.

Each plugin runs from its console script (through `chatra_sandbox.launcher`, which forks it
from a server that did its imports once) with stdout and stderr in files, against an
in-process sandbox (`chatra_sandbox_factory`), so a test can inject faults, read the request
and send logs, and SIGKILL the plugin at a chosen moment. Only the plugin under test runs in
the subprocess; the sandbox's own threads do not share its GIL.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import typing as t
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from chatra_sandbox import launcher

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from chatra_sandbox import SandboxServer

BIN = Path(sys.executable).parent
RUN_TIMEOUT = 180.0
# Variables from the developer's shell that would change what the plugins do.
ISOLATED_PREFIXES = ("TAP_CHATRA_", "TARGET_CHATRA_PUSH_", "SINGER_SDK_", "LOGLEVEL")
# A line of a Python traceback: the header, a frame, a caret line, or "SomeError: ...".
_TRACEBACK_LINE = re.compile(
    r"^(Traceback \(most recent call last\)|\s+File \"|\s+\^+\s*$|\s{2,}\S"
    r"|([A-Za-z_][\w.]*)(Error|Exception|Exit|Interrupt)(: |$))"
)
# A line of the SDK's console log format: "2024-01-01 12:00:00,000 | LEVEL | name | message".
_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[,.]\d+ \| ")
ROW_STREAM = "rows"
ROW_SCHEMA: dict[str, t.Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "client_id": {"type": ["string", "null"]},
        "text": {"type": ["string", "null"]},
    },
}


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a plugin: the caller's, minus plugin settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ISOLATED_PREFIXES)}
    return {**env, **extra}


@dataclass
class Run:
    """One finished (or killed) plugin process."""

    returncode: int
    stdout_path: Path
    stderr_path: Path
    killed: bool = False
    target: bool = False

    @property
    def stdout(self) -> str:
        """Standard output as text."""
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        """Standard error as text."""
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def messages(self) -> list[dict[str, t.Any]]:
        """Singer messages on stdout; a line cut short by a kill is left out."""
        with self.stdout_path.open("rb") as lines:
            return [json.loads(line) for line in lines if line.endswith(b"\n") and line.strip()]

    def records(self, stream: str) -> list[dict[str, t.Any]]:
        """The records of one stream, in order."""
        return [
            m["record"]
            for m in self.messages()
            if m.get("type") == "RECORD" and m.get("stream") == stream
        ]

    def record_ids(self, stream: str) -> list[str]:
        """The `id` of each record of one stream, in order."""
        return [record["id"] for record in self.records(stream)]

    def states(self) -> list[dict[str, t.Any]]:
        """The STATE values written, in order: a tap writes STATE messages, a target writes
        each state value passed on as a bare JSON line."""
        messages = self.messages()
        if self.target:
            return messages
        return [m["value"] for m in messages if m.get("type") == "STATE"]

    @property
    def last_state(self) -> dict[str, t.Any] | None:
        """The last STATE value, or None."""
        states = self.states()
        return states[-1] if states else None

    def records_after_last_state(self, stream: str) -> list[str]:
        """IDs of the records of one stream written after the last STATE (all, if none)."""
        after: list[str] = []
        for message in self.messages():
            if message.get("type") == "STATE":
                after = []
            elif message.get("type") == "RECORD" and message.get("stream") == stream:
                after.append(message["record"]["id"])
        return after

    @property
    def last_line(self) -> str:
        """The last non-blank line of stderr."""
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else ""

    def assert_clean_exit(self) -> None:
        """Exit code 0 and no traceback at the end of stderr."""
        assert self.returncode == 0, f"exit code {self.returncode}:\n{self.stderr[-3000:]}"
        assert not ends_in_traceback(self.stderr), self.stderr[-3000:]

    def assert_clear_failure(self, *needles: str) -> None:
        """Non-zero exit, no traceback at the end of stderr, and a final error that names
        each of `needles`.

        The needles are looked for in the last two ERROR lines: the SDK adds "Config
        validation failed" after the line that says which setting is wrong. Lines after the
        error (a worker thread's last retry notice) are allowed.
        """
        assert self.returncode not in {0, None}, f"exit code 0:\n{self.stderr[-3000:]}"
        assert not ends_in_traceback(self.stderr), self.stderr[-3000:]
        # Log lines at ERROR, or click's own "Error: ..." for a bad command-line option.
        errors = [
            line
            for line in self.stderr.splitlines()
            if " | ERROR " in line or line.startswith("Error:")
        ]
        assert errors, f"no ERROR line:\n{self.stderr[-3000:]}"
        tail = "\n".join(errors[-2:])
        for needle in needles:
            assert needle in tail, f"{needle!r} not in the final error:\n{self.stderr[-3000:]}"


@dataclass
class Background:
    """A plugin process started by `Plugins.target_in_background`."""

    process: launcher.ScriptProcess
    run: Run

    def finish(self, timeout: float = RUN_TIMEOUT) -> Run:
        """End its input, wait for the process (killing it after `timeout`); return its run."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.run.returncode = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.run.returncode = self.process.wait()
            pytest.fail(f"the background run took longer than {timeout:.0f}s")
        return self.run


def is_traceback_line(line: str) -> bool:
    """Whether a line of stderr belongs to a Python traceback."""
    return bool(_TRACEBACK_LINE.match(line))


def ends_in_traceback(stderr: str) -> bool:
    """Whether stderr ends with a traceback: its last line is part of one, or a traceback
    started after the last log line (an exception message may span several lines)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    if not lines:
        return False
    if is_traceback_line(lines[-1]):
        return True
    last_log = max((n for n, line in enumerate(lines) if _LOG_LINE.match(line)), default=-1)
    last_traceback = max(
        (n for n, line in enumerate(lines) if line.startswith("Traceback (most recent")),
        default=-1,
    )
    return last_traceback > last_log


def _record_count(path: Path) -> int:
    try:
        with path.open("rb") as lines:
            return sum(
                1 for line in lines if b'"type":"RECORD"' in line or b'"type": "RECORD"' in line
            )
    except FileNotFoundError:
        return 0


def after_records(count: int) -> Callable[[Run], bool]:
    """A kill trigger: once the process has written `count` RECORD messages."""
    return lambda run: _record_count(run.stdout_path) >= count


class Plugins:
    """Runs the plugins (through the launcher) and other commands in one test's folder."""

    row_schema = ROW_SCHEMA
    clean_env = staticmethod(clean_env)
    after_records = staticmethod(after_records)
    is_traceback_line = staticmethod(is_traceback_line)

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._runs = 0

    @staticmethod
    def executable(name: str) -> str:
        """A console script of this virtualenv."""
        return str(BIN / name)

    def path(self, name: str) -> Path:
        """A path in the test's folder."""
        return self.folder / name

    def write_json(self, name: str, value: object) -> Path:
        """Write a JSON file in the test's folder."""
        path = self.path(name)
        path.write_text(json.dumps(value), encoding="utf-8")
        return path

    def write_lines(self, name: str, lines: Iterable[str]) -> Path:
        """Write a text file of lines in the test's folder."""
        path = self.path(name)
        path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        return path

    def run(
        self,
        command: Sequence[str],
        *,
        stdin: Path | None = None,
        env: Mapping[str, str] | None = None,
        kill_when: Callable[[Run], bool] | None = None,
        kill_delay: float = 0.0,
        timeout: float = RUN_TIMEOUT,
    ) -> Run:
        """Run a command to its end, or SIGKILL it once `kill_when(run)` holds.

        Args:
            command: Program and arguments.
            stdin: File fed to standard input.
            env: The whole environment (default: `clean_env()`).
            kill_when: Polled every few milliseconds while the process runs.
            kill_delay: Seconds to wait after `kill_when` holds before the kill.
            timeout: The process is killed and the test fails after this long.
        """
        self._runs += 1
        name = f"run{self._runs}-{Path(command[0]).name}"
        out, err = self.path(f"{name}.out"), self.path(f"{name}.err")
        with (
            out.open("wb") as stdout,
            err.open("wb") as stderr,
            (stdin or Path(os.devnull)).open("rb") as inp,
        ):
            # The repository's plugins start from the launcher's fork server (their imports
            # done once); any other program as a subprocess.
            spawn = launcher.start if launcher.is_script(command) else subprocess.Popen
            process = spawn(
                command,
                stdin=inp,
                stdout=stdout,
                stderr=stderr,
                env=dict(env) if env is not None else clean_env(),
                cwd=self.folder,
            )
            run = Run(
                returncode=-1,
                stdout_path=out,
                stderr_path=err,
                target=Path(command[0]).name == "target-chatra-push",
            )
            deadline = time.monotonic() + timeout
            while process.poll() is None:
                if kill_when is not None and kill_when(run):
                    time.sleep(kill_delay)
                    run.killed = process.poll() is None
                    process.send_signal(signal.SIGKILL)
                    break
                if time.monotonic() > deadline:
                    process.kill()
                    process.wait()
                    pytest.fail(f"{name} ran longer than {timeout:.0f}s:\n{run.stderr[-2000:]}")
                time.sleep(0.003)
            run.returncode = process.wait()
        return run

    def tap(
        self,
        config: Mapping[str, t.Any],
        *,
        state: Mapping[str, t.Any] | None = None,
        args: Sequence[str] = (),
        **kwargs: t.Any,
    ) -> Run:
        """Run tap-chatra with a config (and a state) file."""
        command = [str(BIN / "tap-chatra"), "--config", str(self.write_json("tap.json", config))]
        if state is not None:
            command += ["--state", str(self.write_json("state.json", state))]
        return self.run([*command, *args], **kwargs)

    def target(
        self, config: Mapping[str, t.Any], lines: Iterable[Mapping[str, t.Any]], **kwargs: t.Any
    ) -> Run:
        """Run target-chatra-push on Singer messages."""
        config_path = self.write_json("target.json", config)
        source = self.path(f"input{self._runs + 1}.singer")
        source.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
        return self.run([str(BIN / "target-chatra-push"), "--config", str(config_path)],
                        stdin=source, **kwargs)  # fmt: skip

    def target_in_background(
        self,
        config: Mapping[str, t.Any],
        lines: Iterable[Mapping[str, t.Any]],
        *,
        input_open: bool = False,
    ) -> Background:
        """Start target-chatra-push on Singer messages and return at once.

        With `input_open`, the messages come through a pipe that stays open until `finish`:
        the run keeps waiting for more (and holds its ledger) however fast it sends.
        """
        self._runs += 1
        name = f"run{self._runs}-target-chatra-push"
        config_path = self.write_json(f"{name}.json", config)
        source = self.path(f"{name}.singer")
        text = "".join(json.dumps(line) + "\n" for line in lines)
        source.write_text(text, encoding="utf-8")
        out, err = self.path(f"{name}.out"), self.path(f"{name}.err")
        with source.open("rb") as inp, out.open("wb") as stdout, err.open("wb") as stderr:
            process = launcher.start(
                [str(BIN / "target-chatra-push"), "--config", str(config_path)],
                stdin=launcher.PIPE if input_open else inp,
                stdout=stdout, stderr=stderr, env=clean_env(), cwd=self.folder,
            )  # fmt: skip
        if process.stdin is not None:
            process.stdin.write(text.encode())
            process.stdin.flush()
        return Background(process, Run(-1, out, err, target=True))

    def tap_config(self, sandbox: SandboxServer, **settings: t.Any) -> dict[str, t.Any]:
        """Keys and URL of the sandbox, no pacing, and `settings`."""
        return {
            "api_key_pair": sandbox.key_pair,
            "api_url": sandbox.api_url,
            "requests_per_minute": 0,
            **settings,
        }

    def target_config(self, sandbox: SandboxServer | None, **settings: t.Any) -> dict[str, t.Any]:
        """Keys and URL of the sandbox, files in the test's folder, and `settings`."""
        config: dict[str, t.Any] = {
            "requests_per_minute": 0,
            "ledger_path": str(self.path("ledger.sqlite")),
            "dead_letter_path": str(self.path("dead-letter.jsonl")),
            "preview_path": str(self.path("preview.jsonl")),
            "report_path": str(self.path("report.json")),
            **settings,
        }
        if sandbox is not None:
            config = {"api_key_pair": sandbox.key_pair, "api_url": sandbox.api_url, **config}
        return config

    def report(self) -> dict[str, t.Any]:
        """The target's last JSON report."""
        return t.cast("dict[str, t.Any]", json.loads(self.path("report.json").read_text()))

    def unconfirmed_ids(self) -> set[int]:
        """Row IDs the target's last report lists as unconfirmed (keys look like `[7]`)."""
        streams = self.report()["streams"]
        keys = streams.get(ROW_STREAM, {}).get("unconfirmed_keys", [])
        return {json.loads(key)[0] for key in keys}

    def ledger(self) -> dict[int, str]:
        """Row ID -> status, read from the target's ledger."""
        with closing(sqlite3.connect(self.path("ledger.sqlite"))) as db:
            rows = db.execute("SELECT dedupe_key, status FROM deliveries").fetchall()
        return {json.loads(key)[0]: status for key, status in rows}

    def dead_letters(self) -> list[dict[str, t.Any]]:
        """The target's dead-letter entries."""
        path = self.path("dead-letter.jsonl")
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

    @staticmethod
    def row_text(row_id: int) -> str:
        """The text of benchmark row `row_id`; the row's key can be read back from a send."""
        return f"row {row_id}: your parcel is on its way."

    @staticmethod
    def key_of_send(send: Mapping[str, t.Any]) -> int:
        """The row ID a sandbox send came from (see `row_text`)."""
        match = re.match(r"row (\d+):", send["body"]["text"])
        assert match, send
        return int(match.group(1))

    @staticmethod
    def row_messages(
        rows: Iterable[Mapping[str, t.Any]],
        *,
        state_every: int = 0,
        schema: Mapping[str, t.Any] | None = None,
    ) -> list[dict[str, t.Any]]:
        """SCHEMA, then RECORD per row, with a STATE `{"last": id}` after every `state_every` rows
        (and after the last one)."""
        rows = list(rows)
        messages: list[dict[str, t.Any]] = [
            {"type": "SCHEMA", "stream": ROW_STREAM, "schema": dict(schema or ROW_SCHEMA),
             "key_properties": ["id"]},
        ]  # fmt: skip
        for position, row in enumerate(rows, 1):
            messages.append({"type": "RECORD", "stream": ROW_STREAM, "record": dict(row)})
            if state_every and (position % state_every == 0 or position == len(rows)):
                messages.append({"type": "STATE", "value": {"last": row["id"]}})
        return messages

    @staticmethod
    def valid_rows(client_ids: Sequence[str], count: int, start: int = 0) -> list[dict[str, t.Any]]:
        """`count` valid rows for the given clients."""
        return [
            {"id": n, "client_id": client_ids[n % len(client_ids)], "text": Plugins.row_text(n)}
            for n in range(start, start + count)
        ]


@pytest.fixture
def plugins(tmp_path: Path) -> Plugins:
    """Runs the plugins, each a process of its own, in the test's temp folder."""
    return Plugins(tmp_path)
