"""Helpers shared by the harness-adapter tests: ingest fixtures, query the views."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from evalhouse.ingest import IngestReport, ingest
from evalhouse.warehouse import Warehouse, connect

FIXTURES = Path(__file__).resolve().parent / "fixtures"

# The canonical per-item columns, in the order the tests spell out expected rows.
SAMPLE_COLS = (
    "model, benchmark, category, task, item_id, epoch, filter, split, metric, score, higher_is_better, "
    "response_time_s, tokens_per_sec, timestamp, attributes, question, response, expected"
)
# The pairing key (plus epoch) as a join condition; `filter` is NULL outside lm-eval, and NULL never
# equals NULL, so it is compared with IS NOT DISTINCT FROM.
SAME = " AND ".join(
    [f"a.{c} = b.{c}" for c in ("benchmark", "category", "task", "item_id", "epoch", "metric")]
    + ["a.filter IS NOT DISTINCT FROM b.filter"]
)
METRIC_COLS = "model, benchmark, category, task, metric, filter, value, stderr, n, higher_is_better"


def load(wh: Warehouse, *paths: str | os.PathLike[str]) -> IngestReport:
    """Ingest paths (one process) and fail loudly if anything was rejected."""
    report = ingest(wh, paths, workers=1)
    assert not report.rejected, [o.reason for o in report.rejected]
    return report


def rows(wh: Warehouse, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    con = connect(wh)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def samples(wh: Warehouse, where: str = "TRUE", params: Any = None) -> list[tuple[Any, ...]]:
    return rows(wh, f"SELECT {SAMPLE_COLS} FROM samples WHERE {where} ORDER BY ALL", params)


def metrics(wh: Warehouse, where: str = "TRUE", params: Any = None) -> list[tuple[Any, ...]]:
    return rows(wh, f"SELECT {METRIC_COLS} FROM metrics WHERE {where} ORDER BY ALL", params)
