"""Everything one running sandbox shares between its HTTP handlers and its owner."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from chatra_sandbox.faults import FaultInjector
from chatra_sandbox.logs import ActivityLog
from chatra_sandbox.ratelimit import RateLimiter, SlidingWindowLimiter

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from chatra_sandbox.auth import KeyCheck
    from chatra_sandbox.config import SandboxConfig
    from chatra_sandbox.data import SandboxStore
    from chatra_sandbox.ratelimit import KeyLimiter


class SandboxState:
    """Store, keys, runtime options, rate limiter, fault injector and logs.

    The handlers read ``faults`` and ``limiter`` once per request; ``configure`` swaps in new
    objects rather than changing the old ones, so a reconfiguration from another thread takes
    effect cleanly between requests.

    Args:
        store: The record store.
        keys: The account's key pair check.
        config: The initial runtime options.
        log_file: Optional JSONL file the request log is mirrored to.
        on_message_created: Called with each message created through the API (webhooks).
    """

    def __init__(
        self,
        store: SandboxStore,
        keys: KeyCheck,
        config: SandboxConfig,
        log_file: str | Path | None = None,
        on_message_created: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.store = store
        self.keys = keys
        self.log = ActivityLog(log_file)
        self.on_message_created = on_message_created
        self._lock = threading.Lock()
        self.config = config
        self.faults = FaultInjector(config)
        self.limiter = _limiter(config)

    def configure(self, **changes: Any) -> SandboxConfig:
        """Apply runtime option changes; faults restart their seeded sequence.

        Returns:
            The full new configuration.

        Raises:
            TypeError: For an unknown option.
            ValueError: For an invalid value.
        """
        with self._lock:
            config = self.config.updated(**changes)
            if _limit_of(config) != _limit_of(self.config):
                self.limiter = _limiter(config)
            self.faults = FaultInjector(config)
            self.config = config
            return config


def _limit_of(config: SandboxConfig) -> tuple[float, str, float]:
    return config.requests_per_minute, config.rate_limit_mode, config.rate_limit_window


def _limiter(config: SandboxConfig) -> KeyLimiter | None:
    rpm = config.requests_per_minute
    if rpm <= 0:
        return None
    if config.rate_limit_mode == "sliding_window":
        return SlidingWindowLimiter(rpm, window=config.rate_limit_window)
    return RateLimiter(rpm)
