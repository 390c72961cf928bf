"""Requests in flight keep the pace despite latency; progress lines report done/total, rate, ETA."""

from __future__ import annotations

import re
import uuid

import pytest

from tap_chatra.tap import TapChatra

pytestmark = pytest.mark.timing


def test_latency_does_not_slow_the_paced_rate(chatra_sandbox_factory, kit) -> None:
    # 200 ms per request; one at a time would manage 5 a second against a limit of 10.
    server = chatra_sandbox_factory(
        latency_ms=200, requests_per_minute=600, public_key=f"pace-{uuid.uuid4().hex[:12]}"
    )
    ids = server.ids("messages")[:25]
    config = kit.config(
        server, requests_per_minute=600, message_ids=ids, fetch_message_clients=False
    )
    output = kit.run(config)

    assert output.ids("messages") == ids
    times = sorted(entry["t"] for entry in server.request_log())
    assert all(entry["status"] == 200 for entry in server.request_log())  # never over the limit
    rate = (len(times) - 1) / (times[-1] - times[0])
    assert rate >= 0.9 * 10, f"{rate:.2f} requests/s"


def test_progress_lines_report_done_total_rate_and_eta(
    chatra_sandbox_factory, kit, caplog, monkeypatch
) -> None:
    monkeypatch.setattr(TapChatra, "progress_interval", 0.1)
    server = chatra_sandbox_factory(latency_ms=20, requests_per_minute=0)
    config = kit.config(
        server, message_ids=server.ids("messages"), max_concurrency=2, fetch_message_clients=False
    )
    kit.run(config)

    pattern = re.compile(r"^messages: (\d+)/60 IDs done, [\d.]+/s, ETA (\d+s|\d+m \d\ds|unknown)$")
    lines = [m for m in caplog.messages if pattern.match(m)]
    assert len(lines) >= 3, caplog.messages
    done = [int(pattern.match(line).group(1)) for line in lines]
    assert done == sorted(done)
    assert 0 < done[0] < 60
