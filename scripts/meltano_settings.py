"""Keep meltano.yml's declarations of tap-chatra and target-chatra-push in step with the plugins.

Each plugin's `--about --format=json` is the source of truth for its settings (name, kind,
label, description, allowed values, which are secret) and capabilities. Meltano needs them
declared because these are custom plugins: nothing is looked up on Meltano Hub.

Usage:
    .venv/bin/python scripts/meltano_settings.py          # rewrite the two declarations
    .venv/bin/python scripts/meltano_settings.py --check  # exit 1 if meltano.yml is stale
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path
from typing import Any

from plugin_about import about_output
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
MELTANO_YML = ROOT / "meltano.yml"
PLUGINS = {"tap-chatra": "extractors", "target-chatra-push": "loaders"}

# JSON schema type -> Meltano setting kind. Numbers are declared `integer`: Meltano 4.4.1 turns
# a `decimal` setting given as a variable (TAP_CHATRA_REQUESTS_PER_MINUTE=30) into a Decimal
# that it then fails to write into the plugin's JSON config. A fractional value can still be
# set in meltano.yml, where YAML floats pass through unchanged.
KINDS = {
    "string": "string",
    "number": "integer",
    "integer": "integer",
    "boolean": "boolean",
    "array": "array",
    "object": "object",
}
# The capabilities meltano.yml's schema accepts for each plugin type; the SDK reports a few
# more (e.g. validate-records) that Meltano neither knows nor needs.
MELTANO_CAPABILITIES = {
    "extractors": {
        "properties",
        "catalog",
        "discover",
        "state",
        "about",
        "stream-maps",
        "activate-version",
        "batch",
        "test",
        "log-based",
        "schema-flattening",
        "structured-logging",
    },
    "loaders": {
        "about",
        "stream-maps",
        "activate-version",
        "batch",
        "soft-delete",
        "hard-delete",
        "datatype-failsafe",
        "schema-flattening",
        "structured-logging",
    },
}


def about(plugin: str) -> dict[str, Any]:
    """Return the parsed `<plugin> --about --format=json`."""
    parsed: dict[str, Any] = json.loads(about_output(plugin, "json"))
    return parsed


def setting(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """Translate one JSON schema property into a Meltano setting declaration."""
    types = schema.get("type", "string")
    types = [types] if isinstance(types, str) else types
    json_type = next(t for t in types if t != "null")
    declared: dict[str, Any] = {"name": name, "kind": KINDS[json_type]}
    if schema.get("title"):
        declared["label"] = schema["title"]
    if schema.get("description"):
        declared["description"] = schema["description"]
    choices = [value for value in schema.get("enum", []) if value is not None]
    if choices:
        declared["kind"] = "options"
        declared["options"] = [{"label": value, "value": value} for value in choices]
    if schema.get("secret"):
        declared["sensitive"] = True
    return declared


def declaration(plugin_type: str, info: dict[str, Any]) -> dict[str, Any]:
    """The `capabilities` and `settings` meltano.yml should declare for one plugin."""
    settings = info["settings"].get("properties", {})
    return {
        "capabilities": [c for c in info["capabilities"] if c in MELTANO_CAPABILITIES[plugin_type]],
        "settings": [setting(name, schema) for name, schema in settings.items()],
    }


def plugin_entry(project: dict[str, Any], plugin_type: str, name: str) -> dict[str, Any]:
    """The meltano.yml entry of plugin `name`.

    Raises:
        KeyError: If meltano.yml does not declare the plugin.
    """
    for entry in project["plugins"][plugin_type]:
        if entry["name"] == name:
            found: dict[str, Any] = entry
            return found
    msg = f"meltano.yml declares no {plugin_type} plugin named {name}"
    raise KeyError(msg)


def stale_plugins(project: dict[str, Any], expected: dict[str, dict[str, Any]]) -> list[str]:
    """Names of the plugins whose declaration in `project` differs from `expected`."""
    stale = []
    for name, wanted in expected.items():
        entry = plugin_entry(project, PLUGINS[name], name)
        current = {key: json.loads(json.dumps(entry.get(key))) for key in wanted}
        if current != wanted:
            stale.append(name)
    return stale


def main(argv: list[str] | None = None) -> int:
    """Rewrite meltano.yml's two declarations, or with --check report whether they are current."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check, change nothing")
    args = parser.parse_args(argv)

    yaml = YAML()
    yaml.indent(mapping=2, sequence=2, offset=0)
    yaml.width = 10_000  # one line per description, as written by hand
    project = yaml.load(MELTANO_YML.read_text(encoding="utf-8"))
    expected = {name: declaration(kind, about(name)) for name, kind in PLUGINS.items()}
    stale = stale_plugins(project, expected)
    if not stale:
        print("meltano.yml plugin declarations are up to date")
        return 0
    if args.check:
        print(
            f"meltano.yml is stale for {', '.join(stale)}: "
            "run .venv/bin/python scripts/meltano_settings.py"
        )
        return 1
    for name in stale:
        entry = plugin_entry(project, PLUGINS[name], name)
        entry.update(expected[name])
    buffer = io.StringIO()
    yaml.dump(project, buffer)
    MELTANO_YML.write_text(buffer.getvalue(), encoding="utf-8")
    print(f"meltano.yml updated for {', '.join(stale)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
