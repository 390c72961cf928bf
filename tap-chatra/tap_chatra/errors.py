"""Errors that end a tap run or set one ID aside; each message is one line naming the fix."""

from __future__ import annotations

import requests

from chatra_client import ChatraError


class SetAsideError(ChatraError):
    """One ID's answer cannot be used; the ID is set aside and the run goes on.

    `short` is the few words recorded in state with the ID, e.g. ``HTTP 200 body is empty``.
    """

    def __init__(self, message: str, *, short: str, status: int | None = None) -> None:
        super().__init__(message, status=status)
        self.short = short


class UnexpectedBodyError(SetAsideError):
    """A 2xx answer whose body is not a JSON object (e.g. a proxy's HTML page)."""


class UnusableAnswerError(SetAsideError):
    """A request that ended without an answer worth retrying: a redirect loop, a bad redirect."""


class SystemicFailureError(ChatraError):
    """Most IDs of a stream failed: the API or the connection, not one ID, is at fault."""


class StopRequestedError(ChatraError):
    """SIGTERM or SIGINT: the run stopped after saving STATE for what was emitted."""

    def __init__(self, message: str, *, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


class StateInputError(ChatraError):
    """A `--state` file or state object the tap cannot resume from."""


def unusable_answer(error: Exception, what: str) -> UnusableAnswerError:
    """The error for a request that ended in a way not worth retrying, e.g. a redirect loop.

    Args:
        error: What `requests` raised (a plain ValueError for a redirect to a malformed URL);
            its text is not repeated, as it may hold a whole URL.
        what: The request, e.g. ``messages: GET /api/messages/ABC``.
    """
    if isinstance(error, requests.TooManyRedirects):
        short, detail = "redirect loop", "was redirected in a loop"
    elif isinstance(error, requests.exceptions.InvalidSchema | requests.exceptions.MissingSchema):
        short, detail = "unusable redirect", "was redirected to a location that is not http(s)"
    elif isinstance(error, ValueError):
        short, detail = "unusable redirect", "was redirected to a malformed URL"
    else:
        short, detail = type(error).__name__, f"failed ({type(error).__name__})"
    msg = f"{what} {detail}; check api_url (Chatra itself does not redirect API requests)."
    return UnusableAnswerError(msg, short=short)
