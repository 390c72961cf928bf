"""What the API and the user can get wrong: 404, 401, 429, 5xx, HTML bodies, odd IDs, bad config."""

from __future__ import annotations

import http.server
import itertools
import json
import logging
import threading
from collections import Counter, defaultdict

import pytest

from tap_chatra.errors import SystemicFailureError
from tap_chatra.id_map import read_ids


def _records_in(stdout: str, stream: str) -> list[str]:
    return [
        message["record"]["id"]
        for message in map(json.loads, stdout.splitlines())
        if message["type"] == "RECORD" and message["stream"] == stream
    ]


def _last_state(stdout: str) -> dict:
    states = [m["value"] for m in map(json.loads, stdout.splitlines()) if m["type"] == "STATE"]
    return states[-1]


def test_404_is_one_warning_recorded_and_counted_and_the_run_goes_on(
    chatra_sandbox, kit, caplog
) -> None:
    ids = chatra_sandbox.ids("messages")
    config = kit.config(chatra_sandbox, message_ids=[ids[0], "NoSuchMessage0042", ids[1]])
    output = kit.run(config)

    assert output.ids("messages") == [ids[0], ids[1]]
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "NoSuchMessage0042" in r.getMessage()
    ]
    assert warnings == [
        "messages: ID 'NoSuchMessage0042' not found (HTTP 404); recorded as missing."
    ]
    assert "messages: done: 2 records emitted, 1 not found." in caplog.messages
    assert "NoSuchMessage0042" in read_ids(output.last_state["bookmarks"]["messages"]["missing"])


def test_401_stops_at_once_with_one_line_and_no_traceback(chatra_sandbox, kit) -> None:
    config = kit.config(
        chatra_sandbox,
        api_key_pair=f"{chatra_sandbox.public_key}:not-the-secret",
        message_ids=chatra_sandbox.ids("messages"),
    )
    result = kit.cli(config=config)

    assert result.returncode == 1
    last = kit.last_line(result.stderr)
    assert "HTTP 401" in last
    assert "Check the Chatra public and secret keys" in last
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if " | ERROR " in line]
    assert errors == [last], errors
    assert _records_in(result.stdout, "messages") == []
    requested = kit.gets(chatra_sandbox)
    # No retries, and no fan-out before the first answer: wrong keys cost one request.
    assert len(requested) == 1


def _gaps_after_refusals(server, status: int) -> list[float]:
    """Seconds between each refused request and the next request for the same ID."""
    by_id: dict[str, list[dict]] = defaultdict(list)
    for entry in server.request_log():
        by_id[entry["record_id"]].append(entry)
    gaps = []
    for entries in by_id.values():
        for refused, retry in itertools.pairwise(entries):
            if refused["status"] == status:
                gaps.append(retry["t"] - refused["t"])
    return gaps


def test_429_with_retry_after_waits_as_told(chatra_sandbox_factory, kit) -> None:
    server = chatra_sandbox_factory(burst_429={"every": 3, "count": 1}, retry_after=True)
    ids = server.ids("messages")[:8]
    output = kit.run(kit.config(server, message_ids=ids, fetch_message_clients=False))

    assert output.ids("messages") == ids
    gaps = _gaps_after_refusals(server, 429)
    assert len(gaps) >= 2
    assert min(gaps) >= 0.95  # Retry-After: 1


def test_429_without_retry_after_backs_off(chatra_sandbox_factory, kit, caplog) -> None:
    server = chatra_sandbox_factory(burst_429={"every": 3, "count": 1}, retry_after=False)
    ids = server.ids("messages")[:8]
    output = kit.run(kit.config(server, message_ids=ids, fetch_message_clients=False))

    assert output.ids("messages") == ids
    gaps = _gaps_after_refusals(server, 429)
    assert len(gaps) >= 2
    assert min(gaps) >= 0.45  # first backoff: 1 s with jitter down to half
    assert any("rate limited (HTTP 429)" in m and "Retrying" in m for m in caplog.messages)


def test_5xx_storm_loses_and_duplicates_nothing(chatra_sandbox_factory, kit) -> None:
    server = chatra_sandbox_factory(error_rate=0.35, fault_seed=3)
    ids = server.ids("messages")[:16]
    config = kit.config(server, message_ids=ids, max_retries=8, fetch_message_clients=False)
    output = kit.run(config)

    assert output.ids("messages") == ids  # each once, in order
    statuses = Counter(entry["status"] for entry in server.request_log())
    assert sum(statuses[s] for s in (500, 502, 503)) >= 3


def test_html_error_bodies_are_retried_and_never_logged(chatra_sandbox_factory, kit, caplog):
    server = chatra_sandbox_factory(error_rate=0.35, html_error_share=1.0, fault_seed=2)
    ids = server.ids("messages")[:16]
    config = kit.config(server, message_ids=ids, fetch_message_clients=False, max_retries=8)
    output = kit.run(config)

    assert output.ids("messages") == ids
    assert any(entry["status"] >= 500 for entry in server.request_log())
    assert "<html" not in caplog.text
    assert "nginx" not in caplog.text


def test_an_id_that_keeps_failing_is_set_aside_and_the_run_goes_on(
    chatra_sandbox_factory, kit
) -> None:
    server = chatra_sandbox_factory(requests_per_minute=0)
    ids = server.ids("messages")[:10]
    bad = ids[2]
    server.configure(fail_ids={bad: 4})  # two runs of two attempts each
    config = kit.config(server, message_ids=ids, max_retries=1, max_concurrency=2)
    first = kit.cli(config=config)

    assert first.returncode == 0, kit.last_line(first.stderr)
    assert "Traceback" not in first.stderr
    assert _records_in(first.stdout, "messages") == [i for i in ids if i != bad]
    bookmark = _last_state(first.stdout)["bookmarks"]["messages"]
    assert sorted(read_ids(bookmark["fetched"])) == sorted(i for i in ids if i != bad)
    when, failures = read_ids(bookmark["failing"])[bad]
    assert failures == "1:HTTP 503"
    assert "messages: set aside 1 failing ID, retried on later runs" in first.stderr
    assert f"'{bad}' (HTTP 503)" in first.stderr
    assert "1 set aside" in first.stderr
    # Clients of the other messages were synced too.
    assert _records_in(first.stdout, "clients")

    # The next run soon after leaves it alone; once due, it is tried and counted again.
    server.reset_log()
    second = kit.cli(config=config, state=_last_state(first.stdout))
    assert second.returncode == 0
    assert kit.gets(server, "messages") == []
    assert "1 set aside as failing and not yet due for a retry" in second.stderr

    # Times moved back in the earlier layout, which is read too.
    state = _last_state(first.stdout)
    state["bookmarks"]["messages"]["failing"] = {bad: f"{when - 601}:1:HTTP 503"}
    third = kit.cli(config=config, state=state)
    assert third.returncode == 0
    assert kit.gets(server, "messages") == [bad, bad]
    failing = _last_state(third.stdout)["bookmarks"]["messages"]["failing"]
    assert read_ids(failing)[bad][1] == "2:HTTP 503"

    # Twice failed: not due after 11 minutes, due after 21; then it answers and is emitted.
    state = _last_state(third.stdout)
    when = read_ids(failing)[bad][0]
    state["bookmarks"]["messages"]["failing"] = {bad: f"{when - 660}:2:HTTP 503"}
    server.reset_log()
    assert kit.cli(config=config, state=state).returncode == 0
    assert kit.gets(server, "messages") == []
    state["bookmarks"]["messages"]["failing"] = {bad: f"{when - 1260}:2:HTTP 503"}
    fourth = kit.cli(config=config, state=state)
    assert fourth.returncode == 0
    assert _records_in(fourth.stdout, "messages") == [bad]
    final = _last_state(fourth.stdout)["bookmarks"]["messages"]
    assert bad in read_ids(final["fetched"])
    assert bad not in read_ids(final["failing"])


def test_most_ids_failing_stops_the_run_as_systemic_after_saving_state(chatra_sandbox, kit) -> None:
    ids = chatra_sandbox.ids("messages")[:12]
    chatra_sandbox.configure(fail_ids=dict.fromkeys(ids[1:], 10))
    config = kit.config(chatra_sandbox, message_ids=ids, max_retries=0, max_concurrency=1)
    output = kit.run(config, expect_error=True)

    assert isinstance(output.error, SystemicFailureError)
    message = str(output.error)
    assert message.startswith("Stream 'messages': 5 of the last 6 IDs answered failed, so the")
    assert "First failure: Gave up after 1 attempts" in message
    assert "server error (HTTP 503)" in message
    assert output.ids("messages") == ids[:1]
    bookmark = output.last_state["bookmarks"]["messages"]
    assert read_ids(bookmark["fetched"]).keys() == {ids[0]}
    # Not the IDs' fault: none is held back from the next run.
    assert read_ids(bookmark.get("failing")) == {}
    # It stopped there: only the fetches already queued (two ahead) went out after.
    requested = kit.gets(chatra_sandbox, "messages")
    assert set(ids[:6]) <= set(requested)
    assert len(requested) <= 8


def test_a_single_id_failing_alone_is_a_systemic_failure_at_the_end(chatra_sandbox, kit) -> None:
    ids = chatra_sandbox.ids("messages")[:1]
    chatra_sandbox.configure(fail_ids={ids[0]: 10})
    config = kit.config(chatra_sandbox, message_ids=ids, max_retries=0)
    output = kit.run(config, expect_error=True)
    assert isinstance(output.error, SystemicFailureError)
    # Not held against the ID: nothing of it is left in the state the next run starts from.
    state = output.state_after({})
    assert read_ids(state.get("bookmarks", {}).get("messages", {}).get("failing")) == {}
    chatra_sandbox.configure(fail_ids={})
    again = kit.run(config, state=state)
    assert again.ids("messages") == ids


def test_odd_client_ids_are_fetched_exactly(chatra_sandbox, kit) -> None:
    special = chatra_sandbox.store.special_client_ids()
    output = kit.run(kit.config(chatra_sandbox, client_ids=special))

    assert output.ids("clients") == special
    log = [e for e in chatra_sandbox.request_log() if e["resource"] == "clients"]
    assert sorted(e["record_id"] for e in log) == sorted(special)
    for entry in log:
        escaped_id = entry["path"].removeprefix("/api/clients/")
        assert not set(escaped_id) & set("/?#")


TRAVERSALS = [
    "../messages/XGDsxHtLppJTJ3vZk",
    "%2e%2e",
    "a/../../b",
    "?admin=1",
    "#fragment",
    "/etc/passwd",
    "..%2F..%2Fmessages",
    "...",
]


def test_traversal_attempts_stay_one_client_id_each(chatra_sandbox, kit, caplog) -> None:
    output = kit.run(kit.config(chatra_sandbox, client_ids=[*TRAVERSALS, "..", "."]))

    assert output.records("clients") == []
    log = chatra_sandbox.request_log()
    assert {entry["resource"] for entry in log} == {"clients"}
    assert sorted(entry["record_id"] for entry in log) == sorted(TRAVERSALS)
    assert all(entry["status"] == 404 for entry in log)
    missing = output.last_state["bookmarks"]["clients"]["missing"]
    assert sorted(read_ids(missing)) == sorted(TRAVERSALS)
    # A bare dot segment cannot be sent safely at all: reported where it was configured.
    assert (
        "config client_ids, item 9: Invalid record ID '..': a dot segment cannot name a record; "
        "skipped."
    ) in caplog.messages


@pytest.mark.parametrize(
    ("key_pair", "expected"),
    [
        ("no-colon-at-all", "api_key_pair is malformed: expected PUBLIC_KEY:SECRET_KEY"),
        ("public-only:", "api_key_pair is malformed: the public or the secret half is empty."),
    ],
)
def test_malformed_key_pair_stops_before_any_request(chatra_sandbox, kit, key_pair, expected):
    config = kit.config(chatra_sandbox, api_key_pair=key_pair, message_ids=["A"])
    result = kit.cli(config=config)

    assert result.returncode == 1
    assert expected in kit.last_line(result.stderr)
    assert "Traceback" not in result.stderr
    assert chatra_sandbox.request_log() == []


def test_unreadable_id_file_stops_before_any_request(chatra_sandbox, kit) -> None:
    missing = kit.tmp_path / "missing-ids.txt"
    config = kit.config(
        chatra_sandbox,
        message_ids=chatra_sandbox.ids("messages")[:2],
        client_ids_file=str(missing),
    )
    result = kit.cli(config=config)

    assert result.returncode == 1
    last = kit.last_line(result.stderr)
    assert last.endswith(f"client_ids_file: cannot read {missing}: No such file or directory.")
    assert "Traceback" not in result.stderr
    # No "unhandled error while syncing" line before it: the file's line is the only error.
    assert [line for line in result.stderr.splitlines() if " | ERROR " in line] == [last]
    assert chatra_sandbox.request_log() == []


class _ProxyPage(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html><body>Please log in to the Wi-Fi</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        """Keep the test output quiet."""


def test_html_page_with_200_stops_the_run_with_one_line(kit) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ProxyPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        config = {
            "api_key_pair": "pub:secret",
            "api_url": f"http://127.0.0.1:{server.server_address[1]}/api",
            "requests_per_minute": 0,
            "message_ids": ["AAA", "BBB"],
        }
        result = kit.cli(config=config)
    finally:
        server.shutdown()
        server.server_close()

    assert result.returncode == 1
    last = kit.last_line(result.stderr)
    assert "Stream 'messages': 2 of 2 IDs answered failed" in last
    assert last.endswith(
        "messages: GET /api/messages/AAA answered HTTP 200 without a JSON object (the body is "
        "not JSON); is api_url right?"
    )
    assert "Wi-Fi" not in result.stderr
    assert _records_in(result.stdout, "messages") == []
