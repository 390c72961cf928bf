"""kill -9 mid-run, then resume from the last emitted STATE: nothing lost, little re-fetched."""

from __future__ import annotations

import json
import signal
import subprocess

import pytest

from tap_chatra.id_map import read_ids


def _mid_stream(kit, stream: str, total: int):
    """A test for a STATE line that shows `stream` part-way done."""

    def check(state: dict) -> bool:
        return total // 5 <= kit.progress(state, stream) <= total * 3 // 5

    return check


@pytest.mark.parametrize("stop_in", ["messages", "clients"])
def test_sigkill_then_resume_emits_everything_and_refetches_little(
    chatra_sandbox_factory, kit, stop_in
) -> None:
    server = chatra_sandbox_factory(latency_ms=40, requests_per_minute=0)
    files = server.write_id_files(kit.tmp_path)
    config = kit.config(
        server,
        message_ids_file=str(files["messages"]),
        pushed_message_ids_file=str(files["pushed_messages"]),
        state_flush_seconds=0.05,
        max_concurrency=2,
    )
    all_messages = {m: server.store.messages[m] for m in server.ids("messages")}
    all_pushed = {m: server.store.pushed_messages[m] for m in server.ids("pushed_messages")}
    all_clients = {r["clientId"] for r in [*all_messages.values(), *all_pushed.values()]}
    stop_when = _mid_stream(
        kit, stop_in, len(all_messages) if stop_in == "messages" else len(all_clients)
    )

    first = kit.kill_at_state(config, stop_when)
    resume_from = first.last_state
    asked_first = set(kit.gets(server))
    server.reset_log()

    second = kit.run(config, state=resume_from)

    for stream, expected in [
        ("messages", set(all_messages)),
        ("pushed_messages", set(all_pushed)),
        ("clients", all_clients),
    ]:
        assert set(first.ids(stream)) | set(second.ids(stream)) == expected, stream
        assert len(second.ids(stream)) == len(set(second.ids(stream))), stream
    # Nothing the resumed-from STATE covers (its bookmarks, and its run's cursor) is fetched
    # or emitted again.
    bookmarks = resume_from["bookmarks"]
    resumed = kit.resumed_fetched(config, resume_from)
    covered = set(resumed["messages"])
    asked_second = kit.gets(server)
    assert covered.isdisjoint(asked_second)
    assert covered.isdisjoint(second.ids("messages"))
    if stop_in == "clients":
        started = bookmarks["clients"]["refresh"]["started"]
        done = {
            client_id
            for client_id, fetched_at in resumed["clients"].items()
            if fetched_at >= started
        }
        assert done
        assert done.isdisjoint(asked_second)
    # Re-fetched: only what was in flight or written after that STATE.
    refetched = asked_first & set(asked_second)
    assert len(refetched) <= 12, sorted(refetched)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_save_state_and_exit_non_zero(chatra_sandbox_factory, kit, signum):
    server = chatra_sandbox_factory(latency_ms=50, requests_per_minute=0)
    ids = server.ids("messages")
    config = kit.config(server, message_ids=ids, state_flush_seconds=60, max_concurrency=1)
    process = kit.start(config, stderr=subprocess.PIPE)
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if json.loads(line)["type"] == "RECORD":
            process.send_signal(signum)
            break
    stdout, stderr = process.communicate(timeout=30)
    output = kit.parse("".join(lines) + stdout)

    assert process.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr
    last = kit.last_line(stderr)
    assert f"Stopped by signal {signum} during stream 'messages'" in last
    assert [line for line in stderr.splitlines() if " | ERROR " in line] == [last]
    emitted = output.ids("messages")
    assert 1 <= len(emitted) < len(ids)
    # STATE was written after the last record, and covers exactly what was emitted.
    assert output.messages[-1]["type"] == "STATE"
    assert set(read_ids(output.last_state["bookmarks"]["messages"]["fetched"])) == set(emitted)
