"""Take a screenshot of a preview or report page, e.g. for docs/preview.png.

    make demo
    .venv/bin/python scripts/screenshot_page.py \
        output/demo/chatra-push/preview.html docs/preview.png
    .venv/bin/python scripts/screenshot_page.py --ready "#chats-per-day" \
        output/demo/report.html docs/report.png

Uses Debian's chromium through Playwright, as the page tests do (chatra_sandbox.browser).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chatra_sandbox.browser import headless_chromium, missing_reason


def main(argv: list[str] | None = None) -> int:
    """Open the page from disk, wait until its rows are shown, save a full-page PNG."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path, help="the HTML page to open")
    parser.add_argument("png", type=Path, help="where to write the screenshot")
    parser.add_argument(
        "--ready",
        metavar="SELECTOR",
        help="CSS selector of an element shown once the page is ready (default: a preview "
        "page's status line)",
    )
    args = parser.parse_args(argv)
    reason = missing_reason()
    if reason is not None:
        print(f"No screenshot: {reason}", file=sys.stderr)
        return 1
    if not args.page.is_file():
        print(f"No screenshot: {args.page} is not a file", file=sys.stderr)
        return 1
    with headless_chromium() as browser:
        page = browser.new_page(viewport={"width": 1000, "height": 800})
        page.goto(args.page.resolve().as_uri())
        if args.ready:
            page.locator(args.ready).wait_for()
        else:
            page.locator("#status").filter(has_text="Rows").wait_for()
        page.screenshot(path=str(args.png), full_page=True)
    print(f"Wrote {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
