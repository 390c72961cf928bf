"""Figures against their targets: printed as a table and written to bench/RESULTS.md."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import typing as t
from dataclasses import dataclass, field
from importlib import metadata

if t.TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

Comparison = t.Literal["<=", ">=", "=="]


@dataclass
class Figure:
    """One measured figure and, when it has one, its target.

    Attributes:
        item: The issue's item it belongs to, e.g. "1 tap overhead".
        name: What was measured.
        value: The measurement.
        unit: Unit shown after the value.
        op: How the value is compared with `target` (None: shown for context only).
        target: The target value.
        digits: Decimals shown.
        miss_note: Why the target can be missed and what would close it (shown on a miss).
    """

    item: str
    name: str
    value: float
    unit: str = ""
    op: Comparison | None = None
    target: float | None = None
    digits: int = 2
    miss_note: str = ""

    @property
    def status(self) -> str:
        """PASS, MISS, or "info" for a figure without a target."""
        if self.op is None or self.target is None:
            return "info"
        passed = {
            "<=": self.value <= self.target,
            ">=": self.value >= self.target,
            "==": self.value == self.target,
        }[self.op]
        return "PASS" if passed else "MISS"

    def shown(self, value: float | None = None) -> str:
        """The value (or another one, like the target) with its decimals and unit."""
        number = self.value if value is None else value
        text = f"{number:,.{self.digits}f}"
        return f"{text} {self.unit}".strip()

    @property
    def target_text(self) -> str:
        """The target as text, e.g. "<= 1.50"; empty without one."""
        if self.op is None or self.target is None:
            return ""
        return f"{self.op} {self.shown(self.target)}"


@dataclass
class Report:
    """Every figure of one benchmark run, plus details and notes per item."""

    command: str
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, list[str]] = field(default_factory=dict)
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    seconds: float = 0.0

    def add(self, *figures: Figure) -> None:
        """Record figures."""
        self.figures.extend(figures)

    def detail(self, item: str, line: str) -> None:
        """Record a line of raw measurements under an item."""
        self.details.setdefault(item, []).append(line)

    @property
    def misses(self) -> list[Figure]:
        """Figures that missed their target."""
        return [figure for figure in self.figures if figure.status == "MISS"]


def machine() -> dict[str, str]:
    """Where the run happened: cores, CPU model, Python, OS, package versions, commit."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:  # noqa: PTH123
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        model = platform.processor() or "unknown"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return {
        "cores (nproc)": str(os.cpu_count()),
        "CPU": model,
        "Python": platform.python_version(),
        "OS": f"{platform.system()} {platform.release()}",
        "singer-sdk": metadata.version("singer-sdk"),
        "load average at start": load,
        "commit": commit or "unknown",
    }


def table(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> list[str]:
    """A Markdown table, columns padded so it also reads well in a terminal."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)]


def figure_table(figures: Sequence[Figure]) -> list[str]:
    """The figures as a Markdown table."""
    rows = [(f.item, f.name, f.shown(), f.target_text, f.status) for f in figures]
    return table(rows, ("item", "figure", "value", "target", "status"))


def render(report: Report, *, environment: dict[str, str], preface: Sequence[str]) -> str:
    """The whole RESULTS.md."""
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench`; do not edit by hand. Ratios matter more than absolute times,",
        "which drift on shared machines.",
        "",
        f"- command: `{report.command}`",
        f"- started: {report.started.isoformat(timespec='seconds')}, took {report.seconds:.0f} s",
        *(f"- {key}: {value}" for key, value in environment.items()),
        "",
        *preface,
        "",
        "## Figures",
        "",
        *figure_table(report.figures),
        "",
    ]
    misses = report.misses
    lines += ["## Misses", ""]
    if misses:
        for figure in misses:
            lines.append(
                f"- **{figure.item}, {figure.name}**: {figure.shown()} against "
                f"{figure.target_text}. {figure.miss_note}".rstrip()
            )
    else:
        lines.append("None: every figure meets its target.")
    lines += ["", "## Raw measurements", ""]
    for item, details in sorted(report.details.items()):
        lines += [f"### {item}", "", *(f"- {line}" for line in details), ""]
    return "\n".join(lines).rstrip() + "\n"


def write(path: Path, text: str) -> None:
    """Write RESULTS.md."""
    path.write_text(text, encoding="utf-8")
