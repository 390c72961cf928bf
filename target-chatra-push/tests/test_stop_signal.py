"""SIGTERM or SIGINT ends a run between two rows, never with exit code 0, and loses nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import typing as t

import pytest
from singer_sdk.plugin_base import PluginBase

from target_chatra_push.target import TargetChatraPush

if t.TYPE_CHECKING:
    from pathlib import Path

ROWS = 6


def _lines(first: int, last: int) -> list[str]:
    """Rows `first`..`last` - 1 of the input, each followed by a STATE naming it."""
    lines = []
    for order in range(first, last):
        record = {"order_id": order, "client_id": "client-ada", "text": f"Order {order} shipped."}
        lines.append(json.dumps({"type": "RECORD", "stream": "orders", "record": record}))
        lines.append(json.dumps({"type": "STATE", "value": {"orders": order}}))
    return lines


SCHEMA = json.dumps(
    {
        "type": "SCHEMA",
        "stream": "orders",
        "key_properties": ["order_id"],
        "schema": {
            "type": "object",
            "properties": {
                "order_id": {"type": "integer"},
                "client_id": {"type": "string"},
                "text": {"type": "string"},
            },
        },
    }
)


def _start(config_file: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "target_chatra_push", "--config", str(config_file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(kit: t.Any, done: t.Callable[[list[str]], bool]) -> None:
    deadline = time.monotonic() + 30
    statuses: list[str] = []
    while time.monotonic() < deadline:
        statuses = kit.statuses()
        if done(statuses):
            return
        time.sleep(0.01)
    raise AssertionError(f"the target never got there: {statuses}")


def _passed_on(stdout: str) -> list[int]:
    return [json.loads(line)["orders"] for line in stdout.splitlines() if line]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_send_settles_that_row_and_exits_non_zero(
    sandbox_with, kit, sent_texts, tmp_path, signum
):
    # Each answer takes 400 ms, so the signal lands while a POST is in flight.
    sandbox = sandbox_with(latency_ms=400)
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(kit.config(sandbox)))
    target = _start(config_file)
    assert target.stdin is not None
    target.stdin.write("\n".join([SCHEMA, *_lines(0, ROWS)]) + "\n")
    target.stdin.flush()  # and left open: the input has not ended
    try:
        _wait_for(kit, lambda s: s.count("sent") >= 2 and "pending" in s)
        target.send_signal(signum)
        stdout, stderr = target.communicate(timeout=30)
    finally:
        target.kill()
    assert target.returncode == 128 + signum
    assert f"Stopped by signal {signum}" in stderr
    assert "Traceback" not in stderr
    # The row in flight was settled before the run ended; nothing is left pending.
    statuses = kit.statuses()
    assert "pending" not in statuses
    sent = statuses.count("sent")
    assert 3 <= sent < ROWS
    # STATE went out for settled rows only (the row settled last may not have had its STATE
    # read yet), so the next run reads the others again.
    passed_on = _passed_on(stdout)
    assert passed_on == list(range(len(passed_on)))
    assert sent - 1 <= len(passed_on) <= sent

    sandbox.configure(latency_ms=0)
    rerun = kit.run(kit.config(sandbox), "\n".join([SCHEMA, *_lines(0, ROWS)]) + "\n")
    assert rerun.count("sent") == ROWS - sent
    assert rerun.count("duplicate") == sent
    assert rerun.count("unconfirmed") == 0
    assert sorted(sent_texts(sandbox)) == sorted(f"Order {n} shipped." for n in range(ROWS))


def test_a_signal_while_waiting_for_input_ends_the_run_at_once(sandbox_with, kit, tmp_path):
    sandbox = sandbox_with()
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(kit.config(sandbox)))
    target = _start(config_file)
    assert target.stdin is not None
    target.stdin.write("\n".join([SCHEMA, *_lines(0, 2)]) + "\n")
    target.stdin.flush()  # and left open: the target waits for more
    try:
        _wait_for(kit, lambda s: s.count("sent") == 2)
        time.sleep(0.5)  # the second STATE follows its row
        target.send_signal(signal.SIGTERM)
        stdout, stderr = target.communicate(timeout=10)
    finally:
        target.kill()
    assert target.returncode == 128 + signal.SIGTERM
    assert "Stopped by signal 15" in stderr
    assert "Traceback" not in stderr
    assert _passed_on(stdout) == [0, 1]
    assert "sent 2" in stderr  # the summary of what was settled


def test_the_sdk_signal_handlers_are_replaced(monkeypatch):
    # ChatraPlugin overrides the SDK's private `_setup_signal_handlers`: the SDK's handler
    # drains and exits 0 wherever SIGTERM lands. Check the SDK still installs its handlers
    # through that hook, from PluginBase.__init__, and that the target installs none there.
    installed: list[int] = []
    monkeypatch.setattr(signal, "signal", lambda signum, handler: installed.append(signum))
    called: list[bool] = []
    original = TargetChatraPush._setup_signal_handlers
    monkeypatch.setattr(
        TargetChatraPush,
        "_setup_signal_handlers",
        lambda self: called.append(True) or original(self),
    )
    target = TargetChatraPush(config={"dry_run": True})
    assert called == [True]
    assert installed == []
    PluginBase._setup_signal_handlers(target)
    assert set(installed) == {signal.SIGINT, signal.SIGTERM}
