"""Item 15: how fast the preview page of a large dry run opens in a real browser.

The page is written in process with the target's own MessagePage (the dry run that would feed
it is item 4's), then opened from disk in Debian's chromium through Playwright, three times;
the figure is the median time from navigation start to the end of DOMContentLoaded, by which
the page's script has parsed every row, sorted them and shown the first 200.
"""

from __future__ import annotations

import logging
import statistics
import time
import typing as t

from bench.report import Figure
from chatra_sandbox.browser import headless_chromium, missing_reason
from target_chatra_push.preview_page import MessagePage
from target_chatra_push.rendering import Outbound
from target_chatra_push.summary import Outcome

if t.TYPE_CHECKING:
    from pathlib import Path

    from bench.context import Context

ITEM = "15 preview page"
OPENS = 3
TEXT = "Hi {name}, your order {number} has shipped!\nReply here if anything is wrong."


def write_page(path: Path, rows: int) -> None:
    """A dry run's page: one row in 50 invalid, five rows per client."""
    page = MessagePage(path, dry_run=True)
    for number in range(rows):
        client = f"client-{number // 5:06}"
        body = {"clientId": client, "text": TEXT.format(name=client, number=number)}
        outbound = Outbound(resource="pushedMessages", body={**body, "groupId": "sales"},
                            key=f"[{number}]")  # fmt: skip
        if number % 50 == 0:
            page.rows.add("orders", Outcome.INVALID, outbound.key, reason="no client ID")
        else:
            page.rows.add("orders", Outcome.PREVIEWED, outbound.key, outbound)
    page.write(logging.getLogger("bench.page"))


def render(ctx: Context) -> None:
    """Item 15: write a page of `page_rows` rows, open it, time the first rows shown."""
    rows = ctx.sizes.page_rows
    reason = missing_reason()
    if reason is not None:
        ctx.report.detail(ITEM, f"not measured: {reason}")
        return
    path = ctx.folder("preview-page") / "preview.html"
    started = time.perf_counter()
    write_page(path, rows)
    write_seconds = time.perf_counter() - started

    loaded: list[float] = []
    searched: list[float] = []
    with headless_chromium() as browser:
        for _ in range(OPENS):
            page = browser.new_page()
            page.goto(path.as_uri())
            page.locator("#status").filter(has_text="Rows").wait_for()
            loaded.append(page.evaluate(
                "performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"
            ) / 1000)  # fmt: skip
            last_client = f"client-{(rows - 1) // 5:06}"
            started = time.perf_counter()
            page.locator("#search").fill(last_client)
            page.locator(".client-id", has_text=last_client).wait_for()
            searched.append(time.perf_counter() - started)
            page.close()

    ctx.report.add(
        Figure(ITEM, f"page open to first rows shown ({rows:,} rows, median of {OPENS})",
               statistics.median(loaded), "s", "<=", 2.0),
        Figure(ITEM, "search for one client, typing to rows shown (median)",
               statistics.median(searched), "s", digits=3),
        Figure(ITEM, f"page size ({rows:,} rows)", path.stat().st_size / 2**20, "MiB"),
        Figure(ITEM, "page written by the target", write_seconds, "s"),
    )  # fmt: skip
    ctx.report.detail(
        ITEM,
        f"opens: {', '.join(f'{s:.2f} s' for s in loaded)}; the search waits 120 ms after the "
        "last key press before filtering, which the search figure includes",
    )
