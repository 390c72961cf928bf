"""Shared fixtures: an authenticated HTTP client for the sandbox fixture."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pytest
import requests

if TYPE_CHECKING:
    from collections.abc import Iterator

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
