"""Chart geometry for the report's inline SVG: bars with their numbers, drawn by the template.

Every bar carries the figures it stands for (the template writes them as data attributes and
a tooltip), so what a chart shows can be checked against the marts.
"""

from __future__ import annotations

import math
import typing as t
from dataclasses import dataclass

if t.TYPE_CHECKING:
    from chatra_analytics.figures import AgentLoad, DayChats, ResponseBucket

WIDTH = 720
PLOT_TOP = 16
PLOT_LEFT = 48
PLOT_HEIGHT = 200
LABEL_SPACE = 40
LABEL_Y = PLOT_TOP + PLOT_HEIGHT + 16
HEIGHT = PLOT_TOP + PLOT_HEIGHT + LABEL_SPACE


@dataclass(frozen=True)
class Rect:
    """One drawn rectangle: where, which series, and the figures it stands for."""

    x: float
    y: float
    width: float
    height: float
    series: str
    title: str
    data: dict[str, str]


@dataclass(frozen=True)
class Label:
    """A text on the chart (axis labels, category names)."""

    x: float
    y: float
    text: str
    anchor: str = "middle"


@dataclass(frozen=True)
class Chart:
    """An SVG chart: its size, gridlines, rectangles and labels."""

    name: str
    width: float
    height: float
    grid: list[tuple[float, str]]
    grid_left: float
    rects: list[Rect]
    labels: list[Label]


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least `value` (>= 1)."""
    if value <= 1:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if value <= step * power)


def _grid(top: float) -> list[tuple[float, str]]:
    lines = []
    for fraction in (0, 0.25, 0.5, 0.75, 1):
        value = top * fraction
        y = PLOT_TOP + PLOT_HEIGHT * (1 - fraction)
        lines.append((y, f"{value:g}"))
    return lines


def _column_chart(name: str, top: float, rects: list[Rect], labels: list[Label]) -> Chart:
    """Columns over the full width, a grid up to `top`, their labels under the plot."""
    return Chart(
        name, WIDTH, PLOT_TOP + PLOT_HEIGHT + LABEL_SPACE, _grid(top), PLOT_LEFT, rects, labels
    )


def chats_per_day(days: list[DayChats]) -> Chart:
    """Stacked bars per day: answered, unanswered and agent-only chats."""
    top = nice_ceiling(max((day.total for day in days), default=0))
    slot = (WIDTH - PLOT_LEFT) / max(len(days), 1)
    bar = max(slot * 0.7, 1)
    rects: list[Rect] = []
    labels: list[Label] = []
    every = max(1, math.ceil(len(days) / 14))
    for index, day in enumerate(days):
        x = PLOT_LEFT + index * slot + (slot - bar) / 2
        base = float(PLOT_TOP + PLOT_HEIGHT)
        data = {
            "day": day.day.isoformat(),
            "answered": str(day.answered),
            "unanswered": str(day.unanswered),
            "agent-only": str(day.agent_only),
            "total": str(day.total),
        }
        title = (
            f"{day.day.isoformat()}: {day.total} chats ({day.answered} answered, "
            f"{day.unanswered} unanswered)"
        )
        for series, count in (
            ("answered", day.answered),
            ("unanswered", day.unanswered),
            ("agent-only", day.agent_only),
        ):
            height = PLOT_HEIGHT * count / top
            if count:
                rects.append(Rect(x, base - height, bar, height, series, title, data))
            base -= height
        if index % every == 0:
            labels.append(
                Label(x + bar / 2, PLOT_TOP + PLOT_HEIGHT + 16, day.day.strftime("%d %b"))
            )
    return _column_chart("chats-per-day", top, rects, labels)


def response_times(buckets: list[ResponseBucket]) -> Chart:
    """A histogram of first response times."""
    top = nice_ceiling(max((bucket.chats for bucket in buckets), default=0))
    slot = (WIDTH - PLOT_LEFT) / max(len(buckets), 1)
    bar = slot * 0.8
    rects, labels = [], []
    for index, bucket in enumerate(buckets):
        x = PLOT_LEFT + index * slot + (slot - bar) / 2
        height = PLOT_HEIGHT * bucket.chats / top
        rects.append(
            Rect(
                x,
                PLOT_TOP + PLOT_HEIGHT - height,
                bar,
                height,
                "responses",
                f"{bucket.label}: {bucket.chats} chats",
                {"bucket": bucket.label, "chats": str(bucket.chats)},
            )
        )
        labels.append(Label(x + bar / 2, PLOT_TOP + PLOT_HEIGHT + 16, bucket.label))
    return _column_chart("response-times", top, rects, labels)


def agent_load(agents: list[AgentLoad]) -> Chart:
    """Horizontal bars: chats per agent over the period."""
    row, name_space = 28, 140
    top = nice_ceiling(max((agent.chats for agent in agents), default=0))
    span = WIDTH - name_space - 60
    rects, labels = [], []
    for index, agent in enumerate(agents):
        y = 8 + index * row
        width = span * agent.chats / top
        rects.append(
            Rect(
                name_space,
                y,
                width,
                row - 8,
                "agents",
                f"{agent.agent_name}: {agent.chats} chats, {agent.messages} messages, "
                f"{agent.first_responses} first responses",
                {
                    "agent": agent.agent_id,
                    "chats": str(agent.chats),
                    "messages": str(agent.messages),
                    "first-responses": str(agent.first_responses),
                },
            )
        )
        labels.append(Label(name_space - 8, y + row / 2, agent.agent_name, "end"))
        labels.append(Label(name_space + width + 6, y + row / 2, str(agent.chats), "start"))
    return Chart("agent-load", WIDTH, 16 + len(agents) * row, [], name_space, rects, labels)
