"""`make bench` in miniature: bench/run.py --quick runs every step and writes the expected results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_bench_quick_writes_results(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--shapes", "so8t-results", "--sizes", "10,20",
         "--out", str(tmp_path), "--work", str(tmp_path / "work")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((tmp_path / "results.json").read_text())
    assert {"date", "quick", "reps", "machine", "memory_measure", "corpora", "steps", "skipped", "targets"} <= set(res)
    assert res["quick"] is True and res["reps"] == 1
    assert {"nproc", "ram_gb", "cpu", "python", "duckdb", "polars"} <= set(res["machine"])
    assert res["corpora"]["so8t-results-20"]["files"] == 20 and res["corpora"]["so8t-results-20"]["rows"] == 2000
    names = {(s["name"], s["corpus"]) for s in res["steps"]}
    floor = "floor: duckdb + sha256 + type check + two tables"
    for step in ("naive loader", "duckdb read_json COPY", floor, "cold ingest", "re-ingest unchanged",
                 "ingest 1 new file"):  # fmt: skip
        assert (step, "so8t-results-10") in names and (step, "so8t-results-20") in names
    assert ("summary query in process", "so8t-results-20 x10") in names and ("evalhouse --help", None) in names
    steps = {(s["name"], s["corpus"]): s for s in res["steps"]}
    assert steps[("cold ingest", "so8t-results-20")]["extra"]["rows"] == 2000
    # The 10x warehouse: the 20-run warehouse (plus the one new file, 100 rows) hard-linked ten times.
    assert steps[("summary query in process", "so8t-results-20 x10")]["extra"]["score_rows"] == 10 * (2000 + 100)
    for s in res["steps"]:
        assert s["wall_s"] > 0 and s["peak_mb"] > 0 and s["max_rss_mb"] > 0
        assert (s["vs_naive"] is not None) == (s["name"] in ("duckdb read_json COPY", floor, "cold ingest",
                                                             "re-ingest unchanged", "ingest 1 new file"))  # fmt: skip
    assert {t["target"] for t in res["targets"]} >= {"re-ingest unchanged corpus < 1 s", "evalhouse --help < 0.3 s"}
    # Each so8t-results target not met names its floor: the floor step's figure beside DuckDB's.
    wall, cpu = (t["measured"] for t in res["targets"] if t["target"].startswith("ingest so8t-results")
                 and "naive" not in t["target"])  # fmt: skip
    assert "; floor " in wall and "x the DuckDB step" in wall and "CPU-s per 1M rows, " in cpu.split("; floor ")[1]
    md = (tmp_path / "results.md").read_text()
    assert md.startswith("# evalhouse benchmark results") and "| cold ingest | so8t-results-20 |" in md
