"""Pacing: evenly spaced slots, no credit for idle time, shared across threads and processes."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

from chatra_client import ConnectionSettings, RateLimiter

if TYPE_CHECKING:
    from pathlib import Path


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_slots_are_evenly_spaced_without_a_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(60, clock=clock, sleep=clock.sleep)
    start = clock.now
    times = []
    for _ in range(5):
        limiter.acquire()
        times.append(clock.now - start)
    assert times == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_idle_time_earns_no_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(60, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    clock.now += 120
    assert limiter.acquire() == 0.0
    assert limiter.acquire() == 1.0


def test_zero_means_unlimited() -> None:
    clock = FakeClock()
    limiter = RateLimiter(0, clock=clock, sleep=clock.sleep)
    for _ in range(100):
        limiter.acquire()
    assert clock.sleeps == []


def test_hold_pushes_every_callers_next_slot() -> None:
    clock = FakeClock()
    limiter = RateLimiter(60, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    limiter.hold(10)
    assert limiter.acquire() == 10.0


def test_threads_share_one_schedule() -> None:
    limiter = RateLimiter(1200)  # one slot every 50 ms
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
    assert all(stamp >= started + i * 0.05 - 0.002 for i, stamp in enumerate(stamps))


def test_limiters_with_one_bucket_share_the_budget(tmp_path: Path) -> None:
    clock = FakeClock()
    first = RateLimiter(60, bucket="b", state_dir=tmp_path, clock=clock, sleep=clock.sleep)
    second = RateLimiter(60, bucket="b", state_dir=tmp_path, clock=clock, sleep=clock.sleep)
    other = RateLimiter(60, bucket="c", state_dir=tmp_path, clock=clock, sleep=clock.sleep)
    assert first.acquire() == 0.0
    assert second.acquire() == 1.0
    assert other.acquire() == 0.0


def test_processes_with_the_same_keys_share_the_budget(tmp_path: Path) -> None:
    settings = ConnectionSettings.from_config(
        {"api_key_pair": "shared-pub:secret", "requests_per_minute": 600}
    )
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
    # 20 slots 0.1 s apart need ~1.9 s in all; two unshared limiters would finish in ~0.9 s.
    assert stamps[-1] - stamps[0] >= 1.9 * 0.9
    assert RateLimiter.for_settings(settings, state_dir=tmp_path).interval == 0.1
