"""README.md's settings tables and meltano.yml's plugin settings match the plugins themselves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def about_settings_table(plugin: str) -> str:
    about = subprocess.run(
        [str(BIN / plugin), "--about", "--format=markdown"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    settings = about.split("## Settings\n", 1)[1]
    table = []
    for line in settings.splitlines():
        if line.startswith("|"):
            table.append(line.rstrip())
        elif table:
            break
    return "\n".join(table)


def readme_block(plugin: str) -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = f"<!-- settings-table: {plugin} -->\n"
    end = f"<!-- /settings-table: {plugin} -->"
    assert start in readme, f"README.md has no settings table for {plugin}"
    return readme.split(start, 1)[1].split(end, 1)[0].strip()


@pytest.mark.parametrize("plugin", ["tap-chatra", "target-chatra-push"])
def test_readme_settings_table_matches_about_markdown(plugin: str) -> None:
    expected = about_settings_table(plugin)
    assert expected.count("\n") > 10, "the plugin reported almost no settings"
    assert readme_block(plugin) == expected, (
        f"README.md's {plugin} settings are stale: run .venv/bin/python scripts/settings_tables.py"
    )


def test_meltano_yml_declares_every_plugin_setting() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "meltano_settings.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
