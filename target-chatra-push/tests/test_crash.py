"""A target killed mid-send, then run again on the same input, sends no message twice."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import time
from pathlib import Path

ORDERS = Path(__file__).parent / "resources" / "orders.singer"


def test_sigkill_mid_send_then_rerun_sends_nothing_twice(sandbox_with, kit, tmp_path):
    # Each answer takes 400 ms, so the kill lands while a POST is in flight.
    sandbox = sandbox_with(latency_ms=400)
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(kit.config(sandbox)))
    with ORDERS.open(encoding="utf-8") as stdin:
        target = subprocess.Popen(
            [sys.executable, "-m", "target_chatra_push", "--config", str(config_file)],
            stdin=stdin,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            statuses = kit.statuses()
            if statuses.count("sent") >= 2 and "pending" in statuses:
                break
            time.sleep(0.01)
        else:
            raise AssertionError(f"the target never got to its third send: {statuses}")
    finally:
        target.kill()
        target.wait(timeout=10)
    assert target.returncode == -9

    sandbox.configure(latency_ms=0)
    rerun = kit.run(kit.config(sandbox), "orders.singer")
    time.sleep(0.5)  # let the killed run's last request finish on the server, if it will

    in_flight = [key for key, e in kit.ledger().items() if e.status == "pending"]
    assert len(in_flight) == 1
    assert rerun.count("unconfirmed") == 1
    assert kit.report()["streams"]["orders"]["unconfirmed_keys"] == in_flight
    assert rerun.count("duplicate") + rerun.count("sent") == 4
    texts = collections.Counter(send["body"]["text"] for send in sandbox.sends())
    assert max(texts.values()) == 1  # no message created twice
    assert len(texts) in (4, 5)  # the in-flight one may or may not have been created
    # Five keys, each POSTed at most once: the killed run's two or three, the rerun's two.
    assert len([r for r in sandbox.request_log() if r["method"] == "POST"]) <= 5
