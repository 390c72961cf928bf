"""Chatra REST API plumbing shared by tap-chatra and target-chatra-push."""

from __future__ import annotations

from chatra_client.auth import ChatraAuth
from chatra_client.client import ChatraClient, json_object, new_session
from chatra_client.errors import (
    AuthenticationError,
    ChatraError,
    ConfigError,
    InvalidIdError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitStoreError,
    RejectedError,
    RetriableError,
    RetriesExhaustedError,
    parse_retry_after,
    raise_for_response,
)
from chatra_client.paths import (
    collection_path,
    escape_id,
    id_problem,
    record_path,
    validate_api_url,
)
from chatra_client.ratelimit import RateLimiter
from chatra_client.retry import RetryPolicy, retrying
from chatra_client.settings import (
    DEFAULT_API_URL,
    ConnectionSettings,
    Credentials,
    connection_properties,
)

__all__ = [
    "DEFAULT_API_URL",
    "AuthenticationError",
    "ChatraAuth",
    "ChatraClient",
    "ChatraError",
    "ConfigError",
    "ConnectionSettings",
    "Credentials",
    "InvalidIdError",
    "NotFoundError",
    "OutcomeUnknownError",
    "RateLimitStoreError",
    "RateLimiter",
    "RejectedError",
    "RetriableError",
    "RetriesExhaustedError",
    "RetryPolicy",
    "collection_path",
    "connection_properties",
    "escape_id",
    "id_problem",
    "json_object",
    "new_session",
    "parse_retry_after",
    "raise_for_response",
    "record_path",
    "retrying",
    "validate_api_url",
]
