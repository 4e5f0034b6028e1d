"""OpenCompass per-dataset result files ``<time>/results/<model_abbr>/<dataset_abbr>.json``.

Fixture ``opencompass/outputs/default`` (see its README.txt): one work dir per layout the eval task
has written: scores only, the pre-0.4.1 ``details`` object, the 0.4.1+ ``details`` list.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from evalhouse.adapters import opencompass
from evalhouse.adapters.base import Source
from evalhouse.ingest import ingest
from evalhouse.warehouse import Warehouse
from tests._harness import FIXTURES, SAME, load, metrics, rows, samples

OUT = FIXTURES / "opencompass" / "outputs" / "default"
META = '{"score_scale":0.01,"source_scale":"0-100"}'
Q0 = ("Janet\u2019s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her "
      "friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck egg. "
      "How much in dollars does she make every day at the farmers' market?")  # fmt: skip
Q1 = "A robe takes 2 bolts of blue fiber and half that much white fiber.  How many bolts in total does it take?"
GSM8K = ("gsm8k", "gsm8k", "gsm8k")


def _runs(wh: Warehouse) -> list[tuple[object, ...]]:
    return rows(wh, "SELECT source_format, model, harness, started_at, n_items, metadata FROM runs ORDER BY ALL")


def test_scores_only_agree_with_the_summary(wh: Warehouse) -> None:
    report = load(wh, OUT / "20240601_120000")
    assert sorted((Path(o.path).name, o.format, o.status) for o in report.offers) == [
        ("gsm8k.json", "opencompass", "ingested"),
        ("summary_20240601_120000.csv", "opencompass", "ingested"),
    ]
    # {"accuracy": 70.51}: the same 0-1 value as the summary's cell, with no mode (filter NULL)
    assert metrics(wh, "model = 'internlm2-7b-hf' AND benchmark = 'gsm8k'") == [
        ("internlm2-7b-hf", *GSM8K, "accuracy", "gen", 0.7051, None, None, True),
        ("internlm2-7b-hf", *GSM8K, "accuracy", None, 0.7051, None, None, True),
    ]
    assert samples(wh) == []
    started = datetime(2024, 6, 1, 12)  # the work dir's name
    assert _runs(wh) == [
        ("opencompass", "internlm2-7b-hf", "opencompass", started, 0, META),
        ("opencompass", "internlm2-7b-hf", "opencompass", started, 0, META),
        ("opencompass", "qwen-7b-hf", "opencompass", started, 0, META),
    ]


def test_details_before_0_4_1_value_by_value(wh: Warehouse) -> None:
    load(wh, OUT / "20240815_100000")
    prompt = "Question: {}\nLet's think step by step\nAnswer:"
    assert samples(wh) == [
        ("qwen-7b-hf", *GSM8K, "0", 0, None, None, "correct", 1.0, True, None, None, None, None, prompt.format(Q0),
         " Janet sells 16 - 3 - 4 = 9 duck eggs a day.\nShe makes 9 * 2 = $18 every day at the farmer\u2019s market.\n"
         "The answer is 18.", "18"),
        ("qwen-7b-hf", *GSM8K, "1", 0, None, None, "correct", 0.0, True, None, None, None, None, prompt.format(Q1),
         " It takes 2 / 2 = 1 bolt of white fiber.\nThe answer is 1.", "3"),
    ]  # fmt: skip
    # "type": "GEN" is not a score
    assert metrics(wh) == [("qwen-7b-hf", *GSM8K, "accuracy", None, 0.5, None, None, True)]
    assert _runs(wh) == [("opencompass", "qwen-7b-hf", "opencompass", datetime(2024, 8, 15, 10), 2, META)]


def test_details_0_4_1_value_by_value(wh: Warehouse) -> None:
    load(wh, OUT / "20250301_090000")
    # one answer per repetition of the dataset (n=2): epoch = repetition; item = the index
    assert samples(wh) == [
        ("qwen-7b-hf", *GSM8K, item, epoch, None, None, "correct", score, True, None, None, None,
         f'{{"example_abbr":"gsm8k_{item}"}}', None, pred, answer)
        for item, epoch, score, pred, answer in (
            ("0", 0, 1.0, "18", "18"), ("0", 1, 1.0, "18", "18"), ("1", 0, 1.0, "3", "3"), ("1", 1, 0.0, "1", "3"))
    ]  # fmt: skip
    assert metrics(wh) == [("qwen-7b-hf", *GSM8K, "accuracy (2 runs average)", None, 0.75, None, None, True)]
    assert _runs(wh) == [("opencompass", "qwen-7b-hf", "opencompass", datetime(2025, 3, 1, 9), 4, META)]


def test_items_pair_across_the_two_layouts(wh: Warehouse) -> None:
    load(wh, OUT / "20240815_100000", OUT / "20250301_090000")
    assert rows(wh, f"""
        SELECT a.item_id, a.score, b.score FROM scores a JOIN scores b ON {SAME}
        WHERE a.run_id < b.run_id ORDER BY ALL""") == [("0", 1.0, 1.0), ("1", 0.0, 1.0)]  # fmt: skip


def _write(path: Path, doc: object) -> Path:
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(doc))
    return path


def test_only_the_results_layout_is_read(tmp_path: Path, wh: Warehouse) -> None:
    """Outside results/<model>/ the same object is a flat metadata file like any other."""
    loose = _write(tmp_path / "loose" / "gsm8k.json", {"accuracy": 70.5})
    report = ingest(wh, [loose], workers=1)
    assert [(o.format, o.status) for o in report.offers] == [("no-scores", "not-results")]


def test_a_verdict_of_another_shape_rejects_the_file(tmp_path: Path, wh: Warehouse) -> None:
    details = [{"example_abbr": "gsm8k_0", "pred": ["1"], "correct": True}]
    bad = _write(tmp_path / "20250301_090000" / "results" / "m" / "gsm8k.json", {"accuracy": 50.0, "details": details})
    report = ingest(wh, [bad], workers=1)
    assert [(o.format, o.status, str(o.reason).split(": ", 1)[1]) for o in report.offers] == [
        ("opencompass", "rejected", "details[0].correct: expected one value per repetition")]  # fmt: skip
    assert rows(wh, "SELECT count(*) FROM metrics") == [(0,)]


def test_a_bare_nan_is_missing(tmp_path: Path) -> None:
    """mmengine.dump writes float('nan') as a bare NaN (Python's json): that score is missing.

    Read through the adapter itself: in a whole ingest, the inspect-ai adapter's detect (tried
    before this one) currently rejects a file that is not strict JSON.
    """
    path = tmp_path / "20250301_090000" / "results" / "m" / "gsm8k.json"
    data = b'{\n    "accuracy": NaN,\n    "extract_rate": 87.5\n}'
    source = Source(str(path), data, "0" * 64)
    assert opencompass.detect(source)
    [run] = opencompass.read(source)
    assert (run.model, run.metrics["metric"], run.metrics["value"]) == ("m", ["extract_rate"], [0.875])


def test_bare_nan_result_file_reaches_opencompass_through_ingest(tmp_path, wh) -> None:
    """A strict-JSON adapter refusing the bytes during detection does not stop the tolerant one."""
    from evalhouse.ingest import ingest
    from evalhouse.warehouse import connect

    folder = tmp_path / "outputs" / "default" / "20240601_120000" / "results" / "m-7b"
    folder.mkdir(parents=True)
    (folder / "gsm8k.json").write_text('{"accuracy": NaN, "exact_match": 61.5}', encoding="utf-8")
    report = ingest(wh, [tmp_path / "outputs"], workers=1)
    assert [(o.format, o.status) for o in report.offers] == [("opencompass", "ingested")]
    con = connect(wh)
    assert con.sql("SELECT metric, value FROM metrics").fetchall() == [("exact_match", 0.615)]
    con.close()
