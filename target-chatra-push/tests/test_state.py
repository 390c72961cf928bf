"""STATE is passed on as soon as every row before it is settled, and never before.

These tests guard `TargetChatraPush._process_state_message`, which changes how SDK 0.54
drains STATE (by default only every five minutes or at the end of input). If an SDK upgrade
stops calling that hook, STATE lines come out only at the end and these tests fail. The
first test also guards `_write_state_message`, which keeps the SDK's end-of-input drain from
writing the last STATE a second time.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

from target_chatra_push.target import TargetChatraPush


class _Stdout(io.StringIO):
    """Records, for each STATE written, how many messages the sandbox had by then."""

    def __init__(self, sandbox) -> None:
        super().__init__()
        self.sandbox = sandbox
        self.written: list[tuple[dict, int]] = []

    def write(self, text: str) -> int:
        if text.strip():
            self.written.append((json.loads(text), len(self.sandbox.sends())))
        return super().write(text)


def _replication_key(state: dict) -> int:
    return state["bookmarks"]["orders"]["replication_key_value"]


def test_each_state_follows_the_rows_before_it_at_once(sandbox, kit):
    lines = kit.resource("orders_with_states.singer").splitlines(keepends=True)
    stdout = _Stdout(sandbox)
    # For each input line: how many STATE lines had been written when the target asked for it.
    states_before_line: list[int] = []

    def feed():
        for line in lines:
            states_before_line.append(len(stdout.written))
            yield line

    target = TargetChatraPush(config=kit.config(sandbox))
    with redirect_stdout(stdout):
        target.listen(feed())

    keys_and_sends = [(_replication_key(state), sends) for state, sends in stdout.written]
    # Each STATE went out after exactly the rows before it were sent ...
    assert keys_and_sends == [(101, 2), (102, 3), (104, 5)]
    # ... and before the next line was read (line 4 follows the first STATE, line 6 the second).
    assert states_before_line[4] == 1
    assert states_before_line[6] == 2


def test_no_state_after_a_row_that_stopped_the_run(sandbox, kit):
    lines = kit.resource("orders_with_states.singer").splitlines(keepends=True)
    # Make the row after the first STATE one that Chatra rejects, and stop on it.
    lines[4] = lines[4].replace("client-cy", "client-nobody")
    run = kit.run(kit.config(sandbox, on_error="fail"), "".join(lines), stops=True)

    assert [_replication_key(state) for state in run.states] == [101]
    # The rows before the rejected one went out, the rejected one is dead-lettered, and
    # nothing after it was tried.
    assert [send["body"]["clientId"] for send in sandbox.sends()] == ["client-ada", "client-bob"]
    assert [letter["key"] for letter in kit.dead_letters()] == ["[102]"]
    assert len([r for r in sandbox.request_log() if r["method"] == "POST"]) == 3


def test_unconfirmed_rows_are_settled_and_state_moves_on(sandbox_with, kit):
    sandbox = sandbox_with(post_reset_after_commit_rate=1.0)
    config = kit.config(sandbox, max_retries=0, max_unconfirmed_in_a_row=0)
    run = kit.run(config, "orders_with_states.singer")

    assert [_replication_key(state) for state in run.states][:3] == [101, 102, 104]
    assert run.count("unconfirmed") == 5


def test_dry_run_passes_no_state_on(sandbox, kit):
    run = kit.run(kit.config(sandbox, dry_run=True), "orders_with_states.singer")

    assert run.stdout == ""
    assert run.count("previewed") == 5


def _resume_after(lines: list[str], state: dict | None) -> str:
    """The input an incremental tap gives after `state`: only rows past its bookmark."""
    if state is None:
        return "".join(lines)
    last = _replication_key(state)

    def past(line: str) -> bool:
        message = json.loads(line)
        if message["type"] == "RECORD":
            return bool(message["record"]["order_id"] > last)
        return message["type"] != "STATE" or _replication_key(message["value"]) > last

    return "".join(line for line in lines if past(line))


def test_rows_deferred_by_the_cap_go_out_with_an_incremental_tap(sandbox, kit, sent_texts):
    lines = kit.resource("orders_with_states.singer").splitlines(keepends=True)
    config = kit.config(sandbox, max_sends_per_run=2)
    state = None
    for _ in range(3):
        run = kit.run(config, _resume_after(lines, state))
        state = run.states[-1] if run.states else state

    # Run 1 sends 100 and 101 and passes STATE 101 on; 102 is deferred, so nothing after it.
    assert len(sent_texts(sandbox)) == 5
    texts = [json.loads(line)["record"]["text"] for line in lines if '"RECORD"' in line]
    assert sorted(sent_texts(sandbox)) == sorted(texts)  # every row, each once
    assert _replication_key(state) == 104


def test_a_rejected_row_holds_state_back_until_it_is_sent(sandbox_with, kit, sent_texts):
    sandbox = sandbox_with(reject_clients={"client-cy": 404})
    lines = kit.resource("orders_with_states.singer").splitlines(keepends=True)
    first = kit.run(kit.config(sandbox), "".join(lines))

    assert [_replication_key(state) for state in first.states] == [101]
    assert first.count("sent") == 4  # the rows after it still go out

    sandbox.configure(reject_clients={})
    second = kit.run(kit.config(sandbox), _resume_after(lines, first.states[-1]))

    assert (second.count("sent"), second.count("duplicate")) == (1, 2)
    assert [_replication_key(state) for state in second.states] == [102, 104]
    assert "Hi Cy, order 102 has shipped." in sent_texts(sandbox)


def test_a_rejected_row_does_not_hold_state_without_retry_failed(sandbox_with, kit):
    sandbox = sandbox_with(reject_clients={"client-cy": 404})
    run = kit.run(kit.config(sandbox, retry_failed=False), "orders_with_states.singer")

    assert [_replication_key(state) for state in run.states] == [101, 102, 104]
