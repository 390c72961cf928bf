"""target-chatra-push against a misbehaving API: every row sent once, or reported unconfirmed.

The sandbox answers 5xx (some as HTML), bursts of 429 (with, then without Retry-After), drops
connections before handling a POST, commits some POSTs and then drops the connection before
the answer, and delays some answers past the request timeout. Whatever happens, the send log
must never hold the same row twice, and every row the target did not see confirmed must be
reported unconfirmed (and never sent again).
"""

from __future__ import annotations

import time
import typing as t
from collections import Counter

import pytest

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from chatra_sandbox import SandboxServer
    from tests.faults.conftest import Plugins


def faults(*, reset_rate: float, seed: int) -> dict[str, t.Any]:
    """The issue's mix, plus POSTs that are committed but whose answer is lost."""
    return {
        "error_rate": 0.10,
        "html_error_share": 0.5,
        "burst_429": {"every": 15, "count": 1},
        "retry_after": True,
        "reset_rate": reset_rate,
        "post_reset_after_commit_rate": 0.05,
        # A gateway's 502/504 after the POST was stored: retrying it would send twice.
        "post_error_after_commit_rate": 0.05,
        # Longer than request_timeout below: the POST goes out, the answer never arrives.
        "latency_spike_rate": 0.02,
        "latency_spike_ms": 900,
        "fault_seed": seed,
    }


def settled_sends(sandbox: SandboxServer) -> list[dict[str, t.Any]]:
    """The send log once no delayed request can still commit (spikes last under 1 s)."""
    time.sleep(1.0)
    return sandbox.sends()


def check_target_under_faults(plugins: Plugins, sandbox: SandboxServer, rows: int) -> None:
    clients = sandbox.ids("clients")
    # Answers are lost at random here and every row must be accounted for at the end of one
    # run, so the stop after lost answers in a row (tested in target-chatra-push) is off.
    config = plugins.target_config(sandbox, request_timeout=0.6, max_unconfirmed_in_a_row=0)
    first_rows = plugins.valid_rows(clients, rows)

    first = plugins.target(config, plugins.row_messages(first_rows, state_every=10))
    first.assert_clean_exit()
    sends = settled_sends(sandbox)
    sent = Counter(plugins.key_of_send(send) for send in sends)
    assert max(sent.values()) == 1, f"sent twice: {sent.most_common(3)}"
    unconfirmed = plugins.unconfirmed_ids()
    totals = plugins.report()["totals"]
    assert totals["sent"] + totals["unconfirmed"] == rows, totals
    # Every row either went out and was confirmed, or is reported unconfirmed.
    assert set(sent) | unconfirmed == set(range(rows))
    assert totals["sent"] == len(set(sent) - unconfirmed)
    dropped = {plugins.key_of_send(send) for send in sends if send["response_dropped"]}
    assert dropped <= unconfirmed, "a POST whose answer was lost was not reported"
    ledger = plugins.ledger()
    assert {key for key, status in ledger.items() if status == "sent"} == set(sent) - unconfirmed
    seen_faults = Counter(entry["fault"] for entry in sandbox.request_log())
    assert seen_faults["error"], seen_faults
    assert seen_faults["burst_429"], seen_faults

    # Second run: the same rows again plus new ones, now 429s without Retry-After.
    sandbox.configure(retry_after=False)
    posts_before = len(sends)
    new_rows = plugins.valid_rows(clients, 10, start=rows)
    second = plugins.target(config, plugins.row_messages(first_rows + new_rows, state_every=10))
    second.assert_clean_exit()
    sends = settled_sends(sandbox)
    again = [plugins.key_of_send(send) for send in sends[posts_before:]]
    assert set(again) <= {row["id"] for row in new_rows}, "an old row was POSTed again"
    sent = Counter(plugins.key_of_send(send) for send in sends)
    assert max(sent.values()) == 1, f"sent twice: {sent.most_common(3)}"
    report = plugins.report()["totals"]
    assert report["unconfirmed"] == len(unconfirmed) + len(plugins.unconfirmed_ids() - unconfirmed)
    assert set(sent) | plugins.unconfirmed_ids() >= set(range(rows + 10))


def test_target_sends_each_row_once_or_reports_it_under_faults(
    plugins: Plugins, chatra_sandbox_factory: Callable[..., SandboxServer]
) -> None:
    # 3% resets rather than the 1%, so that 50 POSTs surely meet some.
    sandbox = chatra_sandbox_factory(
        seed=3, clients=10, messages=0, pushed_messages=0, requests_per_minute=0,
        **faults(reset_rate=0.03, seed=5),
    )  # fmt: skip
    check_target_under_faults(plugins, sandbox, rows=40)
    kinds = Counter(entry["fault"] for entry in sandbox.request_log())
    assert kinds["reset"] or kinds["post_reset_after_commit"], kinds
    assert kinds["post_error_after_commit"], kinds


def test_a_gateway_error_after_commit_never_sends_twice_over_two_runs(
    plugins: Plugins, chatra_sandbox_factory: Callable[..., SandboxServer]
) -> None:
    # The audit's case: every answer replaced by a 502/504 after the commit, max_retries 3.
    sandbox = chatra_sandbox_factory(
        seed=4, clients=5, messages=0, pushed_messages=0, requests_per_minute=0,
        post_error_after_commit_rate=1.0, html_error_share=0.5, fault_seed=2,
    )  # fmt: skip
    config = plugins.target_config(sandbox, max_retries=3, max_unconfirmed_in_a_row=0)
    rows = plugins.row_messages(plugins.valid_rows(sandbox.ids("clients"), 10), state_every=5)
    for _ in range(2):
        plugins.target(config, rows).assert_clean_exit()
    sent = Counter(plugins.key_of_send(send) for send in sandbox.sends())
    assert sent == Counter(range(10)), "a row stored behind a gateway error was sent again"
    assert plugins.unconfirmed_ids() == set(range(10))
    assert set(plugins.ledger().values()) == {"unknown"}


@pytest.mark.soak
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_target_sends_each_row_once_or_reports_it_under_faults_soak(
    plugins: Plugins, chatra_sandbox_factory: Callable[..., SandboxServer], seed: int
) -> None:
    sandbox = chatra_sandbox_factory(
        seed=seed, clients=50, messages=0, pushed_messages=0, requests_per_minute=0,
        **faults(reset_rate=0.01, seed=seed),
    )  # fmt: skip
    check_target_under_faults(plugins, sandbox, rows=300)
