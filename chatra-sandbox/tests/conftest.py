"""Shared fixtures: an authenticated HTTP client for the sandbox fixture."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
import requests

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from chatra_sandbox import SandboxServer


class Api:
    """A requests session that talks to one sandbox with its keys (Chatra.Simple auth)."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Chatra.Simple {server.key_pair}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return self.session.request(method, self.server.api_url + path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def admin(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return requests.request(method, f"{self.server.url}/_sandbox{path}", **kwargs)


@pytest.fixture
def api(chatra_sandbox: SandboxServer) -> Iterator[Api]:
    client = Api(chatra_sandbox)
    yield client
    client.session.close()


@pytest.fixture
def make_api(chatra_sandbox_factory: Any) -> Iterator[Any]:
    """Start a sandbox with options and return an Api for it."""
    clients: list[Api] = []

    def make(**options: Any) -> Api:
        client = Api(chatra_sandbox_factory(**options))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.session.close()


@pytest.fixture
def agent_message_id(chatra_sandbox: SandboxServer) -> str:
    return next(m["id"] for m in chatra_sandbox.store.messages.values() if m["type"] == "agent")


@pytest.fixture
def client_message_id(chatra_sandbox: SandboxServer) -> str:
    return next(m["id"] for m in chatra_sandbox.store.messages.values() if m["type"] == "client")


@pytest.fixture
def plain_client_id(chatra_sandbox: SandboxServer) -> str:
    return chatra_sandbox.ids("clients")[0]


@pytest.fixture(autouse=True)
def no_server_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail a test whose sandbox made uvicorn log a warning or error (e.g. an app crash)."""
    yield
    problems = [
        r.getMessage()
        for r in caplog.get_records("call")
        if r.name.startswith("uvicorn") and r.levelno >= logging.WARNING
    ]
    assert problems == []


class Receiver:
    """A local HTTP endpoint that records every JSON body POSTed to it (a webhook receiver)."""

    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.attempts = 0
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                receiver.attempts += 1
                if receiver.attempts <= receiver.fail_first:
                    self.send_response(503)
                else:
                    receiver.bodies.append(body)
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/chatra/token"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver_factory() -> Iterator[Callable[..., Receiver]]:
    """Start receivers (`fail_first=N` answers the first N attempts 503); all closed after."""
    started: list[Receiver] = []

    def start(fail_first: int = 0) -> Receiver:
        server = Receiver(fail_first)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture
def receiver(receiver_factory: Callable[..., Receiver]) -> Receiver:
    return receiver_factory()
