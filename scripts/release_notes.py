"""Check that a release tag matches every package, and print its CHANGELOG.md entry.

The release workflow runs this on a `v*` tag before building anything: the tag must name the
version of every package (they are released together, and the plugins pin the chatra-client
of the same version), and CHANGELOG.md must have an entry for it, which becomes the GitHub
release's notes.

Usage:
    python scripts/release_notes.py v0.2.0    # prints the 0.2.0 entry, or exits 1 saying why
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHANGELOG = ROOT / "CHANGELOG.md"


def package_versions() -> dict[str, str]:
    """The version of every package of the repository (each folder with a pyproject.toml)."""
    versions = {}
    for pyproject in sorted(ROOT.glob("*/pyproject.toml")):
        with pyproject.open("rb") as file:
            versions[pyproject.parent.name] = tomllib.load(file)["project"]["version"]
    return versions


def changelog_entry(version: str, changelog: str) -> str | None:
    """The text under `## [version]` up to the next `## ` heading; None when there is none."""
    heading = re.compile(rf"^## \[{re.escape(version)}\].*$", re.MULTILINE)
    found = heading.search(changelog)
    if found is None:
        return None
    following = re.compile(r"^## ", re.MULTILINE).search(changelog, found.end())
    end = following.start() if following else len(changelog)
    return changelog[found.end() : end].strip()


def release_problem(tag: str, versions: dict[str, str], changelog: str) -> str | None:
    """Why `tag` cannot be released, in one line; None when it can."""
    if not tag.startswith("v"):
        return f"release tags look like v1.2.3, not {tag!r}"
    version = tag[1:]
    others = sorted(f"{name} {found}" for name, found in versions.items() if found != version)
    if others:
        return f"tag {tag} does not match the package versions: {', '.join(others)}"
    if not changelog_entry(version, changelog):
        return f"CHANGELOG.md has no entry '## [{version}]' with text under it"
    return None


def main(argv: list[str] | None = None) -> int:
    """Print the release notes of the tag given, or one line saying why it cannot be released."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: release_notes.py TAG", file=sys.stderr)
        return 2
    changelog = CHANGELOG.read_text(encoding="utf-8")
    problem = release_problem(args[0], package_versions(), changelog)
    if problem:
        print(f"Cannot release: {problem}", file=sys.stderr)
        return 1
    print(changelog_entry(args[0][1:], changelog))
    return 0


if __name__ == "__main__":
    sys.exit(main())
