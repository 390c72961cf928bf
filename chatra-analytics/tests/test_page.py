"""The report page in Debian's headless Chromium: charts drawn, the marts' numbers, text inert.

The page is opened from disk, as a person opens the file. Every request it makes is recorded
(there must be none besides the file itself), and so is any console message, page error or
dialog: a script from a chat text, a blocked resource or a broken policy would show there.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

import pytest

from chatra_analytics import open_warehouse, read_figures, render_report, write_report

from .conftest import HOSTILE_KEY, HOSTILE_NAME, HOSTILE_TEXT

if t.TYPE_CHECKING:
    from pathlib import Path

    from playwright.sync_api import Browser, Page

    from .conftest import Marts


@dataclass
class OpenedPage:
    page: Page
    requests: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def open_report(browser: Browser, marts: Marts, folder: Path) -> OpenedPage:
    with open_warehouse(duckdb_path=marts.duckdb_path, postgres_url=marts.postgres_url) as wh:
        figures = read_figures(wh)
    path = folder / "report.html"
    write_report(path, render_report(figures, source="test marts"))
    page = browser.new_page()
    opened = OpenedPage(page)
    page.on("request", lambda request: opened.requests.append(request.url))
    page.on("console", lambda message: opened.problems.append(f"console: {message.text}"))
    page.on("pageerror", lambda error: opened.problems.append(f"page error: {error}"))
    page.on("dialog", lambda dialog: opened.problems.append(f"dialog: {dialog.message}"))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return opened


def bars(page: Page, chart: str) -> list[dict[str, t.Any]]:
    """Every bar of a chart: its figures (data attributes) and its drawn size."""
    return page.eval_on_selector_all(
        f"#{chart} rect",
        """rects => rects.map(r => ({
            data: Object.assign({}, r.dataset),
            series: r.getAttribute('class'),
            width: r.getBoundingClientRect().width,
            height: r.getBoundingClientRect().height,
        }))""",
    )


@pytest.fixture
def report(
    headless_browser: Browser, duckdb_marts: Marts, tmp_path: Path
) -> t.Iterator[OpenedPage]:
    opened = open_report(headless_browser, duckdb_marts, tmp_path)
    yield opened
    opened.page.close()


def test_the_charts_are_drawn_with_the_marts_numbers(report: OpenedPage) -> None:
    page = report.page
    day_bars = bars(page, "chats-per-day")
    assert all(bar["width"] > 0 and bar["height"] > 0 for bar in day_bars)
    per_day = {bar["data"]["day"]: bar["data"] for bar in day_bars}
    assert {day: (d["answered"], d["unanswered"], d["total"]) for day, d in per_day.items()} == {
        "2025-03-06": ("2", "1", "3"),
        "2025-03-08": ("3", "0", "4"),
    }
    # A stacked bar's parts are as tall as their share: 2 answered to 1 unanswered.
    first_day = [bar for bar in day_bars if bar["data"]["day"] == "2025-03-06"]
    heights = {bar["series"]: bar["height"] for bar in first_day}
    assert heights["answered"] == pytest.approx(2 * heights["unanswered"], rel=0.01)

    buckets = bars(page, "response-times")
    histogram = {bar["data"]["bucket"]: int(bar["data"]["chats"]) for bar in buckets}
    assert histogram == {
        "< 30 s": 1, "30 s to 1 min": 2, "1-2 min": 1, "2-5 min": 0, "5-15 min": 0,
        "15-60 min": 0, "> 1 h": 1,
    }  # fmt: skip
    agents = {bar["data"]["agent"]: bar for bar in bars(page, "agent-load")}
    assert {agent: bar["data"]["chats"] for agent, bar in agents.items()} == {"a1": "3", "a2": "3"}
    assert agents["a1"]["width"] == pytest.approx(agents["a2"]["width"])
    assert page.locator("#agent-load").get_by_text("<b>Marco</b>", exact=True).count() == 1

    tiles = {
        name: page.locator(f"#tile-{name} .value").get_attribute("data-value")
        for name in ("chats", "answered", "median", "missed")
    }
    assert tiles == {"chats": "7", "answered": "5", "median": "45.5", "missed": "2"}
    assert page.locator("#tile-median .value").inner_text() == "46 s"


def test_hostile_chat_text_is_shown_as_text_and_does_nothing(report: OpenedPage) -> None:
    page = report.page
    rows = page.locator("#missed-chats tbody tr")
    assert rows.count() == 2
    first = rows.nth(0)
    assert first.get_attribute("data-chat-key") == HOSTILE_KEY
    assert first.locator("td").nth(0).inner_text() == HOSTILE_NAME
    assert first.locator("td").nth(3).inner_text() == HOSTILE_TEXT
    assert rows.nth(1).locator("td").nth(3).inner_text() == "Hello?\nAnyone there?"
    # Nothing the texts hold became markup: no script, no image, no handler.
    assert page.locator("script").count() == 0
    assert page.locator("main img").count() == 0
    assert page.locator("[onmouseover], [onerror], [onload]").count() == 0
    first.hover()
    assert report.problems == []


def test_the_page_fetches_nothing(report: OpenedPage) -> None:
    assert len(report.requests) == 1
    assert report.requests[0].startswith("file://")
    policy = report.page.locator('meta[http-equiv="Content-Security-Policy"]').get_attribute(
        "content"
    )
    assert policy is not None
    assert policy.startswith("default-src 'none';")
    # The stylesheet applied (its hash matches the policy): bars are coloured, not black.
    fill = report.page.eval_on_selector(
        "#chats-per-day rect.answered", "r => getComputedStyle(r).fill"
    )
    assert fill == "rgb(47, 125, 91)"
    assert report.problems == []
