"""SIGTERM and SIGINT as a request to stop between two IDs, never in the middle of a line.

A handler that raised at once could cut a RECORD line on stdout in two. Instead it sets a flag
and wakes the worker threads (a backoff sleep ends at once); the sync loop sees the flag after
the ID in hand, writes STATE for every record emitted and ends the run with an exit code that
is not 0, so an orchestrator that stopped the run never takes it for a success.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import typing as t

if t.TYPE_CHECKING:
    from collections.abc import Iterator
    from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """Which stop signal arrived, if any, and the events to set when one does."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._wake: list[threading.Event] = []

    def reset(self) -> None:
        """Forget a stop request of an earlier run in this process."""
        self.received = None

    def request(self, signum: int) -> None:
        """Ask the run to stop, as a signal does."""
        self.received = signum
        for event in list(self._wake):
            event.set()

    def _handle(self, signum: int, frame: FrameType | None) -> None:  # noqa: ARG002 - signal API
        self.request(signum)

    @contextlib.contextmanager
    def waking(self, event: threading.Event) -> Iterator[None]:
        """Set `event` too when a stop is requested while inside this block."""
        self._wake.append(event)
        try:
            if self.received is not None:
                event.set()
            yield
        finally:
            self._wake.remove(event)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Handle SIGTERM and SIGINT inside this block (main thread only); restore after."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {signum: signal.signal(signum, self._handle) for signum in SIGNALS}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    @staticmethod
    def exit_code(signum: int) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number."""
        return 128 + signum
