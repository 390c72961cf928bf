"""Build the published packages into dist/, with Meltano definitions that install those wheels.

`make dist` runs this. It writes, into the folder given (default dist/):

- the wheel and the sdist of chatra-client, tap-chatra, target-chatra-push, chatra-webhooks and
  chatra-analytics (the `chatra-report` command);
- constraints.txt, a copy of the repository's pins (the versions every test ran with);
- hub/tap-chatra.yml, hub/target-chatra-push.yml and hub/chatra-webhooks.yml: the definitions
  of hub/ with a pip_url that installs these wheels under those pins, for
  `meltano add --plugin-type extractor --from-ref dist/hub/tap-chatra.yml tap-chatra`.

The paths in each pip_url are absolute: move the folder, and run this again where it lands.
Builds use this virtualenv's pinned build backend (`--no-isolation`), so nothing is downloaded.

Usage:
    .venv/bin/python scripts/build_dist.py [--outdir DIR]
    .venv/bin/python scripts/build_dist.py --outdir DIR --definitions-only  # wheels already there
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
#: The packages published to the package index (chatra-sandbox is a test tool and is not).
PUBLISHED = (
    "chatra-client",
    "tap-chatra",
    "target-chatra-push",
    "chatra-webhooks",
    "chatra-analytics",
)
#: Each Meltano plugin, its definition in hub/, and the packages its pip_url installs.
PLUGINS = {
    "tap-chatra": ("extractors", ("tap-chatra", "chatra-client")),
    "target-chatra-push": ("loaders", ("target-chatra-push", "chatra-client")),
    "chatra-webhooks": ("utilities", ("chatra-webhooks",)),
}
HEADER = "# Written by scripts/build_dist.py (make dist): installs the wheels beside this folder.\n"


def version(package: str) -> str:
    """The version in a package's pyproject.toml."""
    with (ROOT / package / "pyproject.toml").open("rb") as file:
        found: str = tomllib.load(file)["project"]["version"]
    return found


def wheel(outdir: Path, package: str) -> Path:
    """The path of a package's wheel in `outdir`."""
    return outdir / f"{package.replace('-', '_')}-{version(package)}-py3-none-any.whl"


def build(package: str, outdir: Path) -> None:
    """Build a package's sdist, then its wheel from that sdist, into `outdir`."""
    command = [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(outdir)]
    result = subprocess.run(
        [*command, str(ROOT / package)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.exit(f"building {package} failed:\n{result.stdout}{result.stderr}")


def definition(plugin: str, outdir: Path) -> str:
    """The YAML of hub/'s definition of `plugin`, installing the wheels in `outdir`."""
    plugin_type, packages = PLUGINS[plugin]
    yaml = YAML()
    yaml.indent(mapping=2, sequence=2, offset=0)
    yaml.width = 10_000
    found: dict[str, Any] = yaml.load((ROOT / "hub" / plugin_type / f"{plugin}.yml").read_text())
    wheels = " ".join(str(wheel(outdir, package)) for package in packages)
    found["pip_url"] = f"{wheels} -c {outdir / 'constraints.txt'}"
    buffer = io.StringIO()
    yaml.dump(found, buffer)
    # hub/'s own header says the file is generated from the plugins; this one is not.
    text = buffer.getvalue()
    return HEADER + text[text.index("\n") + 1 :] if text.startswith("#") else HEADER + text


def write_definitions(outdir: Path) -> None:
    """Write the pins and the definitions that install the wheels in `outdir`."""
    missing = [package for package in PUBLISHED if not wheel(outdir, package).is_file()]
    if missing:
        sys.exit(f"no wheel of {', '.join(missing)} in {outdir}: build them first")
    shutil.copyfile(ROOT / "constraints.txt", outdir / "constraints.txt")
    (outdir / "hub").mkdir(exist_ok=True)
    for plugin in PLUGINS:
        (outdir / "hub" / f"{plugin}.yml").write_text(definition(plugin, outdir), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Build everything into the output folder; print what was written."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outdir", type=Path, default=ROOT / "dist", help="default: dist/")
    parser.add_argument(
        "--definitions-only",
        action="store_true",
        help="build nothing: write constraints.txt and hub/ for the wheels in --outdir",
    )
    args = parser.parse_args(argv)
    outdir: Path = args.outdir.resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    if not args.definitions_only:
        for package in PUBLISHED:
            build(package, outdir)
    write_definitions(outdir)
    for path in sorted(outdir.rglob("*")):
        if path.is_file():
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
