"""Runtime options of a sandbox: the rate limit and every kind of injected fault."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_RATES = (
    "latency_spike_rate",
    "error_rate",
    "html_error_share",
    "reset_rate",
    "post_reset_after_commit_rate",
    "post_error_after_commit_rate",
)
_NON_NEGATIVE = ("requests_per_minute", "latency_ms", "latency_spike_ms")
RATE_LIMIT_MODES = ("gcra", "sliding_window")
# 429 is left to burst_429 and the rate limit: it asks for a retry, not a rejection.
_REJECTIONS = frozenset(range(400, 500)) - {429}


@dataclass(frozen=True)
class Burst429:
    """After every ``every`` API requests, answer the next ``count`` with 429."""

    every: int
    count: int

    @classmethod
    def parse(cls, value: object) -> Burst429 | None:
        """Read ``None``, ``{"every": N, "count": M}``, ``[N, M]`` or ``"N:M"``.

        Raises:
            ValueError: If the value has another shape or N < 0 or M < 1.
        """
        if value is None or isinstance(value, Burst429):
            return value
        parts: list[object]
        if isinstance(value, Mapping):
            parts = [value.get("every"), value.get("count")]
        elif isinstance(value, str):
            parts = list(value.split(":"))
        elif isinstance(value, list | tuple):
            parts = list(value)
        else:
            parts = []
        try:
            every, count = (int(str(part)) for part in parts)
        except ValueError:
            msg = f"burst_429 must look like {{'every': N, 'count': M}}, got {value!r}."
            raise ValueError(msg) from None
        if every < 0 or count < 1:
            msg = "burst_429 needs every >= 0 and count >= 1."
            raise ValueError(msg)
        return cls(every, count)


@dataclass(frozen=True)
class SandboxConfig:
    """Everything that can change while a sandbox runs (all faults off by default).

    Attributes:
        requests_per_minute: Rate limit per key pair; 0 means unlimited.
        rate_limit_mode: ``gcra``: even spacing with a burst tolerance of 2 requests;
            ``sliding_window``: at most ``requests_per_minute * rate_limit_window / 60``
            requests in any ``rate_limit_window`` seconds, with no tolerance at all.
        rate_limit_window: Seconds of the sliding window.
        latency_ms: Latency added to every API request.
        latency_spike_rate: Share of API requests that get ``latency_spike_ms`` more.
        latency_spike_ms: Extra latency of a spike.
        error_rate: Share of API requests answered with 500, 502 or 503.
        html_error_share: Share of those errors with an HTML body instead of JSON.
        burst_429: Bursts of 429 answers, independent of the rate limit.
        retry_after: Whether 429 answers carry a ``Retry-After`` header.
        wrong_keys_status: The status of an answer to wrong or missing keys: 401, or 403 as
            some gateways and accounts answer.
        reset_rate: Share of API requests whose connection is dropped without an answer.
        post_reset_after_commit_rate: Share of accepted POSTs that are committed (and logged as
            sent) but whose connection is then dropped before the answer.
        post_error_after_commit_rate: Share of accepted POSTs that are committed (and logged as
            sent) but answered with a 502 or 504 (HTML per ``html_error_share``), as a gateway
            does when the answer from upstream is lost.
        fail_ids: The first ``n`` requests for each record ID are answered with 503.
        reject_clients: POSTs of a message to these client IDs are answered with the mapped
            4xx status (not 429) and not committed.
        fault_seed: Seed of the generator that decides which requests get faults.
    """

    requests_per_minute: float = 0
    rate_limit_mode: str = "gcra"
    rate_limit_window: float = 60.0
    latency_ms: float = 0
    latency_spike_rate: float = 0
    latency_spike_ms: float = 0
    error_rate: float = 0
    html_error_share: float = 0
    burst_429: Burst429 | None = None
    retry_after: bool = True
    wrong_keys_status: int = 401
    reset_rate: float = 0
    post_reset_after_commit_rate: float = 0
    post_error_after_commit_rate: float = 0
    fail_ids: Mapping[str, int] = field(default_factory=dict)
    reject_clients: Mapping[str, int] = field(default_factory=dict)
    fault_seed: int = 0

    def __post_init__(self) -> None:
        for name in _RATES:
            value = getattr(self, name)
            if not 0 <= value <= 1:
                msg = f"{name} must be between 0 and 1, got {value!r}."
                raise ValueError(msg)
        for name in _NON_NEGATIVE:
            if getattr(self, name) < 0:
                msg = f"{name} must not be negative."
                raise ValueError(msg)
        if self.rate_limit_mode not in RATE_LIMIT_MODES:
            msg = f"rate_limit_mode must be one of {', '.join(RATE_LIMIT_MODES)}."
            raise ValueError(msg)
        if self.rate_limit_window <= 0:
            msg = "rate_limit_window must be positive."
            raise ValueError(msg)
        if (
            self.rate_limit_mode == "sliding_window"
            and 0 < self.requests_per_minute * self.rate_limit_window < 60
        ):
            msg = "rate_limit_window is too short to allow one request at requests_per_minute."
            raise ValueError(msg)
        if self.wrong_keys_status not in {401, 403}:
            msg = f"wrong_keys_status must be 401 or 403, got {self.wrong_keys_status!r}."
            raise ValueError(msg)
        if any(not isinstance(n, int) or n < 0 for n in self.fail_ids.values()):
            msg = "fail_ids must map record IDs to non-negative integers."
            raise ValueError(msg)

    @classmethod
    def option_names(cls) -> frozenset[str]:
        """Return the names ``updated`` accepts."""
        return frozenset(f.name for f in dataclasses.fields(cls))

    def updated(self, **changes: Any) -> SandboxConfig:
        """Return a copy with ``changes`` applied and checked.

        Raises:
            TypeError: For an unknown option name.
            ValueError: For an invalid value.
        """
        unknown = set(changes) - self.option_names()
        if unknown:
            msg = f"Unknown sandbox option(s): {', '.join(sorted(unknown))}."
            raise TypeError(msg)
        if "burst_429" in changes:
            changes["burst_429"] = Burst429.parse(changes["burst_429"])
        if "fail_ids" in changes:
            changes["fail_ids"] = dict(changes["fail_ids"] or {})
        if "reject_clients" in changes:
            changes["reject_clients"] = _reject_clients(changes["reject_clients"])
        if "retry_after" in changes and not isinstance(changes["retry_after"], bool):
            msg = "retry_after must be true or false."
            raise ValueError(msg)
        for name in (*_RATES, *_NON_NEGATIVE, "rate_limit_window"):
            if name in changes and not _is_number(changes[name]):
                msg = f"{name} must be a number."
                raise ValueError(msg)
        if "fault_seed" in changes and not isinstance(changes["fault_seed"], int):
            msg = "fault_seed must be an integer."
            raise ValueError(msg)
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """Return the options as JSON-ready values."""
        data = dataclasses.asdict(self)
        data["fail_ids"] = dict(self.fail_ids)
        data["reject_clients"] = dict(self.reject_clients)
        return data


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _reject_clients(value: object) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        msg = f"reject_clients must map client IDs to HTTP statuses, got {value!r}."
        raise ValueError(msg)
    for client_id, status in value.items():
        if isinstance(status, bool) or not isinstance(status, int) or status not in _REJECTIONS:
            msg = (
                f"reject_clients[{client_id!r}] must be an HTTP status from 400 to 499 other "
                f"than 429, got {status!r}."
            )
            raise ValueError(msg)
    return dict(value)
