"""The inbox's settings, parsed once at start into a frozen dataclass.

Tokens come only from the environment (never from the command line, where `ps` would show
them). Every problem is a `SettingsError` whose message is one line a person can act on.
"""

from __future__ import annotations

import hashlib
import hmac
import typing as t
from dataclasses import dataclass, field

if t.TYPE_CHECKING:
    from collections.abc import Mapping

INGEST_TOKEN_VARIABLE = "CHATRA_WEBHOOKS_INGEST_TOKEN"  # noqa: S105 - a variable name
READ_TOKEN_VARIABLE = "CHATRA_WEBHOOKS_READ_TOKEN"  # noqa: S105 - a variable name
PUBLIC_METRICS_VARIABLE = "CHATRA_WEBHOOKS_PUBLIC_METRICS"
#: Shortest accepted token, ingest or read: 32 characters of token_urlsafe hold 192 bits.
MIN_TOKEN_LENGTH = 32
DEFAULT_STORE_URL = "sqlite:///./chatra-webhooks.sqlite"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8780
DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_BODY_TIMEOUT = 10.0
_MAKE_ONE = "e.g. the output of python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


class SettingsError(ValueError):
    """A setting that cannot be used; the message says which and what to do."""


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


@dataclass(frozen=True)
class TokenSet:
    """Accepted tokens, kept as SHA-256 digests so every comparison takes the same time."""

    digests: tuple[bytes, ...] = field(repr=False)

    @classmethod
    def of(cls, tokens: t.Iterable[str]) -> TokenSet:
        """The set accepting exactly these tokens."""
        return cls(tuple(_digest(token) for token in tokens))

    def position(self, candidate: str) -> int | None:
        """Which token (1, 2, …) `candidate` is, or None; in time independent of the answer.

        The position is not a secret: the log shows it, so a rotation can tell when the old
        token stopped arriving.
        """
        wanted = _digest(candidate)
        found = None
        # No early exit: the time spent does not tell which token, if any, matched.
        for number, digest in enumerate(self.digests, start=1):
            if hmac.compare_digest(wanted, digest):
                found = number
        return found

    def accepts(self, candidate: str) -> bool:
        """Whether `candidate` is one of the tokens (see `position`)."""
        return self.position(candidate) is not None


def normalize_store_url(url: str) -> str:
    """Map `postgresql://` and `postgres://` to SQLAlchemy's psycopg 3 driver.

    Raises:
        SettingsError: For a URL that is neither SQLite nor PostgreSQL.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        msg = f"--store {url!r} is not a URL: use sqlite:///PATH or postgresql://USER@HOST/DB."
        raise SettingsError(msg)
    scheme = scheme.lower()
    if scheme in {"postgresql", "postgres", "postgresql+psycopg"}:
        return f"postgresql+psycopg://{rest}"
    if scheme == "sqlite":
        return f"sqlite://{rest}"
    msg = f"--store scheme {scheme!r} is not supported: use sqlite:///PATH or postgresql://..."
    raise SettingsError(msg)


def ingest_tokens_from(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The accepted ingest tokens: comma-separated, each at least 32 characters.

    Raises:
        SettingsError: If none is set or one is too short.
    """
    raw = environ.get(INGEST_TOKEN_VARIABLE, "")
    tokens = tuple(token.strip() for token in raw.split(",") if token.strip())
    if not tokens:
        msg = f"{INGEST_TOKEN_VARIABLE} is not set: set it to a random secret, {_MAKE_ONE}."
        raise SettingsError(msg)
    for position, token in enumerate(tokens, start=1):
        if len(token) < MIN_TOKEN_LENGTH:
            msg = (
                f"{INGEST_TOKEN_VARIABLE}: token {position} has {len(token)} characters, "
                f"fewer than {MIN_TOKEN_LENGTH}: use a longer random secret, {_MAKE_ONE}."
            )
            raise SettingsError(msg)
        if "/" in token or "?" in token or "#" in token:
            msg = (
                f"{INGEST_TOKEN_VARIABLE}: token {position} contains '/', '?' or '#', which "
                "cannot stand in a URL path: use letters, digits, '-' and '_'."
            )
            raise SettingsError(msg)
    return tokens


def read_token_from(environ: Mapping[str, str], ingest_tokens: tuple[str, ...]) -> str:
    """The read API's bearer token: at least 32 characters, none of the ingest tokens.

    The ingest token travels in every webhook URL, through Chatra and any proxy: were it the
    read token too, whoever sees one URL could read every chat.

    Raises:
        SettingsError: If it is not set, too short, or an ingest token.
    """
    token = environ.get(READ_TOKEN_VARIABLE, "").strip()
    if not token:
        msg = f"{READ_TOKEN_VARIABLE} is not set: set it to a random secret, {_MAKE_ONE}."
        raise SettingsError(msg)
    if len(token) < MIN_TOKEN_LENGTH:
        msg = (
            f"{READ_TOKEN_VARIABLE} has {len(token)} characters, fewer than "
            f"{MIN_TOKEN_LENGTH}: use a longer random secret, {_MAKE_ONE}."
        )
        raise SettingsError(msg)
    if token in ingest_tokens:
        position = ingest_tokens.index(token) + 1
        msg = (
            f"{READ_TOKEN_VARIABLE} is the same as ingest token {position} of "
            f"{INGEST_TOKEN_VARIABLE}: the ingest token is in every webhook URL, so give the "
            f"read API a secret of its own, {_MAKE_ONE}."
        )
        raise SettingsError(msg)
    return token


def flag_from(environ: Mapping[str, str], variable: str) -> bool:
    """A yes/no setting from the environment (Meltano passes `true` or `false`).

    Raises:
        SettingsError: For a value that is neither.
    """
    value = environ.get(variable, "").strip().lower()
    if value in {"", "0", "false", "no", "off"}:
        return False
    if value in {"1", "true", "yes", "on"}:
        return True
    msg = f"{variable} is {value[:20]!r}: use true or false."
    raise SettingsError(msg)


@dataclass(frozen=True)
class InboxSettings:
    """Everything the app needs, checked once at start.

    Attributes:
        ingest_tokens: Tokens accepted in `POST /chatra/<token>` (several during a rotation).
        read_token: Bearer token of `GET /events`.
        store_url: SQLAlchemy URL of the store.
        host: Address to listen on.
        port: Port to listen on; 0 picks a free one.
        max_body: Largest accepted request body, in bytes.
        body_timeout: Seconds a client gets to send its whole body.
        public_metrics: Whether `GET /metrics` answers without the read token.
    """

    ingest_tokens: TokenSet = field(repr=False)
    read_token: TokenSet = field(repr=False)
    store_url: str = DEFAULT_STORE_URL
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_body: int = DEFAULT_MAX_BODY
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    public_metrics: bool = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], **options: t.Any) -> InboxSettings:
        """Settings with tokens from `environ` and the other values from `options`.

        Raises:
            SettingsError: For a missing or weak token or a value out of range.
        """
        ingest_tokens = ingest_tokens_from(environ)
        settings = cls(
            ingest_tokens=TokenSet.of(ingest_tokens),
            read_token=TokenSet.of([read_token_from(environ, ingest_tokens)]),
            **options,
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Check the ranges of the numeric settings.

        Raises:
            SettingsError: For a value out of range.
        """
        if not 0 <= self.port <= 65535:
            msg = f"--port {self.port} is out of range: use 0 to 65535 (0 picks a free port)."
            raise SettingsError(msg)
        if self.max_body < 1:
            msg = f"--max-body {self.max_body} must be a positive number of bytes."
            raise SettingsError(msg)
        if self.body_timeout <= 0:
            msg = f"--body-timeout {self.body_timeout} must be a positive number of seconds."
            raise SettingsError(msg)
