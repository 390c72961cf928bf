"""Every package builds a wheel and an sdist that stand alone and pass `twine check`."""

from __future__ import annotations

import email.parser
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


LICENSE = (REPO_ROOT / "LICENSE").read_text(encoding="utf-8")


def test_the_repository_is_licensed_apache_2() -> None:
    assert LICENSE.lstrip().startswith("Apache License\n")
    assert "Version 2.0, January 2004" in LICENSE


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_declares_the_license_and_keeps_a_copy_of_the_file(package: str) -> None:
    """The copy is what hatchling ships: a package cannot point at a file outside its folder."""
    assert project(package)["license"] == "Apache-2.0"
    assert project(package)["license-files"] == ["LICENSE"]
    assert (REPO_ROOT / package / "LICENSE").read_text(encoding="utf-8") == LICENSE


@pytest.mark.parametrize("package", PACKAGES)
def test_the_wheel_and_the_sdist_ship_the_license(built_dists: Path, package: str) -> None:
    module, version = dist_name(package), project(package)["version"]
    with zipfile.ZipFile(built_dists / f"{module}-{version}-py3-none-any.whl") as archive:
        shipped = archive.read(f"{module}-{version}.dist-info/licenses/LICENSE").decode()
        metadata = email.parser.Parser().parsestr(
            archive.read(f"{module}-{version}.dist-info/METADATA").decode()
        )
    assert shipped == LICENSE
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["License-File"] == "LICENSE"
    with tarfile.open(built_dists / f"{module}-{version}.tar.gz") as archive:
        member = archive.extractfile(f"{module}-{version}/LICENSE")
        assert member is not None
        assert member.read().decode() == LICENSE


@pytest.mark.parametrize("folder", ["", *PACKAGES])
def test_build_output_is_ignored_by_git(folder: str) -> None:
    paths = [f"{folder}/{name}/x".lstrip("/") for name in ("dist", "build")]
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", *paths],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.split() == paths, result.stderr


def test_make_dist_builds_the_published_packages_with_definitions_that_install_them() -> None:
    """`make dist` is the documented command (docs/own-project.md); the release publishes these."""
    result = subprocess.run(
        ["make", "--dry-run", "dist"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "scripts/build_dist.py --outdir dist" in result.stdout, result.stdout + result.stderr
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    try:
        import build_dist  # noqa: PLC0415 - a script, not a package
    finally:
        sys.path.remove(str(REPO_ROOT / "scripts"))
    assert set(build_dist.PUBLISHED) == set(PACKAGES) - {"chatra-sandbox"}
