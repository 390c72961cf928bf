"""The GitHub workflows are valid and pass a security audit; a release tag is checked first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT

BIN = Path(sys.executable).parent
WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
sys.path.insert(0, str(REPO_ROOT / "scripts"))
from release_notes import changelog_entry, package_versions, release_problem  # noqa: E402


def run_tool(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / command[0]), *command[1:]],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_workflows_match_github_schema() -> None:
    result = run_tool(
        "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_pass_zizmor_offline() -> None:
    result = run_tool("zizmor", "--offline", "--no-progress", str(REPO_ROOT / ".github"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_release_publishes_on_version_tags_without_stored_tokens() -> None:
    text = (REPO_ROOT / ".github" / "workflows" / "release.yml").read_text(encoding="utf-8")
    workflow = yaml.safe_load(text)
    # PyYAML reads the key `on` as True.
    assert workflow[True] == {"push": {"tags": ["v*"]}}
    assert "secrets." not in text
    assert workflow["jobs"]["publish"]["permissions"] == {"id-token": "write"}


def test_the_current_version_can_be_released() -> None:
    (version,) = set(package_versions().values())
    changelog = (REPO_ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert release_problem(f"v{version}", package_versions(), changelog) is None


@pytest.mark.parametrize(
    ("tag", "versions", "problem"),
    [
        ("1.2.0", {"a": "1.2.0"}, "release tags look like v1.2.3"),
        ("v1.2.0", {"a": "1.2.0", "b": "1.1.0"}, "does not match the package versions: b 1.1.0"),
        ("v1.3.0", {"a": "1.3.0"}, "CHANGELOG.md has no entry '## [1.3.0]'"),
        ("v1.1.0", {"a": "1.1.0"}, "CHANGELOG.md has no entry '## [1.1.0]'"),
    ],
)
def test_a_tag_that_cannot_be_released_says_why(
    tag: str, versions: dict[str, str], problem: str
) -> None:
    changelog = "## [1.2.0] - 2026-01-02\n\n- Fixed.\n\n## [1.1.0]\n\n## [1.0.0]\n- x\n"
    assert problem in (release_problem(tag, versions, changelog) or "")


def test_release_notes_are_the_entry_of_the_version() -> None:
    changelog = "# Changelog\n\n## [1.2.0] - 2026-01-02\n\n- Fixed.\n\n## [1.1.0]\n\n- Added.\n"
    assert changelog_entry("1.2.0", changelog) == "- Fixed."
    assert changelog_entry("1.1.0", changelog) == "- Added."
    assert changelog_entry("1.2", changelog) is None
