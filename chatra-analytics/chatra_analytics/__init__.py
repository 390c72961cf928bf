"""The report page of the Chatra analytics models (the dbt project beside this package)."""

from __future__ import annotations

from chatra_analytics.figures import ReportFigures, read_figures
from chatra_analytics.page import render_report, write_report
from chatra_analytics.warehouse import ReportError, open_warehouse

__all__ = [
    "ReportError",
    "ReportFigures",
    "open_warehouse",
    "read_figures",
    "render_report",
    "write_report",
]
