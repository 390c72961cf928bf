"""What both plugins change in the SDK: reading settings, and stopping on a signal.

The SDK (0.54) reads a `--config` file in a click callback, before the plugin's own error
handling runs, so a missing or non-JSON file ends in a traceback; and it leaves a number
setting from the environment as a string, which the settings schema then refuses. Its signal
handler exits 0 wherever SIGTERM lands. The base class here fixes all three for tap-chatra and
target-chatra-push alike.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import typing as t
from pathlib import Path

import click
from singer_sdk.configuration._dict_config import parse_environment_config
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers._classproperty import classproperty
from singer_sdk.helpers._typing import is_integer_type, is_number_type
from singer_sdk.logging import StructuredFormatter
from singer_sdk.plugin_base import PluginBase

if t.TYPE_CHECKING:
    from singer_sdk.plugin_base import _ConfigInput

ENV_CONFIG = "ENV"


class ChatraPlugin(PluginBase):
    """Settings input with one-line errors; listed before `Tap` or `Target` as a base."""

    def _setup_signal_handlers(self) -> None:
        """Leave SIGTERM and SIGINT to the plugin's `invoke`, which stops safely, non-zero.

        The SDK's own handler (installed from `PluginBase.__init__`) calls `sys.exit(0)` at
        whatever point the signal lands, so an orchestrator that stopped a run saw success.
        The plugins' tests/test_sdk_internals.py fail if an SDK upgrade changes that hook.
        """

    @classmethod
    def report_error(cls, message: str) -> None:
        """Log the one line that ends a failed run, readable wherever it is shown.

        Under Meltano the plugin's log records are JSON (its structured-logging config), and
        `meltano config test` shows a failed run's last line as it is: so with JSON logs the
        same sentence follows as plain text.
        """
        cls.logger.error("%s", message)
        if logs_are_json():
            print(message, file=sys.stderr, flush=True)

    @classmethod
    def cb_config(
        cls, ctx: click.Context, param: click.Option, value: tuple[str, ...]
    ) -> _ConfigInput:
        """Check each `--config` file before the SDK reads it.

        Raises:
            click.BadParameter: When a file is missing, unreadable, not JSON, or not a JSON
                object; click prints it as one `Error:` line and exits with code 2.
        """
        for path in value:
            if path != ENV_CONFIG:
                problem = config_file_problem(Path(path))
                if problem:
                    hint = f"or pass ENV to read settings from {cls._env_var_prefix}* variables"
                    raise click.BadParameter(f"{problem}; fix it, {hint}.", ctx, param)
        return super().cb_config(ctx, param, value)

    @classproperty
    def _env_var_config(cls) -> dict[str, t.Any]:  # noqa: N805
        """Settings from `<PLUGIN>_<SETTING>` variables, numbers as numbers.

        Raises:
            ConfigValidationError: When a number setting's variable does not hold a number.
        """
        schema = cls.config_jsonschema
        cls.append_builtin_config(schema)
        properties: dict[str, dict[str, t.Any]] = schema.get("properties", {})
        numeric = {
            name: bool(is_integer_type(prop))
            for name, prop in properties.items()
            if is_integer_type(prop) or is_number_type(prop)
        }
        # The SDK reads the .env file and every other type (booleans, arrays, objects).
        others = {name: prop for name, prop in properties.items() if name not in numeric}
        config = parse_environment_config({**schema, "properties": others}, cls._env_var_prefix)
        errors = []
        for name, integer in numeric.items():
            variable = cls._env_var_prefix + name.upper().replace("-", "_")
            if variable in os.environ:
                try:
                    config[name] = env_number(os.environ[variable], integer=integer)
                except ValueError:
                    kind = "a whole number" if integer else "a number"
                    errors.append(f"{variable} must be {kind}, got {os.environ[variable]!r}.")
        if errors:
            raise ConfigValidationError("Config validation failed", errors=errors)
        return config


def logs_are_json() -> bool:
    """Whether log records leave as JSON: a logging config (Meltano's) chose the SDK's format."""
    return any(
        isinstance(handler.formatter, StructuredFormatter)
        for handler in logging.getLogger().handlers
    )


def config_file_problem(path: Path) -> str | None:
    """What is wrong with a `--config` file, in a few words; None when it holds settings."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return f"config file {path} does not exist"
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        return f"config file {path} cannot be read ({reason})"
    try:
        settings = json.loads(text)
    except json.JSONDecodeError as exc:
        # Name the position only, never the file's content: it may hold a secret.
        return f"config file {path} is not JSON ({exc.msg} at line {exc.lineno})"
    if not isinstance(settings, dict):
        return f"config file {path} must hold a JSON object of settings"
    return None


def env_number(text: str, *, integer: bool) -> int | float:
    """An environment variable's text as a number: `12` is 12, `12.5` is 12.5.

    Raises:
        ValueError: When the text is not a number, or not a whole one where one is needed.
    """
    stripped = text.strip()
    try:
        return int(stripped)
    except ValueError:
        if integer:
            raise
    number = float(stripped)
    if not math.isfinite(number):
        msg = f"not a finite number: {text!r}"
        raise ValueError(msg)
    return number
