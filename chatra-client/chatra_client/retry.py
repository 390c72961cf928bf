"""Retries with backoff, shared by the tap's SDK request hook and ChatraClient.

Every attempt, retries included, first takes a slot from the rate limiter. A 429 waits for
its ``Retry-After`` and slows the shared limiter down, so that other workers and processes
pause too and then go on more slowly for a while; a 5xx, a timeout or a dropped connection
waits an exponentially growing, jittered delay.

A POST is retried only when Chatra surely did not act on it: a 429, or a connection that
failed before the request was sent. Any other failure after sending (a 5xx, which a gateway
may give after the upstream stored the message; a read timeout; a dropped connection) gives
the caller OutcomeUnknownError instead, since a retry could create a second message.
"""

from __future__ import annotations

import functools
import random
import time
import typing as t
from dataclasses import dataclass

import requests
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError

from chatra_client.errors import OutcomeUnknownError, RetriableError, RetriesExhaustedError

if t.TYPE_CHECKING:
    import logging
    import threading
    from collections.abc import Callable

    from chatra_client.ratelimit import RateLimiter
    from chatra_client.settings import ConnectionSettings

P = t.ParamSpec("P")
R = t.TypeVar("R")

TRANSPORT_ERRORS = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    ConnectionResetError,
)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry one request."""

    max_attempts: int = 9
    max_total_wait: float = 900.0
    base_wait: float = 1.0
    max_wait: float = 60.0
    jitter: bool = True

    @classmethod
    def from_settings(cls, settings: ConnectionSettings) -> RetryPolicy:
        """The policy for a plugin's settings (`max_retries` retries after the first try)."""
        return cls(max_attempts=settings.max_retries + 1)

    def backoff(self, attempt: int) -> float:
        """Exponential delay before retry number `attempt` (1-based), jittered to 50-100%."""
        delay = min(self.max_wait, self.base_wait * 2 ** (attempt - 1))
        return delay * random.uniform(0.5, 1.0) if self.jitter else float(delay)

    def wait_before_retry(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait: the server's Retry-After when it gave one, else the backoff."""
        if retry_after is not None:
            return retry_after
        return self.backoff(attempt)


def never_sent(error: BaseException) -> bool:
    """True when a transport error surely happened before the request left this machine."""
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return True
    reason = error.args[0] if error.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError | NameResolutionError)


def _describe_request(args: tuple[t.Any, ...], default: str) -> str:
    for arg in args:
        if isinstance(arg, requests.PreparedRequest):
            return f"{arg.method} {arg.path_url}"
    return default


def retrying(
    func: Callable[P, R],
    *,
    policy: RetryPolicy,
    limiter: RateLimiter | None,
    logger: logging.Logger,
    describe: str = "Chatra request",
    idempotent: bool = True,
    sleep: Callable[[float], None] = time.sleep,
    stopping: threading.Event | None = None,
) -> Callable[P, R]:
    """Wrap a one-request callable with pacing and retries.

    Args:
        func: Sends one request and returns its response, raising RetriableError (via
            raise_for_response) for 429/5xx; other typed errors pass straight through.
        policy: Attempts and waits.
        limiter: Paces every attempt; None for no pacing.
        logger: Each retry is logged here at INFO, with the reason and never a secret.
        describe: Names the request in logs and errors when no PreparedRequest is passed.
        idempotent: False for POSTs, which must not be repeated once they may have been sent.
        sleep: Waits before a retry; may raise to abandon it (a stopping worker pool).
        stopping: Set once the caller has given up (another request failed the run): a
            failed attempt then ends at once, with no retry and no "Retrying" line after
            the run's final error.

    Returns:
        The wrapped callable.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        what = _describe_request(args, describe)
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            if limiter is not None:
                limiter.acquire()
            try:
                return func(*args, **kwargs)
            except RetriableError as error:
                if not idempotent and error.status != 429:
                    msg = (
                        f"{error} The POST reached the server, which may have stored it before "
                        "answering with an error."
                    )
                    raise OutcomeUnknownError(msg, status=error.status) from None
                reason = str(error)
                retry_after = error.retry_after
                status = error.status
            except TRANSPORT_ERRORS as error:
                if not idempotent and not never_sent(error):
                    msg = (
                        f"{what}: the request was sent but no answer came back "
                        f"({type(error).__name__}); it may or may not have taken effect."
                    )
                    raise OutcomeUnknownError(msg) from None
                reason = f"{what}: {type(error).__name__} (no answer from Chatra)"
                retry_after = None
                status = None
            wait = policy.wait_before_retry(attempt, retry_after)
            if attempt >= policy.max_attempts or waited + wait > policy.max_total_wait:
                msg = (
                    f"Gave up after {attempt} attempts and {waited:.0f}s of waiting; last: "
                    f"{reason} Try again later or lower requests_per_minute."
                )
                raise RetriesExhaustedError(msg, reason=reason, status=status) from None
            if stopping is not None and stopping.is_set():
                msg = f"Not retried, the run is stopping; last: {reason}"
                raise RetriesExhaustedError(msg, reason=reason, status=status)
            if status == 429 and limiter is not None:
                limiter.throttled(retry_after)
            logger.info(
                "%s Retrying (%d of %d) in %.1fs.", reason, attempt, policy.max_attempts - 1, wait
            )
            sleep(wait)
            waited += wait

    return wrapper
