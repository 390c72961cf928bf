"""Keep tap-chatra/catalog.json, the catalog meltano.yml gives tap-chatra, in step with the tap.

Meltano caches no discovered catalog for a plugin installed editable (as this repository's
are), so without a catalog of its own every `meltano run` started `tap-chatra --discover`
first (about half a second). meltano.yml names this file as tap-chatra's `catalog` extra:
Meltano applies its select and metadata rules to it and runs no discovery. It is what
`tap-chatra --discover` prints; a test fails when the two drift.

Usage:
    .venv/bin/python scripts/tap_catalog.py          # rewrite tap-chatra/catalog.json
    .venv/bin/python scripts/tap_catalog.py --check  # exit 1 if it is stale
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "tap-chatra" / "catalog.json"


def discovered() -> str:
    """`tap-chatra --discover` from this virtualenv, as the file holds it."""
    executable = Path(sys.executable).parent / "tap-chatra"
    output = subprocess.run(
        [str(executable), "--discover"], check=True, capture_output=True, text=True, timeout=120
    ).stdout
    return json.dumps(json.loads(output), indent=2) + "\n"


def main() -> int:
    """Rewrite the catalog, or with --check say whether it is stale."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args()
    text = discovered()
    current = CATALOG.read_text(encoding="utf-8") if CATALOG.exists() else ""
    if args.check:
        if current != text:
            print(f"{CATALOG.relative_to(ROOT)} is stale: run scripts/tap_catalog.py")
            return 1
        return 0
    CATALOG.write_text(text, encoding="utf-8")
    print(f"{CATALOG.relative_to(ROOT)} written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
