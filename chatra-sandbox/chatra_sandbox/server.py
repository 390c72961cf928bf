"""``SandboxServer``: the sandbox app served by uvicorn on a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import threading
import time
from typing import TYPE_CHECKING, Any

import uvicorn
from typing_extensions import override

from chatra_sandbox.app import create_app
from chatra_sandbox.auth import DEFAULT_PUBLIC_KEY, DEFAULT_SECRET_KEY, KeyCheck
from chatra_sandbox.config import SandboxConfig
from chatra_sandbox.connection import SandboxH11Protocol
from chatra_sandbox.data import SandboxStore
from chatra_sandbox.history import TrafficShape
from chatra_sandbox.state import SandboxState
from chatra_sandbox.webhooks import (
    Delivery,
    WebhookSender,
    raise_api_message,
    simulate_chats,
    simulate_history,
)

if TYPE_CHECKING:
    from pathlib import Path
    from types import TracebackType
    from typing import Self

    from chatra_sandbox.conversations import Conversation

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 10.0
_GRACE_PERIOD = 2.0


class _QuickServer(uvicorn.Server):
    """uvicorn's server, made to stop within milliseconds instead of a few tenths of a second.

    Test suites start and stop a sandbox per test, so uvicorn's 0.1 s polling in its main loop
    and shutdown would add up. Everything else is uvicorn's own behaviour.
    """

    _wake: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    @override
    async def main_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864_000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)

    @override
    async def shutdown(self, sockets: list[Any] | None = None) -> None:
        # uvicorn's own shutdown, minus its fixed 0.1 s sleeps and the lifespan shutdown
        # (lifespan is off): close listeners, close idle connections, let answers finish.
        await self._settle_accepted_connections()
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        deadline = time.monotonic() + _GRACE_PERIOD
        state = self.server_state
        while (state.connections or state.tasks) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        for task in list(state.tasks):
            task.cancel()
        for server in self.servers:
            await server.wait_closed()

    async def _settle_accepted_connections(self) -> None:
        """Stop accepting, and let connections already accepted reach uvicorn.

        A connection accepted just before a server closes would otherwise get a transport that
        the closed server refuses to track and that nobody closes; Python 3.13.0 then crashes
        in `Server._wakeup` when that transport is garbage collected. After the listeners stop,
        the first pass of the loop creates the pending transports (while the server still
        tracks them) and the second runs their `connection_made`, so the connection shutdown
        below closes them too.
        """
        loop = asyncio.get_running_loop()
        for server in self.servers:
            for sock in server.sockets:
                loop.remove_reader(sock.fileno())
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    def request_exit(self) -> None:
        """Ask the server to stop; callable from any thread."""
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(wake.set)


def _serve(server: uvicorn.Server) -> None:
    # uvicorn exits (SystemExit) when it cannot bind, after logging why; start() notices the
    # ended thread and raises, so the exit must not escape as an unhandled thread exception.
    with contextlib.suppress(SystemExit):
        server.run()


class SandboxServer:
    """A local Chatra API on ``127.0.0.1``, with seeded data, a rate limit and faults.

    Args:
        seed: Seed of the generated data.
        clients: Number of seeded clients.
        messages: Number of seeded messages.
        pushed_messages: Number of seeded pushed messages.
        public_key: The account's public key.
        secret_key: The account's secret key.
        port: Port to listen on; 0 picks a free one.
        log_file: Optional file to append every API request to, as JSON lines.
        webhook_url: Where to POST webhooks (simulated chats, and a ``chatFragment`` for each
            message sent through the API); None sends none.
        webhook_pause: Seconds between two webhooks, to spread a simulation out in time.
        **options: Runtime options (see ``SandboxConfig``): ``requests_per_minute`` (0 =
            unlimited), ``latency_ms``, ``error_rate``, ``reset_rate``, ``burst_429``,
            ``retry_after``, ``fail_ids``, ``fault_seed`` and the other fault settings.
    """

    def __init__(
        self,
        *,
        seed: int = 42,
        clients: int = 20,
        messages: int = 60,
        pushed_messages: int = 15,
        public_key: str = DEFAULT_PUBLIC_KEY,
        secret_key: str = DEFAULT_SECRET_KEY,
        port: int = 0,
        log_file: str | Path | None = None,
        webhook_url: str | None = None,
        webhook_pause: float = 0.0,
        **options: Any,
    ) -> None:
        config = SandboxConfig().updated(**options)
        self.store = SandboxStore(
            seed=seed, clients=clients, messages=messages, pushed_messages=pushed_messages
        )
        self._webhooks = WebhookSender(webhook_url, pause=webhook_pause) if webhook_url else None
        self._simulated = 0
        self._conversations: list[Conversation] = []
        on_message_created = (
            functools.partial(raise_api_message, self.store, self._webhooks)
            if self._webhooks
            else None
        )
        self._state = SandboxState(
            self.store, KeyCheck(public_key, secret_key), config, log_file, on_message_created
        )
        self.public_key = public_key
        self.secret_key = secret_key
        self._requested_port = port
        self._port: int | None = None
        self._server: _QuickServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def key_pair(self) -> str:
        """The keys as one ``PUBLIC:SECRET`` string."""
        return f"{self.public_key}:{self.secret_key}"

    @property
    def port(self) -> int:
        """The bound port.

        Raises:
            RuntimeError: If the server is not running.
        """
        if self._port is None:
            msg = "The sandbox server is not running; call start() first."
            raise RuntimeError(msg)
        return self._port

    @property
    def url(self) -> str:
        """The server's base URL, ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """The API base URL, ``http://127.0.0.1:PORT/api``."""
        return f"{self.url}/api"

    def start(self) -> Self:
        """Start serving on a background thread and wait until the port is bound.

        Returns:
            The server itself.

        Raises:
            RuntimeError: If it was started before, or could not start.
        """
        if self._thread is not None:
            msg = "A SandboxServer can be started only once."
            raise RuntimeError(msg)
        config = uvicorn.Config(
            create_app(self._state),
            host="127.0.0.1",
            port=self._requested_port,
            http=SandboxH11Protocol,
            ws="none",
            lifespan="off",
            log_level="warning",
            log_config=None,
            access_log=False,
        )
        server = _QuickServer(config)
        thread = threading.Thread(target=_serve, args=(server,), name="chatra-sandbox", daemon=True)
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                msg = (
                    f"The sandbox server could not start on port {self._requested_port}"
                    " (see the uvicorn.error log)."
                )
                raise RuntimeError(msg)
            time.sleep(0.001)
        self._port = int(server.servers[0].sockets[0].getsockname()[1])
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread to end; safe to call more than once."""
        server, thread = self._server, self._thread
        if server is not None and thread is not None and thread.is_alive():
            server.request_exit()
            thread.join(_STOP_TIMEOUT)
            if thread.is_alive():
                server.force_exit = True
                thread.join(_STOP_TIMEOUT)
        self._port = None
        self._state.log.close()
        if self._webhooks is not None:
            self._webhooks.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def configure(self, **options: Any) -> dict[str, Any]:
        """Change the rate limit or faults while running (see ``SandboxConfig``).

        Returns:
            The full new configuration.

        Raises:
            TypeError: For an unknown option.
            ValueError: For an invalid value.
        """
        return self._state.configure(**options).to_json()

    def config(self) -> dict[str, Any]:
        """Return the current runtime configuration."""
        return self._state.config.to_json()

    def request_log(self) -> list[dict[str, Any]]:
        """Return every API request so far: method, path (raw), record_id, resource, status, ...

        Entries also hold ``t`` (epoch seconds), ``auth_ok`` and ``fault`` (None, or the kind
        of injected fault); a dropped connection has status None.
        """
        return self._state.log.requests()

    def sends(self) -> list[dict[str, Any]]:
        """Return every committed POST: resource, id, body, t and response_dropped."""
        return self._state.log.sends()

    def reset_log(self) -> None:
        """Forget the request and send logs."""
        self._state.log.reset()

    def ids(self, stream: str) -> list[str]:
        """Return the current IDs of ``messages``, ``pushed_messages`` or ``clients``."""
        return self.store.ids(stream)

    def write_id_files(self, directory: str | Path) -> dict[str, Path]:
        """Write ``messages.txt``, ``pushed_messages.txt`` and ``clients.txt`` to ``directory``."""
        return self.store.write_id_files(directory)

    def simulate_chats(self, count: int) -> list[Conversation]:
        """Run ``count`` more simulated chats, storing them and sending their webhooks.

        Returns:
            The new conversations, once every one of their webhooks was delivered or given up.

        Raises:
            RuntimeError: If the sandbox was made without a ``webhook_url``.
        """
        if self._webhooks is None:
            msg = "Simulated chats need a webhook_url to send their events to."
            raise RuntimeError(msg)
        conversations = simulate_chats(
            self.store, self._webhooks, count, first_index=self._simulated
        )
        self._simulated += count
        self._conversations.extend(conversations)
        return conversations

    def simulate_history(
        self, days: int, chats_per_day: int, *, end: dt.datetime | None = None, **shape: float
    ) -> list[Conversation]:
        """Play out ``days`` days of realistic chats ending at ``end`` (default: now).

        Agents, response delays drawn from a log-normal distribution, unanswered chats and
        returning clients (see ``chatra_sandbox.history``); every message carries
        ``createdAt``. ``shape`` sets the other fields of ``TrafficShape``.

        Returns:
            The conversations, oldest first, once every one of their webhooks was delivered
            or given up.

        Raises:
            RuntimeError: If the sandbox was made without a ``webhook_url``.
            ValueError: For fewer than one day or one chat a day.
        """
        if self._webhooks is None:
            msg = "A simulated history needs a webhook_url to send its events to."
            raise RuntimeError(msg)
        end = end or dt.datetime.now(dt.UTC)
        end_ms = int(end.timestamp() * 1000)
        traffic = TrafficShape(days=days, chats_per_day=chats_per_day, end_ms=end_ms, **shape)
        conversations = simulate_history(self.store, self._webhooks, traffic)
        self._conversations.extend(conversations)
        return conversations

    def conversations(self) -> list[Conversation]:
        """Every chat simulated so far (``simulate_chats`` and ``simulate_history``), in order.

        This is the sandbox's own chat log: each conversation's client, its messages as stored
        (with their ``createdAt``) and how its webhooks spelled them.
        """
        return list(self._conversations)

    def webhook_deliveries(self) -> list[Delivery]:
        """Every webhook delivered or given up so far (event name, status, attempts)."""
        return self._webhooks.deliveries() if self._webhooks is not None else []

    def wait_for_webhooks(self) -> None:
        """Block until every webhook raised so far was delivered or given up."""
        if self._webhooks is not None:
            self._webhooks.wait()
