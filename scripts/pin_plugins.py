"""Re-pin the third-party Meltano plugins' dependencies in plugin-constraints/.

Each third-party plugin in meltano.yml installs with `-c plugin-constraints/<name>.txt`, so
its whole dependency tree is pinned like the project's own (constraints.txt). After changing a
plugin's version in meltano.yml, empty its constraints file, run `meltano install`, then run
this script to record what was resolved:

    .venv/bin/python scripts/pin_plugins.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS_DIR = ROOT / "plugin-constraints"
VENVS = ROOT / ".meltano"
HEADER = (
    "# Pins for the {name} plugin venv, written by scripts/pin_plugins.py from what\n"
    "# `meltano install` resolved. Referenced from its pip_url in meltano.yml.\n"
)


def frozen_requirements(python: Path) -> list[str]:
    """Return `name==version` lines for every package in the venv of `python`."""
    uv = Path(sys.executable).parent / "uv"
    result = subprocess.run(
        [str(uv), "pip", "freeze", "--python", str(python)],
        check=True,
        capture_output=True,
        text=True,
    )
    return sorted((line for line in result.stdout.splitlines() if "==" in line), key=str.lower)


def main() -> int:
    """Rewrite every constraints file whose plugin venv exists; report the others."""
    missing = []
    for constraints in sorted(CONSTRAINTS_DIR.glob("*.txt")):
        name = constraints.stem
        pythons = list(VENVS.glob(f"*/{name}/venv/bin/python"))
        if not pythons:
            missing.append(name)
            continue
        lines = frozen_requirements(pythons[0])
        constraints.write_text(HEADER.format(name=name) + "\n".join(lines) + "\n")
        print(f"{constraints.relative_to(ROOT)}: {len(lines)} pins")
    if missing:
        print(f"not installed (run `meltano install` first): {', '.join(missing)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
