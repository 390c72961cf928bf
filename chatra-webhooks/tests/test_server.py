"""The inbox over real HTTP, as Chatra and tap-chatra see it, on SQLite and on PostgreSQL.

One `chatra-webhooks serve` process per engine serves the whole module; each test sends
bodies of its own (a fresh marker), so the tests do not depend on one another's events.
"""

from __future__ import annotations

import json
import socket
import time
import typing as t
import uuid
from urllib.parse import urlencode, urlsplit

import pytest
import requests
import sqlalchemy as sa

from chatra_webhooks.settings import normalize_store_url

if t.TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from subprocess import CompletedProcess

    from chatra_webhooks.testing import InboxProcess

    RunCli = Callable[..., CompletedProcess[str]]

TIMEOUT = 10
# As the `inbox` fixture starts the server.
BODY_TIMEOUT = 1.5
MAX_BODY = 64 * 1024


def event(marker: str, name: str = "chatFragment", **extra: t.Any) -> dict[str, t.Any]:
    """A webhook body in Chatra's shape, unique by `marker`."""
    return {
        "eventName": name,
        "client": {"id": f"client-{marker}", "chatId": f"chat-{marker}", "info": {}},
        "messages": [{"type": "client", "message": f"Hello {marker}"}],
        "agents": [],
        **extra,
    }


def stored_with(inbox: InboxProcess, marker: str) -> list[dict[str, t.Any]]:
    return [e for e in inbox.all_events() if e["client_id"] == f"client-{marker}"]


def wait_for_log(inbox: InboxProcess, text: str) -> bool:
    deadline = time.monotonic() + TIMEOUT
    while text not in inbox.log():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_event_is_stored_and_read_back_with_its_fields(inbox: InboxProcess) -> None:
    marker = uuid.uuid4().hex
    body = event(marker, "chatStarted")
    answer = inbox.post(json.dumps(body, indent=2), headers={"Content-Type": "application/json"})

    assert answer.status_code == 200
    assert answer.json() == {"seq": answer.json()["seq"], "duplicate": False}
    (stored,) = stored_with(inbox, marker)
    assert stored["seq"] == answer.json()["seq"]
    assert stored["event_name"] == "chatStarted"
    assert stored["chat_id"] == f"chat-{marker}"
    assert stored["body"] == body
    assert stored["received_at"].endswith("Z")


def test_rotated_tokens_are_both_accepted(inbox: InboxProcess) -> None:
    markers = [uuid.uuid4().hex, uuid.uuid4().hex]
    assert inbox.post(json.dumps(event(markers[0])), inbox.ingest_token).status_code == 200
    assert inbox.post(json.dumps(event(markers[1])), inbox.rotated_token).status_code == 200
    assert all(len(stored_with(inbox, marker)) == 1 for marker in markers)
    # The log tells which token came (its position, never the token), to follow a rotation.
    assert wait_for_log(inbox, " token=2")


@pytest.mark.parametrize("method", ["POST", "GET", "PUT"])
def test_a_wrong_token_answers_like_an_unknown_path(inbox: InboxProcess, method: str) -> None:
    marker = uuid.uuid4().hex
    before = inbox.metric('chatra_webhooks_rejected_total{reason="unknown_token"}')
    unknown = requests.request(method, f"{inbox.url}/no/such/path", timeout=TIMEOUT)
    tokens = ("x" * 40, inbox.ingest_token[:-1], inbox.ingest_token + "x", inbox.read_token)
    for token in tokens:
        answer = requests.request(
            method, inbox.ingest_url(token), data=json.dumps(event(marker)), timeout=TIMEOUT
        )
        assert (answer.status_code, answer.text) == (404, unknown.text) == (404, "Not Found")
        assert answer.headers.get("content-type") == unknown.headers.get("content-type")
    assert stored_with(inbox, marker) == []
    assert inbox.metric('chatra_webhooks_rejected_total{reason="unknown_token"}') == before + 4


def test_the_same_body_twice_is_stored_once(inbox: InboxProcess) -> None:
    marker = uuid.uuid4().hex
    body = json.dumps(event(marker))
    before = inbox.metric("chatra_webhooks_duplicates_total")
    first, second = inbox.post(body), inbox.post(body, inbox.rotated_token)

    assert first.status_code == second.status_code == 200
    assert second.json() == {"seq": first.json()["seq"], "duplicate": True}
    assert len(stored_with(inbox, marker)) == 1
    assert inbox.metric("chatra_webhooks_duplicates_total") == before + 1
    # A body that differs in a byte is another delivery: stored too.
    assert inbox.post(body + " ").json()["duplicate"] is False


def test_a_form_field_holding_json_is_accepted(inbox: InboxProcess) -> None:
    marker = uuid.uuid4().hex
    body = event(marker, "chatTranscript")
    answer = inbox.post(
        urlencode({"data": json.dumps(body)}),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200, answer.text
    (stored,) = stored_with(inbox, marker)
    assert stored["body"] == body


def deeply_nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json at all", "not_json"),
        (b"", "not_json"),
        (b'[{"eventName": "chatStarted"}]', "not_object"),
        (b'"a string"', "not_object"),
        (b'{"eventName": NaN}', "not_json"),
        (deeply_nested(100), "too_deep"),
        (deeply_nested(10_000), "too_deep"),
        (b'{"eventName": "chatStarted", "x": "\xff\xfe"}', "not_utf8"),
        (b"a=1&b=2", "not_json"),
    ],
    ids=["text", "empty", "array", "string", "nan", "nested", "very-nested", "utf8", "form2"],
)
def test_bad_bodies_are_refused_with_400_and_store_nothing(
    inbox: InboxProcess, body: bytes, reason: str
) -> None:
    before = inbox.all_events()
    rejected = inbox.metric(f'chatra_webhooks_rejected_total{{reason="{reason}"}}')

    answer = inbox.post(body)

    assert answer.status_code == 400
    assert "error" in answer.json()
    assert inbox.all_events() == before
    assert inbox.metric(f'chatra_webhooks_rejected_total{{reason="{reason}"}}') == rejected + 1


def test_oversized_bodies_get_413_declared_or_streamed(inbox: InboxProcess) -> None:
    marker = uuid.uuid4().hex
    big = json.dumps(event(marker, padding="x" * MAX_BODY))
    assert inbox.post(big).status_code == 413
    # Chunked, without a Content-Length: counted as it arrives.
    chunks = (big[i : i + 4096].encode() for i in range(0, len(big), 4096))
    assert inbox.post(chunks).status_code == 413
    # Just under the limit is fine.
    fits = json.dumps(event(marker, padding="x" * (MAX_BODY - 400)))
    assert len(fits) <= MAX_BODY
    assert inbox.post(fits).status_code == 200
    assert len(stored_with(inbox, marker)) == 1


def _raw_request(inbox: InboxProcess, head: str, body: bytes = b"") -> socket.socket:
    parts = urlsplit(inbox.url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT)
    sock.sendall(head.encode() + body)
    return sock


def test_a_client_that_never_finishes_its_body_is_cut_off(inbox: InboxProcess) -> None:
    marker = uuid.uuid4().hex
    path = urlsplit(inbox.ingest_url()).path
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
    stalled = [_raw_request(inbox, head, b'{"eventName": "chat') for _ in range(5)]
    started = time.monotonic()
    try:
        # While they stall, the inbox answers everyone else at once.
        assert inbox.post(json.dumps(event(marker))).status_code == 200
        assert requests.get(f"{inbox.url}/healthz", timeout=TIMEOUT).status_code == 200
        assert time.monotonic() - started < BODY_TIMEOUT
        for sock in stalled:
            answer = sock.recv(4096).decode()
            assert answer.startswith("HTTP/1.1 408"), answer
            assert "connection: close" in answer.lower()
    finally:
        for sock in stalled:
            sock.close()
    assert time.monotonic() - started < BODY_TIMEOUT + 5
    assert len(stored_with(inbox, marker)) == 1


def test_read_api_pages_in_seq_order_without_gaps(inbox: InboxProcess) -> None:
    seqs = [inbox.post(json.dumps(event(uuid.uuid4().hex))).json()["seq"] for _ in range(7)]
    start = seqs[0] - 1

    pages, after = [], start
    for _ in range(10):
        page = inbox.read_events(after, 3, headers=inbox.auth).json()
        if not page["events"]:
            assert page["next_after"] == after
            break
        pages.append([e["seq"] for e in page["events"]])
        assert page["next_after"] == pages[-1][-1]
        after = page["next_after"]
    got = [seq for page in pages for seq in page]

    assert all(len(page) <= 3 for page in pages)
    assert got == sorted(got)
    assert seqs == [seq for seq in got if seq in seqs]
    assert inbox.read_events(seqs[-1], headers=inbox.auth).json()["events"] == [
        e for e in inbox.all_events() if e["seq"] > seqs[-1]
    ]


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer {ingest}", "Bearer {read}x", "{read}", "Basic {read}", "Bearer  "],
    ids=["none", "ingest-token", "wrong", "no-scheme", "basic", "empty"],
)
def test_read_api_needs_the_read_token(inbox: InboxProcess, authorization: str) -> None:
    value = authorization.format(ingest=inbox.ingest_token, read=inbox.read_token)
    answer = inbox.read_events(headers={"Authorization": value} if value else {})
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert "events" not in answer.json()


@pytest.mark.parametrize(
    "query",
    [
        "after=-1", "after=x", "limit=0", "limit=1001", "limit=1.5", "after=1e3", "after=%C2%B2",
        "reader=tap", "ack=3", "reader=&ack=1", "reader=a%20b&ack=1", "reader=tap&ack=-1",
        f"reader={'r' * 65}&ack=1",
    ],
)  # fmt: skip
def test_read_api_refuses_bad_paging(inbox: InboxProcess, query: str) -> None:
    answer = requests.get(f"{inbox.url}/events?{query}", headers=inbox.auth, timeout=TIMEOUT)
    assert answer.status_code == 400
    named = {part.split("=", maxsplit=1)[0] for part in query.split("&")}
    assert any(name in answer.json()["error"] for name in named)


def test_a_reader_that_names_itself_acknowledges_its_position(
    store_url: str, webhook_inbox_factory: Callable[..., InboxProcess], run_cli: RunCli
) -> None:
    inbox = webhook_inbox_factory(store_url)
    for _ in range(3):
        inbox.post(json.dumps(event(uuid.uuid4().hex)))
    query = {"after": 2, "limit": 1, "reader": "nightly-export", "ack": 2}
    page = requests.get(f"{inbox.url}/events", params=query, headers=inbox.auth, timeout=TIMEOUT)

    assert [e["seq"] for e in page.json()["events"]] == [3]
    listed = run_cli("readers", "--store", store_url)
    assert listed.stdout.split()[:5] == ["nightly-export", "up", "to", "seq", "2,"]
    assert "reader=nightly-export" in inbox.log()


def test_health_and_metrics(inbox: InboxProcess) -> None:
    stored = inbox.metric('chatra_webhooks_events_stored_total{event_name="chatFragment"}')
    assert inbox.post(json.dumps(event(uuid.uuid4().hex))).status_code == 200
    assert requests.get(f"{inbox.url}/healthz", timeout=TIMEOUT).json() == {"status": "ok"}
    assert (
        inbox.metric('chatra_webhooks_events_stored_total{event_name="chatFragment"}') == stored + 1
    )
    assert inbox.metric('chatra_webhooks_request_duration_seconds_count{route="ingest"}') > 0


def test_metrics_need_the_read_token(inbox: InboxProcess) -> None:
    """Finding 7: /metrics answered anyone (they show traffic and rejections)."""
    assert requests.get(f"{inbox.url}/metrics", timeout=TIMEOUT).status_code == 401
    wrong = {"Authorization": f"Bearer {inbox.ingest_token}"}
    assert requests.get(f"{inbox.url}/metrics", headers=wrong, timeout=TIMEOUT).status_code == 401
    page = requests.get(f"{inbox.url}/metrics", headers=inbox.auth, timeout=TIMEOUT)
    assert page.status_code == 200
    assert "chatra_webhooks_events_stored_total" in page.text


def test_public_metrics_answer_without_a_token(
    webhook_inbox_factory: Callable[..., InboxProcess], tmp_path: Path
) -> None:
    public = webhook_inbox_factory(f"sqlite:///{tmp_path}/a.sqlite", "--public-metrics")
    from_env = webhook_inbox_factory(
        f"sqlite:///{tmp_path}/b.sqlite", CHATRA_WEBHOOKS_PUBLIC_METRICS="true"
    )
    for inbox in (public, from_env):
        page = requests.get(f"{inbox.url}/metrics", timeout=TIMEOUT)
        assert page.status_code == 200
        assert "chatra_webhooks_events_stored_total" in page.text
        # The events stay behind the token.
        assert inbox.read_events().status_code == 401


def test_log_has_one_line_per_request_without_bodies_or_tokens(inbox: InboxProcess) -> None:
    marker = uuid.uuid4().hex
    inbox.post(json.dumps(event(marker)))
    inbox.post(b"garbage " + marker.encode())
    inbox.post(json.dumps(event(uuid.uuid4().hex, name=f"Hello\n{marker} 200 OK")))
    requests.post(f"{inbox.url}/chatra-typo/{inbox.ingest_token}", data=marker, timeout=TIMEOUT)
    inbox.read_events(headers=inbox.auth)

    log = inbox.log()
    for secret in (marker, inbox.ingest_token, inbox.rotated_token, inbox.read_token, "Hello"):
        assert secret not in log
    ingest_lines = [line for line in log.splitlines() if "POST /chatra/<token> 200" in line]
    assert any("event=chatFragment" in line and "bytes=" in line for line in ingest_lines)
    assert any(line.endswith(" token=1") for line in ingest_lines)
    assert any("event=<unusual>" in line for line in ingest_lines)
    assert "POST <other path> 404" in log
    assert "Traceback" not in log


def test_a_failing_store_answers_503_stores_nothing_and_logs_no_body(
    store_url: str, webhook_inbox_factory: Callable[..., InboxProcess]
) -> None:
    inbox = webhook_inbox_factory(store_url)
    engine = sa.create_engine(normalize_store_url(store_url))
    marker = uuid.uuid4().hex
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE chatra_webhooks_events RENAME TO moved_away")
        failed = inbox.post(json.dumps(event(marker)))
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE moved_away RENAME TO chatra_webhooks_events")
    finally:
        engine.dispose()

    assert failed.status_code == 503
    assert "send it again" in failed.json()["error"]
    assert stored_with(inbox, marker) == []
    # The same delivery, retried once the store is back, is stored.
    assert inbox.post(json.dumps(event(marker))).status_code == 200
    assert len(stored_with(inbox, marker)) == 1
    log = inbox.log()
    assert "the store did not commit the event" in log
    assert marker not in log
    assert "Traceback" not in log
