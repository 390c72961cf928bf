"""ChatraClient against the local sandbox, over real HTTP."""

from __future__ import annotations

import http.server
import logging
import threading
import time
import typing as t

import pytest

from chatra_client import (
    AuthenticationError,
    ChatraClient,
    ConfigError,
    ConnectionSettings,
    InvalidIdError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimiter,
    RejectedError,
    RetriesExhaustedError,
    RetryPolicy,
)

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from chatra_sandbox import SandboxServer

SECRET = "Zq9-distinctive-secret-4471"
FAST = RetryPolicy(max_attempts=4, base_wait=0.01, max_wait=0.05)


@pytest.fixture
def sandbox(chatra_sandbox_factory: Callable[..., SandboxServer]) -> SandboxServer:
    return chatra_sandbox_factory(secret_key=SECRET)


def make_client(server: SandboxServer, policy: RetryPolicy = FAST, **config: t.Any) -> ChatraClient:
    settings = ConnectionSettings.from_config(
        {"api_key_pair": f"{server.public_key}:{server.secret_key}", "api_url": server.api_url}
        | config
    )
    return ChatraClient(settings, policy=policy, limiter=RateLimiter(0))


@pytest.mark.parametrize("auth_method", ["chatra_simple", "basic"])
def test_both_auth_forms_fetch_every_resource(sandbox: SandboxServer, auth_method: str) -> None:
    with make_client(sandbox, auth_method=auth_method) as client:
        for stream, resource in [
            ("messages", "messages"),
            ("pushed_messages", "pushedMessages"),
            ("clients", "clients"),
        ]:
            record_id = sandbox.ids(stream)[0]
            assert client.get(resource, record_id)["id"] == record_id
        client.check_credentials()


class _WebsiteHandler(http.server.BaseHTTPRequestHandler):
    """Any web server that is not Chatra: every path is a 200 HTML page."""

    def do_GET(self) -> None:
        page = b"<html><body>Welcome</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, format: str, *args: t.Any) -> None:  # noqa: A002 - the base's name
        """Quiet: the test reads no server log."""


def test_key_check_against_a_server_that_is_not_chatra_fails(sandbox: SandboxServer) -> None:
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), _WebsiteHandler) as website:
        threading.Thread(target=website.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{website.server_address[1]}/api"
        try:
            with (
                make_client(sandbox, api_url=url) as client,
                pytest.raises(ConfigError, match=r"not the Chatra API; check api_url"),
            ):
                client.check_credentials()
        finally:
            website.shutdown()


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    """A forward proxy that answers every request itself and records the URL asked for."""

    asked: t.ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.asked.append(self.path)
        body = b'{"id": "XGDsxHtLppJTJ3vZk"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: t.Any) -> None:  # noqa: A002 - the base's name
        """Quiet: the test reads `asked`."""


def _clear_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_proxy_variables_are_honoured_as_they_were_when_the_client_was_made(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clear_proxy_variables(monkeypatch)
    _ProxyHandler.asked.clear()
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ProxyHandler) as proxy:
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
        try:
            # Nothing listens on port 1: only the proxy can answer.
            with make_client(sandbox, api_url="http://localhost:1/api") as client:
                monkeypatch.delenv("HTTP_PROXY")
                assert client.get("messages", "XGDsxHtLppJTJ3vZk") == {"id": "XGDsxHtLppJTJ3vZk"}
        finally:
            proxy.shutdown()
    assert _ProxyHandler.asked == ["http://localhost:1/api/messages/XGDsxHtLppJTJ3vZk"]


def test_no_proxy_keeps_the_api_host_direct(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clear_proxy_variables(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")  # a proxy that is not there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    message_id = sandbox.ids("messages")[0]
    with make_client(sandbox) as client:
        monkeypatch.delenv("NO_PROXY")
        assert client.get("messages", message_id)["id"] == message_id


def test_wrong_keys_raise_an_actionable_error_without_the_secret(
    sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "Wrong-" + SECRET
    settings = ConnectionSettings.from_config(
        {"api_key_pair": f"{sandbox.public_key}:{wrong}", "api_url": sandbox.api_url}
    )
    with ChatraClient(settings, policy=FAST, limiter=RateLimiter(0)) as client:
        with pytest.raises(AuthenticationError) as raised:
            client.get("messages", sandbox.ids("messages")[0])
        with pytest.raises(AuthenticationError):
            client.check_credentials()
    assert raised.value.status == 401
    assert "Check the Chatra public and secret keys" in str(raised.value)
    assert len([r for r in sandbox.request_log() if r["status"] == 401]) == 2, "never retried"
    for text in [str(raised.value), caplog.text]:
        assert wrong not in text
        assert SECRET not in text


def test_unknown_ids_and_invalid_posts_raise_typed_errors(sandbox: SandboxServer) -> None:
    with make_client(sandbox) as client:
        with pytest.raises(NotFoundError, match="HTTP 404"):
            client.get("messages", "NoSuchMessage1234")
        with pytest.raises(NotFoundError):
            client.create("pushedMessages", {"clientId": "no-such-client", "text": "hi"})
        with pytest.raises(RejectedError) as raised:
            client.create("pushedMessages", {"clientId": sandbox.ids("clients")[0]})
        assert raised.value.status == 400
        assert raised.value.api_message
        with pytest.raises(InvalidIdError):
            client.get("clients", "   ")
    assert sandbox.sends() == []


@pytest.mark.parametrize(
    ("status", "error"), [(403, AuthenticationError), (400, RejectedError), (422, RejectedError)]
)
def test_4xx_answers_are_typed_and_never_retried(
    sandbox: SandboxServer, status: int, error: type[Exception]
) -> None:
    client_id = sandbox.ids("clients")[0]
    sandbox.configure(reject_clients={client_id: status})
    with make_client(sandbox) as client, pytest.raises(error, match=f"HTTP {status}") as raised:
        client.create("pushedMessages", {"clientId": client_id, "text": "hi"})
    assert getattr(raised.value, "status", None) == status
    assert [r["status"] for r in sandbox.request_log()] == [status]
    assert sandbox.sends() == []


@pytest.mark.parametrize(
    "odd_id", ["a/b", "../clients/x", "?x=1", "#", "...", "with space", "user@site", "ünï 客户"]
)
def test_odd_ids_never_reach_another_endpoint(sandbox: SandboxServer, odd_id: str) -> None:
    with make_client(sandbox) as client, pytest.raises(NotFoundError):
        client.get("clients", odd_id)
    (entry,) = sandbox.request_log()
    assert entry["resource"] == "clients"
    assert entry["record_id"] == odd_id


def test_seeded_ids_with_reserved_characters_round_trip(sandbox: SandboxServer) -> None:
    odd = [cid for cid in sandbox.ids("clients") if set(cid) & set(" @/") or not cid.isascii()]
    assert odd, "the sandbox seeds some client IDs with reserved characters"
    with make_client(sandbox) as client:
        for client_id in odd:
            assert client.get("clients", client_id)["id"] == client_id


def test_post_creates_one_message(sandbox: SandboxServer) -> None:
    client_id = sandbox.ids("clients")[0]
    with make_client(sandbox) as client:
        created = client.create(
            "pushedMessages", {"clientId": client_id, "text": "Hello", "receivedFrom": "test"}
        )
        assert client.get("pushedMessages", created["id"])["text"] == "Hello"
    assert [s["id"] for s in sandbox.sends()] == [created["id"]]


def test_server_errors_are_retried_until_success(
    sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="chatra_client")
    message_id = sandbox.ids("messages")[0]
    sandbox.configure(fail_ids={message_id: 2})
    with make_client(sandbox) as client:
        assert client.get("messages", message_id)["id"] == message_id
    assert [r["status"] for r in sandbox.request_log()] == [503, 503, 200]
    assert len([r for r in caplog.records if "Retrying" in r.getMessage()]) == 2


def test_a_5xx_storm_ends_in_retries_exhausted(sandbox: SandboxServer) -> None:
    sandbox.configure(error_rate=1.0, html_error_share=0.5)
    with make_client(sandbox) as client, pytest.raises(RetriesExhaustedError) as raised:
        client.get("messages", sandbox.ids("messages")[0])
    assert len(sandbox.request_log()) == FAST.max_attempts
    assert "Gave up after 4 attempts" in str(raised.value)
    assert "<html" not in str(raised.value).lower()


def test_429_with_retry_after_is_waited_for(sandbox: SandboxServer) -> None:
    sandbox.configure(burst_429={"every": 1, "count": 2}, retry_after=True)
    waits: list[float] = []
    with make_client(sandbox) as client:
        client._sleep = waits.append  # record instead of sleeping
        for message_id in sandbox.ids("messages")[:2]:
            assert client.get("messages", message_id)["id"] == message_id
    assert [r["status"] for r in sandbox.request_log()] == [200, 429, 429, 200]
    assert waits == [1.0, 1.0], "the sandbox's Retry-After, not the 10 ms backoff"


def test_429_without_retry_after_backs_off(sandbox: SandboxServer) -> None:
    sandbox.configure(burst_429={"every": 1, "count": 5}, retry_after=False)
    waits: list[float] = []
    with make_client(sandbox, policy=RetryPolicy(max_attempts=3, base_wait=0.01)) as client:
        client._sleep = waits.append
        client.get("messages", sandbox.ids("messages")[0])
        with pytest.raises(RetriesExhaustedError, match="HTTP 429"):
            client.get("messages", sandbox.ids("messages")[1])
    assert [r["status"] for r in sandbox.request_log()] == [200, 429, 429, 429]
    assert len(waits) == 2
    assert all(0 < w <= 0.02 for w in waits)


def test_post_whose_answer_is_lost_is_not_resent(sandbox: SandboxServer) -> None:
    sandbox.configure(post_reset_after_commit_rate=1.0)
    with make_client(sandbox) as client, pytest.raises(OutcomeUnknownError):
        client.create("pushedMessages", {"clientId": sandbox.ids("clients")[0], "text": "once"})
    assert len(sandbox.sends()) == 1


def test_post_refused_with_429_is_retried_once_accepted(sandbox: SandboxServer) -> None:
    sandbox.configure(burst_429={"every": 1, "count": 1}, retry_after=False)
    with make_client(sandbox, policy=RetryPolicy(max_attempts=20, base_wait=0.001)) as client:
        for n in range(5):
            client.create("pushedMessages", {"clientId": sandbox.ids("clients")[0], "text": str(n)})
    assert sorted(s["body"]["text"] for s in sandbox.sends()) == ["0", "1", "2", "3", "4"]
    assert [r["status"] for r in sandbox.request_log()].count(429) >= 4


def test_post_answered_with_5xx_is_never_retried(sandbox: SandboxServer) -> None:
    # A 5xx may come from a gateway after Chatra stored the message: retrying could send twice.
    sandbox.configure(error_rate=0.5, fault_seed=3)
    unknown = 0
    with make_client(sandbox, policy=RetryPolicy(max_attempts=20, base_wait=0.001)) as client:
        for n in range(8):
            try:
                client.create(
                    "pushedMessages", {"clientId": sandbox.ids("clients")[0], "text": str(n)}
                )
            except OutcomeUnknownError:
                unknown += 1
    assert len(sandbox.request_log()) == 8  # one attempt per POST
    assert 0 < unknown < 8
    assert len(sandbox.sends()) == 8 - unknown


def test_pacing_holds_the_rate_against_the_sandbox(
    chatra_sandbox_factory: Callable[..., SandboxServer],
) -> None:
    server = chatra_sandbox_factory(requests_per_minute=600)
    client = make_client(server, requests_per_minute=600)
    client.limiter = RateLimiter(600)
    ids = server.ids("messages")[:12]
    started = time.monotonic()
    with client:
        for message_id in ids:
            client.get("messages", message_id)
    elapsed = time.monotonic() - started
    assert elapsed >= 11 * 0.1 * 0.95
    assert [r["status"] for r in server.request_log()] == [200] * 12
