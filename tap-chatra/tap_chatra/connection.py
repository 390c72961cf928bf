"""The HTTP resources of one tap run, built when the run needs them and never at import."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from chatra_client import ChatraAuth, RateLimiter, RetryPolicy, new_session

if t.TYPE_CHECKING:
    import requests

    from chatra_client import ConnectionSettings


@dataclass(frozen=True)
class HttpResources:
    """Built once per tap run and shared by every stream and worker thread."""

    auth: ChatraAuth
    limiter: RateLimiter
    policy: RetryPolicy
    session: requests.Session

    @classmethod
    def for_settings(cls, settings: ConnectionSettings, *, concurrency: int) -> HttpResources:
        """Keys, the machine-wide pacing for them, the retry policy and a pooled session."""
        return cls(
            auth=ChatraAuth(settings.credentials, settings.auth_method),
            limiter=RateLimiter.for_settings(settings),
            policy=RetryPolicy.from_settings(settings),
            session=new_session(pool_size=concurrency),
        )
