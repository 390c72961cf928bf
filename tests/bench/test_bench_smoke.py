"""The benchmark scripts still run: `bench/run.py --quick`, every item, tiny sizes.

The figures of a quick run mean nothing; this only keeps the scripts from rotting between
`make bench` runs (a renamed setting, a changed ledger API, a sandbox CLI flag).
"""

from __future__ import annotations

import importlib
import typing as t
from pathlib import Path

from chatra_sandbox.browser import missing_reason

if t.TYPE_CHECKING:
    import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_quick_benchmark_run_writes_every_figure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    run = importlib.import_module("bench.run")
    results = tmp_path / "RESULTS.md"

    code = run.main(["--quick", "--output", str(results), "--workdir", str(tmp_path / "work")])

    assert code == 0, capsys.readouterr().err[-3000:]
    text = results.read_text(encoding="utf-8")
    for item in ("1 tap overhead", "2 tap pacing", "3 state scaling", "4 target throughput",
                 "5 target pacing", "6 latency tolerance", "7 sliding window",
                 "8 wrong keys", "10 client refresh", "inbox sqlite", "inbox postgresql",
                 "16 STATE volume", "18 STATE at 1M IDs", "27 dbt models"):  # fmt: skip
        assert f"| {item}" in text, f"item {item!r} missing from RESULTS.md"
    # Item 9 needs a PostgreSQL server; without one it says so instead of failing the run.
    assert "| 9 shared budget" in text or "not run: no PostgreSQL server" in text
    # Item 15 needs the browser; without it RESULTS.md says why instead of giving figures.
    browser_missing = missing_reason()
    if browser_missing is None:
        assert "| 15 preview page" in text, "item 15 missing from RESULTS.md"
    else:
        assert f"not measured: {browser_missing}" in text
    assert "errors" not in text
    assert "- cores (nproc):" in text
    assert "- CPU:" in text
    assert "- Python:" in text
    assert "bench/run.py --quick" in text
    # The printed table is the file's table.
    assert "| 3 state scaling" in capsys.readouterr().out
