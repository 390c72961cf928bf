"""The connection settings both plugins share, their schema and their validation."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

from singer_sdk import typing as th

from chatra_client.errors import ConfigError
from chatra_client.paths import validate_api_url

if t.TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_API_URL = "https://app.chatra.io/api"
AUTH_METHODS = ("chatra_simple", "basic")
DEFAULT_REQUESTS_PER_MINUTE = 60
DEFAULT_REQUEST_TIMEOUT = 30
DEFAULT_MAX_RETRIES = 8
POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


def connection_properties() -> th.PropertiesList:
    """Return the settings for keys and HTTP, to be listed first in each plugin's schema."""
    return th.PropertiesList(
        th.Property(
            "api_key_pair",
            th.StringType,
            secret=True,
            title="API key pair",
            description=(
                "Public and secret key as one string `PUBLIC_KEY:SECRET_KEY` (Chatra dashboard: "
                "Settings > Preferences > API keys). Use this or `public_key` + `private_key`."
            ),
            examples=["PUBLIC_KEY:SECRET_KEY"],
        ),
        th.Property(
            "public_key",
            th.StringType,
            title="Public key",
            description=(
                "Chatra public API key (also the widget's Chatra ID). Give it with "
                "`private_key`, or give `api_key_pair` instead."
            ),
        ),
        th.Property(
            "private_key",
            th.StringType,
            secret=True,
            title="Secret key",
            description="Chatra secret (private) API key, given together with `public_key`.",
        ),
        th.Property(
            "auth_method",
            th.StringType,
            default="chatra_simple",
            allowed_values=list(AUTH_METHODS),
            title="Authentication method",
            description=(
                "`chatra_simple` sends `Authorization: Chatra.Simple PUBLIC:SECRET`; `basic` "
                "sends HTTP Basic auth with the public key as user and the secret as password."
            ),
        ),
        th.Property(
            "api_url",
            th.StringType,
            default=DEFAULT_API_URL,
            title="API URL",
            description=(
                "Base URL of the Chatra REST API. Plain http is accepted only for 127.0.0.1 or "
                "localhost (the local sandbox)."
            ),
            examples=[DEFAULT_API_URL, "http://127.0.0.1:8765/api"],
        ),
        th.Property(
            "requests_per_minute",
            th.NumberType,
            default=DEFAULT_REQUESTS_PER_MINUTE,
            title="Requests per minute",
            description=(
                "Chatra's limit: 60 requests a minute per account. Requests are spread evenly "
                "at 97.5% of it, so that a server counting a sliding window never sees more; "
                "after a 429 every process slows down, then recovers over a minute. The "
                "budget is shared by every tap and target process using the same public key "
                "on this machine, or on every machine naming the same rate_limit_store. 0 "
                "disables pacing."
            ),
        ),
        th.Property(
            "rate_limit_store",
            th.StringType,
            secret=True,
            title="Rate limit store",
            description=(
                "Where the shared pace is kept. Unset: a small file in this machine's "
                "temporary folder, shared by the processes on this machine. A "
                "`postgresql://user:password@host:port/database` URL shares it across machines "
                "(a table `chatra_rate_limit` is created there): every tap and target with the "
                "same public key that names this database takes turns within one "
                "requests_per_minute. A store that cannot be reached stops the run; it never "
                "runs unpaced."
            ),
            examples=["postgresql://chatra@db.internal:5432/chatra"],
        ),
        th.Property(
            "request_timeout",
            th.NumberType,
            default=DEFAULT_REQUEST_TIMEOUT,
            title="Request timeout",
            description=(
                "Seconds one request may take in all: connecting, the headers and the whole "
                "body. A slower answer counts as a timeout and is retried."
            ),
        ),
        th.Property(
            "max_retries",
            th.IntegerType,
            default=DEFAULT_MAX_RETRIES,
            title="Maximum retries",
            description=(
                "How many times one request is retried after a 408, a 429, a 5xx, a timeout or "
                "a dropped connection, with exponential backoff, before it is given up (the tap "
                "sets the ID aside, the target marks the row failed). A POST (a message send) "
                "is retried only after a 429 or a connection that never opened, since any "
                "other failure may come after Chatra stored it."
            ),
        ),
    )


@dataclass(frozen=True)
class Credentials:
    """A Chatra key pair. The secret never appears in repr()."""

    public_key: str
    secret_key: str = field(repr=False)

    @classmethod
    def from_config(cls, config: Mapping[str, t.Any], *, plugin: str | None = None) -> Credentials:
        """Read the keys from `api_key_pair`, or from `public_key` + `private_key`.

        `plugin` (e.g. ``tap-chatra``) lets the error for missing keys name the command and the
        variable that set them.

        Raises:
            ConfigError: When no keys are given, a pair is malformed, or both forms are given
                and disagree. The message never contains the secret.
        """
        pair = config.get("api_key_pair")
        public = config.get("public_key")
        secret = config.get("private_key")
        from_pair = _split_pair(pair) if pair not in {None, ""} else None
        if public not in {None, ""} or secret not in {None, ""}:
            if not isinstance(public, str) or not public.strip():
                raise ConfigError("private_key is set but public_key is missing; set both.")
            if not isinstance(secret, str) or not secret.strip():
                raise ConfigError("public_key is set but private_key is missing; set both.")
            separate = cls(public.strip(), secret.strip())
            if from_pair is not None and from_pair != separate:
                msg = (
                    "api_key_pair and public_key/private_key are both set and disagree; "
                    "set only one of the two forms."
                )
                raise ConfigError(msg)
            return separate
        if from_pair is None:
            raise ConfigError(missing_keys_message(plugin))
        return from_pair


def missing_keys_message(plugin: str | None) -> str:
    """The one line for a run without keys: which setting, and how to set it."""
    if plugin is None:
        return (
            "No Chatra API keys configured: set api_key_pair to PUBLIC_KEY:SECRET_KEY (Chatra "
            "dashboard: Settings > Preferences > API keys), or public_key and private_key."
        )
    variable = plugin.upper().replace("-", "_") + "_API_KEY_PAIR"
    return (
        f"No Chatra API keys configured: set {variable}=PUBLIC_KEY:SECRET_KEY (Chatra "
        f"dashboard: Settings > Preferences > API keys), or run `meltano config set {plugin} "
        "api_key_pair`; or set public_key and private_key instead."
    )


def _split_pair(pair: object) -> Credentials:
    if not isinstance(pair, str) or ":" not in pair:
        msg = "api_key_pair is malformed: expected PUBLIC_KEY:SECRET_KEY with a colon between."
        raise ConfigError(msg)
    public, _, secret = pair.strip().partition(":")
    if not public.strip() or not secret.strip():
        msg = "api_key_pair is malformed: the public or the secret half is empty."
        raise ConfigError(msg)
    return Credentials(public.strip(), secret.strip())


def _number(config: Mapping[str, t.Any], key: str, default: float, *, minimum: float) -> float:
    value = config.get(key)
    if value is None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = minimum - 1
    if number < minimum or isinstance(value, bool):
        msg = f"{key} must be a number of at least {minimum:g}, got {value!r}."
        raise ConfigError(msg)
    return number


@dataclass(frozen=True)
class ConnectionSettings:
    """Validated connection settings, built once when a plugin starts."""

    credentials: Credentials
    api_url: str = DEFAULT_API_URL
    auth_method: str = "chatra_simple"
    requests_per_minute: float = DEFAULT_REQUESTS_PER_MINUTE
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    rate_limit_store: str | None = field(default=None, repr=False)

    @classmethod
    def from_config(
        cls, config: Mapping[str, t.Any], *, plugin: str | None = None
    ) -> ConnectionSettings:
        """Validate and read the shared settings from a plugin config.

        `plugin` names the plugin in the error for missing keys (see `Credentials`).

        Raises:
            ConfigError: With one line saying which setting is wrong and how to fix it.
        """
        auth_method = config.get("auth_method") or "chatra_simple"
        if auth_method not in AUTH_METHODS:
            msg = f"auth_method must be one of {', '.join(AUTH_METHODS)}, got {auth_method!r}."
            raise ConfigError(msg)
        return cls(
            credentials=Credentials.from_config(config, plugin=plugin),
            api_url=validate_api_url(config.get("api_url") or DEFAULT_API_URL),
            auth_method=auth_method,
            requests_per_minute=_number(
                config, "requests_per_minute", DEFAULT_REQUESTS_PER_MINUTE, minimum=0
            ),
            request_timeout=_number(
                config, "request_timeout", DEFAULT_REQUEST_TIMEOUT, minimum=0.001
            ),
            max_retries=int(_number(config, "max_retries", DEFAULT_MAX_RETRIES, minimum=0)),
            rate_limit_store=_rate_limit_store(config.get("rate_limit_store")),
        )


def _rate_limit_store(value: object) -> str | None:
    """The PostgreSQL URL of a shared pace, or None for this machine's file."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = value.strip() if isinstance(value, str) else ""
    scheme, sep, _ = text.partition("://")
    if not sep or scheme.lower() not in POSTGRES_SCHEMES:
        msg = (
            "rate_limit_store must be a postgresql://user:password@host/database URL, or "
            "unset to pace on this machine only."
        )
        raise ConfigError(msg)
    # Imported here: SQLAlchemy is loaded only by runs that share their pace this way.
    from chatra_client.pace_postgres import parse_url  # noqa: PLC0415

    parse_url(text)
    return text
