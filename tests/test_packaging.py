"""Every package builds a wheel and an sdist that stand alone and pass `twine check`."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.conftest import PACKAGES, REPO_ROOT
from tests.conftest import package_metadata as project

PLUGINS = ("tap-chatra", "target-chatra-push")


def dist_name(package: str) -> str:
    return package.replace("-", "_")


def test_every_package_has_a_wheel_and_an_sdist_that_pass_twine_check(built_dists: Path) -> None:
    files = sorted(built_dists.iterdir())
    expected = {
        f"{dist_name(package)}-{project(package)['version']}{suffix}"
        for package in PACKAGES
        for suffix in ("-py3-none-any.whl", ".tar.gz")
    }
    assert {file.name for file in files} == expected
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("package", PACKAGES)
def test_the_wheel_holds_every_file_of_the_package(built_dists: Path, package: str) -> None:
    """Schemas, templates and the like ship too, not only the Python modules."""
    module = dist_name(package)
    source = REPO_ROOT / package / module
    wanted = {
        path.relative_to(source.parent).as_posix()
        for path in source.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    wheel = built_dists / f"{module}-{project(package)['version']}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    assert wanted <= shipped, sorted(wanted - shipped)
    assert not any(name.startswith("tests/") for name in shipped)


@pytest.mark.parametrize("package", PACKAGES)
def test_the_sdist_has_what_building_the_wheel_needs(built_dists: Path, package: str) -> None:
    """`python -m build` made the wheel from the sdist; the sdist has what that needs."""
    sdist = built_dists / f"{dist_name(package)}-{project(package)['version']}.tar.gz"
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"pyproject.toml", "README.md", "PKG-INFO"} <= names


@pytest.mark.parametrize("plugin", PLUGINS)
def test_a_plugin_pins_the_chatra_client_released_with_it(plugin: str) -> None:
    """One tag releases every package: the plugin needs exactly that chatra-client."""
    client_version = project("chatra-client")["version"]
    pins = [
        Requirement(text)
        for text in project(plugin)["dependencies"]
        if Requirement(text).name == "chatra-client"
    ]
    assert [str(pin.specifier) for pin in pins] == [f"=={client_version}"]
    assert project(plugin)["version"] == client_version


@pytest.mark.parametrize("plugin", PLUGINS)
def test_version_prints_the_package_version(plugin: str) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / plugin), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.startswith(f"{plugin} v{project(plugin)['version']},")
