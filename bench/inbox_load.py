"""Concurrent webhook senders for the inbox: `make bench` and the kill -9 tests use them.

Each sender keeps one HTTP/1.1 connection and POSTs unique bodies one after another, as
fast as they are answered, on asyncio (plain streams, so the senders cost little CPU next
to the server they measure). A sender whose connection fails reconnects to whatever URL
`ingest_url()` returns then, so a test can kill and restart the server on another port.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import typing as t
from dataclasses import dataclass, field
from urllib.parse import urlsplit

if t.TYPE_CHECKING:
    from collections.abc import Callable

REQUEST_TIMEOUT = 10.0
RECONNECT_PAUSE = 0.05


@dataclass
class LoadResult:
    """What the senders saw.

    Attributes:
        accepted: Client IDs of the bodies answered 200 (each is unique to one body).
        attempted: Client IDs of every body sent, answered or not.
        latencies: Seconds from sending to the 200, per accepted body.
        failures: Requests without a 200 (refused, reset, timed out, other status).
        seconds: How long the senders ran.
    """

    accepted: list[str] = field(default_factory=list)
    attempted: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    seconds: float = 0.0

    def percentile(self, share: float) -> float:
        """The latency below which `share` (0 to 1) of the accepted requests were answered."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    @property
    def rate(self) -> float:
        """Accepted events per second."""
        return len(self.accepted) / self.seconds if self.seconds else 0.0


def webhook_body(client_id: str) -> bytes:
    """A `chatFragment` body in Chatra's shape (about 300 bytes), unique by `client_id`."""
    body = {
        "eventName": "chatFragment",
        "client": {"id": client_id, "chatId": f"chat-{client_id}", "info": {"plan": "pro"}},
        "messages": [
            {"type": "client", "message": "Hi! Did you receive my tracking number?"},
            {"type": "agent", "message": "Yes, it went out this morning.", "agentId": "a1"},
        ],
        "agents": [{"id": "a1"}],
    }
    return json.dumps(body).encode()


async def _post(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, path: str, body: bytes
) -> tuple[int, bool]:
    """Send one POST; return the status and whether the server keeps the connection."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
    header_block = await reader.readuntil(b"\r\n\r\n")
    lines = header_block.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
    headers = {name.strip().lower(): value.strip().lower() for name, value in headers.items()}
    await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers.get("connection") != "close"


async def _sender(
    index: int,
    ingest_url: Callable[[], str],
    stop_at: float,
    prefix: str,
    result: LoadResult,
    stop: threading.Event,
) -> None:
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    number = 0
    path = host = ""
    while time.monotonic() < stop_at and not stop.is_set():
        client_id = f"{prefix}{index}-{number}"
        number += 1
        try:
            if connection is None:
                parts = urlsplit(ingest_url())
                host, path = parts.netloc, parts.path
                connection = await asyncio.wait_for(
                    asyncio.open_connection(parts.hostname, parts.port), REQUEST_TIMEOUT
                )
            result.attempted.append(client_id)
            sent = time.perf_counter()
            status, keep = await asyncio.wait_for(
                _post(*connection, host, path, webhook_body(client_id)), REQUEST_TIMEOUT
            )
        except (OSError, EOFError, ValueError, TimeoutError, asyncio.IncompleteReadError):
            result.failures += 1
            if connection is not None:
                connection[1].close()
            connection = None
            await asyncio.sleep(RECONNECT_PAUSE)
            continue
        if status == 200:
            result.latencies.append(time.perf_counter() - sent)
            result.accepted.append(client_id)
        else:
            result.failures += 1
        if not keep:
            connection[1].close()
            connection = None
    if connection is not None:
        connection[1].close()


async def _run(
    ingest_url: Callable[[], str],
    senders: int,
    seconds: float,
    prefix: str,
    result: LoadResult,
    stop: threading.Event,
) -> None:
    started = time.monotonic()
    stop_at = started + seconds
    await asyncio.gather(
        *(_sender(i, ingest_url, stop_at, prefix, result, stop) for i in range(senders))
    )
    result.seconds = time.monotonic() - started


def run_load(
    ingest_url: Callable[[], str],
    *,
    senders: int = 32,
    seconds: float = 20.0,
    prefix: str = "",
    result: LoadResult | None = None,
    stop: threading.Event | None = None,
) -> LoadResult:
    """POST unique bodies from `senders` connections for `seconds` or until `stop` is set.

    Client IDs start with `prefix`. Pass `result` to watch it fill from another thread.
    """
    result = LoadResult() if result is None else result
    asyncio.run(_run(ingest_url, senders, seconds, prefix, result, stop or threading.Event()))
    return result
