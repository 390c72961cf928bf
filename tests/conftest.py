"""The wheels and sdists of every package, built once a session for the packaging tests."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Every installable package: each folder of the repository with a pyproject.toml.
PACKAGES = tuple(sorted(path.parent.name for path in REPO_ROOT.glob("*/pyproject.toml")))


def package_metadata(package: str) -> dict[str, Any]:
    """The `[project]` table of a package's pyproject.toml."""
    with (REPO_ROOT / package / "pyproject.toml").open("rb") as file:
        found: dict[str, Any] = tomllib.load(file)["project"]
    return found


@pytest.fixture(scope="session")
def built_dists(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the wheel and the sdist of every package, as `python -m build` makes them.

    `--no-isolation` builds with this virtualenv's pinned hatchling instead of downloading one
    per package. The release workflow builds isolated, once, and names the folder of those
    files in CHATRA_DIST_DIR so that the tests check exactly what it publishes.
    """
    given = os.environ.get("CHATRA_DIST_DIR")
    if given:
        return Path(given)
    folder = tmp_path_factory.mktemp("dist")
    for package in PACKAGES:
        result = subprocess.run(
            [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(folder)],
            cwd=REPO_ROOT / package,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, f"building {package} failed:\n{result.stdout}{result.stderr}"
    return folder
