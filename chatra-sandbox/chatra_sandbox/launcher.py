"""Run the repository's console scripts in tests without paying for their imports every time.

A tap-chatra or target-chatra-push process spends about half a second of CPU importing the
Singer SDK before it reads a line, and the test suite starts hundreds of them: that import was
most of what those tests cost. `start` and `run` take the commands `subprocess` would (a
console script of this virtualenv, then its arguments) and fork each from a server process
that imported the scripts' modules once (one server per test process, started on first use).

The forked process is otherwise the one `subprocess` gives: a pid of its own (a signal,
SIGKILL too, reaches it), an exit code (negative for a signal), the interpreter's own standard
streams on the files it was given, its environment, working folder and argv, and a normal
interpreter exit (tracebacks, atexit handlers, threads joined). Only its imports happened
earlier, in the server, before the environment was set: so the environment variables that
configure an interpreter (`INTERPRETER_VARIABLES`) must be the server's, and the tests that run
the console scripts through `subprocess` or Meltano keep covering a cold start.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import typing as t
from importlib.metadata import entry_points
from pathlib import Path

if t.TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

BIN = Path(sys.executable).parent
#: The console scripts `start` runs; the server imports the modules of their entry points.
SCRIPTS = ("tap-chatra", "target-chatra-push", "chatra-push-ledger", "chatra-webhooks")
#: Environment variables read when an interpreter starts (or sets its locale or time zone).
INTERPRETER_VARIABLES = ("PYTHON", "LC_", "LANG", "TZ")
PIPE = subprocess.PIPE
DEVNULL = subprocess.DEVNULL
Stream = int | t.IO[t.Any] | None
START_TIMEOUT = 60.0
_MESSAGE_BYTES = 1 << 20
_REPLY_BYTES = 1 << 10


@functools.cache
def _entry_points() -> dict[str, str]:
    found = entry_points(group="console_scripts")
    return {name: found[name].value for name in SCRIPTS if name in found.names}


def _interpreter_settings(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(INTERPRETER_VARIABLES)}


def _send(sock: socket.socket, message: dict[str, t.Any], fds: Sequence[int] = ()) -> None:
    socket.send_fds(sock, [json.dumps(message).encode()], list(fds))


class _Server:
    """The server process, and what it has said about the processes it forked."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        modules = sorted({value.partition(":")[0] for value in _entry_points().values()})
        self.settings = _interpreter_settings(os.environ)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from chatra_sandbox.launcher import serve; serve()",
                str(theirs.fileno()),
                *modules,
            ],
            stdin=subprocess.DEVNULL,
            pass_fds=[theirs.fileno()],
        )
        theirs.close()
        self.socket = ours
        self.lock = threading.Lock()
        self.started: list[int] = []
        self.exits: dict[int, int] = {}
        self.ended = False
        self.news = threading.Condition()
        threading.Thread(target=self._listen, name="launcher", daemon=True).start()

    def _listen(self) -> None:
        while data := self.socket.recv(_REPLY_BYTES):
            message = json.loads(data)
            with self.news:
                if "started" in message:
                    self.started.append(message["started"])
                else:
                    self.exits[message["exited"]] = message["code"]
                self.news.notify_all()
        with self.news:
            self.ended = True
            self.news.notify_all()

    def fork(self, request: dict[str, t.Any], fds: Sequence[int]) -> int:
        """Have the server fork a process for `request` with `fds` as stdin, stdout, stderr."""
        with self.lock:
            _send(self.socket, request, fds)
            with self.news:
                if not self.news.wait_for(lambda: self.started or self.ended, START_TIMEOUT):
                    raise RuntimeError("the launcher's server did not fork in time")
                if not self.started:
                    raise RuntimeError("the launcher's server ended: see the test's stderr")
                return self.started.pop(0)

    def exit_code(self, pid: int, timeout: float | None) -> int | None:
        """The exit code of `pid` once it ended, waiting up to `timeout` (0: not at all)."""
        with self.news:
            self.news.wait_for(lambda: pid in self.exits or self.ended, timeout)
            if pid not in self.exits and self.ended:
                raise RuntimeError("the launcher's server ended: see the test's stderr")
            return self.exits.get(pid)


@functools.cache
def _server() -> _Server:
    return _Server()


class ScriptProcess:
    """A console script started by `start`: the part of `subprocess.Popen` tests use."""

    def __init__(self, args: list[str], pid: int, pipes: list[t.IO[t.Any] | None]) -> None:
        self.args = args
        self.pid = pid
        self.returncode: int | None = None
        self.stdin, self.stdout, self.stderr = pipes

    def poll(self) -> int | None:
        """The exit code, or None while the process runs."""
        if self.returncode is None:
            self.returncode = _server().exit_code(self.pid, 0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the end (`subprocess.TimeoutExpired` after `timeout` seconds); the code."""
        if self.returncode is None:
            self.returncode = _server().exit_code(self.pid, timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(self.args, t.cast("float", timeout))
        return self.returncode

    def communicate(self, timeout: float | None = None) -> tuple[t.Any, t.Any]:
        """Close a piped stdin, read the piped stdout and stderr, wait; what they held.

        As Popen's: None for a stream not piped, `subprocess.TimeoutExpired` after `timeout`.
        """
        if self.stdin is not None:
            self.stdin.close()
        read: dict[int, t.Any] = {}
        readers = [
            threading.Thread(target=lambda n=n, pipe=pipe: read.update({n: pipe.read()}))
            for n, pipe in enumerate((self.stdout, self.stderr))
            if pipe is not None
        ]
        deadline = None if timeout is None else time.monotonic() + timeout
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if reader.is_alive():
                raise subprocess.TimeoutExpired(self.args, t.cast("float", timeout))
        self.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return read.get(0), read.get(1)

    def send_signal(self, signum: int) -> None:
        """Send `signum` to the process, if it still runs."""
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        """SIGKILL."""
        self.send_signal(signal.SIGKILL)


def is_script(command: Sequence[str | Path]) -> bool:
    """Whether `start` runs `command`: one of `SCRIPTS` in this virtualenv."""
    path = Path(command[0]).absolute()
    return path.parent == BIN and path.name in _entry_points()


def start(
    command: Sequence[str | Path],
    *,
    stdin: Stream = None,
    stdout: Stream = None,
    stderr: Stream = None,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    text: bool = False,
) -> ScriptProcess:
    """Start `command` as `subprocess.Popen` would.

    Each stream is None (this process's), PIPE (then the returned process's `stdin`, `stdout`
    or `stderr`), DEVNULL, a file or a file descriptor.
    """
    if not is_script(command):
        raise ValueError(f"{command[0]} is none of {', '.join(_entry_points())} in {BIN}")
    server = _server()
    environ = dict(os.environ if env is None else env)
    if _interpreter_settings(environ) != server.settings:
        raise ValueError(
            f"The {', '.join(INTERPRETER_VARIABLES)}* variables differ from the launcher "
            "server's: run this command with subprocess."
        )
    fds: list[int] = []
    pipes: list[t.IO[t.Any] | None] = []
    opened: list[int] = []
    for std, stream in enumerate((stdin, stdout, stderr)):
        pipe = None
        if stream == PIPE:
            read, write = os.pipe()
            fd, ours = (read, write) if std == 0 else (write, read)
            opened.append(fd)
            mode = ("w" if std == 0 else "r") + ("" if text else "b")
            pipe = os.fdopen(ours, mode)
        elif stream == DEVNULL:
            fd = os.open(os.devnull, os.O_RDWR)
            opened.append(fd)
        elif stream is None:
            fd = std
        else:
            fd = stream if isinstance(stream, int) else stream.fileno()
        fds.append(fd)
        pipes.append(pipe)
    argv = [str(part) for part in command]
    request = {
        "entry_point": _entry_points()[Path(argv[0]).name],
        "argv": argv,
        "env": environ,
        "cwd": str(cwd or Path.cwd()),
    }
    try:
        pid = server.fork(request, fds)
    finally:
        for fd in opened:
            os.close(fd)
    return ScriptProcess(argv, pid, pipes)


def run(
    command: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    text: bool = False,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[t.Any]:
    """Run `command` to its end, as `subprocess.run(..., capture_output=True)` would."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = start(command, stdout=out, stderr=err, env=env, cwd=cwd)
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
        captured = []
        for file in (out, err):
            file.seek(0)
            data = file.read()
            captured.append(data.decode() if text else data)
    return subprocess.CompletedProcess(process.args, code, *captured)


def serve() -> None:
    """The server's main: import the modules, then fork a process for each request.

    Returns only in a forked process, which then runs its console script from here, so that
    its exit is an interpreter's (`sys.exit`, a traceback, atexit) with nothing of the loop's.
    """
    sock = socket.socket(fileno=int(sys.argv[1]))
    sys.path[0] = str(BIN)  # as for a console script, rather than -c's working folder
    for module in sys.argv[2:]:
        importlib.import_module(module)
    request = _fork_on_request(sock)
    if request is None:
        return
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    sys.argv = request["argv"]
    module, _, attributes = request["entry_point"].partition(":")
    main: t.Any = importlib.import_module(module)
    for attribute in attributes.split("."):
        main = getattr(main, attribute)
    sys.exit(main())


def _fork_on_request(sock: socket.socket) -> dict[str, t.Any] | None:
    """Fork for each request, telling the client each pid and exit code; None once it left.

    Returns the request in the forked process, its stdin, stdout and stderr in place.
    """
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # its wake-up ends the select below
    while True:
        ready, _, _ = select.select([sock.fileno(), wake_read], [], [])
        if wake_read in ready:
            os.read(wake_read, 4096)
            _report_exits(sock)
        if sock.fileno() not in ready:
            continue
        data, fds, _, _ = socket.recv_fds(sock, _MESSAGE_BYTES, 3)
        if not data:
            return None
        pid = os.fork()
        if pid == 0:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for fd in (wake_read, wake_write, sock.detach()):
                os.close(fd)
            for std, fd in enumerate(fds):
                os.dup2(fd, std)
            for fd in set(fds) - {0, 1, 2}:
                os.close(fd)
            return t.cast("dict[str, t.Any]", json.loads(data))
        for fd in fds:
            os.close(fd)
        _send(sock, {"started": pid})


def _report_exits(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(sock, {"exited": pid, "code": os.waitstatus_to_exitcode(status)})
