"""The benchmark scripts still run: `bench/run.py --quick`, every item, tiny sizes.

The figures of a quick run mean nothing; this only keeps the scripts from rotting between
`make bench` runs (a renamed setting, a changed ledger API, a sandbox CLI flag). The items
run in groups (`--only`), one test each, so that parallel workers share them out. Item 27
runs dbt from the plugin venvs, which the e2e tests' `meltano` fixture installs once a run.
"""

from __future__ import annotations

import importlib
import typing as t
from pathlib import Path

import pytest

from chatra_sandbox.browser import missing_reason
from tests.e2e.conftest import meltano  # noqa: F401 - the fixture, for item 27's dbt

if t.TYPE_CHECKING:
    from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
#: `--only` of each group, and the rows its RESULTS.md must have (by their item column).
GROUPS = {
    "2,5,6,7,9": ("2 tap pacing", "5 target pacing", "6 latency tolerance", "7 sliding window"),
    "1,3": ("1 tap overhead", "3 state scaling"),
    "4,8,10": ("4 target throughput", "8 wrong keys", "10 client refresh"),
    "15": ("15 preview page",),
    "inbox": ("inbox sqlite", "inbox postgresql"),
    "16,18": ("16 STATE volume", "18 STATE at 1M IDs"),
    "25": ("25 tap at 1M IDs",),
    "27": ("27 dbt models",),
}


@pytest.fixture
def bench_run(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """bench/run.py, imported as `make bench` runs it."""
    monkeypatch.syspath_prepend(str(ROOT))
    return importlib.import_module("bench.run")


def test_the_groups_cover_every_benchmark(bench_run: ModuleType) -> None:
    covered = {item for only in GROUPS for item in only.split(",")}
    for items, _ in bench_run.WINDOWED + bench_run.SEQUENTIAL:
        assert set(items.split(",")) <= covered, f"item(s) {items} in no group of the smoke test"


@pytest.mark.parametrize("only", GROUPS)
def test_quick_benchmark_run_writes_its_figures(
    only: str,
    bench_run: ModuleType,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    if only == "27":
        # Else the bench would run `meltano install` while another worker's install runs.
        request.getfixturevalue("meltano")
    results = tmp_path / "RESULTS.md"
    work = tmp_path / "work"
    argv = ["--quick", "--only", only, "--output", str(results), "--workdir", str(work)]

    code = bench_run.main(argv)

    assert code == 0, capsys.readouterr().err[-3000:]
    text = results.read_text(encoding="utf-8")
    items = GROUPS[only]
    if only == "15" and (browser_missing := missing_reason()) is not None:
        # Without the browser, RESULTS.md says why instead of giving figures.
        assert f"not measured: {browser_missing}" in text
        items = ()
    for item in items:
        assert f"| {item}" in text, f"item {item!r} missing from RESULTS.md"
    if only == "2,5,6,7,9":
        # Item 9 needs a PostgreSQL server; without one it says so instead of failing the run.
        assert "| 9 shared budget" in text or "not run: no PostgreSQL server" in text
    assert "errors" not in text
    assert "- cores (nproc):" in text
    assert "- CPU:" in text
    assert "- Python:" in text
    assert f"bench/run.py --quick --only {only}" in text
    # The printed table is the file's table.
    printed = capsys.readouterr().out
    for item in items:
        assert f"| {item}" in printed
