"""Processes for the benchmarks: the sandbox, the measured plugins, and what they wrote.

Every measured program runs as its own process, started from its console script in the
virtualenv, with stdout going to a file; the sandbox runs in yet another process (its CLI), so
neither shares a GIL or a core's time slice with the code being timed. CPU time comes from
`os.wait4` (the rusage of exactly that child); peak memory from the child's own `VmHWM`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import typing as t
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# A public key of the benchmark's own, so that chatra_client's machine-wide pacing file is not
# shared with a test run or a demo that happens to use the sandbox's default key.
BENCH_PUBLIC_KEY = "bench-public"
BENCH_SECRET_KEY = "bench-secret"


def executable(name: str) -> str:
    """Path of a console script installed in the same virtualenv as this interpreter."""
    path = BIN / name
    if not path.exists():
        msg = f"{name} is not installed in {BIN}; run `make install` first."
        raise FileNotFoundError(msg)
    return str(path)


@dataclass
class RunResult:
    """How one measured process ended and what it cost."""

    returncode: int
    wall: float
    peak_rss: int
    cpu: float
    stdout: Path
    stderr: Path
    stopped: bool = False

    @property
    def peak_rss_mb(self) -> float:
        """Peak resident memory in MiB."""
        return self.peak_rss / 2**20

    def stderr_tail(self, lines: int = 5) -> str:
        """The last lines of stderr, for error messages."""
        text = self.stderr.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def check(self, what: str) -> None:
        """Raise unless the process exited 0 or was stopped on purpose (a window's end)."""
        if self.returncode != 0 and not self.stopped:
            msg = f"{what} failed with exit code {self.returncode}:\n{self.stderr_tail()}"
            raise RuntimeError(msg)


class PeakMemory:
    """Follows a process's peak resident memory (`VmHWM` in /proc/PID/status).

    rusage's `ru_maxrss` cannot be used for this: Linux carries the RSS of the forking
    process over into the child's maximum at exec, so every child of a large benchmark
    process would look at least as large as it.
    """

    INTERVAL = 0.01

    def __init__(self, pid: int) -> None:
        self.peak = 0
        self._path = Path(f"/proc/{pid}/status")
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _read(self) -> int:
        try:
            text = self._path.read_text(encoding="ascii")
        except OSError:
            return 0
        for line in text.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0

    def _follow(self) -> None:
        # VmHWM only grows while the process lives, so the last reading is the peak, less
        # whatever it grew in its final few milliseconds.
        while not self._done.wait(self.INTERVAL):
            self.peak = max(self.peak, self._read())

    def stop(self) -> int:
        """Stop following (call before reaping the process); return the peak in bytes."""
        self._done.set()
        self._thread.join()
        return self.peak


def run_plugin(program: str, folder: Path, config: Path, **kwargs: t.Any) -> RunResult:
    """Run a plugin's console script with `--config`; stdout and stderr land in `folder`.

    Args:
        program: The console script's path.
        folder: Receives `<name>.out` (Singer output) and `<name>.err` (logs).
        config: The plugin's config file.
        **kwargs: Passed to `run_measured` (stdin, env, stop_after, timeout).
    """
    name = Path(program).name
    return run_measured(
        [program, "--config", str(config)],
        stdout=folder / f"{name}.out",
        stderr=folder / f"{name}.err",
        **kwargs,
    )


def run_bare(action: str, sandbox: Sandbox, resource: str, items: Path, folder: Path) -> RunResult:
    """Run the baseline (bench/bare_client.py): `get` every ID or `post` every body in `items`.

    Raises:
        RuntimeError: When the baseline fails.
    """
    result = run_measured(
        [sys.executable, str(ROOT / "bench" / "bare_client.py"), action, sandbox.api_url,
         resource, str(items)],
        stdout=folder / "bare.out",
        stderr=folder / "bare.err",
        env={"BENCH_KEY_PAIR": sandbox.key_pair},
    )  # fmt: skip
    result.check(f"the bare {action.upper()} loop")
    return result


def run_measured(
    command: Sequence[str],
    *,
    stdout: Path,
    stderr: Path,
    stdin: Path | None = None,
    env: Mapping[str, str] | None = None,
    stop_after: float | None = None,
    timeout: float = 1800.0,
) -> RunResult:
    """Run a command to its end (or stop it with SIGTERM after `stop_after` seconds).

    Args:
        command: The program and its arguments.
        stdout: File that receives standard output.
        stderr: File that receives standard error.
        stdin: File fed to standard input, if any.
        env: Extra environment variables.
        stop_after: Seconds after which the process is sent SIGTERM (a window benchmark).
        timeout: Seconds after which the process is killed and the run fails.

    Returns:
        Exit code, wall time, peak RSS (bytes) and CPU time of the process.

    Raises:
        TimeoutError: When the process ran past `timeout`.
    """
    full_env = {**os.environ, **(env or {})}
    stopped = threading.Event()
    with (
        stdout.open("wb") as out,
        stderr.open("wb") as err,
        (stdin or Path(os.devnull)).open("rb") as inp,
    ):
        start = time.perf_counter()
        process = subprocess.Popen(command, stdin=inp, stdout=out, stderr=err, env=full_env)
        memory = PeakMemory(process.pid)

        def stop(sig: int, flag: threading.Event | None) -> None:
            if flag is not None:
                flag.set()
            # The process may already have exited; then there is nothing to stop.
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, sig)

        timers = [threading.Timer(timeout, stop, (signal.SIGKILL, None))]
        if stop_after is not None:
            timers.append(threading.Timer(stop_after, stop, (signal.SIGTERM, stopped)))
        for timer in timers:
            timer.daemon = True
            timer.start()
        try:
            # Wait for the exit without reaping, so that the sampler stops before the PID
            # can be reused, then reap and take the rusage.
            os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
            peak = memory.stop()
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            memory.stop()
            for timer in timers:
                timer.cancel()
        wall = time.perf_counter() - start
    # wait4 reaped the child; tell Popen so it does not try again.
    process.returncode = os.waitstatus_to_exitcode(status)
    if wall >= timeout:
        msg = f"{command[0]} ran longer than {timeout:.0f}s and was killed."
        raise TimeoutError(msg)
    return RunResult(
        returncode=process.returncode,
        wall=wall,
        peak_rss=peak or usage.ru_maxrss * 1024,
        cpu=usage.ru_utime + usage.ru_stime,
        stdout=stdout,
        stderr=stderr,
        stopped=stopped.is_set(),
    )


class Sandbox:
    """A `chatra-sandbox` process, driven through its admin endpoints.

    Args:
        workdir: Folder for the sandbox's output and ID files.
        seed: Data seed.
        clients: Seeded clients.
        messages: Seeded messages.
        pushed_messages: Seeded pushed messages.
        public_key: The account's public key; plugins share pacing per public key, so
            benchmarks that run at the same time each use their own.
        options: Runtime options (rate limit, latency, faults), set once it listens.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        seed: int = 42,
        clients: int = 20,
        messages: int = 0,
        pushed_messages: int = 0,
        public_key: str = BENCH_PUBLIC_KEY,
        **options: t.Any,
    ) -> None:
        self.workdir = workdir
        self.public_key = public_key
        self.counts = {"clients": clients, "messages": messages, "pushed_messages": pushed_messages}
        self.seed = seed
        self.options = options
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._http = requests.Session()

    @property
    def api_url(self) -> str:
        """Base URL of the emulated API."""
        return self.url + "/api"

    @property
    def key_pair(self) -> str:
        """The account's keys as `PUBLIC:SECRET`."""
        return f"{self.public_key}:{BENCH_SECRET_KEY}"

    def start(self, timeout: float = 120.0) -> Sandbox:
        """Start the process and wait until it listens."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.workdir / "sandbox.out"
        command = [
            executable("chatra-sandbox"),
            "--port",
            "0",
            "--seed",
            str(self.seed),
            "--clients",
            str(self.counts["clients"]),
            "--messages",
            str(self.counts["messages"]),
            "--pushed-messages",
            str(self.counts["pushed_messages"]),
            "--public-key",
            self.public_key,
            "--secret-key",
            BENCH_SECRET_KEY,
        ]
        with log.open("wb") as out:
            self._process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self.url:
            text = log.read_text(encoding="utf-8", errors="replace")
            for line in text.splitlines():
                if "listening on " in line:
                    self.url = line.rsplit("listening on ", 1)[1].strip()
            if self._process.poll() is not None:
                msg = f"chatra-sandbox exited early:\n{text[-2000:]}"
                raise RuntimeError(msg)
            if time.monotonic() > deadline:
                self.stop()
                msg = "chatra-sandbox did not start listening in time."
                raise TimeoutError(msg)
            time.sleep(0.05)
        # The CLI's default limit is Chatra's 60 a minute; a benchmark states its own.
        self.configure(**{"requests_per_minute": 0, **self.options})
        return self

    def stop(self) -> None:
        """Stop the process (SIGINT, then SIGKILL if it hangs)."""
        self._http.close()
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGINT)
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _admin(self, method: str, path: str, body: object = None) -> t.Any:
        response = self._http.request(method, f"{self.url}/_sandbox/{path}", json=body, timeout=60)
        response.raise_for_status()
        return response.json()

    def configure(self, **options: t.Any) -> dict[str, t.Any]:
        """Change the rate limit or faults while running."""
        return t.cast("dict[str, t.Any]", self._admin("POST", "config", options))

    def requests_log(self) -> list[dict[str, t.Any]]:
        """Every API request seen since the last reset, oldest first."""
        return t.cast("list[dict[str, t.Any]]", self._admin("GET", "requests"))

    def sends(self) -> list[dict[str, t.Any]]:
        """Every committed POST since the last reset."""
        return t.cast("list[dict[str, t.Any]]", self._admin("GET", "sends"))

    def reset_log(self) -> None:
        """Forget the request and send logs."""
        self._admin("POST", "reset-log")

    def ids(self, stream: str) -> list[str]:
        """The IDs of one stream (`messages`, `pushed_messages`, `clients`)."""
        return t.cast("list[str]", self._admin("GET", f"ids/{stream}"))


@dataclass
class SingerOutput:
    """What a tap wrote: records per stream, their IDs, and the STATE messages."""

    records: Counter[str] = field(default_factory=Counter)
    record_ids: dict[str, list[str]] = field(default_factory=dict)
    states: int = 0
    last_state_line: bytes = b""

    @property
    def last_state(self) -> dict[str, t.Any]:
        """The `value` of the last STATE message ({} when there was none)."""
        if not self.last_state_line:
            return {}
        return t.cast("dict[str, t.Any]", json.loads(self.last_state_line)["value"])


def read_singer(path: Path) -> SingerOutput:
    """Parse a tap's output file (a truncated last line, from a killed process, is ignored)."""
    output = SingerOutput()
    with path.open("rb") as lines:
        for line in lines:
            if not line.endswith(b"\n"):
                break
            message = json.loads(line)
            kind = message.get("type")
            if kind == "RECORD":
                stream = message["stream"]
                output.records[stream] += 1
                output.record_ids.setdefault(stream, []).append(message["record"].get("id"))
            elif kind == "STATE":
                output.states += 1
                output.last_state_line = line.rstrip(b"\n")
    return output


def write_json(path: Path, value: object) -> Path:
    """Write a JSON file (configs, state) and return its path."""
    path.write_text(json.dumps(value), encoding="utf-8")
    return path


def write_lines(path: Path, lines: Iterable[str]) -> Path:
    """Write one item per line and return the path."""
    with path.open("w", encoding="utf-8") as out:
        out.writelines(f"{line}\n" for line in lines)
    return path


def window_rate(
    log: Sequence[Mapping[str, t.Any]], *, window: float | None = None
) -> tuple[int, float, float]:
    """Requests and steady rate (per minute) from the first logged request on.

    Args:
        log: Sandbox request log entries, oldest first.
        window: Only requests within this many seconds after the first count.

    Returns:
        (requests counted, seconds between the first and last of them, requests per minute),
        the rate being (count - 1) intervals over that span.
    """
    if len(log) < 2:
        return len(log), 0.0, 0.0
    start = log[0]["t"]
    times = [entry["t"] for entry in log if window is None or entry["t"] - start <= window]
    span = times[-1] - start
    return len(times), span, (len(times) - 1) / span * 60 if span > 0 else 0.0
