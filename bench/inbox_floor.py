"""The floor of the inbox benchmark: a minimal receiver on the standard library's HTTP server.

    python -m bench.inbox_floor --store sqlite:///PATH   # prints "listening on http://..."

It does what the inbox must do for an event and nothing more: read the body, check it with
the inbox's own `parse_body`, commit it to the same store (`SqlEventStore`: group commit,
fsync) and answer 200. No token, no metrics, no access log, no body timeout. One thread per
connection (`ThreadingHTTPServer`), keep-alive, Nagle's algorithm off. What the inbox
costs beyond it is what Starlette, uvicorn and the inbox's own features cost.
"""

from __future__ import annotations

import argparse
import signal
import sys
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from chatra_webhooks.events import BodyError, parse_body
from chatra_webhooks.settings import normalize_store_url
from chatra_webhooks.sql_store import SqlEventStore

if t.TYPE_CHECKING:
    from collections.abc import Sequence


class FloorHandler(BaseHTTPRequestHandler):
    """POST to any path: the body is checked and stored (other methods: 501)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    store: t.ClassVar[SqlEventStore]

    def do_POST(self) -> None:
        """Store the body, answer once it is committed."""
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            event = parse_body(raw)
        except BodyError:
            self._answer(400, b'{"error":"not a webhook body"}')
            return
        appended = self.store.append(event)
        duplicate = b"true" if appended.duplicate else b"false"
        self._answer(200, b'{"seq":%d,"duplicate":%s}' % (appended.seq, duplicate))

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: t.Any) -> None:  # noqa: A002 - http.server's name
        """No access log: the floor does only what storing needs."""


def _stop(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve on a free port of 127.0.0.1 until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="sqlite:///PATH or postgresql://...")
    args = parser.parse_args(argv)
    FloorHandler.store = SqlEventStore(normalize_store_url(args.store))
    server = ThreadingHTTPServer(("127.0.0.1", 0), FloorHandler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, _stop)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        FloorHandler.store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
