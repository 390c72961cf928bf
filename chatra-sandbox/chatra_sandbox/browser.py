"""Debian's Chromium, headless, driven by Playwright: for the tests and benchmarks of pages.

Playwright never downloads a browser here: it drives the system's `/usr/bin/chromium` (the
Debian package `chromium`, which `make test` installs where it can). Where that browser or the
`playwright` package is missing, `missing_reason` says so, for a test to skip with it.
"""

from __future__ import annotations

import importlib.util
import os
import typing as t
from contextlib import contextmanager
from pathlib import Path

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser

CHROMIUM = Path("/usr/bin/chromium")
# Headless, and nothing that talks to the network or updates itself.
LAUNCH_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def missing_reason() -> str | None:
    """Why the browser cannot be started here, or None when it can."""
    if importlib.util.find_spec("playwright") is None:
        return "the Python package playwright is not installed (requirements-dev.txt)"
    if not os.access(CHROMIUM, os.X_OK):
        return (
            f"{CHROMIUM} is missing: install Debian's chromium package "
            "(`make test` runs scripts/ensure_chromium.py, which does so where apt is usable)"
        )
    return None


@contextmanager
def headless_chromium() -> Iterator[Browser]:
    """Start the system's Chromium headless; closed on exit."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - optional, see missing_reason

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=list(LAUNCH_ARGS), headless=True
        )
        try:
            yield browser
        finally:
            browser.close()
