"""How uvicorn serves the inbox: every connection without Nagle's delay, and a large body
checked off the event loop (issue 23, findings 5 and 6).

These run the app in this process, on the socket and uvicorn settings `chatra-webhooks
serve` uses, so that the test can look at uvicorn's open connections and hold a body's check.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import typing as t

import requests
import uvicorn

from chatra_webhooks import routes
from chatra_webhooks.app import create_app
from chatra_webhooks.events import parse_body
from chatra_webhooks.server import bind, url_of, uvicorn_config
from chatra_webhooks.settings import InboxSettings, TokenSet
from chatra_webhooks.sql_store import SqlEventStore
from chatra_webhooks.testing import INGEST_TOKEN, READ_TOKEN

if t.TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import pytest

    from chatra_webhooks.events import IncomingEvent

STARTUP_TIMEOUT = 10.0


@contextlib.contextmanager
def serving(tmp_path: Path) -> Iterator[tuple[uvicorn.Server, str]]:
    """The inbox on a SQLite store, served by uvicorn on a thread; its server and URL."""
    store = SqlEventStore(f"sqlite:///{tmp_path / 'inbox.sqlite'}")
    settings = InboxSettings(
        ingest_tokens=TokenSet.of([INGEST_TOKEN]), read_token=TokenSet.of([READ_TOKEN])
    )
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn_config(create_app(settings, store)))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        assert server.started, "uvicorn did not start"
        yield server, url_of(sock)
    finally:
        server.should_exit = True
        thread.join(STARTUP_TIMEOUT)
        store.close()


def test_every_accepted_connection_has_tcp_nodelay(tmp_path: Path) -> None:
    """Finding 5: without it, each answer on a keep-alive connection waited ~40 ms for the
    client's delayed ACK (Nagle's algorithm)."""
    with serving(tmp_path) as (server, url), requests.Session() as session:
        for _ in range(3):
            assert session.get(f"{url}/healthz", timeout=10).status_code == 200
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) as raw:
            raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert raw.recv(100).startswith(b"HTTP/1.1 200")
            connections = list(server.server_state.connections)
            options = [
                conn.transport.get_extra_info("socket").getsockopt(
                    socket.IPPROTO_TCP, socket.TCP_NODELAY
                )
                for conn in connections
            ]
    assert len(options) == 2
    assert all(options), options


def test_a_large_body_is_checked_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 6: parsing a large body on the event loop stalled every other request.

    The check of the large body is held until another request has been answered: that
    can only happen if the check does not run on the loop.
    """
    parsing, answered = threading.Event(), threading.Event()

    def held_parse(raw: bytes) -> IncomingEvent:
        if len(raw) > 100_000:
            parsing.set()
            answered.wait(10)
        return parse_body(raw)

    monkeypatch.setattr(routes, "parse_body", held_parse)
    large = json.dumps({"eventName": "chatTranscript", "padding": "x" * 200_000})
    with serving(tmp_path) as (_server, url):
        posted: list[int] = []
        sender = threading.Thread(
            target=lambda: posted.append(
                requests.post(f"{url}/chatra/{INGEST_TOKEN}", data=large, timeout=30).status_code
            )
        )
        sender.start()
        assert parsing.wait(10)
        try:
            health = requests.get(f"{url}/healthz", timeout=5)
        finally:
            answered.set()
        sender.join(30)
    assert health.status_code == 200
    assert posted == [200]
