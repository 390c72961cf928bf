"""Serve an app with uvicorn on a socket bound beforehand, so the real port is known first."""

from __future__ import annotations

import socket
import typing as t

import uvicorn

if t.TYPE_CHECKING:
    from starlette.types import ASGIApp

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
    return socket.create_server((host, port), family=family, backlog=2048)


def url_of(sock: socket.socket) -> str:
    """`http://HOST:PORT` of a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if sock.family == socket.AF_INET6 else f"http://{host}:{port}"


def serve(app: ASGIApp, sock: socket.socket) -> None:
    """Serve until SIGINT or SIGTERM, letting requests in flight finish."""
    config = uvicorn.Config(
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
    uvicorn.Server(config).run(sockets=[sock])
