"""Dropping a connection without any HTTP answer, for the "connection reset" faults.

ASGI offers no way to do this: when an app raises before answering, uvicorn sends a 500. So
the sandbox runs uvicorn's h11 protocol with one addition, the connection's transport placed
in each request's scope, and aborts that transport with a TCP reset.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import TYPE_CHECKING, Any

from starlette.responses import Response
from typing_extensions import override
from uvicorn.protocols.http.h11_impl import H11Protocol

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

EXTENSION = "chatra_sandbox.connection"


class SandboxH11Protocol(H11Protocol):
    """uvicorn's h11 protocol that exposes the transport under ``scope["extensions"]``."""

    @override
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the connection and wrap the app so every request can reach the transport."""
        super().connection_made(transport)
        app = self.app

        async def with_transport(scope: Any, receive: Any, send: Any) -> None:
            scope["extensions"] = {
                **scope.get("extensions", {}),
                EXTENSION: {"transport": transport},
            }
            await app(scope, receive, send)

        self.app = with_transport


async def abort_connection(scope: Scope) -> None:
    """Close the request's connection at once with a TCP reset, answering nothing.

    Raises:
        RuntimeError: If the server does not run ``SandboxH11Protocol``.
    """
    transport = scope.get("extensions", {}).get(EXTENSION, {}).get("transport")
    if not isinstance(transport, asyncio.Transport):
        msg = "Dropping connections needs the sandbox's own HTTP protocol (SandboxH11Protocol)."
        raise RuntimeError(msg)
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Linger 0 makes close send RST, which clients report as "connection reset by peer".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    # Let the protocol see the lost connection before the app returns, so uvicorn does not
    # try to answer the request with a 500 of its own.
    await asyncio.sleep(0)


class DropConnection(Response):
    """A "response" that drops the connection instead of sending anything."""

    def __init__(self) -> None:
        super().__init__(status_code=500)

    @override
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Abort the connection."""
        await abort_connection(scope)
