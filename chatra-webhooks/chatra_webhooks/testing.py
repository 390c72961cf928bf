"""A real `chatra-webhooks serve` process for tests, and the pytest fixture that starts it.

Loaded as a pytest plugin through the ``pytest11`` entry point, so every test suite of the
repository (the inbox's own, tap-chatra's, the end-to-end tests) starts the inbox the same
way; test modules cannot import each other under ``--import-mode=importlib``, but they can
import `InboxProcess` from here for their type hints.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

import pytest

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import requests

    from chatra_sandbox import launcher

BIN = Path(sys.executable).parent
#: The tests' tokens: ingest tokens (a rotation's old and new one) and the read token.
INGEST_TOKEN = "ingest-" + "a1" * 20
ROTATED_TOKEN = "ingest-" + "b2" * 20
READ_TOKEN = "read-" + "c3" * 16
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
HTTP_TIMEOUT = 10.0


def inbox_env(**extra: str) -> dict[str, str]:
    """The environment of an inbox process: the tests' tokens, no stray settings, `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATRA_WEBHOOKS_")}
    env["CHATRA_WEBHOOKS_INGEST_TOKEN"] = f"{INGEST_TOKEN},{ROTATED_TOKEN}"
    env["CHATRA_WEBHOOKS_READ_TOKEN"] = READ_TOKEN
    return {**env, **extra}


@dataclass
class InboxProcess:
    """A `chatra-webhooks serve --port 0` process and what it printed.

    Attributes:
        store_url: The `--store` given (none when empty: the variable or the default).
        folder: Where its log goes.
        args: More arguments of `serve`.
        env: Its environment (see `inbox_env`).
        url: `http://HOST:PORT` once started.
        starts: How many times it was started (`kill` and `start` again to restart it).
    """

    store_url: str
    folder: Path
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=inbox_env, repr=False)
    process: launcher.ScriptProcess | None = None
    url: str = ""
    starts: int = 0
    ingest_token: str = field(default=INGEST_TOKEN, repr=False)
    rotated_token: str = field(default=ROTATED_TOKEN, repr=False)
    read_token: str = field(default=READ_TOKEN, repr=False)

    @property
    def auth(self) -> dict[str, str]:
        """Headers of an authorized read API request."""
        return {"Authorization": f"Bearer {self.read_token}"}

    @property
    def stderr_path(self) -> Path:
        """Where the process's log goes (appended to across restarts)."""
        return self.folder / "inbox-stderr.log"

    def start(self) -> InboxProcess:
        """Start the server and wait for its `listening on` line."""
        command = [str(BIN / "chatra-webhooks"), "serve", "--port", "0"]
        command += ["--store", self.store_url] if self.store_url else []
        command += self.args
        # Forked from a server that imported the inbox's modules once: see its docstring.
        from chatra_sandbox import launcher  # noqa: PLC0415 - a test dependency, as requests

        with self.stderr_path.open("a", encoding="utf-8") as stderr:
            self.process = launcher.start(
                command, stdout=launcher.PIPE, stderr=stderr, text=True, env=self.env
            )
        assert self.process.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(
            target=lambda out: lines.put(out.readline()), args=(self.process.stdout,), daemon=True
        ).start()
        try:
            first = lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            self.kill()
            pytest.fail(f"the inbox did not start within {START_TIMEOUT} s: {self.log()[-2000:]}")
        if not first.startswith("listening on http://"):
            self.kill()
            pytest.fail(f"the inbox did not start: {first!r} {self.log()[-2000:]}")
        self.url = first.removeprefix("listening on ").strip()
        self.starts += 1
        return self

    def ingest_url(self, token: str | None = None) -> str:
        """The URL Chatra would POST to (with the current port, after a restart too)."""
        return f"{self.url}/chatra/{token or self.ingest_token}"

    def tap_env(self) -> dict[str, str]:
        """tap-chatra's variables for reading this inbox."""
        return {
            "TAP_CHATRA_WEBHOOK_INBOX_URL": self.url,
            "TAP_CHATRA_WEBHOOK_INBOX_TOKEN": self.read_token,
        }

    def export(self, path: Path) -> None:
        """`chatra-webhooks export` of every stored event to `path` (the file is replaced)."""
        from chatra_sandbox import launcher  # noqa: PLC0415 - a test dependency, as requests

        command = [str(BIN / "chatra-webhooks"), "export", "--store", self.store_url]
        done = launcher.run([*command, "--output", str(path)], timeout=60, env=self.env)
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]

    # HTTP helpers; `requests` is imported on use: it is a test dependency, not the inbox's.

    def post(self, body: t.Any, token: str | None = None, **kw: t.Any) -> requests.Response:
        """POST `body` (bytes, text or an iterable of chunks) to the ingest URL."""
        import requests  # noqa: PLC0415 - see above

        return requests.post(self.ingest_url(token), data=body, timeout=HTTP_TIMEOUT, **kw)

    def read_events(
        self, after: int = 0, limit: int | None = None, **kw: t.Any
    ) -> requests.Response:
        """`GET /events` (pass `headers=inbox.auth` to be authorized)."""
        import requests  # noqa: PLC0415 - see above

        params = {"after": after} | ({} if limit is None else {"limit": limit})
        return requests.get(f"{self.url}/events", params=params, timeout=HTTP_TIMEOUT, **kw)

    def all_events(self, limit: int = 1000) -> list[dict[str, t.Any]]:
        """Every stored event, read page by page with the read token."""
        events: list[dict[str, t.Any]] = []
        after = 0
        while True:
            answer = self.read_events(after, limit, headers=self.auth)
            assert answer.status_code == 200, answer.text
            page = answer.json()
            events += page["events"]
            after = page["next_after"]
            if not page.get("has_more", bool(page["events"])):
                return events

    def metric(self, line_start: str) -> float:
        """The sum of the `/metrics` samples whose line starts with `line_start`."""
        import requests  # noqa: PLC0415 - see above

        text = requests.get(f"{self.url}/metrics", headers=self.auth, timeout=HTTP_TIMEOUT).text
        lines = text.splitlines()
        return sum(float(line.split()[-1]) for line in lines if line.startswith(line_start))

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> int | None:
        """SIGTERM and wait; return the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode

    def log(self) -> str:
        """Everything the process wrote to stderr so far."""
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


@pytest.fixture
def webhook_inbox_factory(tmp_path: Path) -> Iterator[Callable[..., InboxProcess]]:
    """Return `(store_url, *serve_args, **env) -> started InboxProcess`; all stop at teardown.

    Each inbox logs to a folder of its own under the test's `tmp_path`.
    """
    started: list[InboxProcess] = []

    def start(store_url: str, *args: str, **env: str) -> InboxProcess:
        folder = tmp_path / f"inbox-{len(started)}"
        folder.mkdir()
        inbox = InboxProcess(store_url, folder, args, inbox_env(**env))
        started.append(inbox)
        return inbox.start()

    try:
        yield start
    finally:
        for inbox in started:
            inbox.stop()
