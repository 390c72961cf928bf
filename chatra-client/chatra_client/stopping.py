"""SIGTERM and SIGINT as a request to stop at a safe point, never in the middle of a line.

A handler that raised at once could cut a RECORD or STATE line on stdout in two, or end a send
between the POST and its ledger mark. Instead it sets a flag and wakes the tap's worker threads
(a backoff sleep ends at once); the tap's sync loop sees the flag after the ID in hand, the
target's after the row in hand. Either run ends with an exit code that is not 0, so an
orchestrator that stopped it never takes it for a success.

The target also waits on its input, where a flag alone would keep it waiting for the next line:
with `interrupt` on, the handler stops the run at once when nothing is `busy`, and a `busy`
block that saw the signal stops it as it ends: through `on_interrupt` (the target's summary and
ledger close), else by raising StopRequested.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import typing as t

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequested(Exception):  # noqa: N818 - a request, not a failure
    """Raised by `StopSignals` with `interrupt` on, where stopping is safe."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"Stopped by signal {signum}.")
        self.signum = signum


class StopSignals:
    """Which stop signal arrived, if any, and the events to set when one does."""

    def __init__(self, *, interrupt: bool = False) -> None:
        self.received: int | None = None
        self._wake: list[threading.Event] = []
        self._interrupt = interrupt
        self._busy = 0
        #: Called with the signal's number to stop the run where it is safe; it should raise.
        self.on_interrupt: Callable[[int], None] | None = None

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
        if self._interrupt and not self._busy:
            self._stop_now(signum)

    def _stop_now(self, signum: int) -> t.NoReturn:
        if self.on_interrupt is not None:
            self.on_interrupt(signum)
        raise StopRequested(signum)

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """Defer the interruption to the end of this block (main thread: signals land there)."""
        self._busy += 1
        try:
            yield
        finally:
            self._busy -= 1
        if self._interrupt and not self._busy and self.received is not None:
            self._stop_now(self.received)

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
