"""Serve an app with uvicorn on a socket bound beforehand, so the real port is known first."""

from __future__ import annotations

import contextlib
import signal
import socket
import typing as t

import uvicorn

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from starlette.types import ASGIApp

_EXIT_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: Seconds an idle keep-alive connection stays open.
KEEP_ALIVE_SECONDS = 30
#: Seconds requests in flight get to finish after SIGTERM or SIGINT.
GRACEFUL_SHUTDOWN_SECONDS = 10


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on `host`:`port` (0 picks a free port).

    Raises:
        OSError: If the address cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=2048)
    # create_server leaves the protocol number 0, and asyncio disables Nagle's algorithm
    # (TCP_NODELAY) only on connections of a socket that says IPPROTO_TCP. Without it an
    # answer's second write waits for the client's delayed ACK: ~40 ms on every keep-alive
    # request. The same socket, relabelled.
    return socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, fileno=sock.detach())


def url_of(sock: socket.socket) -> str:
    """`http://HOST:PORT` of a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if sock.family == socket.AF_INET6 else f"http://{host}:{port}"


class _Server(uvicorn.Server):
    """uvicorn's server, minus re-raising SIGTERM or SIGINT once it has shut down.

    uvicorn re-raises the signal it caught after its graceful shutdown, which ends the process
    before the caller can close the store; here `serve` returns instead, and the exit is 0.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Ask uvicorn to shut down on SIGINT or SIGTERM while serving."""
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in _EXIT_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def serve(app: ASGIApp, sock: socket.socket) -> None:
    """Serve until SIGINT or SIGTERM, letting requests in flight finish."""
    _Server(uvicorn_config(app)).run(sockets=[sock])


def uvicorn_config(app: ASGIApp) -> uvicorn.Config:
    """How uvicorn serves the inbox."""
    return uvicorn.Config(
        app,
        lifespan="off",
        ws="none",
        log_config=None,
        log_level="warning",
        # The app writes its own access log, which never shows the token in the path.
        access_log=False,
        server_header=False,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
