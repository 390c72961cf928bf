"""Errors that end a tap run; each message is one line naming the stream, the ID and the fix."""

from __future__ import annotations

from chatra_client import ChatraError


class FetchFailedError(ChatraError):
    """Retries ran out for one ID; STATE already covers everything emitted before it."""


class UnexpectedBodyError(ChatraError):
    """A 2xx answer whose body is not a JSON object (e.g. a proxy's HTML page)."""
