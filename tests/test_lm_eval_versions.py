"""lm-evaluation-harness output as each version writes it, read value by value.

Fixtures (``tests/fixtures/lm_eval/``) and where their layout comes from; the harness source is
EleutherAI/lm-evaluation-harness at the tag named (``lm_eval/evaluator.py``,
``lm_eval/evaluator_utils.py``, ``lm_eval/api/group.py``, ``lm_eval/loggers/evaluation_tracker.py``):

- ``v0_4_11/<sanitised model>/results_2026-04-29T08-20-36.619114.json``: a real results file written
  by lm_eval 0.4.11 (``hf``, dict ``model_args``, mmlu/gsm8k/hellaswag/piqa), printed whole in an
  agent session log kept in a public GitHub repository (search-index file id 54306239435), trimmed
  to 2 of 4 MMLU subgroups, 3 of 57 subjects, gsm8k and piqa; every value kept is the file's own.
- ``v0_4_12/<same folder>/``: the same run in the layout of 0.4.12 and main (``name``,
  ``sample_len`` in every entry, ``sample_count`` in groups, ``group_subtasks`` of groups only, group
  versions as text: ``_collect_results``, ``Group.aggregate``, ``_to_eval_results``), with samples
  files as ``evaluate()`` logs them and ``save_results_samples`` writes them (filter-major order,
  ``arguments`` as ``gen_args_<i>``, hashes computed as the harness does); docs are real gsm8k and
  MMLU anatomy test docs, the 5-shot context cut to one shot.
- ``v0_4_9_dict/results/``: two 0.4.9 runs given ``--model_args '{...}'`` (``try_parse_json`` in
  ``__main__.py``): ``_get_model_name`` finds no ``pretrained=`` in a dict and writes ``model_name: ""``,
  ``model_name_sanitized: ""``, so both runs' files land in the output folder itself.
- ``output_json/evals/``: 0.4.9+ with ``--output_path evals/qwen2.5-gsm8k.json``
  (``path.with_name(f"{path.stem}_{date_id}.json")``, PR #2993 for issue #2966), run with a chat
  template, ``--fewshot_as_multiturn`` and a system instruction (logged with their SHA-256).
- ``inline_samples/.../results.json``: what a wrapper that ``json.dump``s ``simple_evaluate()``'s
  return value writes: ``samples`` inline, unsanitised (``arguments`` as lists, ``target`` an int).
- ``v0_3_pythia/``, ``v0_3_neox/``: real lm-eval 0.3 files of EleutherAI/pythia
  (``evals/pythia-v1/pythia-160m/zero-shot/160m_step{143000,3000}.json`` and
  ``evals/pythia-v0/pythia-160m/zero-shot/pythia-160m-0shot-global_step11500_eval_results_...json``),
  trimmed to a few tasks (and, for the gpt-neox one, a few of its 187 ``model_args`` keys).

Values not from a real file (the 0.4.9 runs' scores, the samples' responses) are made up small and
consistent: the aggregate is the mean of the samples beside it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from evalhouse.adapters.base import Source
from evalhouse.adapters.lm_eval_results import model_of
from evalhouse.cli import main
from evalhouse.errors import BadResultFile
from evalhouse.ingest import ingest, read_source
from evalhouse.warehouse import Warehouse
from tests._harness import FIXTURES, load, metrics, rows, samples

LM = FIXTURES / "lm_eval"
QWEN35 = "/root/.openclaw/workspace/quantized/Qwen_Qwen3.5-2B-W4A16"
QWEN35_DIR = "__root__.openclaw__workspace__quantized__Qwen_Qwen3.5-2B-W4A16"
V411 = LM / "v0_4_11" / QWEN35_DIR
V412 = LM / "v0_4_12" / QWEN35_DIR
T412 = "2026-05-12T09-15-42.031877"
GSM_GEN = {"until": ["Question:", "</s>", "<|im_end|>"], "do_sample": False, "temperature": 0.0}
GSM_DATA = {"dataset_path": "openai/gsm8k", "dataset_name": "main", "test_split": "test"}


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _metadata(wh: Warehouse, where: str = "TRUE") -> list[dict[str, Any]]:
    return [
        json.loads(m) for (m,) in rows(wh, f"SELECT metadata FROM runs WHERE {where} ORDER BY source_path, metadata")
    ]


# The real 0.4.11 run: leaves, the top-level group's own aggregate, both gsm8k filters.
QWEN35_ROWS = [
    (QWEN35, "gsm8k", "gsm8k", "gsm8k", "exact_match", "flexible-extract", 0.000758150113722517,
     0.0007581501137225367, 1319, True),
    (QWEN35, "gsm8k", "gsm8k", "gsm8k", "exact_match", "strict-match", 0.0, 0.0, 1319, True),
    (QWEN35, "mmlu", "abstract_algebra", "mmlu_abstract_algebra", "acc", "none", 0.37, 0.048523658709390974, 100, True),
    (QWEN35, "mmlu", "anatomy", "mmlu_anatomy", "acc", "none", 0.26666666666666666, 0.03820169914517904, 135, True),
    (QWEN35, "mmlu", "formal_logic", "mmlu_formal_logic", "acc", "none", 0.2698412698412698, 0.0397015827323517, 126,
     True),
    (QWEN35, "mmlu", "mmlu", "mmlu", "acc", "none", 0.2513886910696482, 0.0036593699812094748, None, True),
    (QWEN35, "piqa", "piqa", "piqa", "acc", "none", 0.5310119695321001, 0.011643363511107561, 1838, True),
    (QWEN35, "piqa", "piqa", "piqa", "acc_norm", "none", 0.5233949945593036, 0.01165304715592769, 1838, True),
]  # fmt: skip
QWEN35_GROUPS = {
    "mmlu": {"acc,none": 0.2513886910696482, "acc_stderr,none": 0.0036593699812094748},
    "mmlu_humanities": {"acc,none": 0.259086078639745, "acc_stderr,none": 0.0063855922388743784},
    "mmlu_stem": {"acc,none": 0.24421186171899778, "acc_stderr,none": 0.007645976044109587},
}


def test_real_0_4_11_results_value_by_value(wh: Warehouse) -> None:
    """mmlu is the file's own 0.2514 (never a mean of subjects); its subgroups stay metadata; filters stay apart."""
    load(wh, V411)
    assert metrics(wh) == QWEN35_ROWS
    [meta] = _metadata(wh)
    assert meta["groups"] == QWEN35_GROUPS
    assert meta["task_info"]["mmlu_stem"] == {"alias": " - stem"}
    assert rows(wh, "SELECT model, harness, started_at, n_items FROM runs") == [
        (QWEN35, "lm-evaluation-harness", datetime(2026, 4, 29, 7, 54, 35, 270122), 0)  # `date`: the start, UTC
    ]


def test_0_4_12_entries_with_name_sample_len_and_sample_count(wh: Warehouse) -> None:
    """Main's layout was rejected at `results.gsm8k.name`; now only score keys are read, the rest kept."""
    report = load(wh, V412)
    assert sorted((Path(o.path).name, o.format, o.status) for o in report.offers) == [
        (f"results_{T412}.json", "lm-eval", "ingested"),
        (f"samples_gsm8k_{T412}.jsonl", "lm-eval-samples", "ingested"),
        (f"samples_mmlu_anatomy_{T412}.jsonl", "lm-eval-samples", "ingested"),
    ]
    # The same values as 0.4.11's; the group's n is its sample_count (all 57 subjects, 14042 docs).
    assert metrics(wh) == [r if r[3] != "mmlu" else (*r[:8], 14042, True) for r in QWEN35_ROWS]
    meta = _metadata(wh, "source_format = 'lm-eval'")[0]
    assert meta["groups"] == QWEN35_GROUPS
    assert meta["task_info"] == {
        "gsm8k": {"alias": "gsm8k", "sample_len": 1319},
        "mmlu": {"alias": "mmlu", "sample_len": 14042, "sample_count": {"acc,none": 14042}},
        "mmlu_humanities": {"alias": "humanities", "sample_len": 4705, "sample_count": {"acc,none": 4705}},
        "mmlu_formal_logic": {"alias": "formal_logic", "sample_len": 126},
        "mmlu_stem": {"alias": "stem", "sample_len": 3153, "sample_count": {"acc,none": 3153}},
        "mmlu_abstract_algebra": {"alias": "abstract_algebra", "sample_len": 100},
        "mmlu_anatomy": {"alias": "anatomy", "sample_len": 135},
        "piqa": {"alias": "piqa", "sample_len": 1838},
    }


def test_0_4_12_samples_value_by_value(wh: Warehouse) -> None:
    load(wh, V412)
    gsm = _lines(V412 / f"samples_gsm8k_{T412}.jsonl")
    anat = _lines(V412 / f"samples_mmlu_anatomy_{T412}.jsonl")
    janet, robe = gsm[0]["doc"], gsm[1]["doc"]
    mc = [json.dumps(line["filtered_resps"], separators=(",", ":")) for line in anat]
    assert samples(wh) == [
        (QWEN35, "gsm8k", "gsm8k", "gsm8k", "0", 0, "flexible-extract", None, "exact_match", 1.0, True, None, None,
         None, json.dumps({"prompt_hash": gsm[0]["prompt_hash"]}, separators=(",", ":")), janet["question"], "18",
         janet["answer"]),
        (QWEN35, "gsm8k", "gsm8k", "gsm8k", "0", 0, "strict-match", None, "exact_match", 0.0, True, None, None, None,
         json.dumps({"prompt_hash": gsm[0]["prompt_hash"]}, separators=(",", ":")), janet["question"], "[invalid]",
         janet["answer"]),
        (QWEN35, "gsm8k", "gsm8k", "gsm8k", "1", 0, "flexible-extract", None, "exact_match", 1.0, True, None, None,
         None, json.dumps({"prompt_hash": gsm[1]["prompt_hash"]}, separators=(",", ":")), robe["question"], "3",
         robe["answer"]),
        (QWEN35, "gsm8k", "gsm8k", "gsm8k", "1", 0, "strict-match", None, "exact_match", 1.0, True, None, None, None,
         json.dumps({"prompt_hash": gsm[1]["prompt_hash"]}, separators=(",", ":")), robe["question"], "3",
         robe["answer"]),
        (QWEN35, "mmlu", "anatomy", "mmlu_anatomy", "0", 0, "none", None, "acc", 1.0, True, None, None, None,
         f'{{"group":"mmlu_stem","prompt_hash":"{anat[0]["prompt_hash"]}"}}', anat[0]["doc"]["question"], mc[0], "0"),
        (QWEN35, "mmlu", "anatomy", "mmlu_anatomy", "1", 0, "none", None, "acc", 0.0, True, None, None, None,
         f'{{"group":"mmlu_stem","prompt_hash":"{anat[1]["prompt_hash"]}"}}', anat[1]["doc"]["question"], mc[1], "1"),
    ]  # fmt: skip


def test_item_hash_is_doc_and_target_hash_and_pairs_across_prompts(wh: Warehouse) -> None:
    """item_hash = doc_hash:target_hash; a chat template changes prompt_hash, not the item."""
    load(wh, V412, LM / "output_json")
    gsm = _lines(V412 / f"samples_gsm8k_{T412}.jsonl")
    chat = _lines(next((LM / "output_json" / "evals").glob("samples_*.jsonl")))
    for line in gsm + chat:  # the fixtures hash as lm_eval.utils.hash_string does
        assert line["doc_hash"] == _sha(json.dumps(line["doc"], indent=2, ensure_ascii=False))
        assert line["target_hash"] == _sha(line["target"])
        assert line["prompt_hash"] == _sha(line["arguments"]["gen_args_0"]["arg_0"])
    assert [line["prompt_hash"] for line in gsm] != [line["prompt_hash"] for line in chat]
    want = {str(line["doc_id"]): f"{line['doc_hash']}:{line['target_hash']}" for line in gsm}
    got = rows(wh, "SELECT model, item_id, filter, item_hash FROM scores WHERE task = 'gsm8k' ORDER BY ALL")
    assert got == [
        (model, item, filt, want[item])
        for model in (QWEN35, "Qwen/Qwen2.5-1.5B-Instruct") for item in ("0", "1")
        for filt in ("flexible-extract", "strict-match")
    ]  # fmt: skip


def test_filters_are_never_merged(wh: Warehouse) -> None:
    """Each `metric,filter` keeps its filter: gsm8k's strict-match and flexible-extract are two rows."""
    load(wh, V412)
    assert rows(wh, """SELECT filter, value FROM metrics WHERE task = 'gsm8k' ORDER BY filter""") == [
        ("flexible-extract", 0.000758150113722517), ("strict-match", 0.0)
    ]  # fmt: skip
    assert rows(wh, "SELECT filter, avg(score) FROM scores WHERE task = 'gsm8k' GROUP BY ALL ORDER BY ALL") == [
        ("flexible-extract", 1.0), ("strict-match", 0.5)
    ]  # fmt: skip


def test_results_settings_value_by_value(wh: Warehouse) -> None:
    load(wh, V412)
    results_meta, *samples_meta = _metadata(wh)
    assert results_meta["settings"] == {
        "lm_eval_version": "0.4.12",
        "versions": {"gsm8k": 3.0, "mmlu": "2", "mmlu_abstract_algebra": 1.0, "mmlu_anatomy": 1.0,
                     "mmlu_formal_logic": 1.0, "mmlu_humanities": "2", "mmlu_stem": "2", "piqa": 1.0},
        "n_shot": {"gsm8k": 5, "mmlu": 0, "mmlu_abstract_algebra": 0, "mmlu_anatomy": 0, "mmlu_formal_logic": 0,
                   "mmlu_humanities": 0, "mmlu_stem": 0, "piqa": 0},
        "generation_kwargs": {"gsm8k": GSM_GEN},
        "dataset": {"gsm8k": GSM_DATA,
                    "mmlu_abstract_algebra": {"dataset_path": "cais/mmlu", "dataset_name": "abstract_algebra",
                                              "test_split": "test"},
                    "mmlu_anatomy": {"dataset_path": "cais/mmlu", "dataset_name": "anatomy", "test_split": "test"}},
        # the model's own name is the run's model, not a setting
        "model_args": {"dtype": "bfloat16", "device_map": "auto", "trust_remote_code": True},
        "batch_size": "8",
    }  # fmt: skip
    # a samples file's run: the settings of its task
    assert [m["settings"] for m in samples_meta] == [
        {"lm_eval_version": "0.4.12", "versions": {"gsm8k": 3.0}, "n_shot": {"gsm8k": 5},
         "generation_kwargs": {"gsm8k": GSM_GEN}, "dataset": {"gsm8k": GSM_DATA},
         "model_args": {"dtype": "bfloat16", "device_map": "auto", "trust_remote_code": True}, "batch_size": "8"},
        {"lm_eval_version": "0.4.12", "versions": {"mmlu_anatomy": 1.0}, "n_shot": {"mmlu_anatomy": 0},
         "dataset": {"mmlu_anatomy": {"dataset_path": "cais/mmlu", "dataset_name": "anatomy", "test_split": "test"}},
         "model_args": {"dtype": "bfloat16", "device_map": "auto", "trust_remote_code": True}, "batch_size": "8"},
    ]  # fmt: skip


def test_chat_template_settings(wh: Warehouse) -> None:
    load(wh, LM / "output_json")
    doc = json.loads(next((LM / "output_json" / "evals").glob("qwen2.5-*.json")).read_text())
    expected = {
        "lm_eval_version": "0.4.9.1", "git_hash": "8ae5a9e", "versions": {"gsm8k": 3.0}, "n_shot": {"gsm8k": 5},
        "generation_kwargs": {"gsm8k": GSM_GEN}, "dataset": {"gsm8k": GSM_DATA},
        "chat_template_sha": _sha(doc["chat_template"]), "fewshot_as_multiturn": True,
        "system_instruction_sha": _sha(doc["system_instruction"]),
        "model_args": {"dtype": "bfloat16"}, "batch_size": "auto", "limit": 2.0,
    }  # fmt: skip
    assert expected["chat_template_sha"] == "9f0e276ab90bb7e2e874715ac082205729cf14b6b15e1e4cda8ecf5f0e002872"
    assert [m["settings"] for m in _metadata(wh)] == [expected, expected]


# ---------------------------------------------------------------------------------------------
# Which model, and which results file
# ---------------------------------------------------------------------------------------------

LLAMA, QWEN05 = "meta-llama/Llama-3.2-1B-Instruct", "Qwen/Qwen2.5-0.5B-Instruct"


def test_dict_model_args_name_the_model(wh: Warehouse) -> None:
    """0.4.9 `model_name: ""` + `model_args` object: the model is `pretrained`, not `vllm`; each samples
    file goes with the results file of its own time, though both runs share the folder `results`."""
    report = load(wh, LM / "v0_4_9_dict")
    deps = {Path(o.path).name: [Path(d["path"]).name for d in o.depends_on or []] for o in report.offers}
    assert deps == {
        "results_2025-07-02T14-03-11.512201.json": [],
        "results_2025-07-02T15-47-40.090817.json": [],
        "samples_gsm8k_2025-07-02T14-03-11.512201.jsonl": ["results_2025-07-02T14-03-11.512201.json"],
        "samples_gsm8k_2025-07-02T15-47-40.090817.jsonl": ["results_2025-07-02T15-47-40.090817.json"],
    }
    assert metrics(wh) == [
        (QWEN05, "gsm8k", "gsm8k", "gsm8k", "exact_match", "flexible-extract", 1.0, 0.0, 2, True),
        (QWEN05, "gsm8k", "gsm8k", "gsm8k", "exact_match", "strict-match", 0.5, 0.5, 2, True),
        (LLAMA, "gsm8k", "gsm8k", "gsm8k", "exact_match", "flexible-extract", 0.5, 0.5, 2, True),
        (LLAMA, "gsm8k", "gsm8k", "gsm8k", "exact_match", "strict-match", 0.5, 0.5, 2, True),
    ]
    got = rows(wh, "SELECT model, item_id, filter, score FROM scores ORDER BY ALL")
    assert got == [
        (QWEN05, "0", "flexible-extract", 1.0), (QWEN05, "0", "strict-match", 0.0),
        (QWEN05, "1", "flexible-extract", 1.0), (QWEN05, "1", "strict-match", 1.0),
        (LLAMA, "0", "flexible-extract", 1.0), (LLAMA, "0", "strict-match", 1.0),
        (LLAMA, "1", "flexible-extract", 0.0), (LLAMA, "1", "strict-match", 0.0),
    ]  # fmt: skip
    assert {m["settings"]["model_args"]["max_model_len"] for m in _metadata(wh)} == {4096}


@pytest.mark.parametrize(
    ("doc", "model"),
    [
        ({"model_name": "", "config": {"model": "vllm", "model_args": {"model": "org/m", "dtype": "auto"}}}, "org/m"),
        # GeneralConfigTracker's order: an adapter evaluated with its base is the adapter
        ({"config": {"model": "hf", "model_args": "pretrained=org/base,peft=org/adapter"}}, "org/adapter"),
        ({"config": {"model": "openai-chat-completions", "model_args": {"model": "gpt-4o-mini"}}}, "gpt-4o-mini"),
        # 0.4.10+ names a run whose model_args name no model with random_name_id(); a model object
        # passed to simple_evaluate (no model_args) is named by config.model (its _name_or_path)
        ({"model_name": "x7k2m9qa", "config": {"model": "org/obj-model", "model_args": ""}}, "org/obj-model"),
        ({"model_name": "org/m", "config": {"model": "hf", "model_args": "pretrained=org/m,revision=main"}}, "org/m"),
        (
            {"model_name": "org/m", "config": {"model": "hf", "model_args": {"pretrained": "org/m", "revision": "v2"}}},
            "org/m@v2",
        ),
    ],
)
def test_model_of(doc: dict[str, Any], model: str) -> None:
    assert model_of(doc, "f.json") == model


def test_model_args_naming_no_model_reject_the_file(tmp_path: Path, wh: Warehouse) -> None:
    doc = json.loads(next((LM / "v0_4_9_dict" / "results").glob("results_*.json")).read_text())
    doc["config"]["model_args"] = {"dtype": "bfloat16", "max_model_len": 4096}
    path = tmp_path / "results_2025-07-02T14-03-11.512201.json"
    path.write_text(json.dumps(doc))
    report = ingest(wh, [path], workers=1)
    assert [(o.format, o.status, o.reason) for o in report.offers] == [
        ("lm-eval", "rejected",
         f"{path}: (model): the file names no model: config.model_args has none of peft, delta, pretrained, model, "
         "path, engine (lm-eval then leaves model_name empty or random), and config.model 'vllm' is the backend, "
         "not a model"),
    ]  # fmt: skip


def test_output_path_naming_a_file(wh: Warehouse) -> None:
    """`--output_path evals/qwen2.5-gsm8k.json`: results `qwen2.5-gsm8k_<time>.json` beside the samples."""
    report = load(wh, LM / "output_json")
    samples_offer = next(o for o in report.offers if Path(o.path).name.startswith("samples_"))
    assert [Path(d["path"]).name for d in samples_offer.depends_on or []] == [
        "qwen2.5-gsm8k_2025-09-30T08-12-05.774310.json"
    ]
    assert rows(wh, "SELECT DISTINCT model FROM runs") == [("Qwen/Qwen2.5-1.5B-Instruct",)]
    # `date` (Unix seconds, a float) for the results; the name's time for the samples
    when = datetime(2025, 9, 30, 8, 12, 5, 774310)
    assert rows(wh, "SELECT source_format, started_at FROM runs ORDER BY ALL") == [
        ("lm-eval", when), ("lm-eval-samples", when)
    ]  # fmt: skip


def test_a_results_file_of_another_time_is_another_run(tmp_path: Path, wh: Warehouse) -> None:
    """Samples whose own results file is missing do not borrow the one of another run in the folder."""
    folder = tmp_path / "results"
    folder.mkdir()
    shutil.copy(LM / "v0_4_9_dict" / "results" / "results_2025-07-02T15-47-40.090817.json", folder)
    samples_file = folder / "samples_gsm8k_2025-07-02T14-03-11.512201.jsonl"
    shutil.copy(LM / "v0_4_9_dict" / "results" / samples_file.name, samples_file)
    report = ingest(wh, [samples_file], workers=1)
    assert [(o.status, o.reason) for o in report.offers] == [
        ("rejected", f"{samples_file}: (model): no results file beside it and the folder name 'results' names no model")
    ]


@pytest.mark.parametrize("folder", ["results", "outputs", "output", "eval_results", "lm_eval_results", "evals", "runs"])
def test_loose_samples_in_a_generic_folder_are_rejected(tmp_path: Path, wh: Warehouse, folder: str) -> None:
    path = tmp_path / folder / f"samples_gsm8k_{T412}.jsonl"
    path.parent.mkdir()
    shutil.copy(V412 / path.name, path)
    report = ingest(wh, [path], workers=1)
    assert [(o.format, o.status, o.reason) for o in report.offers] == [
        ("lm-eval-samples", "rejected",
         f"{path}: (model): no results file beside it and the folder name {folder!r} names no model"),
    ]  # fmt: skip
    assert rows(wh, "SELECT count(*) FROM scores") == [(0,)]


def test_loose_samples_in_a_model_folder_take_its_name(tmp_path: Path) -> None:
    path = tmp_path / "Qwen__Qwen2.5-1.5B-Instruct" / f"samples_gsm8k_{T412}.jsonl"
    path.parent.mkdir()
    shutil.copy(V412 / path.name, path)
    _fmt, [run], deps = read_source(str(path), "0" * 64)
    assert (run.model, deps) == ("Qwen/Qwen2.5-1.5B-Instruct", None)
    assert run.metadata == {"task": "gsm8k", "from_results_file": False}


def test_loose_samples_before_0_4_3_take_the_model_from_their_name(tmp_path: Path) -> None:
    """0.4.0-0.4.2 named samples `re.sub("/|=", "__", model_args)` + `_<task>.jsonl`: the name says the model."""
    path = tmp_path / "results" / "pretrained__EleutherAI__pythia-70m_arc_easy.jsonl"
    path.parent.mkdir()
    shutil.copy(LM / "old" / path.name, path)
    _fmt, [run], deps = read_source(str(path), "0" * 64)
    assert (run.model, run.scores["task"], deps) == ("EleutherAI/pythia-70m", ["arc_easy", "arc_easy"], None)


# ---------------------------------------------------------------------------------------------
# Inline samples and entries that are not scores
# ---------------------------------------------------------------------------------------------

SMOL = "HuggingFaceTB/SmolLM2-135M"


def test_inline_samples_are_read_as_rows(wh: Warehouse) -> None:
    load(wh, LM / "inline_samples")
    inline = json.loads((LM / "inline_samples" / "HuggingFaceTB__SmolLM2-135M" / "results.json").read_text())
    docs = inline["samples"]["mmlu_anatomy"]
    assert metrics(wh) == [(SMOL, "mmlu", "anatomy", "mmlu_anatomy", "acc", "none", 0.5, 0.5, 2, True)]
    assert samples(wh) == [
        (SMOL, "mmlu", "anatomy", "mmlu_anatomy", str(i), 0, "none", None, "acc", acc, True, None, None, None,
         f'{{"prompt_hash":"{docs[i]["prompt_hash"]}"}}', docs[i]["doc"]["question"], resps, str(i))
        for i, (acc, resps) in enumerate([(1.0, "[[-0.5,true],[-1.5,false],[-2.5,false],[-3.5,false]]"),
                                          (0.0, "[[-0.75,true],[-2.0,false],[-2.5,false],[-1.0,false]]")])
    ]  # fmt: skip
    assert rows(wh, "SELECT item_id, item_hash FROM scores ORDER BY ALL") == [
        (str(i), f"{d['doc_hash']}:{d['target_hash']}") for i, d in enumerate(docs)
    ]
    assert [(m.get("task"), m.get("inline")) for m in _metadata(wh)] == [(None, None), ("mmlu_anatomy", True)]


@pytest.mark.parametrize(
    ("block", "note"),
    [
        ({"mmlu_anatomy": [{"doc": {}, "acc": 1.0}]},
         "present but not read: 'mmlu_anatomy': not lists of per-doc samples (doc_id, resps)"),
        ({"mmlu_anatomy": []}, "present but not read: no task has samples in it"),
        (135, "present but not read: a JSON number, not an object of per-task lists"),
    ],
)  # fmt: skip
def test_inline_samples_of_another_layout_are_noted(tmp_path: Path, block: object, note: str) -> None:
    doc = json.loads((LM / "inline_samples" / "HuggingFaceTB__SmolLM2-135M" / "results.json").read_text())
    doc["samples"] = block
    path = tmp_path / "results.json"
    path.write_text(json.dumps(doc))
    _fmt, runs, _deps = read_source(str(path), "0" * 64)
    assert [(r.key, r.metadata.get("samples"), r.n_metrics) for r in runs] == [("results", note, 1)]


def test_entries_keep_what_is_not_a_score(tmp_path: Path) -> None:
    """Unknown non-score keys and metrics the harness could not reduce are kept aside, not fatal."""
    doc = json.loads((V412 / f"results_{T412}.json").read_text())
    doc["results"]["piqa"]["note"] = "rerun"
    doc["results"]["piqa"]["per_choice,none"] = [0.5, 0.25]
    path = tmp_path / f"results_{T412}.json"
    path.write_text(json.dumps(doc))
    _fmt, [run], _deps = read_source(str(path), "0" * 64)
    assert run.metadata["task_info"]["piqa"] == {"alias": "piqa", "sample_len": 1838, "note": "rerun"}
    assert run.metadata["unread"] == {"piqa": ["per_choice,none"]}
    assert run.n_metrics == 8


def test_a_bad_sample_count_rejects_the_file(tmp_path: Path) -> None:
    doc = json.loads((V412 / f"results_{T412}.json").read_text())
    doc["results"]["mmlu"]["sample_count"]["acc,none"] = "many"
    path = tmp_path / f"results_{T412}.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(BadResultFile) as err:
        read_source(str(path), "0" * 64)
    assert (err.value.field, err.value.reason) == ("results.mmlu.sample_count.acc,none", "'many' is not a count")


def test_groups_without_group_subtasks_are_told_by_their_alias(tmp_path: Path) -> None:
    """0.4.0/0.4.1 wrote no group_subtasks: only the unindented group is a benchmark row."""
    doc = json.loads((V411 / "results_2026-04-29T08-20-36.619114.json").read_text())
    del doc["group_subtasks"]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(doc))
    _fmt, [run], _deps = read_source(str(path), "0" * 64)
    assert run.metrics["task"] == ["gsm8k", "gsm8k", "mmlu", "mmlu_formal_logic", "mmlu_abstract_algebra",
                                   "mmlu_anatomy", "piqa", "piqa"]  # fmt: skip
    assert (run.metrics["benchmark"][2], run.metrics["category"][2], run.metrics["value"][2]) == (
        "mmlu", "mmlu", 0.2513886910696482
    )  # fmt: skip


def test_compare_takes_the_files_own_mmlu_value(tmp_path: Path) -> None:
    """Aggregate-only data: the benchmark's value is the file's group value, for each model."""
    other = json.loads((V411 / "results_2026-04-29T08-20-36.619114.json").read_text())
    other["model_name"] = "org/other"
    for entry in [*other["results"].values(), *other["groups"].values()]:
        for key in [k for k in entry if k.startswith("acc,")]:
            entry[key] = round(entry[key] - 0.01, 6)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "results_2026-04-30T00-00-00.json").write_text(json.dumps(other))
    runner = CliRunner()
    wh = tmp_path / "wh"
    result = runner.invoke(main, ["ingest", "-w", str(wh), "-q", str(V411), str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["compare", "-w", str(wh), "--no-save", "--format", "json", "-b", "org/other",
                                  "-c", "/root/*", "--by", "benchmark"])  # fmt: skip
    assert result.exit_code == 0, result.output
    mmlu = [r for r in json.loads(result.output) if r["benchmark"] == "mmlu" and r["metric"] == "acc"]
    assert [(r["mean_baseline"], r["mean_candidate"]) for r in mmlu] == [(0.241389, 0.2513886910696482)]


# ---------------------------------------------------------------------------------------------
# lm-eval 0.3 as EleutherAI wrote it
# ---------------------------------------------------------------------------------------------

P143, P3 = "EleutherAI/pythia-v1.1-160m@step143000", "EleutherAI/pythia-v1.1-160m@step3000"


def test_v03_checkpoints_are_two_models(wh: Warehouse) -> None:
    """`pretrained=EleutherAI/pythia-v1.1-160m,revision=step143000`: each revision is its own model."""
    report = load(wh, LM / "v0_3_pythia")
    assert {o.format for o in report.offers} == {"lm-eval-0.3"}
    assert metrics(wh) == [
        (P143, "arc_easy", "arc_easy", "arc_easy", "acc", None, 0.4351851851851852, 0.010173216430370908, None, True),
        (P143, "arc_easy", "arc_easy", "arc_easy", "acc_norm", None, 0.39646464646464646, 0.010037412763064519, None,
         True),
        (P143, "lambada_openai", "lambada_openai", "lambada_openai", "acc", None, 0.3283524160683097,
         0.006542638265686499, None, True),
        (P143, "lambada_openai", "lambada_openai", "lambada_openai", "ppl", None, 38.064877017771195,
         1.4363799633211518, None, False),
        (P143, "mmlu", "anatomy", "hendrycksTest-anatomy", "acc", None, 0.2222222222222222, 0.035914440841969694, None,
         True),
        (P143, "mmlu", "anatomy", "hendrycksTest-anatomy", "acc_norm", None, 0.24444444444444444, 0.037125378336148665,
         None, True),
        (P143, "mmlu", "astronomy", "hendrycksTest-astronomy", "acc", None, 0.25, 0.03523807393012047, None, True),
        (P143, "mmlu", "astronomy", "hendrycksTest-astronomy", "acc_norm", None, 0.3618421052631579,
         0.03910525752849725, None, True),
        (P3, "arc_easy", "arc_easy", "arc_easy", "acc", None, 0.3926767676767677, 0.010020646555538687, None, True),
        (P3, "arc_easy", "arc_easy", "arc_easy", "acc_norm", None, 0.3514309764309764, 0.009796395582817719, None,
         True),
        (P3, "lambada_openai", "lambada_openai", "lambada_openai", "acc", None, 0.22763438773529981,
         0.005841743344741917, None, True),
        (P3, "lambada_openai", "lambada_openai", "lambada_openai", "ppl", None, 135.0165867082042, 5.690483923063215,
         None, False),
        (P3, "mmlu", "anatomy", "hendrycksTest-anatomy", "acc", None, 0.25925925925925924, 0.03785714465066653, None,
         True),
        (P3, "mmlu", "anatomy", "hendrycksTest-anatomy", "acc_norm", None, 0.23703703703703705, 0.03673731683969506,
         None, True),
        (P3, "mmlu", "astronomy", "hendrycksTest-astronomy", "acc", None, 0.25, 0.03523807393012047, None, True),
        (P3, "mmlu", "astronomy", "hendrycksTest-astronomy", "acc_norm", None, 0.3684210526315789, 0.03925523381052932,
         None, True),
    ]  # fmt: skip
    tasks = ["lambada_openai", "arc_easy", "hendrycksTest-anatomy", "hendrycksTest-astronomy"]
    assert [m["settings"] for m in _metadata(wh)] == [
        {"versions": dict.fromkeys(tasks, 0), "n_shot": dict.fromkeys(tasks, 0), "batch_size": 16}
    ] * 2


def test_v03_gpt_neox_config_names_no_model(wh: Warehouse) -> None:
    """gpt-neox's evaluate.py writes its training config as model_args: every checkpoint would be `neox`."""
    path = next((LM / "v0_3_neox").glob("*.json"))
    source = Source(str(path), path.read_bytes(), "")
    from evalhouse.adapters import lm_eval_v03

    assert lm_eval_v03.detect(source)
    report = ingest(wh, [path], workers=1)
    assert [(o.format, o.status, o.reason) for o in report.offers] == [
        ("lm-eval-0.3", "rejected",
         f"{path}: (model): the file names no model: config.model_args has none of peft, delta, pretrained, model, "
         "path, engine (lm-eval then leaves model_name empty or random), and config.model 'neox' is the backend, "
         "not a model"),
    ]  # fmt: skip


def test_changed_docs_of_one_task_pair_only_where_unchanged(tmp_path: Path) -> None:
    """Two models' gsm8k samples whose doc_hash differs for some doc_ids: only unchanged docs pair."""
    import orjson
    from click.testing import CliRunner

    from evalhouse.cli import main
    from evalhouse.ingest import ingest
    from evalhouse.warehouse import open_warehouse

    src = next((FIXTURES / "lm_eval" / "v0_4_12").iterdir())
    base, cand = tmp_path / "base", tmp_path / "cand"
    shutil.copytree(src, base)
    shutil.copytree(src, cand)
    results = next(cand.glob("results_*.json"))
    doc = json.loads(results.read_text(encoding="utf-8"))
    doc["model_name"] = "org/candidate"
    results.write_text(json.dumps(doc), encoding="utf-8")
    samples = next(cand.glob("samples_gsm8k_*.jsonl"))
    lines = [json.loads(line) for line in samples.read_text(encoding="utf-8").splitlines()]
    for line in lines:  # the dataset changed under doc 0 (one line per filter)
        if line["doc_id"] == 0:
            line["doc_hash"] = "0" * 64
    samples.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    wh = open_warehouse(tmp_path / "wh", create=True)
    ingest(wh, [base, cand], workers=1)
    out = CliRunner().invoke(main, ["compare", "-w", str(wh.root), "--no-save", "--format", "json",
                                    "-b", doc_model(base), "-c", "org/candidate", "--by", "benchmark"])  # fmt: skip
    assert out.exit_code == 0, out.output
    rows = orjson.loads(out.stdout)
    gsm = [r for r in rows if r["scope"] == "benchmark" and r["benchmark"] == "gsm8k"]
    # Two filters, two docs each: per filter, doc 1 pairs and doc 0 is reported as changed.
    assert sorted(r["metric"] for r in gsm) == ["exact_match,flexible-extract", "exact_match,strict-match"]
    assert all((r["n_paired"], r["n_changed"]) == (1, 1) for r in gsm)
    assert all("1 item(s) with the same id changed content" in r["note"] for r in gsm)


def doc_model(folder: Path) -> str:
    return json.loads(next(folder.glob("results_*.json")).read_text(encoding="utf-8"))["model_name"]
