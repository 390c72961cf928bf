"""pytest fixtures for a running sandbox (auto-loaded through the ``pytest11`` entry point).

The server module (and Playwright) is imported only when a fixture is used, so loading the
plugin costs nothing in test runs that never start a sandbox or a browser.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from playwright.sync_api import Browser

    from chatra_sandbox.server import SandboxServer

#: Data sizes of the ``chatra_sandbox`` fixture.
SMALL_DATA = {"seed": 42, "clients": 20, "messages": 60, "pushed_messages": 15}


@pytest.fixture
def chatra_sandbox_factory() -> Iterator[Callable[..., SandboxServer]]:
    """Return a function ``**options -> started SandboxServer``; all are stopped at teardown."""
    from chatra_sandbox.server import SandboxServer  # noqa: PLC0415 - see module docstring

    servers: list[SandboxServer] = []

    def start(**options: Any) -> SandboxServer:
        server = SandboxServer(**options)
        servers.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def chatra_sandbox(chatra_sandbox_factory: Callable[..., SandboxServer]) -> SandboxServer:
    """Return a started sandbox: unlimited rate, no faults, 20 clients, 60 + 15 messages."""
    return chatra_sandbox_factory(**SMALL_DATA, requests_per_minute=0)


# Module scope, not session: Playwright's sync API holds an event loop on the main thread
# while the browser is open, and no other sync Playwright (the benchmark's) may start then.
@pytest.fixture(scope="module")
def headless_browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, for one test module; skips with the reason if missing."""
    from chatra_sandbox.browser import headless_chromium, missing_reason  # noqa: PLC0415

    reason = missing_reason()
    if reason is not None:
        pytest.skip(f"no headless browser: {reason}")
    with headless_chromium() as browser:
        yield browser
