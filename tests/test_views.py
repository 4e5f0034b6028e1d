"""Golden tests of the summary views: tiny data with NULLs, duplicates, an empty run, non-ASCII names."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from evalhouse.ingest import ingest
from evalhouse.warehouse import Warehouse, connect, frame


def _frame(wh: Warehouse, sql: str) -> pl.DataFrame:
    return frame(connect(wh), sql)


def _write(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def test_golden_summaries(wh: Warehouse, tmp_path: Path) -> None:
    items = [
        {"model": "モデル甲", "category": "数学", "test_name": "t1", "score": 1.0},
        {"model": "モデル甲", "category": "数学", "test_name": "t1", "score": 0.0},  # the same item twice
        {"model": "モデル甲", "benchmark": "b", "task_index": 0, "score": 0.5, "response_time": None},
        {"model": "m2", "category": "数学", "test_name": "t1", "score": 0.25},
    ]
    _write(tmp_path / "a_results.json", {"metadata": {"timestamp": None}, "results": items})
    _write(
        tmp_path / "ab.json",
        {
            "baseline": {"model": "m2", "results": [{"question": "q?", "response": "r"}],
                         "evaluations": [{"correct": True}], "test_cases": []},
            "improved": {"model": "empty-run", "results": [], "evaluations": [], "test_cases": []},
        },
    )  # fmt: skip
    ingest(wh, [tmp_path])

    got = _frame(wh, "SELECT * FROM model_summary ORDER BY model, metric")
    sd = statistics.stdev([1.0, 0.0, 0.5])
    expected = pl.DataFrame(
        {
            "model": ["m2", "m2", "モデル甲"],
            "metric": ["correct", "score", "score"],
            "n": [1, 1, 3],
            "mean": [1.0, 0.25, 0.5],
            "std": [None, None, sd],
            "sem": [None, None, sd / math.sqrt(3)],
            "min": [1.0, 0.25, 0.0],
            "median": [1.0, 0.25, 0.5],
            "max": [1.0, 0.25, 1.0],
        },
        schema_overrides={"n": pl.Int64},
    )
    assert_frame_equal(got, expected)

    got = _frame(wh, "SELECT model, category, metric, n, mean FROM model_category_summary ORDER BY ALL")
    expected = pl.DataFrame(
        {
            "model": ["m2", "m2", "モデル甲", "モデル甲"],
            "category": ["unknown", "数学", "b", "数学"],
            "metric": ["correct", "score", "score", "score"],
            "n": [1, 1, 1, 2],
            "mean": [1.0, 0.25, 0.5, 0.5],
        },
        schema_overrides={"n": pl.Int64},
    )
    assert_frame_equal(got, expected)

    got = _frame(wh, "SELECT model, benchmark, n FROM benchmark_summary ORDER BY ALL")
    assert got.rows() == [("m2", "unknown", 1), ("m2", "unknown", 1), ("モデル甲", "b", 1), ("モデル甲", "unknown", 2)]

    got = _frame(wh, "SELECT model, runs, items FROM models ORDER BY model")
    assert got.rows() == [("empty-run", 1, 0), ("m2", 2, 2), ("モデル甲", 1, 3)]
