"""One account's pace shared through PostgreSQL (`rate_limit_store`), across processes.

A strict sliding-window sandbox plays Chatra: several processes on their own database
connections, tap and target mixed, must together stay within its limit (0 x 429) and use at
least 95% of it; a store that cannot be reached stops a run with one line, before any request.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import typing as t
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from chatra_client import ConnectionSettings, RateLimiter, RateLimitStoreError

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from chatra_sandbox import SandboxServer
    from conftest import PostgresDatabase
    from tests.faults.conftest import Plugins

pytestmark = pytest.mark.postgres

# 50 in any 5 s: a window short enough to punish any burst, and 0.1 s between requests,
# enough for a process on a busy machine to come back for its next slot in time.
RPM = 600
WINDOW = 5.0
UNREACHABLE = "postgresql://pacer:Pw-7731@127.0.0.1:1/chatra"

# One process of the account: GETs like the tap or POSTs like the target, each attempt paced
# through the shared store on its own connection. Two threads each, like the tap's workers:
# a process then always has a slot reserved, even if the busy machine holds it up a moment.
WORKER = """
import json, sys, threading
from chatra_client import ChatraClient, ConnectionSettings
config, kind, ids = json.loads(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
with ChatraClient(ConnectionSettings.from_config(config)) as client:
    def work(part):
        for record_id in part:
            if kind == "get":
                client.get("messages", record_id)
            else:
                client.create("pushedMessages", {"clientId": record_id, "text": "hello"})
    threads = [threading.Thread(target=work, args=(ids[n::2],)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
"""


def store_url(database: PostgresDatabase) -> str:
    server = database.server
    return f"postgresql://{server.user}@{server.host}:{server.port}/{database.name}"


@pytest.fixture
def strict_sandbox(chatra_sandbox_factory: Callable[..., SandboxServer]) -> SandboxServer:
    """A sandbox with a strict sliding window and keys of this test's own (its own pace row)."""
    return chatra_sandbox_factory(
        public_key=f"shared-{uuid.uuid4().hex[:12]}",
        requests_per_minute=RPM,
        rate_limit_mode="sliding_window",
        rate_limit_window=WINDOW,
    )


def assert_within_and_using_the_limit(sandbox: SandboxServer, expected: int) -> None:
    log = sandbox.request_log()
    statuses = [entry["status"] for entry in log]
    assert statuses.count(429) == 0, statuses
    assert len(log) == expected
    span = log[-1]["t"] - log[0]["t"]
    utilization = (len(log) - 1) / span * 60 / RPM
    assert 0.95 <= utilization <= 1.0, utilization


@pytest.mark.timing
def test_three_processes_share_one_budget_through_postgresql(
    strict_sandbox: SandboxServer, postgres_database: PostgresDatabase
) -> None:
    config = {
        "api_key_pair": strict_sandbox.key_pair,
        "api_url": strict_sandbox.api_url,
        "requests_per_minute": RPM,
        "rate_limit_store": store_url(postgres_database),
    }
    messages, clients = strict_sandbox.ids("messages"), strict_sandbox.ids("clients")
    jobs = [("get", messages[:20]), ("get", messages[20:40]), ("post", clients)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, json.dumps(config), kind, json.dumps(ids)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for kind, ids in jobs
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
    assert_within_and_using_the_limit(strict_sandbox, 60)
    assert len(strict_sandbox.sends()) == 20


@pytest.mark.timing
def test_a_tap_and_a_target_running_together_share_one_budget_through_postgresql(
    plugins: Plugins, strict_sandbox: SandboxServer, postgres_database: PostgresDatabase
) -> None:
    shared = {"requests_per_minute": RPM, "rate_limit_store": store_url(postgres_database)}
    tap_config = plugins.tap_config(
        strict_sandbox,
        message_ids=strict_sandbox.ids("messages")[:40],
        fetch_message_clients=False,
        **shared,
    )
    rows = plugins.valid_rows(strict_sandbox.ids("clients"), 20)
    target_config = plugins.target_config(strict_sandbox, **shared)
    with ThreadPoolExecutor(2) as pool:
        tap = pool.submit(plugins.tap, tap_config)
        # The target joins once the tap is fetching and, with fewer requests to make, ends
        # first: the tap's workers keep every slot taken, so the rate measures the sharing.
        deadline = time.monotonic() + 60
        while not strict_sandbox.request_log() and time.monotonic() < deadline:
            time.sleep(0.01)
        target = pool.submit(plugins.target, target_config, plugins.row_messages(rows))
        runs = [tap.result(), target.result()]
    for run in runs:
        run.assert_clean_exit()
    assert len(runs[0].records("messages")) == 40
    assert len(strict_sandbox.sends()) == 20
    assert_within_and_using_the_limit(strict_sandbox, 60)


@pytest.mark.timing
def test_limiters_on_their_own_connections_take_turns(
    postgres_database: PostgresDatabase,
) -> None:
    settings = ConnectionSettings.from_config(
        {
            "api_key_pair": f"turns-{uuid.uuid4().hex[:8]}:secret",
            "requests_per_minute": 60,
            "rate_limit_store": store_url(postgres_database),
        }
    )
    waits: list[float] = []
    first = RateLimiter.for_settings(settings, sleep=waits.append)
    second = RateLimiter.for_settings(settings, sleep=waits.append)
    try:
        assert first.acquire() == 0.0
        # The second limiter's slot comes one spacing after the first, on the database clock.
        assert second.acquire() == pytest.approx(first.interval, abs=0.2)
        second.throttled(30)
        assert first.acquire() == pytest.approx(30, abs=0.5)
    finally:
        first.close()
        second.close()


def test_an_unreachable_store_is_one_line_without_the_password() -> None:
    settings = ConnectionSettings.from_config(
        {"api_key_pair": "pub:secret", "rate_limit_store": UNREACHABLE}
    )
    with pytest.raises(RateLimitStoreError) as raised:
        RateLimiter.for_settings(settings)
    message = str(raised.value)
    assert "\n" not in message
    assert "Pw-7731" not in message
    assert "127.0.0.1:1" in message
    assert "unset rate_limit_store" in message


def test_tap_and_target_stop_with_one_line_and_send_nothing_when_the_store_is_down(
    plugins: Plugins, chatra_sandbox: SandboxServer
) -> None:
    settings = {"requests_per_minute": 60, "rate_limit_store": UNREACHABLE}
    ids = chatra_sandbox.ids("messages")[:3]
    tap = plugins.tap(plugins.tap_config(chatra_sandbox, message_ids=ids, **settings))
    tap.assert_clear_failure("rate_limit_store", "cannot be used")
    rows = plugins.valid_rows(chatra_sandbox.ids("clients"), 3)
    target = plugins.target(
        plugins.target_config(chatra_sandbox, **settings), plugins.row_messages(rows)
    )
    target.assert_clear_failure("rate_limit_store", "cannot be used")
    assert chatra_sandbox.request_log() == []
    for run in (tap, target):
        assert "Pw-7731" not in run.stderr + run.stdout
    # The row was never sent, so it is not left unconfirmed: the next run sends it.
    assert set(plugins.ledger().values()) <= {"failed"}
