"""request_timeout is a deadline for the whole request, and 408 is worth a retry."""

from __future__ import annotations

import http.server
import logging
import threading
import time
import typing as t

import pytest
import requests

from chatra_client import RetriableError, raise_for_response
from chatra_client.client import new_session

if t.TYPE_CHECKING:
    from collections.abc import Iterator

BODY = b'{"id": "XGDsxHtLppJTJ3vZk", "text": "trickled one byte at a time"}'


class _Trickle(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/slow-headers":
            try:
                for byte in b"HTTP/1.1 200 OK\r\n":
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.3)
            except OSError:
                pass  # the client gave up, as it should
            return
        self.send_response(408 if self.path == "/408" else 200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        if self.path in {"/fast", "/408"}:
            self.wfile.write(BODY)
            return
        try:
            for byte in BODY:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.3)
        except OSError:
            return  # the client gave up, as it should

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        """Keep the test output quiet."""


@pytest.fixture
def trickle_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("path", ["/slow-body", "/slow-headers"])
def test_a_trickling_answer_ends_at_the_deadline(trickle_url: str, path: str) -> None:
    # Every byte arrives well within the per-read timeout; only a deadline can stop it.
    with new_session() as session:
        started = time.monotonic()
        with pytest.raises(requests.exceptions.ReadTimeout, match=r"within request_timeout"):
            session.get(trickle_url + path, timeout=1)
        elapsed = time.monotonic() - started
    # The whole body would take 20 s; the generous bound leaves room for a loaded machine.
    assert elapsed < 6, elapsed


def test_a_prompt_answer_is_read_whole_and_the_connection_reused(
    trickle_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="urllib3")
    with new_session() as session:
        for _ in range(3):
            response = session.get(trickle_url + "/fast", timeout=1)
            assert response.content == BODY
    # One connection served all three: the deadline leaves healthy connections alone.
    opened = [m for m in caplog.messages if m.startswith("Starting new HTTP connection")]
    assert len(opened) == 1


def test_408_is_retriable(trickle_url: str) -> None:
    with new_session() as session:
        response = session.get(trickle_url + "/408", timeout=1)
    with pytest.raises(RetriableError, match=r"request timeout \(HTTP 408\)"):
        raise_for_response(response, context="GET /messages/X")
