"""A small Chatra REST client: one method per kind of call, paced, retried and typed."""

from __future__ import annotations

import logging
import time
import typing as t

import requests

from chatra_client.auth import ChatraAuth
from chatra_client.errors import ConfigError, NotFoundError, RejectedError, raise_for_response
from chatra_client.paths import collection_path, record_path
from chatra_client.ratelimit import RateLimiter
from chatra_client.retry import RetryPolicy, retrying
from chatra_client.transport import DeadlineAdapter

if t.TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from chatra_client.settings import ConnectionSettings

USER_AGENT = "chatra-client/0.1 (tap-chatra, target-chatra-push)"
# An ID Chatra never issues (its IDs are 17 alphanumerics): a GET proves the keys, nothing more.
_PROBE_ID = "connection-check"


def new_session(pool_size: int = 8) -> requests.Session:
    """A session with a connection pool for `pool_size` concurrent requests and no hidden retries.

    urllib3's own retries are off so that every attempt goes through the limiter and the
    POST safety rules of `retrying`; a request's timeout bounds all of it (DeadlineAdapter).
    """
    session = requests.Session()
    adapter = DeadlineAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    # Chatra does not redirect API calls; a loop (a proxy's) stops after a few unpaced hops.
    session.max_redirects = 5
    session.headers["User-Agent"] = USER_AGENT
    session.headers["Accept"] = "application/json"
    return session


def pin_environment(session: requests.Session, url: str) -> None:
    """Read the proxy and CA-bundle variables for `url` once, instead of on every request.

    With `trust_env` on, requests walks the whole environment twice per call (proxies, then
    no_proxy), a tenth of a fast run's time. The variables cannot change under a running plugin,
    so what they say for the API's URL is kept on the session and the per-call walk turned off.
    """
    found = session.merge_environment_settings(url, {}, None, None, None)
    session.proxies.update(found["proxies"])
    session.verify = found["verify"]
    session.trust_env = False


def json_object(response: requests.Response) -> dict[str, t.Any]:
    """The JSON object of a 2xx response, or an empty dict when the body is not one."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class ChatraClient:
    """Calls the Chatra API with shared pacing, retries and typed errors."""

    def __init__(
        self,
        settings: ConnectionSettings,
        *,
        limiter: RateLimiter | None = None,
        policy: RetryPolicy | None = None,
        session: requests.Session | None = None,
        logger: logging.Logger | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.limiter = limiter if limiter is not None else RateLimiter.for_settings(settings)
        self.policy = policy or RetryPolicy.from_settings(settings)
        self.session = session or new_session()
        pin_environment(self.session, settings.api_url)
        self.session.auth = ChatraAuth(settings.credentials, settings.auth_method)
        self.logger = logger or logging.getLogger("chatra_client")
        self._sleep = sleep

    def _send(self, method: str, path: str, body: dict[str, t.Any] | None) -> requests.Response:
        response = self.session.request(
            method,
            self.settings.api_url + path,
            json=body,
            timeout=self.settings.request_timeout,
        )
        raise_for_response(response, context=f"{method} {path}")
        return response

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, t.Any] | None = None,
        *,
        idempotent: bool = True,
        policy: RetryPolicy | None = None,
    ) -> dict[str, t.Any]:
        send = retrying(
            self._send,
            policy=policy or self.policy,
            limiter=self.limiter,
            logger=self.logger,
            describe=f"{method} {path}",
            idempotent=idempotent,
            sleep=self._sleep,
        )
        return json_object(send(method, path, body))

    def get(self, resource: str, record_id: str) -> dict[str, t.Any]:
        """Fetch one record, e.g. ``get("clients", "abc")``."""
        return self._call("GET", record_path(resource, record_id))

    def create(self, resource: str, body: dict[str, t.Any]) -> dict[str, t.Any]:
        """POST a new message. Raises OutcomeUnknownError instead of ever retrying blindly."""
        return self._call("POST", collection_path(resource), body, idempotent=False)

    def update(self, resource: str, record_id: str, body: dict[str, t.Any]) -> dict[str, t.Any]:
        """PUT changed fields of one record."""
        return self._call("PUT", record_path(resource, record_id), body)

    def delete(self, resource: str, record_id: str) -> dict[str, t.Any]:
        """DELETE one message."""
        return self._call("DELETE", record_path(resource, record_id))

    def check_credentials(self) -> None:
        """Prove the keys with one harmless GET; AuthenticationError if Chatra refuses them.

        Chatra has no "who am I" call, so this fetches an ID it never issues: a 404 (or any
        refusal other than 401/403) shows that the keys were accepted.

        Raises:
            AuthenticationError: When Chatra refuses the keys.
            ConfigError: When the made-up ID is found: `api_url` is not the Chatra API.
        """
        quick = RetryPolicy(max_attempts=3, max_total_wait=30.0)
        try:
            self._call("GET", record_path("messages", _PROBE_ID), policy=quick)
        except (NotFoundError, RejectedError):
            return
        msg = (
            f"{self.settings.api_url} answered a made-up message ID with a record, so it is not "
            "the Chatra API; check api_url."
        )
        raise ConfigError(msg)

    def close(self) -> None:
        """Close the HTTP connections."""
        self.session.close()

    def __enter__(self) -> ChatraClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
