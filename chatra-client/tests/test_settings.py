"""Settings: both key forms, malformed pairs, URL rules; no message ever holds the secret."""

from __future__ import annotations

import pytest

from chatra_client import ConfigError, ConnectionSettings, Credentials

SECRET = "s3cr3t-Zebra-7781"


def test_pair_and_separate_keys_give_the_same_credentials() -> None:
    from_pair = Credentials.from_config({"api_key_pair": f"pub:{SECRET}"})
    separate = Credentials.from_config({"public_key": "pub", "private_key": SECRET})
    both = Credentials.from_config(
        {"api_key_pair": f"pub:{SECRET}", "public_key": "pub", "private_key": SECRET}
    )
    assert from_pair == separate == both == Credentials("pub", SECRET)


def test_secret_is_hidden_from_repr() -> None:
    creds = Credentials("pub", SECRET)
    assert SECRET not in repr(creds)
    settings = ConnectionSettings(credentials=creds)
    assert SECRET not in repr(settings)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, "No Chatra API keys configured"),
        ({"api_key_pair": SECRET}, "expected PUBLIC_KEY:SECRET_KEY"),
        ({"api_key_pair": f":{SECRET}"}, "empty"),
        ({"api_key_pair": "pub:"}, "empty"),
        ({"api_key_pair": "pub:   "}, "empty"),
        ({"public_key": "pub"}, "private_key is missing"),
        ({"private_key": SECRET}, "public_key is missing"),
        (
            {"api_key_pair": f"other:{SECRET}", "public_key": "pub", "private_key": SECRET},
            "disagree",
        ),
        (
            {"api_key_pair": f"pub:{SECRET}x", "public_key": "pub", "private_key": SECRET},
            "disagree",
        ),
    ],
)
def test_malformed_keys_say_what_is_wrong_without_the_secret(
    config: dict[str, str], expected: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        ConnectionSettings.from_config(config)
    assert expected in str(raised.value)
    assert SECRET not in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://app.chatra.io/api",
        "https://app.chatra.io/api/",
        "http://127.0.0.1:8000/api",
        "http://localhost:8000/api",
        "http://[::1]:8000/api",
        "http://127.0.0.5/api",
    ],
)
def test_accepted_api_urls(url: str) -> None:
    settings = ConnectionSettings.from_config({"api_key_pair": "p:s", "api_url": url})
    assert settings.api_url == url.rstrip("/")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://app.chatra.io/api", "unencrypted"),
        ("http://10.0.0.1/api", "unencrypted"),
        ("http://127.0.0.1.evil.example/api", "unencrypted"),
        ("ftp://app.chatra.io/api", "not an http(s) URL"),
        ("app.chatra.io/api", "not an http(s) URL"),
        ("https://user:pw@app.chatra.io/api", "must not carry credentials"),
    ],
)
def test_refused_api_urls(url: str, expected: str) -> None:
    with pytest.raises(ConfigError, match="api_url") as raised:
        ConnectionSettings.from_config({"api_key_pair": "p:s", "api_url": url})
    assert expected in str(raised.value)


def test_defaults_and_numeric_checks() -> None:
    settings = ConnectionSettings.from_config({"api_key_pair": "p:s"})
    assert settings.api_url == "https://app.chatra.io/api"
    assert (settings.requests_per_minute, settings.request_timeout) == (60, 30)
    assert settings.auth_method == "chatra_simple"
    with pytest.raises(ConfigError, match="requests_per_minute"):
        ConnectionSettings.from_config({"api_key_pair": "p:s", "requests_per_minute": -1})
    with pytest.raises(ConfigError, match="request_timeout"):
        ConnectionSettings.from_config({"api_key_pair": "p:s", "request_timeout": "soon"})
    with pytest.raises(ConfigError, match="auth_method"):
        ConnectionSettings.from_config({"api_key_pair": "p:s", "auth_method": "oauth"})


@pytest.mark.parametrize("value", [None, "", "  "])
def test_rate_limit_store_unset_means_this_machine(value: str | None) -> None:
    config = {"api_key_pair": "pub:sec", "rate_limit_store": value}
    assert ConnectionSettings.from_config(config).rate_limit_store is None


def test_rate_limit_store_takes_a_postgresql_url_and_hides_it_from_repr() -> None:
    url = "postgresql://pacer:Pw-7731@db.internal:5432/chatra"
    settings = ConnectionSettings.from_config({"api_key_pair": "pub:sec", "rate_limit_store": url})
    assert settings.rate_limit_store == url
    assert "Pw-7731" not in repr(settings)


@pytest.mark.parametrize(
    "value", ["mysql://u:Pw-7731@h/db", "/tmp/pace", "db.internal:5432", 5432, ["postgresql://"]]
)
def test_rate_limit_store_other_than_postgresql_is_refused_without_echoing_it(
    value: object,
) -> None:
    with pytest.raises(ConfigError, match="rate_limit_store must be a postgresql://") as raised:
        ConnectionSettings.from_config({"api_key_pair": "pub:sec", "rate_limit_store": value})
    assert "Pw-7731" not in str(raised.value)


def test_rate_limit_store_with_a_malformed_port_is_refused_at_start() -> None:
    url = "postgresql://pacer:Pw-7731@db.internal:port/chatra"
    with pytest.raises(ConfigError, match="not a valid postgresql:// URL") as raised:
        ConnectionSettings.from_config({"api_key_pair": "pub:sec", "rate_limit_store": url})
    assert "Pw-7731" not in str(raised.value)


@pytest.mark.parametrize(
    ("plugin", "variable"),
    [
        ("tap-chatra", "TAP_CHATRA_API_KEY_PAIR"),
        ("target-chatra-push", "TARGET_CHATRA_PUSH_API_KEY_PAIR"),
    ],
)
def test_missing_keys_name_the_variable_and_the_meltano_command(plugin: str, variable: str) -> None:
    with pytest.raises(ConfigError) as raised:
        ConnectionSettings.from_config({}, plugin=plugin)
    message = str(raised.value)
    assert f"{variable}=PUBLIC_KEY:SECRET_KEY" in message
    assert f"meltano config set {plugin} api_key_pair" in message
    assert "\n" not in message
