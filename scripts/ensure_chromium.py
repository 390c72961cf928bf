"""`make test` runs this first: install Debian's chromium for the page tests, where possible.

It never fails the build. Where the browser is missing and cannot be installed (no apt-get,
not root, no package mirror), it prints why, and the tests that open pages skip with the
same reason (chatra_sandbox.browser.missing_reason).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from chatra_sandbox.browser import CHROMIUM

APT_TIMEOUT_SECONDS = 900


def apt_get(*args: str) -> str | None:
    """Run apt-get quietly; None when it worked, else why not."""
    command = ["apt-get", "-q", *args]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        result = subprocess.run(
            command,
            env=env,
            capture_output=True,
            text=True,
            timeout=APT_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"`{' '.join(command)}` took over {APT_TIMEOUT_SECONDS} s"
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        return f"`{' '.join(command)}` failed (exit {result.returncode}): {last}"
    return None


def main() -> int:
    """Install chromium unless it is there or cannot be installed; always exit 0."""
    if CHROMIUM.exists():
        return 0
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        print(f"{CHROMIUM} is missing and apt-get is not usable (needs root): page tests skip.")
        return 0
    print(f"{CHROMIUM} is missing: installing Debian's chromium package for the page tests...")
    problem = apt_get("update") or apt_get("install", "-y", "chromium")
    if problem is not None:
        print(f"Could not install chromium ({problem}): page tests skip.")
    elif not CHROMIUM.exists():
        print(f"chromium installed, but {CHROMIUM} is still missing: page tests skip.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
