"""Settings input shared by both plugins: `--config` files and `--config ENV` variables."""

from __future__ import annotations

import re
import typing as t

import pytest
from click.testing import CliRunner
from singer_sdk import Stream, Tap
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError

from chatra_client import connection_properties
from chatra_client.plugin import ChatraPlugin, config_file_problem, env_number

if t.TYPE_CHECKING:
    from pathlib import Path

SECRET = "s3cr3t-Zebra-7781"


class SettingsOnlyTap(ChatraPlugin, Tap):
    """A tap with the shared settings and no streams: enough to read settings."""

    name = "tap-settings-only"
    config_jsonschema: t.ClassVar[dict[str, t.Any]] = th.PropertiesList(
        *connection_properties(),
        th.Property("flag", th.BooleanType),
        th.Property("ids", th.ArrayType(th.StringType)),
    ).to_dict()

    def discover_streams(self) -> list[Stream]:
        return []


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "does not exist"),
        ("api_key_pair: not json\n", r"is not JSON \(.+ at line 1\)"),
        # Python 3.13's decoder stops at the comma (line 2), older ones at the brace (line 3).
        ('{\n  "api_key_pair": "a:b",\n}', r"is not JSON \(.+ at line [23]\)"),
        ('["a:b"]', r"must hold a JSON object"),
        (b"\xff\xfe{}", r"cannot be read \(it is not UTF-8 text\)"),
    ],
    ids=["missing", "yaml", "trailing-comma", "array", "not-utf8"],
)
def test_config_file_problem_says_what_is_wrong(
    tmp_path: Path, content: str | bytes | None, expected: str
) -> None:
    path = tmp_path / "config.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    problem = config_file_problem(path)
    assert problem is not None
    assert re.search(expected, problem), problem
    assert str(path) in problem


def test_config_file_problem_never_quotes_the_content(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(f"{{'api_key_pair': 'pub:{SECRET}'}}", encoding="utf-8")
    problem = config_file_problem(path)
    assert problem is not None
    assert SECRET not in problem


def test_a_json_object_has_no_problem(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"api_key_pair": "a:b"}', encoding="utf-8")
    assert config_file_problem(path) is None


@pytest.mark.parametrize(
    ("text", "integer", "expected"),
    [("0", False, 0), ("12.5", False, 12.5), (" 7 ", True, 7), ("1e3", False, 1000.0)],
)
def test_env_number_reads_numbers(text: str, integer: bool, expected: float) -> None:
    number = env_number(text, integer=integer)
    assert number == expected
    assert isinstance(number, int) == isinstance(expected, int)


@pytest.mark.parametrize(
    ("text", "integer"), [("fast", False), ("2.5", True), ("nan", False), ("inf", False)]
)
def test_env_number_refuses_what_is_not_a_number(text: str, integer: bool) -> None:
    with pytest.raises(ValueError, match=r"."):
        env_number(text, integer=integer)


def test_env_settings_keep_their_types(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env file from the developer's folders
    for name, value in {
        "API_KEY_PAIR": f"pub:{SECRET}",
        "REQUESTS_PER_MINUTE": "0",
        "REQUEST_TIMEOUT": "12.5",
        "MAX_RETRIES": "3",
        "FLAG": "true",
        "IDS": '["a", "b"]',
    }.items():
        monkeypatch.setenv(f"TAP_SETTINGS_ONLY_{name}", value)
    tap = SettingsOnlyTap(config={}, parse_env_config=True)
    assert (
        dict(tap.config).items()
        >= {
            "api_key_pair": f"pub:{SECRET}",
            "requests_per_minute": 0,
            "request_timeout": 12.5,
            "max_retries": 3,
            "flag": True,
            "ids": ["a", "b"],
        }.items()
    )


def test_env_number_errors_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TAP_SETTINGS_ONLY_REQUESTS_PER_MINUTE", "fast")
    monkeypatch.setenv("TAP_SETTINGS_ONLY_MAX_RETRIES", "2.5")
    with pytest.raises(ConfigValidationError) as raised:
        SettingsOnlyTap(config={}, parse_env_config=True)
    assert raised.value.errors == [
        "TAP_SETTINGS_ONLY_REQUESTS_PER_MINUTE must be a number, got 'fast'.",
        "TAP_SETTINGS_ONLY_MAX_RETRIES must be a whole number, got '2.5'.",
    ]


def test_cli_refuses_a_bad_config_file_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(f"api_key_pair: pub:{SECRET}\n", encoding="utf-8")
    result = CliRunner().invoke(SettingsOnlyTap.cli, ["--config", str(path)])
    assert result.exit_code == 2
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error: Invalid value for '--config': config file")
    assert "TAP_SETTINGS_ONLY_* variables" in last
    assert SECRET not in result.output
