"""Per key pair rate limits: an even-spacing GCRA (the default) or a strict sliding window.

GCRA tolerates a burst of two; the sliding window counts the last W seconds with no
tolerance at all, as a strict server would.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

#: Requests a client may be ahead of an even schedule. A client pacing itself at exactly the
#: limit never trips it, even with a little jitter, while sustained excess is refused.
BURST_TOLERANCE = 2


class KeyLimiter(Protocol):
    """Counts requests per key and refuses those over the limit."""

    def check(self, key: str) -> float | None:
        """Count one request for ``key`` if allowed; else return the seconds to wait."""


class RateLimiter:
    """Generic cell rate algorithm: one "theoretical arrival time" per key.

    Args:
        requests_per_minute: The limit; must be positive.
        clock: Monotonic clock in seconds (injectable for tests).
    """

    def __init__(
        self, requests_per_minute: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if requests_per_minute <= 0:
            msg = "requests_per_minute must be positive for a rate limiter."
            raise ValueError(msg)
        self._interval = 60.0 / requests_per_minute
        self._tolerance = BURST_TOLERANCE * self._interval
        self._clock = clock
        self._due: dict[str, float] = {}

    def check(self, key: str) -> float | None:
        """Count one request for ``key`` if allowed.

        Returns:
            None if the request is allowed, else the seconds until one would be.
        """
        now = self._clock()
        due = max(self._due.get(key, now), now)
        if due - now > self._tolerance:
            return due - self._tolerance - now
        self._due[key] = due + self._interval
        return None


class SlidingWindowLimiter:
    """At most ``requests_per_minute * window / 60`` accepted requests in any ``window`` seconds.

    Strict: no tolerance at all, so a client pacing itself exactly at the limit is refused now
    and then (its requests reach the server a little unevenly), which is what the pacing of
    chatra_client must cope with.

    Args:
        requests_per_minute: The limit; must allow at least one request per window.
        window: Length of the window in seconds.
        clock: Monotonic clock in seconds (injectable for tests).
    """

    def __init__(
        self,
        requests_per_minute: float,
        *,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        limit = math.floor(requests_per_minute * window / 60 + 1e-9)
        if window <= 0 or limit < 1:
            msg = "A sliding window needs a positive length and room for at least one request."
            raise ValueError(msg)
        self.limit = limit
        self.window = window
        self._clock = clock
        self._accepted: dict[str, deque[float]] = {}

    def check(self, key: str) -> float | None:
        """Count one request for ``key`` if fewer than the limit were accepted in the window.

        Returns:
            None if the request is allowed, else the seconds until the oldest one leaves.
        """
        now = self._clock()
        accepted = self._accepted.setdefault(key, deque())
        while accepted and accepted[0] <= now - self.window:
            accepted.popleft()
        if len(accepted) >= self.limit:
            return accepted[0] + self.window - now
        accepted.append(now)
        return None
