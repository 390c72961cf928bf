"""chatra-report reads the marts on DuckDB and PostgreSQL alike, and fails in one clear line."""

from __future__ import annotations

import datetime as dt
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from chatra_analytics.charts import nice_ceiling
from chatra_analytics.figures import bucket_counts, read_figures
from chatra_analytics.page import duration
from chatra_analytics.warehouse import ReportError, open_warehouse

from .conftest import AS_OF, DAY, HOSTILE_TEXT, Marts

CLI = Path(sys.executable).with_name("chatra-report")


def figures_of(marts: Marts):
    with open_warehouse(duckdb_path=marts.duckdb_path, postgres_url=marts.postgres_url) as wh:
        return read_figures(wh)


@pytest.mark.parametrize(
    "marts_fixture",
    ["duckdb_marts", pytest.param("postgres_marts", marks=pytest.mark.postgres)],
)
def test_the_figures_are_the_marts_on_either_engine(request, marts_fixture):
    figures = figures_of(request.getfixturevalue(marts_fixture))
    # Every day from the first to the last, the day without chats too.
    assert [(d.day, d.answered, d.unanswered, d.agent_only) for d in figures.days] == [
        (DAY, 2, 1, 0),
        (DAY + dt.timedelta(days=1), 0, 0, 0),
        (DAY + dt.timedelta(days=2), 3, 0, 1),
    ]
    assert (figures.chats, figures.answered) == (7, 5)
    assert {b.label: b.chats for b in figures.buckets} == {
        "< 30 s": 1,
        "30 s to 1 min": 2,
        "1-2 min": 1,
        "2-5 min": 0,
        "5-15 min": 0,
        "15-60 min": 0,
        "> 1 h": 1,
    }
    assert figures.median_first_response_seconds == 45.5
    assert [(a.agent_id, a.chats, a.messages, a.first_responses) for a in figures.agents] == [
        ("a1", 3, 7, 3),
        ("a2", 3, 6, 2),
    ]
    assert [m.last_client_text for m in figures.missed] == [HOSTILE_TEXT, "Hello?\nAnyone there?"]
    assert figures.missed_total == 2
    assert figures.as_of == AS_OF


def test_response_time_buckets_include_their_lower_bound():
    counts = {b.label: b.chats for b in bucket_counts([0, 29.999, 30, 60, 3599.9, 3600, 10**6])}
    assert counts["< 30 s"] == 2
    assert counts["30 s to 1 min"] == 1
    assert counts["1-2 min"] == 1
    assert counts["15-60 min"] == 1
    assert counts["> 1 h"] == 2


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, "none"), (0.4, "0 s"), (59.6, "1 min"), (185, "3 min 5 s"), (7800, "2 h 10 min")],
)
def test_durations_read_as_a_person_would(seconds, shown):
    assert duration(seconds) == shown


@pytest.mark.parametrize(
    ("value", "top"), [(0, 1), (1, 1), (3, 5), (17, 20), (21, 25), (999, 1000)]
)
def test_chart_axes_end_on_a_round_number(value, top):
    assert nice_ceiling(value) == top


def test_the_page_is_written_for_its_owner_only(duckdb_marts, tmp_path):
    output = tmp_path / "pages" / "report.html"
    result = subprocess.run(
        [str(CLI), *duckdb_marts.args, "--output", str(output)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(output.resolve())
    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    assert "<script>alert" not in output.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Give the warehouse: a DuckDB file (--duckdb) or a PostgreSQL URL (--postgres)."),
        (["--duckdb", "missing.duckdb"], "No DuckDB file at missing.duckdb"),
        (["--schema", "analytics; drop table x"], "is not a plain name"),
        (["--schema", "elsewhere"], "No table elsewhere.chats in"),
        (
            ["--postgres", "postgresql://reporter:s3cret-pw@127.0.0.1:1/db"],
            "Cannot connect to PostgreSQL 127.0.0.1:1/db",
        ),
        (["--postgres", "host=x password=s3cret-pw =oops"], "The PostgreSQL URL is not valid"),
    ],
)
def test_bad_input_gets_one_line_without_secrets(duckdb_marts, tmp_path, args, message):
    if "--schema" in args:
        args = [*duckdb_marts.args, *args]
    result = subprocess.run(
        [str(CLI), *args, "--output", str(tmp_path / "report.html")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert result.stderr.startswith("chatra-report: ")
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout
    assert not (tmp_path / "report.html").exists()


def test_open_warehouse_wants_exactly_one_warehouse(tmp_path):
    with pytest.raises(ReportError, match="Give the warehouse"):
        open_warehouse(duckdb_path=tmp_path / "a.duckdb", postgres_url="postgresql://x/y")
