"""`request_timeout` as a deadline for the whole request: connect, headers and body.

`requests` applies a timeout to each socket operation, so a server that sends one byte every
half second holds a request for as long as it likes. Here every request made through a
session from `new_session` gets a timer: when it fires, the connection's socket is shut down,
which ends a blocked read at once, and the request fails with a ReadTimeout (retried like any
other timeout; a POST becomes an unknown outcome, as when an answer is lost).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import typing as t

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

if t.TYPE_CHECKING:
    from urllib3.response import BaseHTTPResponse

_active = threading.local()


class _Deadline:
    """The deadline of the request in flight on one thread, and the socket to cut at it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._settled = False
        self.expired = False

    def watch(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._sock = sock
            if self.expired:
                _cut(sock)

    def expire(self) -> None:
        with self._lock:
            if not self._settled:
                self.expired = True
                _cut(self._sock)

    def settle(self) -> None:
        with self._lock:
            self._settled = True


def _cut(sock: socket.socket | None) -> None:
    # socket.socket.shutdown, not SSLSocket.shutdown: the TLS state belongs to the reader.
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed: nothing left to interrupt
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _WatchedConnection(HTTPConnection):
    """Hands its socket to the deadline of the request on this thread, if there is one."""

    def getresponse(self) -> BaseHTTPResponse:  # type: ignore[override]
        deadline: _Deadline | None = getattr(_active, "deadline", None)
        if deadline is not None:
            deadline.watch(self.sock)
        return super().getresponse()


class _WatchedHTTPSConnection(_WatchedConnection, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def total_seconds(timeout: object) -> float | None:
    """The whole-request deadline for a `requests` timeout: a number, or (connect, read)."""
    if isinstance(timeout, int | float) and not isinstance(timeout, bool):
        return float(timeout)
    if isinstance(timeout, tuple) and all(isinstance(part, int | float) for part in timeout):
        return float(sum(timeout))
    return None


class DeadlineAdapter(HTTPAdapter):
    """An HTTPAdapter whose timeout bounds the whole request, body included."""

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: t.Any
    ) -> None:
        """Set up the pools with connections that report their socket to the deadline."""
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPPool,
            "https": _WatchedHTTPSPool,
        }

    def send(  # type: ignore[override]
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: t.Any = None,
        **kwargs: t.Any,
    ) -> requests.Response:
        """Send, and read the whole body before `timeout` seconds have passed.

        Raises:
            requests.exceptions.ReadTimeout: When the deadline passed first.
        """
        total = total_seconds(timeout)
        if total is None or stream:
            return super().send(request, stream=stream, timeout=timeout, **kwargs)
        deadline = _Deadline()
        timer = threading.Timer(total, deadline.expire)
        timer.daemon = True
        _active.deadline = deadline
        timer.start()
        try:
            response = super().send(request, stream=True, timeout=(total, total), **kwargs)
            _ = response.content  # the body, read while the deadline still holds
        except (requests.RequestException, OSError):
            if not deadline.expired:
                raise
            response = None
        finally:
            deadline.settle()
            timer.cancel()
            _active.deadline = None
        if response is None or deadline.expired:
            msg = f"No complete answer within request_timeout ({total:g}s)."
            raise requests.exceptions.ReadTimeout(msg, request=request)
        return response
