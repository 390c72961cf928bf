"""Pacing: evenly spaced slots a little under the limit, no credit for idle time, a slowdown
after a 429 that recovers gradually, shared across threads and processes."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

import pytest

from chatra_client import ChatraClient, ConnectionSettings, RateLimiter, RateLimitStoreError
from chatra_client.pace_store import FilePaceStore, MemoryPaceStore
from chatra_client.ratelimit import MAX_SLOWDOWN, PACE_SHARE
from chatra_sandbox.ratelimit import SlidingWindowLimiter

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from chatra_sandbox import SandboxServer


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def fake_limiter(clock: FakeClock, rpm: float = 60, **kwargs: float) -> RateLimiter:
    return RateLimiter(rpm, store=MemoryPaceStore(clock), sleep=clock.sleep, **kwargs)


# At 60 a minute, slots are this far apart: 97.5% of the limit.
SPACING = 60 / (60 * PACE_SHARE)


def test_slots_are_evenly_spaced_a_little_under_the_limit_without_a_burst() -> None:
    clock = FakeClock()
    limiter = fake_limiter(clock)
    start = clock.now
    times = []
    for _ in range(5):
        limiter.acquire()
        times.append(clock.now - start)
    assert times == pytest.approx([0.0, SPACING, 2 * SPACING, 3 * SPACING, 4 * SPACING])
    assert pytest.approx(1.0256, abs=1e-4) == SPACING


def test_idle_time_earns_no_burst() -> None:
    clock = FakeClock()
    limiter = fake_limiter(clock)
    limiter.acquire()
    clock.now += 120
    assert limiter.acquire() == 0.0
    assert limiter.acquire() == pytest.approx(SPACING)


def test_zero_means_unlimited() -> None:
    clock = FakeClock()
    limiter = fake_limiter(clock, rpm=0)
    for _ in range(100):
        limiter.acquire()
    limiter.throttled(30)
    assert clock.sleeps == []


def test_a_429_holds_for_retry_after_then_halves_the_pace_and_recovers_linearly() -> None:
    clock = FakeClock()
    limiter = fake_limiter(clock, recovery_seconds=60)
    limiter.acquire()
    limiter.throttled(10)
    assert limiter.acquire() == pytest.approx(10.0)
    gaps = []
    for _ in range(3):
        gaps.append(limiter.acquire())
    # Right after the 429 the spacing is doubled, and narrows as the minute passes.
    assert gaps[0] == pytest.approx(2 * SPACING * (1 - 10 / 60) + SPACING * 10 / 60, rel=0.01)
    assert gaps[0] > gaps[1] > gaps[2] > SPACING
    clock.now += 60
    limiter.acquire()
    assert limiter.acquire() == pytest.approx(SPACING)


def test_429s_already_in_flight_slow_down_once_and_later_ones_compound_up_to_a_cap() -> None:
    clock = FakeClock()
    limiter = fake_limiter(clock, recovery_seconds=600)
    limiter.throttled(None)
    limiter.throttled(None)  # a request sent before the first 429 was answered
    limiter.acquire()
    assert limiter.acquire() == pytest.approx(2 * SPACING, rel=0.01)
    for _ in range(6):
        clock.now += 5 * MAX_SLOWDOWN * SPACING
        limiter.throttled(None)
    limiter.acquire()
    assert limiter.acquire() == pytest.approx(MAX_SLOWDOWN * SPACING, rel=0.01)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("rpm", "window"), [(60, 60), (120, 10), (1200, 3)])
def test_a_strict_sliding_window_never_sees_more_than_its_limit(
    seed: int, rpm: float, window: float
) -> None:
    # Requests reach the server late by a varying latency, up to 2% of the window apart:
    # the pacing's headroom absorbs it. Exactly at the limit, this would draw 429s.
    clock = FakeClock()
    limiter = fake_limiter(clock, rpm=rpm)
    server = SlidingWindowLimiter(rpm, window=window, clock=clock)
    jitter = random.Random(seed)
    arrivals = []
    for _ in range(int(rpm * 3)):
        limiter.acquire()
        arrivals.append(clock.now + jitter.uniform(0, 0.02 * window))
    refused = 0
    for arrival in sorted(arrivals):
        clock.now = arrival
        refused += server.check("k") is not None
    assert refused == 0
    used = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) * 60 / rpm
    assert used >= 0.95


def test_threads_share_one_schedule() -> None:
    limiter = RateLimiter(1200)  # one slot every ~51 ms
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(5):
            limiter.acquire()
            with lock:
                stamps.append(time.time())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    started = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stamps.sort()
    assert len(stamps) == 20
    # The i-th request never goes out before its slot; a late wake-up only delays it.
    assert all(stamp >= started + i * limiter.interval - 0.002 for i, stamp in enumerate(stamps))


def settings(public_key: str, rpm: float = 60) -> ConnectionSettings:
    return ConnectionSettings.from_config(
        {"api_key_pair": f"{public_key}:secret", "requests_per_minute": rpm}
    )


def test_limiters_with_the_same_keys_share_one_file(tmp_path: Path) -> None:
    clock = FakeClock()

    def limiter(public_key: str) -> RateLimiter:
        return RateLimiter.for_settings(
            settings(public_key), state_dir=tmp_path, clock=clock, sleep=clock.sleep
        )

    first, second, other = limiter("b"), limiter("b"), limiter("c")
    assert first.acquire() == 0.0
    assert second.acquire() == pytest.approx(SPACING)
    assert other.acquire() == 0.0
    second.throttled(30)
    assert first.acquire() == pytest.approx(30.0)
    assert len(list(tmp_path.iterdir())) == 2
    for each in (first, second, other):
        each.close()


def test_a_damaged_pacing_file_starts_an_empty_schedule(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "pace"
    path.write_bytes(b"\xff" * 24)  # three NaNs
    store = FilePaceStore(path, clock)
    limiter = RateLimiter(60, store=store, sleep=clock.sleep)
    assert limiter.acquire() == 0.0
    assert limiter.acquire() == pytest.approx(SPACING)
    limiter.close()


def test_a_pacing_file_that_cannot_be_opened_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(RateLimitStoreError, match=r"cannot be opened .*rate_limit_store"):
        RateLimiter.for_settings(settings("k"), state_dir=blocker)


def test_pacing_off_needs_no_store(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    assert RateLimiter.for_settings(settings("k", rpm=0), state_dir=blocker).interval == 0


def test_processes_with_the_same_keys_share_the_budget(tmp_path: Path) -> None:
    script = (
        "import sys, time, pathlib\n"
        "from chatra_client import ConnectionSettings, RateLimiter\n"
        "s = ConnectionSettings.from_config({'api_key_pair': 'shared-pub:secret',"
        " 'requests_per_minute': 600})\n"
        "lim = RateLimiter.for_settings(s, state_dir=pathlib.Path(sys.argv[1]))\n"
        "for _ in range(10):\n"
        "    lim.acquire(); print(time.time(), flush=True)\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=30)[0] for proc in procs]
    stamps = sorted(float(line) for out in outputs for line in out.split())
    assert len(stamps) == 20
    # 20 slots ~0.1 s apart need ~1.9 s in all; two unshared limiters would finish in ~0.9 s.
    assert stamps[-1] - stamps[0] >= 19 * 0.1 * 0.95
    assert RateLimiter.for_settings(settings("shared-pub", 600), state_dir=tmp_path).interval == (
        pytest.approx(0.1 / PACE_SHARE)
    )


@pytest.mark.timing
def test_threads_pacing_against_a_sliding_window_sandbox_see_no_429_and_use_the_budget(
    chatra_sandbox_factory: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    # 50 in any 5 s: the 2.5% headroom is 125 ms, more than a loaded machine delays a thread
    # between taking its slot and sending (at a 3 s window, 75 ms, a 429 was seen under load).
    rpm = 600
    server = chatra_sandbox_factory(
        requests_per_minute=rpm, rate_limit_mode="sliding_window", rate_limit_window=5
    )
    config = {"api_key_pair": server.key_pair, "api_url": server.api_url}
    connection = ConnectionSettings.from_config({**config, "requests_per_minute": rpm})
    limiter = RateLimiter.for_settings(connection, state_dir=tmp_path)
    ids = server.ids("messages")[:20]  # 80 requests: 8 s, well past one window

    def fetch_all() -> None:
        with ChatraClient(connection, limiter=limiter) as client:
            for message_id in ids:
                client.get("messages", message_id)

    threads = [threading.Thread(target=fetch_all) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    limiter.close()
    log = server.request_log()
    assert [entry["status"] for entry in log] == [200] * 80
    span = log[-1]["t"] - log[0]["t"]
    assert (len(log) - 1) / span * 60 / rpm >= 0.95
