"""SIGKILL at random moments, then resume: nothing lost, little fetched again, nothing sent twice.

The tap is killed after a random number of records (plus a random few milliseconds) and
resumed from the last STATE it wrote. The target is killed after a random number of sends
and resumed the way Meltano would: from the last STATE it passed on, with the same ledger;
then once more with the whole input, as if that STATE had been lost too.
"""

from __future__ import annotations

import random
import time
import typing as t
from collections import Counter

import pytest

from tap_chatra.id_map import read_ids

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from chatra_sandbox import SandboxServer
    from tests.faults.conftest import Plugins, Run

CONCURRENCY = 4
# Fetches the tap may have started but not emitted when killed: `ahead` (2 x concurrency)
# queued or running, plus the one being waited for.
IN_FLIGHT = 2 * CONCURRENCY + 1
MESSAGE_STREAMS = {"messages": "messages", "pushed_messages": "pushedMessages"}


def fetched_in_state(state: dict[str, t.Any] | None, stream: str) -> set[str]:
    """IDs a STATE records as fetched for a message stream."""
    bookmark = (state or {}).get("bookmarks", {}).get(stream, {})
    return set(read_ids(bookmark.get("fetched")))


def check_tap_kill_and_resume(
    plugins: Plugins, sandbox: SandboxServer, seed: int
) -> tuple[Run, Run]:
    rng = random.Random(seed)
    ids = {stream: sandbox.ids(stream) for stream in ("messages", "pushed_messages", "clients")}
    config = plugins.tap_config(
        sandbox,
        message_ids_file=str(plugins.write_lines("messages.txt", ids["messages"])),
        pushed_message_ids_file=str(plugins.write_lines("pushed.txt", ids["pushed_messages"])),
        client_ids_file=str(plugins.write_lines("clients.txt", ids["clients"])),
        state_flush_seconds=0.2,
        state_bytes_per_hour=0,  # every 0.2 s, not spaced out by size
        max_concurrency=CONCURRENCY,
    )
    total = sum(len(v) for v in ids.values())
    # Late enough for a few STATEs to have been written (one every ~13 records here).
    kill_at = rng.randint(total // 3, total - 10)
    first = plugins.tap(
        config, kill_when=plugins.after_records(kill_at), kill_delay=rng.uniform(0, 0.03)
    )
    assert first.killed, f"the tap finished before the kill after {kill_at} records"
    state = first.last_state
    assert state is not None, "killed before the first STATE; nothing to resume from"
    requests_before = len(sandbox.request_log())

    second = plugins.tap(config, state=state)
    second.assert_clean_exit()
    second_log = sandbox.request_log()[requests_before:]

    for stream, expected in ids.items():
        emitted = set(first.record_ids(stream)) | set(second.record_ids(stream))
        assert emitted == set(expected), f"{stream}: records lost after the kill"
    for stream, resource in MESSAGE_STREAMS.items():
        covered = fetched_in_state(state, stream)
        refetched = {e["record_id"] for e in second_log if e["resource"] == resource}
        assert not refetched & covered, f"{stream}: IDs in the last STATE were fetched again"
        after_state = first.records_after_last_state(stream)
        again = refetched & set(first.record_ids(stream))
        assert len(again) <= len(after_state), f"{stream}: re-emitted beyond the last STATE"
        started = {e["record_id"] for e in sandbox.request_log()[:requests_before]
                   if e["resource"] == resource}  # fmt: skip
        assert len(refetched & started) <= len(after_state) + IN_FLIGHT
        duplicates = Counter(first.record_ids(stream) + second.record_ids(stream))
        assert sum(n - 1 for n in duplicates.values()) <= len(after_state)
    return first, second


def tap_sandbox(factory: Callable[..., SandboxServer], seed: int, scale: int) -> SandboxServer:
    # Latency, so that a run lasts a few seconds and kills land between STATEs.
    return factory(
        seed=seed,
        clients=15 * scale,
        messages=80 * scale,
        pushed_messages=20 * scale,
        requests_per_minute=0,
        latency_ms=60,
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_tap_sigkill_then_resume_from_last_state(
    plugins: Plugins, chatra_sandbox_factory: Callable[..., SandboxServer], seed: int
) -> None:
    check_tap_kill_and_resume(plugins, tap_sandbox(chatra_sandbox_factory, seed, 1), seed)


@pytest.mark.soak
@pytest.mark.parametrize("seed", range(10, 30))
def test_tap_sigkill_then_resume_from_last_state_soak(
    plugins: Plugins, chatra_sandbox_factory: Callable[..., SandboxServer], seed: int
) -> None:
    check_tap_kill_and_resume(plugins, tap_sandbox(chatra_sandbox_factory, seed, 5), seed)


def sends_reach(sandbox: SandboxServer, count: int) -> Callable[[Run], bool]:
    """A kill trigger: once the sandbox has committed `count` POSTs."""
    return lambda run: len(sandbox.sends()) >= count


def check_target_kill_and_resume(
    plugins: Plugins, sandbox: SandboxServer, seed: int, rows: int
) -> None:
    rng = random.Random(seed)
    config = plugins.target_config(sandbox)
    all_rows = plugins.valid_rows(sandbox.ids("clients"), rows)
    kill_at = rng.randint(6, rows - 10)
    first = plugins.target(
        config,
        plugins.row_messages(all_rows, state_every=5),
        kill_when=sends_reach(sandbox, kill_at),
        kill_delay=rng.uniform(0, 0.02),
    )
    assert first.killed, f"the target finished before the kill after {kill_at} sends"
    # Let a POST that was on the wire at the kill be committed before reading the log.
    time.sleep(0.1)
    sent_first = {plugins.key_of_send(send) for send in sandbox.sends()}
    state = first.last_state
    assert state is not None, "killed before the first STATE was passed on"
    last = state["last"]
    assert set(range(last + 1)) <= sent_first, "STATE passed on before its rows were sent"

    # Resume as Meltano does: the tap starts again after the STATE the target passed on.
    rest = [row for row in all_rows if row["id"] > last]
    second = plugins.target(config, plugins.row_messages(rest, state_every=5))
    second.assert_clean_exit()
    unconfirmed = plugins.unconfirmed_ids()
    assert len(unconfirmed) <= 1, "more rows unconfirmed than were in flight at the kill"
    assert unconfirmed <= set(range(last + 1, rows))

    # And once more with everything, as if Meltano had lost the STATE as well.
    posts_before = len(sandbox.sends())
    third = plugins.target(config, plugins.row_messages(all_rows, state_every=5))
    third.assert_clean_exit()
    assert len(sandbox.sends()) == posts_before, "a full re-run sent something again"

    sent = Counter(plugins.key_of_send(send) for send in sandbox.sends())
    assert max(sent.values()) == 1, f"POSTed twice: {sent.most_common(3)}"
    assert set(sent) | unconfirmed == set(range(rows)), "rows lost after the kill"
    assert plugins.unconfirmed_ids() == unconfirmed


def target_sandbox(factory: Callable[..., SandboxServer], seed: int) -> SandboxServer:
    return factory(
        seed=seed, clients=10, messages=0, pushed_messages=0, requests_per_minute=0,
        latency_ms=10,
    )  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_target_sigkill_then_resume_sends_nothing_twice(
    plugins: Plugins, chatra_sandbox_factory: Callable[..., SandboxServer], seed: int
) -> None:
    check_target_kill_and_resume(plugins, target_sandbox(chatra_sandbox_factory, seed), seed, 60)


@pytest.mark.soak
@pytest.mark.parametrize("seed", range(10, 30))
def test_target_sigkill_then_resume_sends_nothing_twice_soak(
    plugins: Plugins, chatra_sandbox_factory: Callable[..., SandboxServer], seed: int
) -> None:
    check_target_kill_and_resume(plugins, target_sandbox(chatra_sandbox_factory, seed), seed, 400)
