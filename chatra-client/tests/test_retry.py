"""The retry decorator: which failures are retried, how long it waits, when it gives up."""

from __future__ import annotations

import email.utils
import logging
import threading

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

from chatra_client import (
    NotFoundError,
    OutcomeUnknownError,
    RetriableError,
    RetriesExhaustedError,
    RetryPolicy,
    parse_retry_after,
    retrying,
)

LOGGER = logging.getLogger("test-retry")
NO_JITTER = RetryPolicy(max_attempts=4, base_wait=1.0, max_wait=60.0, jitter=False)


class Script:
    """A callable that raises the queued errors, then returns "ok"; counts its calls."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def run(script: Script, policy: RetryPolicy = NO_JITTER, **kwargs: object) -> list[float]:
    waits: list[float] = []
    wrapped = retrying(
        script, policy=policy, limiter=None, logger=LOGGER, sleep=waits.append, **kwargs
    )
    assert wrapped() == "ok"
    return waits


def throttled(retry_after: float | None) -> RetriableError:
    return RetriableError("GET /x: rate limited (HTTP 429).", status=429, retry_after=retry_after)


def test_retry_after_is_honoured_and_backoff_is_exponential_without_it() -> None:
    script = Script(throttled(7), throttled(None), throttled(None), throttled(3))
    assert run(script, RetryPolicy(max_attempts=5, jitter=False)) == [7, 2.0, 4.0, 3]
    assert script.calls == 5


def test_backoff_is_jittered_and_capped() -> None:
    policy = RetryPolicy(max_attempts=10, base_wait=1.0, max_wait=8.0)
    waits = run(Script(*(throttled(None) for _ in range(6))), policy)
    assert all(0.5 * min(8, 2**i) <= w <= min(8, 2**i) for i, w in enumerate(waits))
    assert max(waits) <= 8.0


def test_transport_errors_are_retried_for_idempotent_calls() -> None:
    script = Script(requests.ConnectionError("reset"), requests.ReadTimeout("slow"))
    assert run(script) == [1.0, 2.0]


def test_attempts_are_capped_with_a_clear_reason() -> None:
    script = Script(*(throttled(None) for _ in range(10)))
    with pytest.raises(RetriesExhaustedError) as raised:
        run(script)
    assert script.calls == 4
    assert "Gave up after 4 attempts" in str(raised.value)
    assert "HTTP 429" in raised.value.reason


def test_total_wait_is_capped() -> None:
    script = Script(throttled(100), throttled(100))
    with pytest.raises(RetriesExhaustedError):
        run(script, RetryPolicy(max_attempts=10, max_total_wait=150))
    assert script.calls == 2


def test_fatal_errors_are_not_retried() -> None:
    script = Script(NotFoundError("GET /x: no such record (HTTP 404).", status=404))
    with pytest.raises(NotFoundError):
        run(script)
    assert script.calls == 1


def test_a_post_that_may_have_been_sent_is_never_retried() -> None:
    script = Script(requests.ReadTimeout("no answer"))
    with pytest.raises(OutcomeUnknownError, match="may or may not have taken effect"):
        run(script, idempotent=False)
    assert script.calls == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504, 520])
def test_a_post_answered_with_a_5xx_is_never_retried(status: int) -> None:
    # A gateway may answer 502/504 (or an HTML 52x page) after the upstream stored the POST.
    error = RetriableError(f"POST /x: server error (HTTP {status}).", status=status, retry_after=1)
    script = Script(error)
    with pytest.raises(OutcomeUnknownError, match="may have stored it") as raised:
        run(script, idempotent=False)
    assert script.calls == 1
    assert raised.value.status == status


def test_a_get_answered_with_a_5xx_is_retried() -> None:
    error = RetriableError("GET /x: server error (HTTP 502).", status=502, retry_after=None)
    assert run(Script(error, error)) == [1.0, 2.0]


def test_a_post_refused_by_429_or_never_sent_is_retried() -> None:
    unreachable = requests.ConnectionError(
        MaxRetryError(None, "/", NewConnectionError(None, "refused"))  # type: ignore[arg-type]
    )
    script = Script(throttled(1), unreachable, requests.ConnectTimeout("connect"))
    assert run(script, idempotent=False) == [1, 2.0, 4.0]


def test_each_retry_is_logged_at_info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="test-retry")
    run(Script(throttled(2)))
    assert [r.levelno for r in caplog.records] == [logging.INFO]
    assert "HTTP 429" in caplog.records[0].getMessage()
    assert "Retrying (1 of 3) in 2.0s" in caplog.records[0].getMessage()


def test_a_stopping_caller_gets_no_retry_and_no_retry_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="test-retry")
    stopping = threading.Event()
    stopping.set()
    script = Script(throttled(2))
    with pytest.raises(RetriesExhaustedError, match="Not retried, the run is stopping"):
        run(script, stopping=stopping)
    assert script.calls == 1
    assert caplog.records == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [("5", 5.0), (" 2.5 ", 2.5), ("-3", 0.0), ("", None), (None, None), ("soon", None)],
)
def test_parse_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date() -> None:
    now = 1_700_000_000.0
    header = email.utils.formatdate(now + 42, usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(42.0)
    past = email.utils.formatdate(now - 42, usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0


class RecordingLimiter:
    """Counts slots taken and records every slowdown."""

    def __init__(self) -> None:
        self.acquired = 0
        self.throttles: list[float | None] = []

    def acquire(self) -> float:
        self.acquired += 1
        return 0.0

    def throttled(self, retry_after: float | None = None) -> None:
        self.throttles.append(retry_after)


def test_a_429_slows_the_shared_pace_and_a_5xx_does_not() -> None:
    limiter = RecordingLimiter()
    script = Script(
        throttled(3.0),
        RetriableError("GET /x: server error (HTTP 503).", status=503, retry_after=2.0),
        throttled(None),
    )
    wrapped = retrying(
        script,
        policy=NO_JITTER,
        limiter=limiter,
        logger=LOGGER,
        sleep=lambda _: None,
    )
    assert wrapped() == "ok"
    assert limiter.throttles == [3.0, None]
    assert limiter.acquired == 4
