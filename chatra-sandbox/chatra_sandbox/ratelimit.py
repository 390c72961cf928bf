"""Per key pair rate limit, as an even-spacing GCRA with a small burst tolerance."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

#: Requests a client may be ahead of an even schedule. A client pacing itself at exactly the
#: limit never trips it, even with a little jitter, while sustained excess is refused.
BURST_TOLERANCE = 2


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
