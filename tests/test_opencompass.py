"""OpenCompass summary CSV: one run per model column, 0-100 scaled to 0-1, section rows skipped."""

from __future__ import annotations

import json
from datetime import datetime

from evalhouse.ingest import ingest
from evalhouse.warehouse import Warehouse
from tests._harness import FIXTURES, load, metrics, rows


def test_summary_value_by_value(wh: Warehouse) -> None:
    report = load(wh, FIXTURES / "opencompass" / "summary")
    assert [o.format for o in report.offers] == ["opencompass"]
    intern, qwen = "internlm2-7b-hf", "qwen-7b-hf"
    # 63.5 -> 0.635 (scaled by 1/100); "-" is missing; mode is the filter
    assert metrics(wh) == [
        (intern, "ceval", "ceval", "ceval", "naive_average", "gen", 0.635, None, None, True),
        (intern, "gsm8k", "gsm8k", "gsm8k", "accuracy", "gen", 0.7051, None, None, True),
        (intern, "mmlu", "mmlu", "mmlu", "naive_average", "ppl", 0.6575, None, None, True),
        (qwen, "ceval", "ceval", "ceval", "naive_average", "gen", 0.5925, None, None, True),
        (qwen, "gsm8k", "gsm8k", "gsm8k", "accuracy", "gen", 0.5489, None, None, True),
        (qwen, "wic", "wic", "wic", "accuracy", "ppl", 0.5, None, None, True),
    ]
    got = rows(wh, "SELECT model, harness, started_at, n_items, metadata FROM runs ORDER BY model")
    assert [g[:4] for g in got] == [(m, "opencompass", datetime(2024, 6, 1, 12), 0) for m in (intern, qwen)]
    assert [json.loads(g[4]) for g in got] == [{"score_scale": 0.01, "source_scale": "0-100"}] * 2


def test_text_score_rejects_the_summary(wh: Warehouse) -> None:
    report = ingest(wh, [FIXTURES / "opencompass" / "bad"], workers=1)
    reason = "line 2.internlm2-7b-hf: 'seventy' is not a score (a number, true/false or C/I/P/N)"
    assert [(o.format, o.status, str(o.reason).split(": ", 1)[1]) for o in report.offers] == [
        ("opencompass", "rejected", reason)
    ]
