"""The report page: one HTML file with everything inline (styles, SVG charts), nothing to fetch.

A Content-Security-Policy allows only its own stylesheet: no script, no request of any kind,
so the page shows the same offline and a hostile chat text can do nothing but be read.
Jinja2 escapes every value. The page holds chat texts and client names (personal data), so
the file is written readable by its owner only.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import typing as t
from importlib.resources import files

import jinja2
from markupsafe import Markup

from chatra_analytics import charts

if t.TYPE_CHECKING:
    from pathlib import Path

    from chatra_analytics.figures import ReportFigures

_TEMPLATES = files("chatra_analytics") / "templates"


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def duration(seconds: float | None) -> str:
    """A first response time as a person reads it: `42 s`, `3 min 5 s`, `2 h 10 min`."""
    if seconds is None:
        return "none"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, rest = divmod(whole // 60, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def render_report(figures: ReportFigures, *, title: str = "Chatra chats", source: str = "") -> str:
    """The whole page as one string."""
    environment = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: (_TEMPLATES / name).read_text("utf-8")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["duration"] = duration
    style = (_TEMPLATES / "report.css").read_text("utf-8")
    return environment.get_template("report.html.j2").render(
        title=title,
        source=source,
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        figures=figures,
        day_chart=charts.chats_per_day(figures.days),
        response_chart=charts.response_times(figures.buckets),
        agent_chart=charts.agent_load(figures.agents),
        style=Markup(style),  # noqa: S704 - the package's own file
        policy=f"default-src 'none'; style-src '{_sha256(style)}'; base-uri 'none'; "
        "form-action 'none'",
    )


def write_report(path: Path, page: str) -> None:
    """Write the page to `path`, replacing it whole, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as out:
            out.write(page)
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
