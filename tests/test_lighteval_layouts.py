"""lighteval's real outputs, value by value, in each layout it has written.

The fixtures under ``tests/fixtures/lighteval/v*`` were written by lighteval itself: a custom task
(``arith:addition``, ``arith:multiplication``: exact match; ``arithmc``: log-likelihood accuracy) over
a 5-line local JSONL file, answered by a table-driven ``DummyModel`` subclass, saved by lighteval's
``EvaluationTracker.save`` (the scripts and data are in ``tests/fixtures/inspect/generators/``):

- ``v0.13``: lighteval 0.13.0 from PyPI (= huggingface/lighteval tag v0.13.0, ``logging/info_loggers.py``
  ``DetailsLogger.Detail`` = {doc, model_response, metric}), datasets 4.4.1;
- ``v0.10``: lighteval 0.10.0 (tag v0.10.0: flat ``Detail`` columns, ``metrics`` a struct), datasets 3.6.0;
- ``v0.7-str``: lighteval 0.10.0's run through the 0.4-0.7 details writer (tag v0.7.0,
  ``evaluation_tracker.py`` ``EvaluationTracker.save``: ``{k: str(v) for k, v in asdict(detail).items()}``,
  without 0.8's ``prediction_logits`` field); only its details are kept.

The dataset (``arith_test.jsonl.txt``): add-1 "2+2" (gold 4), add-2 "7+5" (12), add-3 "1+1" (2),
mul-1 "3*3" (9), mul-2 "4*5" (20). model-a answers 4, 13, 2, 9, 20; model-b 4, 12, 2, 6, 20.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path

import pytest

from evalhouse import adapters
from evalhouse.adapters.base import Source, dumps, question_key
from evalhouse.errors import BadResultFile
from evalhouse.warehouse import Warehouse
from tests._harness import FIXTURES, SAME, load, metrics, rows, samples

V13, V10, V07 = FIXTURES / "lighteval" / "v0.13", FIXTURES / "lighteval" / "v0.10", FIXTURES / "lighteval" / "v0.7-str"
A, B = "org/model-a", "org/model-b"
T13A, T13B = "2026-11-29T23-09-38.580103", "2026-11-29T23-09-46.533372"
T10A, T10B = "2026-11-29T23-11-38.911685", "2026-11-29T23-11-45.102428"
T07A = "2026-11-29T23-12-10.275488"
Q = "Question: {}\nAnswer:"


def details(root: Path, model: str, time: str, task: str) -> Path:
    return root / "details" / model / time / f"details_{task}_{time}.parquet"


def results(root: Path, model: str, time: str) -> Path:
    return root / "results" / model / f"results_{time}.json"


def content(query: str, choices: list[str], gold_index: list[int], gold: list[str]) -> dict[str, object]:
    return {"query": Q.format(query), "choices": choices, "gold_index": gold_index, "gold": gold}


def sha(item: dict[str, object]) -> str:
    return hashlib.sha256(dumps(item).encode()).hexdigest()


def claimants(path: Path) -> list[str]:
    data = path.read_bytes()
    source = Source(str(path), data, hashlib.sha256(data).hexdigest())
    found = []
    for adapter in adapters.ADAPTERS:
        try:
            if adapter.detect(source):
                found.append(adapter.NAME)
        except BadResultFile:
            pass
    return found


def test_every_real_output_is_claimed_by_lighteval_alone() -> None:
    files = sorted(p for root in (V13, V10, V07) for p in root.rglob("*") if p.is_file())
    assert len(files) == 18
    assert {p.name: claimants(p) for p in files} == {p.name: ["lighteval"] for p in files}


SETTINGS_13 = {
    "lighteval_sha": "?",
    "num_fewshot_seeds": 1,
    "model_config": {"generation_parameters": {"max_new_tokens": 8, "temperature": 0.0}, "seed": 1},
}
TASK_13 = {"hf_repo": "/tmp/gen/data/arith", "hf_subset": "default", "evaluation_splits": ["test"],
           "generation_size": 8, "stop_sequence": ["\n"]}  # fmt: skip


def test_results_0_13_value_by_value(wh: Warehouse) -> None:
    """0.13 keys are `task|fewshot`; the model config (without its name) and task configs are settings."""
    load(wh, results(V13, A, T13A))
    assert metrics(wh) == [
        (A, "arith", "addition", "arith:addition|0", "em", None, 0.6666666666666666, 0.33333333333333337, None, True),
        (A, "arith", "multiplication", "arith:multiplication|0", "em", None, 1.0, 0.0, None, True),
        (A, "arithmc", "arithmc", "arithmc|0", "acc", None, 0.6666666666666666, 0.33333333333333337, None, True),
    ]
    [(started, harness, n_items, meta)] = rows(wh, "SELECT started_at, harness, n_items, metadata FROM runs")
    # start_time 2704.29... is time.perf_counter(), not a date
    assert (started, harness, n_items) == (None, "lighteval", 0)
    meta = json.loads(meta)
    assert meta["averages"] == {
        "arith:_average|0": {"em": 0.8333333333333333, "em_stderr": 0.16666666666666669},
        "all": {"em": 0.8333333333333333, "em_stderr": 0.16666666666666669, "acc": 0.6666666666666666,
                "acc_stderr": 0.33333333333333337},
    }  # fmt: skip
    tasks = ["arith:multiplication|0", "arith:addition|0", "arithmc|0"]
    assert meta["settings"] == {
        **SETTINGS_13,
        "num_fewshot": dict.fromkeys(tasks, 0),
        "task_config": dict.fromkeys(tasks, TASK_13),
    }
    assert {k: meta[k] for k in meta if k not in ("averages", "settings")} == {"lighteval_sha": "?",
                                                                              "num_fewshot_seeds": 1}  # fmt: skip


def test_results_0_10_value_by_value(wh: Warehouse) -> None:
    """0.10 keys are `suite|task|fewshot`; generation parameters sit in config_general; versions are logged."""
    load(wh, results(V10, A, T10A))
    assert metrics(wh) == [
        (A, "arith", "addition", "community|arith:addition|0", "em", None, 0.6666666666666666, 0.33333333333333337,
         None, True),
        (A, "arith", "multiplication", "community|arith:multiplication|0", "em", None, 1.0, 0.0, None, True),
        (A, "arithmc", "arithmc", "community|arithmc|0", "acc", None, 0.3333333333333333, 0.33333333333333337, None,
         True),
    ]  # fmt: skip
    [(meta,)] = rows(wh, "SELECT metadata FROM runs")
    meta = json.loads(meta)
    tasks = ["community|arith:addition|0", "community|arith:multiplication|0", "community|arithmc|0"]
    assert meta["settings"] == {
        "lighteval_sha": "?",
        "num_fewshot_seeds": 1,
        "generation_parameters": {"max_new_tokens": 8, "temperature": 0.0},
        "num_fewshot": dict.fromkeys(tasks, 0),
        "task_versions": dict.fromkeys(tasks, 0),
        "task_config": dict.fromkeys(tasks, TASK_13),  # keyed `suite|task` in the file, without the few-shot part
    }
    assert meta["averages"]["community|arith:_average|0"] == {
        "em": 0.8333333333333333,
        "em_stderr": 0.16666666666666669,
    }
    assert {k: meta[k] for k in ("model_sha", "model_dtype")} == {
        "model_sha": "0123abc",
        "model_dtype": "torch.bfloat16",
    }


def _row(model: str, category: str, task: str, item: str, metric: str, score: float, question: str,
         response: str | None, expected: str) -> tuple[object, ...]:  # fmt: skip
    benchmark = "arithmc" if "arithmc" in task else "arith"
    return (model, benchmark, category, task, item, 0, None, None, metric, score, True, None, None, None, None,
            Q.format(question), response, expected)  # fmt: skip


def test_details_0_13_value_by_value(wh: Warehouse) -> None:
    """doc.id (the doc's index in its split) is the item; rows come in the model's order, not the dataset's."""
    load(wh, details(V13, A, T13A, "arith:addition|0"), details(V13, A, T13A, "arithmc|0"))
    add, mc = "arith:addition|0", "arithmc|0"
    assert samples(wh) == sorted([
        _row(A, "addition", add, "0", "em", 1.0, "What is 2+2?", " 4", " 4"),
        _row(A, "addition", add, "1", "em", 0.0, "What is 7+5?", " 13", " 12"),
        _row(A, "addition", add, "2", "em", 1.0, "Wie viel ist 1+1? ÄÖÜ", " 2", " 2"),
        # log-likelihood: no text response; the gold is choices[gold_index]
        _row(A, "arithmc", mc, "0", "acc", 0.0, "What is 2+2?", None, " 4"),
        _row(A, "arithmc", mc, "1", "acc", 1.0, "What is 7+5?", None, " 12"),
        _row(A, "arithmc", mc, "2", "acc", 1.0, "Wie viel ist 1+1? ÄÖÜ", None, " 2"),
    ])  # fmt: skip
    hashes = rows(wh, "SELECT task, item_id, item_hash FROM scores ORDER BY ALL")
    assert hashes[:3] == [
        (add, "0", sha(content("What is 2+2?", [" 3", " 4"], [1], []))),
        (add, "1", sha(content("What is 7+5?", [" 12", " 13"], [0], []))),
        (add, "2", sha(content("Wie viel ist 1+1? ÄÖÜ", [" 2", " 11"], [0], []))),
    ]
    runs = rows(wh, "SELECT model, started_at, n_items, metadata FROM runs ORDER BY ALL")
    assert [r[:3] for r in runs] == [(A, datetime(2026, 11, 29, 23, 9, 38, 580103), 3)] * 2
    # the results file of the same run lies where lighteval writes it: its settings, narrowed to the task
    assert json.loads(runs[0][3]) == {
        "task": add,
        "layout": "doc",
        "settings": {**SETTINGS_13, "num_fewshot": {add: 0}, "task_config": {add: TASK_13}},
    }


@pytest.mark.parametrize("root, time", [(V10, T10A), (V07, T07A)], ids=["0.10", "0.7-str"])
def test_details_flat_layouts_value_by_value(wh: Warehouse, root: Path, time: str) -> None:
    """0.1-0.10 rows have no doc id: the item is a key of its content, the same in both flat layouts."""
    add, mc = "community|arith:addition|0", "community|arithmc|0"
    load(wh, details(root, A, time, add), details(root, A, time, mc))
    items = {
        ("add", "2+2"): content("What is 2+2?", [], [], [" 4"]),
        ("add", "7+5"): content("What is 7+5?", [], [], [" 12"]),
        ("add", "1+1"): content("Wie viel ist 1+1? ÄÖÜ", [], [], [" 2"]),
        ("mc", "2+2"): content("What is 2+2?", [" 3", " 4"], [1], []),
        ("mc", "7+5"): content("What is 7+5?", [" 12", " 13"], [0], []),
        ("mc", "1+1"): content("Wie viel ist 1+1? ÄÖÜ", [" 2", " 11"], [0], []),
    }
    key = {k: question_key(dumps(v)) for k, v in items.items()}
    assert samples(wh) == sorted([
        _row(A, "addition", add, key["add", "2+2"], "em", 1.0, "What is 2+2?", " 4", " 4"),
        _row(A, "addition", add, key["add", "7+5"], "em", 0.0, "What is 7+5?", " 13", " 12"),
        _row(A, "addition", add, key["add", "1+1"], "em", 1.0, "Wie viel ist 1+1? ÄÖÜ", " 2", " 2"),
        _row(A, "arithmc", mc, key["mc", "2+2"], "acc", 1.0, "What is 2+2?", None, " 4"),
        _row(A, "arithmc", mc, key["mc", "7+5"], "acc", 0.0, "What is 7+5?", None, " 12"),
        _row(A, "arithmc", mc, key["mc", "1+1"], "acc", 0.0, "Wie viel ist 1+1? ÄÖÜ", None, " 2"),
    ])  # fmt: skip
    assert sorted(rows(wh, "SELECT DISTINCT item_id, item_hash FROM scores")) == sorted(
        (key[k], sha(v)) for k, v in items.items()
    )
    layouts = rows(wh, "SELECT DISTINCT metadata->>'layout' FROM runs")
    assert layouts == [("flat",)]


def test_details_of_two_models_pair_per_item(wh: Warehouse) -> None:
    """Both layouts: each model's answer to the same doc meets the other's; 0.10 and 0.7 share keys."""
    load(wh, V13 / "details", V10 / "details", V07 / "details")
    pairs = rows(
        wh,
        f"""
        SELECT a.task, a.item_id, a.score, b.score FROM scores a JOIN scores b ON {SAME} AND a.item_hash = b.item_hash
        WHERE a.model = $a AND b.model = $b AND a.task LIKE '%multiplication%' ORDER BY ALL""",
        {"a": A, "b": B},
    )
    mul = "community|arith:multiplication|0"
    three, four = (
        question_key(dumps(content(q, [], [], [g]))) for q, g in (("What is 3*3?", " 9"), ("What is 4*5?", " 20"))
    )
    assert pairs == sorted([
        ("arith:multiplication|0", "0", 1.0, 0.0), ("arith:multiplication|0", "1", 1.0, 1.0),
        (mul, three, 1.0, 0.0), (mul, four, 1.0, 1.0),
    ])  # fmt: skip
    # model-a's 0.10 and 0.7-style runs of one task: the same items
    assert rows(wh, f"""
        SELECT count(*) FROM scores a JOIN scores b ON {SAME} AND a.item_hash = b.item_hash
        WHERE a.model = $a AND b.model = $a AND a.run_id < b.run_id""", {"a": A}) == [(6,)]  # fmt: skip


def test_str_cast_cells_nan_is_missing_and_a_non_literal_is_rejected(tmp_path: Path) -> None:
    """str(float("nan")) is a bare `nan` in 0.4-0.7 cells: missing, never a score."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from evalhouse.ingest import read_source

    folder = tmp_path / "details" / "m" / T07A
    folder.mkdir(parents=True)
    path = folder / f"details_community|arithmc|0_{T07A}.parquet"
    cells = {"example": ["Q1", "Q2"], "metrics": ["{'acc': nan}", "{'acc': 1, 'acc_norm': nan}"]}
    pq.write_table(pa.table({**cells, "choices": ["[' a']", "[' b']"]}), path)
    _fmt, [run], _deps = read_source(str(path), "0" * 64)
    assert (run.scores["metric"], run.scores["score"]) == (["acc"], [1.0])
    pq.write_table(pa.table({**cells, "choices": ["[' a'", "[]"]}), path)
    with pytest.raises(BadResultFile) as err:
        read_source(str(path), "0" * 64)
    assert (err.value.field, err.value.reason) == ("row 0.choices", "\"[' a'\" is not a Python literal")
