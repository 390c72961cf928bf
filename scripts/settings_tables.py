"""Regenerate the docs' settings tables from the plugins' own `--about --format=markdown`.

The plugins' settings schemas are the single source of truth; each plugin's page in docs/
(`docs/tap.md`, `docs/target.md`) holds a copy of its settings table between marker comments
such as

    <!-- settings-table: tap-chatra -->
    ...
    <!-- /settings-table: tap-chatra -->

Usage:
    .venv/bin/python scripts/settings_tables.py          # rewrite the pages
    .venv/bin/python scripts/settings_tables.py --check  # exit 1 if a page is stale
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from plugin_about import PLUGINS, about_output

ROOT = Path(__file__).resolve().parent.parent
# The page that holds each plugin's settings table.
PAGES = {"tap-chatra": ROOT / "docs" / "tap.md", "target-chatra-push": ROOT / "docs" / "target.md"}


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
    """The page's block for `plugin`: the start marker, the table, the end marker."""
    name = re.escape(plugin)
    return re.compile(
        rf"(<!-- settings-table: {name} -->\n)(.*?)(<!-- /settings-table: {name} -->)",
        re.DOTALL,
    )


def render(page: str, plugin: str, table: str) -> str:
    """Return `page` with `plugin`'s block replaced by its current table.

    Raises:
        ValueError: If the page lacks the markers for the plugin.
    """
    match = marker_pattern(plugin).search(page)
    if match is None:
        msg = f"the page has no '<!-- settings-table: {plugin} -->' block"
        raise ValueError(msg)
    block = f"{match[1]}\n{table}\n\n{match[3]}"
    return page[: match.start()] + block + page[match.end() :]


def main(argv: list[str] | None = None) -> int:
    """Rewrite the pages, or with --check report whether they are in sync."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check, change nothing")
    args = parser.parse_args(argv)
    stale = []
    for plugin in PLUGINS:
        path = PAGES[plugin]
        current = path.read_text(encoding="utf-8")
        updated = render(current, plugin, settings_table(plugin))
        if updated == current:
            continue
        stale.append(path.relative_to(ROOT))
        if not args.check:
            path.write_text(updated, encoding="utf-8")
    if not stale:
        print("settings tables are up to date")
        return 0
    names = ", ".join(str(path) for path in stale)
    if args.check:
        print(f"stale settings tables in {names}: run .venv/bin/python scripts/settings_tables.py")
        return 1
    print(f"settings tables regenerated in {names}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
