"""Fixtures for the end-to-end tests: the repository's Meltano project, installed once.

The tests drive the real `meltano` CLI in the repository root, with the plugin venvs under
.meltano/ that `meltano install` builds (once per test session). Everything else a run
leaves behind is kept apart from a developer's own runs: Meltano's system database (and with
it the state) lives in the session's temp folder, the developer's .env is not read, and every
path a plugin writes to is pointed into the test's own temp folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest
from filelock import FileLock

if TYPE_CHECKING:
    from collections.abc import Callable

    from chatra_sandbox import SandboxServer

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# Variables from the developer's shell that would change what the plugins or Meltano do.
ISOLATED_PREFIXES = (
    "MELTANO_",
    "TAP_CHATRA_",
    "TARGET_CHATRA_PUSH_",
    "TAP_POSTGRES_",
    "TARGET_POSTGRES_",
    "TARGET_DUCKDB_",
    "TAP_JSONL_",
    "CHATRA_WEBHOOKS_",
    "DBT_",
    "CHATRA_ANALYTICS_",
    "TAP_MISSED_CHATS_",
    "TARGET_CHATRA_FOLLOW_UP_",
)
# Kept: the interpreter for the plugin venvs, which CI sets on Python 3.13 (see ci.yml).
PASSED_THROUGH = {"MELTANO_PYTHON"}
INSTALL_TIMEOUT = 900
RUN_TIMEOUT = 300


def isolated_environ(**extra: str) -> dict[str, str]:
    """This process's environment without the variables above, plain log output, plus `extra`."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if k in PASSED_THROUGH or not k.startswith(ISOLATED_PREFIXES)
    }
    return {**environ, "MELTANO_CLI_LOG_FORMAT": "uncolored", "NO_COLOR": "1", **extra}


@dataclass
class MeltanoProject:
    """The repository's Meltano project, run in a test-only system database."""

    root: Path
    env_file: Path
    base_env: dict[str, str]
    environment: str = "dev"
    #: Whether `meltano run` and `invoke` may install a plugin (Meltano's default).
    installs: bool = True

    def command(self, *args: str) -> list[str]:
        """The full `meltano` command line (in `environment`, no .env) for `args`."""
        if not self.installs and args[:1] in (("run",), ("invoke",)) and "--no-install" not in args:
            args = (args[0], "--no-install", *args[1:])
        return [
            str(BIN / "meltano"),
            f"--environment={self.environment}",
            f"--env-file={self.env_file}",
            *args,
        ]

    def environ(self, env: dict[str, str] | None) -> dict[str, str]:
        """The process environment: the isolated base plus `env`."""
        return {**self.base_env, **(env or {})}

    def run(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        check: bool = True,
        timeout: float = RUN_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """Run `meltano ARGS`; with `check`, fail the test (showing the log) on a non-zero exit."""
        result = subprocess.run(
            self.command(*args),
            cwd=self.root,
            env=self.environ(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            log = "\n".join((result.stdout + result.stderr).splitlines()[-60:])
            pytest.fail(f"`meltano {' '.join(args)}` exited {result.returncode}:\n{log}")
        return result

    def run_killing(
        self, plugin: str, when: Callable[[], bool], *args: str, env: dict[str, str] | None = None
    ) -> int:
        """Run `meltano ARGS`, SIGKILL its `plugin` process once `when()` holds; the exit code.

        Fails the test if the run ends before `when()` holds, or within two minutes it does not.
        """
        process = self.popen(*args, env=env)
        try:
            deadline = time.monotonic() + 120
            while not when():
                assert process.poll() is None, "the run ended before it could be killed"
                assert time.monotonic() < deadline, f"{plugin} never got far enough to be killed"
                time.sleep(0.02)
            child = _child_process(psutil.Process(process.pid), plugin)
            assert child is not None, f"no {plugin} process under meltano"
            os.kill(child.pid, signal.SIGKILL)
            process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        return process.returncode

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """Start `meltano ARGS` without waiting; output goes to the returned pipes."""
        return subprocess.Popen(
            self.command(*args),
            cwd=self.root,
            env=self.environ(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )


def _child_process(parent: psutil.Process, executable: str) -> psutil.Process | None:
    """The process under `parent` that runs `executable` (a plugin's console script)."""
    for child in parent.children(recursive=True):
        try:
            if any(Path(part).name == executable for part in child.cmdline()):
                return child
        except psutil.NoSuchProcess:
            continue
    return None


def _install_once(project: MeltanoProject, shared: Path) -> None:
    """`meltano install` into the repository's .meltano/, once for all parallel workers."""
    with FileLock(shared / "meltano-install.lock"):
        done = shared / "meltano-installed"
        if done.exists():
            return
        started = time.monotonic()
        project.run("install", timeout=INSTALL_TIMEOUT)
        print(f"\nmeltano install took {time.monotonic() - started:.1f} s")
        done.touch()


def _private_sys_dir(folder: Path) -> Path:
    """A .meltano/ of this worker's own that shares the installed plugins, read-only.

    Meltano writes each run's state.json and catalog into `run/<plugin>/`, one folder per
    plugin: two workers running tap-chatra at once in one .meltano/ would read each other's.
    """
    sys_dir = folder / "sys"
    sys_dir.mkdir()
    for installed in (REPO_ROOT / ".meltano").iterdir():
        if installed.is_dir() and installed.name not in {"run", "logs"}:
            (sys_dir / installed.name).symlink_to(installed)
    return sys_dir


@pytest.fixture(scope="session")
def meltano(tmp_path_factory: pytest.TempPathFactory) -> MeltanoProject:
    """The Meltano project with every plugin installed (`meltano install`, once a test run).

    Each pytest-xdist worker then runs Meltano with a system database and run folders of its
    own (MELTANO_SYS_DIR_ROOT), over the one set of plugin venvs.
    """
    folder = tmp_path_factory.mktemp("meltano")
    env_file = folder / "empty.env"
    env_file.write_text("", encoding="utf-8")
    base_env = isolated_environ(MELTANO_DATABASE_URI=f"sqlite:///{folder / 'meltano.db'}")
    project = MeltanoProject(REPO_ROOT, env_file, base_env)
    # The folder all workers of this run share (the base temp folder of one worker without xdist).
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    _install_once(project, shared)
    project.base_env["MELTANO_SYS_DIR_ROOT"] = str(_private_sys_dir(folder))
    # Otherwise a run whose pip_url expands differently (a copy of the project elsewhere)
    # reinstalls the shared venvs while other workers run them. (`--no-install`, since
    # Meltano 4.4 ignores `auto_install: false`.)
    project.installs = False
    return project


@dataclass
class SandboxSettings:
    """Plugin settings (as variables) that point tap-chatra and target-chatra-push at a sandbox."""

    folder: Path

    def tap(self, sandbox: SandboxServer) -> dict[str, str]:
        """tap-chatra: the sandbox's URL and keys, and ID files listing all its records."""
        paths = sandbox.write_id_files(self.folder / "ids")
        return {
            "TAP_CHATRA_API_URL": sandbox.api_url,
            "TAP_CHATRA_API_KEY_PAIR": sandbox.key_pair,
            "TAP_CHATRA_REQUESTS_PER_MINUTE": "0",
            "TAP_CHATRA_MESSAGE_IDS_FILE": str(paths["messages"]),
            "TAP_CHATRA_PUSHED_MESSAGE_IDS_FILE": str(paths["pushed_messages"]),
            "TAP_CHATRA_CLIENT_IDS_FILE": str(paths["clients"]),
            # The dev environment's local webhook inbox is not part of these runs.
            "TAP_CHATRA_WEBHOOK_INBOX_URL": "",
        }

    def target(
        self,
        sandbox: SandboxServer,
        prefix: str = "TARGET_CHATRA_PUSH",
        subfolder: str = "chatra-push",
    ) -> dict[str, str]:
        """target-chatra-push (or a plugin inheriting it, by its variables' `prefix`): the
        sandbox's URL and keys; every file it writes in `subfolder` of the folder."""
        folder = self.folder / subfolder
        return {
            f"{prefix}_API_URL": sandbox.api_url,
            f"{prefix}_API_KEY_PAIR": sandbox.key_pair,
            f"{prefix}_REQUESTS_PER_MINUTE": "0",
            f"{prefix}_LEDGER_PATH": str(folder / "ledger.sqlite"),
            f"{prefix}_DEAD_LETTER_PATH": str(folder / "dead-letter.jsonl"),
            f"{prefix}_PREVIEW_PATH": str(folder / "preview.jsonl"),
            f"{prefix}_REPORT_PATH": str(folder / "report.json"),
            f"{prefix}_SENT_IDS_PATH": str(folder / "sent-ids.txt"),
        }

    @property
    def report_path(self) -> Path:
        """Where target-chatra-push writes its end-of-run summary."""
        return self.folder / "chatra-push" / "report.json"


@pytest.fixture
def sandbox_settings(tmp_path: Path) -> SandboxSettings:
    """Settings pointing the Chatra plugins at a sandbox, with files in this test's folder."""
    return SandboxSettings(tmp_path)
