"""lm-evaluation-harness adapters: 0.4 results and samples, the pre-0.4.3 layout, 0.3 results."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from evalhouse.adapters.base import Source
from evalhouse.errors import BadResultFile
from evalhouse.ingest import ingest, read_source
from evalhouse.warehouse import Warehouse
from tests._harness import FIXTURES, load, metrics, rows, samples

OUT = FIXTURES / "lm_eval" / "out"
M160, M410, MC = "EleutherAI/pythia-160m", "EleutherAI/pythia-410m", "org/model-c"

ARC_Q = ["Which gas do plants take in from the air?", "What makes a shadow?", "Which is a mammal?",
         "Ice is water in which state?"]  # fmt: skip


def test_samples_of_one_model_value_by_value(wh: Warehouse) -> None:
    load(wh, OUT / "EleutherAI__pythia-160m")
    arc_resps = ["[[-4.5,false],[-2.25,true],[-9.0,false],[-8.5,false]]", "[[-6.0,false],[-3.0,true],[-7.0,false]]",
                 "[[-1.0,true],[-2.0,false]]", "[[-0.5,true],[-3.5,false]]"]  # fmt: skip
    arc_scores = {"acc": [1.0, 0.0, 0.0, 1.0], "acc_norm": [1.0, 1.0, 0.0, 1.0]}
    arc_target = ["1", "0", "1", "0"]
    expected = [
        (M160, "arc_easy", "arc_easy", "arc_easy", str(i), 0, "none", None, metric, arc_scores[metric][i], True,
         None, None, None, f'{{"prompt_hash":"p{i}"}}', ARC_Q[i], arc_resps[i], arc_target[i])
        for i in range(4) for metric in ("acc", "acc_norm")
    ]  # fmt: skip
    tom = "Tom has 3 apples and buys 2 more. How many apples does he have?"
    box = "A box holds 4 pens. How many pens are in 2 boxes?"
    expected += [
        (M160, "gsm8k", "gsm8k", "gsm8k", "0", 0, "flexible-extract", None, "exact_match", 1.0, True, None, None, None,
         '{"prompt_hash":"q0"}', tom, "5", "3 + 2 = 5\n#### 5"),
        (M160, "gsm8k", "gsm8k", "gsm8k", "0", 0, "strict-match", None, "exact_match", 0.0, True, None, None, None,
         '{"prompt_hash":"q0"}', tom, "[invalid]", "3 + 2 = 5\n#### 5"),
        # bleu's per-item value is a [refs, prediction] pair (a corpus metric's pieces): not a score
        (M160, "gsm8k", "gsm8k", "gsm8k", "1", 0, "flexible-extract", None, "exact_match", 1.0, True, None, None, None,
         '{"prompt_hash":"q1"}', box, "8", "4 * 2 = 8\n#### 8"),
        (M160, "gsm8k", "gsm8k", "gsm8k", "1", 0, "strict-match", None, "exact_match", 1.0, True, None, None, None,
         '{"prompt_hash":"q1"}', box, "8", "4 * 2 = 8\n#### 8"),
        # mmlu_anatomy sits in mmlu -> mmlu_stem (group_subtasks); doc 1's acc is a bare NaN: missing
        (M160, "mmlu", "anatomy", "mmlu_anatomy", "0", 0, "none", None, "acc", 1.0, True, None, None, None,
         '{"group":"mmlu_stem","prompt_hash":"n0"}', "Which bone is in the thigh?",
         "[[-0.25,true],[-3.0,false],[-2.0,false],[-4.0,false]]", "0"),
    ]  # fmt: skip
    assert samples(wh) == sorted(expected)
    # The item's content hash is doc_hash:target_hash; prompt_hash (chat template, shots) only in attributes.
    assert rows(wh, "SELECT DISTINCT task, item_id, item_hash FROM scores ORDER BY ALL") == [
        *[("arc_easy", str(i), f"d{i}:t{i}") for i in range(4)],
        ("gsm8k", "0", "g0:u0"), ("gsm8k", "1", "g1:u1"), ("mmlu_anatomy", "0", "m0:o0"),
    ]  # fmt: skip


def test_results_become_metrics_value_by_value(wh: Warehouse) -> None:
    load(wh, OUT / "EleutherAI__pythia-160m")
    assert metrics(wh) == [
        (M160, "arc_easy", "arc_easy", "arc_easy", "acc", "none", 0.5, 0.2886751345948129, 4, True),
        (M160, "arc_easy", "arc_easy", "arc_easy", "acc_norm", "none", 0.75, 0.25, 4, True),
        (M160, "gsm8k", "gsm8k", "gsm8k", "exact_match", "flexible-extract", 1.0, 0.0, 2, True),
        (M160, "gsm8k", "gsm8k", "gsm8k", "exact_match", "strict-match", 0.5, 0.5, 2, True),
        # higher_is_better block wins over the name (brier_score would read as higher-is-better)
        (M160, "logiqa", "logiqa", "logiqa", "brier_score", "none", 0.375, 0.0625, 8, False),
        (M160, "mmlu", "anatomy", "mmlu_anatomy", "acc", "none", 0.5, None, 2, True),  # "N/A" stderr
        (M160, "mmlu", "astronomy", "mmlu_astronomy", "acc", "none", 0.0, 0.0, 2, True),
        # the top-level group's own aggregate, as the file gives it (no sample_count before 0.4.12: no n)
        (M160, "mmlu", "mmlu", "mmlu", "acc", "none", 0.25, 0.125, None, True),
        # a group without aggregation ({" ": " "}) contributes nothing; its subtask is placed under it
        (M160, "tinyBenchmarks", "tinyArc", "tinyArc", "acc_norm", "none", 0.25, None, 4, True),
        (M160, "wikitext", "wikitext", "wikitext", "bits_per_byte", "none", 1.125, None, 62, False),
        (M160, "wikitext", "wikitext", "wikitext", "word_perplexity", "none", 30.5, None, 62, False),
    ]


def test_runs_of_one_model(wh: Warehouse) -> None:
    load(wh, OUT / "EleutherAI__pythia-160m")
    got = rows(wh, "SELECT source_format, model, model_base, quantization, harness, status, started_at, n_items, "
                   "metadata FROM runs ORDER BY source_format, metadata")  # fmt: skip
    results_meta = json.loads(got[0][8])
    # every group's aggregate is kept; only the top-level one (mmlu) is also a row
    assert results_meta["groups"] == {"mmlu": {"acc,none": 0.25, "acc_stderr,none": 0.125},
                                      "mmlu_stem": {"acc,none": 0.25, "acc_stderr,none": 0.125}}  # fmt: skip
    assert results_meta["settings"]["lm_eval_version"] == "0.4.8"
    assert results_meta["settings"]["n_shot"]["gsm8k"] == 5
    # `date` (Unix seconds) for the results; the time in the file name for the samples
    run = (M160, M160, None, "lm-evaluation-harness", None)
    in_name = datetime(2024, 5, 29, 10, 20, 30, 123456)
    assert [g[:8] for g in got] == [
        ("lm-eval", *run, datetime(2024, 5, 29, 10, 20, 30, 500000), 0),
        ("lm-eval-samples", *run, in_name, 4),
        ("lm-eval-samples", *run, in_name, 4),
        ("lm-eval-samples", *run, in_name, 1),
    ]
    samples_meta = [json.loads(g[8]) for g in got[1:]]
    assert [(m["task"], m["from_results_file"], m["settings"]["n_shot"]) for m in samples_meta] == [
        ("arc_easy", True, {"arc_easy": 0}), ("gsm8k", True, {"gsm8k": 5}), ("mmlu_anatomy", True, {"mmlu_anatomy": 0})
    ]  # fmt: skip


def test_samples_before_filter_and_metrics_keys(wh: Warehouse) -> None:
    """Files before 0.4.7 have no `filter`/`metrics`: filter `none`, metrics are the numeric keys."""
    load(wh, OUT / "EleutherAI__pythia-410m")
    got = rows(wh, "SELECT model, item_id, filter, metric, score, question FROM samples ORDER BY item_id, metric")
    acc = [1.0, 1.0, 0.0, 1.0]
    assert got == [(M410, str(i), "none", m, acc[i], ARC_Q[i]) for i in range(4) for m in ("acc", "acc_norm")]
    assert rows(wh, "SELECT started_at FROM runs ORDER BY ALL") == [(datetime(2024, 5, 30, 8),)] * 2


def test_samples_without_results_file_take_the_model_from_the_folder(wh: Warehouse) -> None:
    load(wh, OUT / "org__model-c")
    got = rows(wh, "SELECT model, benchmark, category, task, item_id, filter, metric, score FROM scores ORDER BY ALL")
    acc, norm = [0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 1.0, 1.0]
    assert got == [
        (MC, "arc_easy", "arc_easy", "arc_easy", str(i), "none", m, (acc if m == "acc" else norm)[i])
        for i in range(4) for m in ("acc", "acc_norm")
    ]  # fmt: skip
    assert rows(wh, "SELECT model, started_at, metadata FROM runs") == [
        (MC, datetime(2024, 6, 1, 12), '{"from_results_file":false,"task":"arc_easy"}')
    ]


def test_layout_before_0_4_3(wh: Warehouse) -> None:
    """`results.json` + `<model_args>_<task>.jsonl` holding a JSON array."""
    report = load(wh, FIXTURES / "lm_eval" / "old")
    assert sorted((Path(o.path).name, o.format) for o in report.offers) == [
        ("pretrained__EleutherAI__pythia-70m_arc_easy.jsonl", "lm-eval-samples"),
        ("results.json", "lm-eval"),
    ]
    assert samples(wh) == [
        ("EleutherAI/pythia-70m", "arc_easy", "arc_easy", "arc_easy", "0", 0, "none", None, "acc", 1.0, True, None,
         None, None, None, ARC_Q[0], '[["-1.0","True"],["-2.0","False"]]', "1"),
        ("EleutherAI/pythia-70m", "arc_easy", "arc_easy", "arc_easy", "1", 0, "none", None, "acc", 0.0, True, None,
         None, None, None, ARC_Q[1], '[["-3.0","False"],["-2.0","True"]]', "0"),
    ]  # fmt: skip
    assert metrics(wh) == [("EleutherAI/pythia-70m", "arc_easy", "arc_easy", "arc_easy", "acc", "none", 0.5, 0.5,
                            None, True)]  # fmt: skip


def test_v03_results_value_by_value(wh: Warehouse) -> None:
    report = load(wh, FIXTURES / "lm_eval_v03")
    assert [o.format for o in report.offers] == ["lm-eval-0.3"]
    gptj = "EleutherAI/gpt-j-6B"
    assert metrics(wh) == [
        (gptj, "hellaswag", "hellaswag", "hellaswag", "acc", None, 0.4953, 0.0049896, None, True),
        (gptj, "hellaswag", "hellaswag", "hellaswag", "acc_norm", None, 0.6625, 0.0047187, None, True),
        (gptj, "mmlu", "anatomy", "hendrycksTest-anatomy", "acc", None, 0.4, 0.0423, None, True),
        (gptj, "mmlu", "anatomy", "hendrycksTest-anatomy", "acc_norm", None, 0.375, 0.0418, None, True),
        (gptj, "mmlu", "astronomy", "hendrycksTest-astronomy", "acc", None, 0.5, 0.0407, None, True),
        (gptj, "mmlu", "astronomy", "hendrycksTest-astronomy", "acc_norm", None, 0.5, 0.0407, None, True),
        (gptj, "wikitext", "wikitext", "wikitext", "bits_per_byte", None, 0.8, None, None, False),
        (gptj, "wikitext", "wikitext", "wikitext", "byte_perplexity", None, 1.75, None, None, False),
        (gptj, "wikitext", "wikitext", "wikitext", "word_perplexity", None, 20.125, None, None, False),
    ]
    assert rows(wh, "SELECT harness, started_at, n_items FROM runs") == [("lm-evaluation-harness", None, 0)]


def test_three_models_pair_on_one_task(wh: Warehouse) -> None:
    """Every (item, filter, metric) of arc_easy has exactly one row per model, for all three models."""
    load(wh, OUT)
    keyed = rows(wh, """
        SELECT count(*) AS keys, min(models) AS least, max(rows_per_model) AS most
        FROM (SELECT benchmark, category, task, item_id, filter, metric,
                     count(DISTINCT model) AS models, count(*) / count(DISTINCT model) AS rows_per_model
              FROM scores WHERE task = 'arc_easy' GROUP BY ALL)""")  # fmt: skip
    assert keyed == [(8, 3, 1)]
    pairs = rows(wh, """
        SELECT a.model, b.model, count(*) FROM scores a JOIN scores b
          USING (benchmark, category, task, item_id, filter, metric)
        WHERE a.task = 'arc_easy' AND a.model < b.model GROUP BY ALL ORDER BY ALL""")  # fmt: skip
    assert pairs == [(M160, M410, 8), (M160, MC, 8), (M410, MC, 8)]


def _write(tmp: Path, name: str, text: str) -> str:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


LINE = {"doc_id": 0, "doc": {"question": "q"}, "target": "a", "arguments": {}, "resps": [["a"]],
        "filtered_resps": ["a"], "filter": "none", "metrics": ["exact_match"], "exact_match": 1.0}  # fmt: skip


@pytest.mark.parametrize(
    ("name", "lines", "field", "reason"),
    [
        (
            "samples_t_2024-01-01T00-00-00.jsonl",
            [LINE, {**LINE, "exact_match": "high"}],
            "line 2.exact_match",
            "'high' is not a score (a number, true/false or C/I/P/N)",
        ),
        ("samples_t_2024-01-01T00-00-00.jsonl", [LINE, {**LINE, "doc_id": None}], "line 2.doc_id", "None is not an id"),
        ("samples_t_2024-01-01T00-00-00.jsonl", [LINE, {**LINE, "filter": 3}], "line 2.filter", "not text"),
        ("samples_t.jsonl", [LINE], "(file name)", "lm-eval samples must be named samples_<task>_<time>.jsonl"),
    ],
)
def test_broken_samples_are_rejected_whole(tmp_path: Path, name: str, lines: list[dict[str, object]], field: str,
                                           reason: str) -> None:  # fmt: skip
    path = _write(tmp_path / "org__m", name, "\n".join(json.dumps(x) for x in lines) + "\n")
    with pytest.raises(BadResultFile) as err:
        read_source(path, "0" * 64)
    assert (err.value.field, err.value.reason) == (field, reason)


def test_broken_results_are_rejected(tmp_path: Path, wh: Warehouse) -> None:
    doc = json.loads((OUT / "EleutherAI__pythia-410m" / "results_2024-05-30T08-00-00.json").read_text())
    doc["results"]["arc_easy"]["acc,none"] = "high"
    path = _write(tmp_path, "results_2024-05-30T08-00-00.json", json.dumps(doc))
    report = ingest(wh, [path], workers=1)
    reason = f"{path}: results.arc_easy.acc,none: 'high' is not a score (a number, true/false or C/I/P/N)"
    assert [(o.format, o.status, o.reason) for o in report.offers] == [("lm-eval", "rejected", reason)]
    assert rows(wh, "SELECT count(*) FROM metrics") == [(0,)]


def test_samples_read_the_results_file_written_with_them(tmp_path: Path) -> None:
    """The model comes from results_<same time>.json even when the folder says otherwise."""
    folder = tmp_path / "renamed"
    shutil.copytree(OUT / "EleutherAI__pythia-410m", folder)
    _fmt, runs, deps = read_source(str(folder / "samples_arc_easy_2024-05-30T08-00-00.jsonl"), "0" * 64)
    assert [r.model for r in runs] == [M410]
    assert [d["path"] for d in deps or []] == [str(folder / "results_2024-05-30T08-00-00.json")]


def test_detect_looks_at_content_not_the_name(tmp_path: Path) -> None:
    from evalhouse.adapters import lm_eval_samples

    path = _write(tmp_path, "samples_t_2024-01-01T00-00-00.jsonl", '{"model": "m", "item_id": "1", "score": 1}\n')
    assert not lm_eval_samples.detect(Source(path, Path(path).read_bytes(), ""))


def test_bare_nan_in_results_is_missing(tmp_path: Path) -> None:
    """lm-eval writes with Python's json, which spells a failed stderr as a bare NaN."""
    text = (OUT / "EleutherAI__pythia-410m" / "results_2024-05-30T08-00-00.json").read_text()
    path = _write(
        tmp_path, "results_2024-05-30T08-00-00.json", text.replace('"acc_stderr,none": 0.25', '"acc_stderr,none": NaN')
    )
    fmt, [run], _deps = read_source(path, "0" * 64)
    assert (fmt, run.metrics["metric"], run.metrics["stderr"]) == ("lm-eval", ["acc", "acc_norm"], [None, 0.25])
