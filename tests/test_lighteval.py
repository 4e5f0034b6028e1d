"""lighteval: results JSON (with bare NaN, averages) and details Parquet (built here with pyarrow)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evalhouse.adapters.base import dumps, question_key
from evalhouse.errors import BadResultFile
from evalhouse.ingest import read_source
from evalhouse.warehouse import Warehouse
from tests._harness import FIXTURES, load, metrics, rows, samples

RESULTS = FIXTURES / "lighteval" / "results" / "openai" / "gpt2" / "results_2024-05-01T12-00-00.000000.json"
TIME = "2024-05-01T12-00-00.000000"
TASK = "lighteval|mmlu:anatomy|5"


def write_details(root: Path, metric_values: list[object]) -> Path:
    """A details file in lighteval's layout: details/<model>/<time>/details_<task>_<time>.parquet."""
    folder = root / "details" / "openai" / "gpt2" / TIME
    folder.mkdir(parents=True)
    n = len(metric_values)
    docs = [
        {"query": "Which bone is in the thigh?", "choices": [" femur", " ulna"], "gold_index": [0], "id": ""},
        {"query": "How many chambers has the heart?", "choices": [" 2", " 4"], "gold_index": [1], "id": ""},
        {"query": "Which organ filters blood?", "choices": [" kidney", " lung"], "gold_index": [0], "id": ""},
    ][:n]
    table = pa.table({
        "doc": docs,
        "model_response": [{"text": [" femur"]}, {"text": [" 2"]}, {"text": [" kidney"]}][:n],
        "metric": [{"acc": v} for v in metric_values],
    })  # fmt: skip
    path = folder / f"details_{TASK}_{TIME}.parquet"
    pq.write_table(table, path)
    return path


def test_results_value_by_value(wh: Warehouse) -> None:
    report = load(wh, RESULTS)
    assert [o.format for o in report.offers] == ["lighteval"]
    gpt2 = "openai/gpt2"
    # "all" and "mmlu:_average" are averages of other rows: not stored as rows; maj@8 is a bare NaN
    assert metrics(wh) == [
        (gpt2, "gsm8k", "gsm8k", "leaderboard|gsm8k|5", "qem", None, 0.0, 0.0, None, True),
        (gpt2, "mmlu", "anatomy", "lighteval|mmlu:anatomy|5", "acc", None, 0.25, 0.25, None, True),
        (gpt2, "mmlu", "astronomy", "lighteval|mmlu:astronomy|5", "acc", None, 0.5, 0.2886751345948129, None, True),
    ]
    [(started, meta)] = rows(wh, "SELECT started_at, metadata FROM runs")
    assert started == datetime(2024, 5, 1, 12)
    assert json.loads(meta)["averages"] == {
        "all": {"acc": 0.375, "acc_stderr": 0.26933756729740643, "qem": 0.0, "qem_stderr": 0.0},
        "lighteval|mmlu:_average|5": {"acc": 0.375, "acc_stderr": 0.26933756729740643},
    }


def test_details_parquet_value_by_value(tmp_path: Path, wh: Warehouse) -> None:
    path = write_details(tmp_path, [1.0, 0.0, float("nan")])
    report = load(wh, path)
    assert [o.format for o in report.offers] == ["lighteval"]
    head = ("openai/gpt2", "mmlu", "anatomy", TASK)
    # the NaN row is missing, not a score; an empty doc id falls back to a key of the item's content (rows are
    # in the order the model answered, so a row's position is no key)
    thigh = {"query": "Which bone is in the thigh?", "choices": [" femur", " ulna"], "gold_index": [0], "gold": []}
    heart = {"query": "How many chambers has the heart?", "choices": [" 2", " 4"], "gold_index": [1], "gold": []}
    assert sorted(samples(wh), key=repr) == sorted([
        (*head, question_key(dumps(thigh)), 0, None, None, "acc", 1.0, True, None, None, None, None,
         "Which bone is in the thigh?", " femur", " femur"),
        (*head, question_key(dumps(heart)), 0, None, None, "acc", 0.0, True, None, None, None, None,
         "How many chambers has the heart?", " 2", " 4"),
    ], key=repr)  # fmt: skip
    assert rows(wh, "SELECT started_at, n_items FROM runs") == [(datetime(2024, 5, 1, 12), 2)]


def test_details_with_a_text_metric_are_rejected(tmp_path: Path) -> None:
    path = write_details(tmp_path, ["high", "0"])
    with pytest.raises(BadResultFile) as err:
        read_source(str(path), "0" * 64)
    assert (err.value.field, err.value.reason) == (
        "row 0.metric.acc", "'high' is not a score (a number, true/false or C/I/P/N)")  # fmt: skip


def test_nan_never_becomes_a_score(tmp_path: Path) -> None:
    doc = json.loads(RESULTS.read_text().replace("NaN", "null"))
    doc["results"]["lighteval|mmlu:anatomy|5"]["acc"] = float("nan")
    path = tmp_path / "results_x.json"
    path.write_text(json.dumps(doc))  # Python writes a bare NaN
    _fmt, [run], _deps = read_source(str(path), "0" * 64)
    assert run.metrics["metric"] == ["acc", "qem"]
    assert run.metrics["task"] == ["lighteval|mmlu:astronomy|5", "leaderboard|gsm8k|5"]
