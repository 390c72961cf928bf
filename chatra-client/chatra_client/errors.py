"""Typed errors for every way a Chatra request can end badly.

The classes also subclass the Singer SDK's own API errors, so the tap's RESTStream hooks and the
target's own calls classify a response the same way. Messages never carry a secret or a record
body (chat text is personal data); they name the request and say what to do.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import time
import typing as t

from singer_sdk.exceptions import FatalAPIError, RetriableAPIError

if t.TYPE_CHECKING:
    import requests

_MAX_API_MESSAGE = 300


class ChatraError(Exception):
    """Base class of every error raised by chatra_client."""

    status: int | None = None

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ConfigError(ChatraError, ValueError):
    """Settings that cannot work: a malformed key pair, a bad URL, a wrong value."""


class InvalidIdError(ChatraError, ValueError):
    """A record ID that cannot name a record (empty or whitespace only)."""


class AuthenticationError(ChatraError, FatalAPIError):
    """Chatra refused the keys (401 or 403)."""


class NotFoundError(ChatraError, FatalAPIError):
    """No such record (404)."""


class RejectedError(ChatraError, FatalAPIError):
    """Chatra refused the request as invalid (a 4xx other than 401, 403, 404 and 429)."""

    def __init__(self, message: str, *, status: int | None, api_message: str | None) -> None:
        super().__init__(message, status=status)
        self.api_message = api_message


class RetriableError(ChatraError, RetriableAPIError):
    """A refusal worth retrying: 408, 429 or a 5xx. The request had no effect."""

    def __init__(self, message: str, *, status: int | None, retry_after: float | None) -> None:
        ChatraError.__init__(self, message, status=status)
        self.retry_after = retry_after
        self.response = None


class RetriesExhaustedError(ChatraError):
    """Every allowed attempt was refused or failed; `reason` names the last failure."""

    def __init__(self, message: str, *, reason: str, status: int | None = None) -> None:
        super().__init__(message, status=status)
        self.reason = reason


class RateLimitStoreError(ChatraError):
    """The shared pace cannot be read or written, so no request may go out (none did)."""


class OutcomeUnknownError(ChatraError):
    """A POST was sent but no answer came back: it may or may not have been created.

    Never retried automatically, since a retry could create a second message.
    """


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Read a ``Retry-After`` header: delay seconds or an HTTP date. None if absent or unreadable.

    Args:
        value: The header value.
        now: The current epoch time, for tests; defaults to the clock.
    """
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def api_message(response: requests.Response) -> str | None:
    """Return Chatra's own error message from a response body, if it has one.

    Bodies are optional JSON: they may be empty, HTML from a proxy, or JSON without `message`.
    """
    try:
        body = json.loads(response.content or b"null")
    except ValueError:
        return None
    message = body.get("message") if isinstance(body, dict) else None
    return message[:_MAX_API_MESSAGE] if isinstance(message, str) else None


def raise_for_response(response: requests.Response, *, context: str) -> None:
    """Raise the typed error that fits a non-2xx response; do nothing for a 2xx.

    Args:
        response: The HTTP response.
        context: What was requested, e.g. ``GET /messages/ABC``; it starts every message.

    Raises:
        AuthenticationError: On 401 or 403.
        NotFoundError: On 404.
        RetriableError: On 408, 429 or a 5xx.
        RejectedError: On any other 4xx (and on unexpected 1xx/3xx answers).
    """
    status = response.status_code
    if 200 <= status < 300:
        return
    detail = api_message(response)
    said = f": {detail.rstrip('. ')}" if detail else ""
    if status in {401, 403}:
        msg = (
            f"{context} was refused with HTTP {status}{said}. Check the Chatra public and "
            "secret keys (Chatra dashboard: Settings > Preferences > API keys)."
        )
        raise AuthenticationError(msg, status=status)
    if status == 404:
        raise NotFoundError(f"{context}: no such record (HTTP 404){said}.", status=status)
    # 408: the server gave up waiting for the request, which therefore had no effect.
    if status in {408, 429} or status >= 500:
        kind = {408: "request timeout", 429: "rate limited"}.get(status, "server error")
        msg = f"{context}: {kind} (HTTP {status}){said}."
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        raise RetriableError(msg, status=status, retry_after=retry_after)
    msg = f"{context} was rejected with HTTP {status}{said}."
    raise RejectedError(msg, status=status, api_message=detail)
