"""Which API requests get which injected fault, decided by a seeded generator."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatra_sandbox.config import SandboxConfig

_ERROR_STATUSES = (500, 502, 503)
# What a gateway answers when its upstream stored the POST but the answer did not make it back.
_GATEWAY_STATUSES = (502, 504)


@dataclass(frozen=True)
class Fault:
    """An error answer given instead of the real one."""

    kind: str
    status: int
    html: bool = False


class FaultInjector:
    """Decides faults for one configuration; a new configuration gets a new injector.

    Draws are made only for fault kinds that are switched on, in a fixed order per request,
    so the same configuration and request sequence always give the same faults.
    """

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self._rng = random.Random(config.fault_seed)
        self._requests = 0
        self._fail_left = dict(config.fail_ids)

    def delay(self) -> float:
        """Return the latency to add to this request, in seconds."""
        config = self.config
        millis = config.latency_ms
        if config.latency_spike_rate and self._rng.random() < config.latency_spike_rate:
            millis += config.latency_spike_ms
        return millis / 1000

    def drop_connection(self) -> bool:
        """Whether to drop this request's connection without answering."""
        rate = self.config.reset_rate
        return bool(rate) and self._rng.random() < rate

    def response_fault(self, record_id: str | None) -> Fault | None:
        """Return the error to answer an authenticated, admitted request with, if any."""
        config = self.config
        self._requests += 1
        burst = config.burst_429
        if burst and (self._requests - 1) % (burst.every + burst.count) >= burst.every:
            return Fault("burst_429", 429)
        if config.error_rate and self._rng.random() < config.error_rate:
            html = bool(config.html_error_share) and self._rng.random() < config.html_error_share
            return Fault("error", self._rng.choice(_ERROR_STATUSES), html=html)
        if record_id is not None and self._fail_left.get(record_id, 0) > 0:
            self._fail_left[record_id] -= 1
            return Fault("fail_id", 503)
        return None

    def rejection(self, client_id: object) -> Fault | None:
        """Return the 4xx to answer a POST of a message to ``client_id`` with, if any."""
        status = self.config.reject_clients.get(client_id) if isinstance(client_id, str) else None
        return None if status is None else Fault("reject_client", status)

    def drop_after_commit(self) -> bool:
        """Whether to drop the connection of a POST that has just been committed."""
        rate = self.config.post_reset_after_commit_rate
        return bool(rate) and self._rng.random() < rate

    def error_after_commit(self) -> Fault | None:
        """Return the 5xx to answer a POST that has just been committed with, if any."""
        config = self.config
        rate = config.post_error_after_commit_rate
        if not rate or self._rng.random() >= rate:
            return None
        html = bool(config.html_error_share) and self._rng.random() < config.html_error_share
        return Fault("post_error_after_commit", self._rng.choice(_GATEWAY_STATUSES), html=html)
