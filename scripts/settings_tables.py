"""Regenerate README.md's settings tables from the plugins' own `--about --format=markdown`.

The plugins' settings schemas are the single source of truth; README.md holds a copy of
each plugin's settings table between marker comments such as

    <!-- settings-table: tap-chatra -->
    ...
    <!-- /settings-table: tap-chatra -->

Usage:
    .venv/bin/python scripts/settings_tables.py          # rewrite README.md
    .venv/bin/python scripts/settings_tables.py --check  # exit 1 if README.md is stale
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from plugin_about import PLUGINS, about_output

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def settings_table(plugin: str) -> str:
    """Return the settings table from `<plugin> --about --format=markdown`.

    Raises:
        ValueError: If the output has no settings table.
    """
    about = about_output(plugin, "markdown")
    _, heading, rest = about.partition("## Settings\n")
    rows = []
    for line in rest.splitlines():
        if line.startswith("|"):
            rows.append(line.rstrip())
        elif rows:
            break
    if not heading or not rows:
        msg = f"{plugin} --about --format=markdown printed no settings table"
        raise ValueError(msg)
    return "\n".join(rows)


def marker_pattern(plugin: str) -> re.Pattern[str]:
    """The README block for `plugin`: the start marker, the table, the end marker."""
    name = re.escape(plugin)
    return re.compile(
        rf"(<!-- settings-table: {name} -->\n)(.*?)(<!-- /settings-table: {name} -->)",
        re.DOTALL,
    )


def render(readme: str, tables: dict[str, str]) -> str:
    """Return `readme` with every plugin's block replaced by its current table.

    Raises:
        ValueError: If README.md lacks the markers for a plugin.
    """
    for plugin, table in tables.items():
        match = marker_pattern(plugin).search(readme)
        if match is None:
            msg = f"README.md has no '<!-- settings-table: {plugin} -->' block"
            raise ValueError(msg)
        block = f"{match[1]}\n{table}\n\n{match[3]}"
        readme = readme[: match.start()] + block + readme[match.end() :]
    return readme


def main(argv: list[str] | None = None) -> int:
    """Rewrite README.md, or with --check report whether it is in sync."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check, change nothing")
    args = parser.parse_args(argv)
    current = README.read_text(encoding="utf-8")
    updated = render(current, {plugin: settings_table(plugin) for plugin in PLUGINS})
    if updated == current:
        print("README.md settings tables are up to date")
        return 0
    if args.check:
        print(
            "README.md settings tables are stale: run .venv/bin/python scripts/settings_tables.py"
        )
        return 1
    README.write_text(updated, encoding="utf-8")
    print("README.md settings tables regenerated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
