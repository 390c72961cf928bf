"""The launcher runs a console script as `subprocess` would, forked from its import server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from chatra_sandbox import launcher

BIN = Path(sys.executable).parent
TAP = str(BIN / "tap-chatra")
TARGET = str(BIN / "target-chatra-push")
LEDGER_CLI = str(BIN / "chatra-push-ledger")


@pytest.mark.parametrize(
    "command",
    [
        [TAP, "--about", "--format", "json"],
        [TARGET, "--config", os.devnull],  # click's usage error: exit code 2
        [LEDGER_CLI, "--ledger-path", "missing.sqlite", "list"],
    ],
    ids=["about", "usage-error", "one-line-error"],
)
def test_a_script_says_and_exits_as_it_does_from_subprocess(command, tmp_path):
    cold = subprocess.run(
        command, capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False
    )
    forked = launcher.run(command, text=True, cwd=tmp_path, timeout=60)

    assert (forked.returncode, forked.stdout, forked.stderr) == (
        cold.returncode,
        cold.stdout,
        cold.stderr,
    )


def test_the_environment_folder_and_arguments_are_the_commands_own(tmp_path):
    env = {**os.environ, "TARGET_CHATRA_PUSH_LEDGER_PATH": "from-the-env.sqlite"}

    done = launcher.run([LEDGER_CLI, "list"], env=env, cwd=tmp_path, text=True, timeout=60)

    assert done.returncode == 1
    assert f"There is no ledger at {tmp_path / 'from-the-env.sqlite'};" in done.stderr
    assert "TARGET_CHATRA_PUSH_LEDGER_PATH" not in os.environ


def _start_target(tmp_path: Path, sandbox, stdout: int, stderr: int) -> launcher.ScriptProcess:
    """target-chatra-push on the sandbox, its input a pipe that stays open until closed."""
    config = {
        "api_key_pair": sandbox.key_pair,
        "api_url": sandbox.api_url,
        "ledger_path": str(tmp_path / "ledger.sqlite"),
        "report_path": str(tmp_path / "report.json"),
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return launcher.start(
        [TARGET, "--config", path],
        stdin=launcher.PIPE,
        stdout=stdout,
        stderr=stderr,
        text=True,
        cwd=tmp_path,
    )


def test_piped_input_reaches_the_script_and_its_end_ends_the_run(tmp_path, chatra_sandbox):
    process = _start_target(tmp_path, chatra_sandbox, launcher.PIPE, launcher.PIPE)
    with pytest.raises(subprocess.TimeoutExpired):
        process.wait(timeout=0.5)  # it waits for its input

    stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == 0, stderr
    assert stdout == ""
    assert "Summary: no rows received." in stderr


def test_sigkill_reaches_the_script_itself(tmp_path, chatra_sandbox):
    process = _start_target(tmp_path, chatra_sandbox, launcher.DEVNULL, launcher.DEVNULL)
    assert process.poll() is None

    process.send_signal(signal.SIGKILL)

    assert process.wait(timeout=30) == -signal.SIGKILL
    assert process.poll() == -signal.SIGKILL


def test_what_it_cannot_run_as_subprocess_would_is_refused():
    with pytest.raises(ValueError, match="is none of tap-chatra"):
        launcher.start([sys.executable, "-c", "pass"])
    env = {**os.environ, "PYTHONHASHSEED": "7" if os.environ.get("PYTHONHASHSEED") != "7" else "8"}
    with pytest.raises(ValueError, match="run this command with subprocess"):
        launcher.start([TAP, "--about"], env=env)
