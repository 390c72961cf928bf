"""`request_timeout` as a deadline for the whole request: connect, headers and body.

`requests` applies a timeout to each socket operation, so a server that sends one byte every
half second holds a request for as long as it likes. Here every request made through a
session from `new_session` gets a deadline: when it passes, the connection's socket is shut
down, which ends a blocked read at once, and the request fails with a ReadTimeout (retried like
any other timeout; a POST becomes an unknown outcome, as when an answer is lost).

One watchdog thread per process keeps every deadline: a timer thread per request cost a thread
start on each call, a tenth of the target's time per row.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import threading
import time
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

    @property
    def settled(self) -> bool:
        return self._settled


class _Watchdog:
    """Expires deadlines from one daemon thread, started on first use (again after a fork)."""

    # Settled deadlines wait in the heap until they reach its top; past this many, and when
    # they outnumber the live ones, the heap is rebuilt without them.
    _PRUNE_AT = 1024

    def __init__(self) -> None:
        self._wake = threading.Condition()
        self._heap: list[tuple[float, int, _Deadline]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def schedule(self, deadline: _Deadline, seconds: float) -> None:
        """Expire `deadline` in `seconds` unless it is settled first."""
        entry = (time.monotonic() + seconds, next(self._order), deadline)
        with self._wake:
            if len(self._heap) >= self._PRUNE_AT:
                live = [item for item in self._heap if not item[2].settled]
                if 2 * len(live) < len(self._heap):
                    heapq.heapify(live)
                    self._heap = live
            heapq.heappush(self._heap, entry)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="chatra-request-deadlines", daemon=True
                )
                self._thread.start()
            elif self._heap[0] is entry:
                self._wake.notify()

    def _run(self) -> None:
        with self._wake:
            while True:
                while self._heap and self._heap[0][2].settled:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wake.wait()
                    continue
                due, _, deadline = self._heap[0]
                remaining = due - time.monotonic()
                if remaining > 0:
                    self._wake.wait(remaining)
                    continue
                heapq.heappop(self._heap)
                deadline.expire()


_watchdog = _Watchdog()


def _new_watchdog_after_fork() -> None:
    # The child has none of the parent's threads, and its copy of the lock may be held.
    global _watchdog  # noqa: PLW0603 - one per process, replaced only in a forked child
    _watchdog = _Watchdog()


os.register_at_fork(after_in_child=_new_watchdog_after_fork)


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
        _active.deadline = deadline
        _watchdog.schedule(deadline, total)
        try:
            response = super().send(request, stream=True, timeout=(total, total), **kwargs)
            _ = response.content  # the body, read while the deadline still holds
        except (requests.RequestException, OSError):
            if not deadline.expired:
                raise
            response = None
        finally:
            deadline.settle()
            _active.deadline = None
        if response is None or deadline.expired:
            msg = f"No complete answer within request_timeout ({total:g}s)."
            raise requests.exceptions.ReadTimeout(msg, request=request)
        return response
