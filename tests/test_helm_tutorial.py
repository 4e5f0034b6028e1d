"""A real HELM run (the tutorial's mmlu/philosophy run of openai/gpt2), value by value.

Fixtures (see their README.txt): ``helm_tutorial/my-suite/<run>/`` is the run as
evaleval/every_eval_ever keeps it in tests/data/helm (commit 9bce4136), trimmed to 3 instances
and a few stats; ``helm_no_spec`` is its per_instance_stats.json alone, as in a folder that lost
run_spec.json.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from evalhouse.adapters.helm import instance_hash, model_from_run_name
from evalhouse.warehouse import Warehouse
from tests._harness import FIXTURES, SAMPLE_COLS, load, metrics, rows

RUN = "mmlu:subject=philosophy,method=multiple_choice_joint,model=openai_gpt2"
TUTORIAL = FIXTURES / "helm_tutorial" / "my-suite" / RUN
NO_SPEC = FIXTURES / "helm_no_spec" / "my-suite" / RUN
TASK = "mmlu:subject=philosophy,method=multiple_choice_joint"
HEAD = ("openai/gpt2", "mmlu", "philosophy", TASK)
# response_time_s is the instance's inference_runtime
RUNTIME = {"id11": 0.6785750389099121, "id147": 0.6803672313690186, "id222": 0.11363410949707031}
SCORES = {  # exact_match, logprob, quasi_exact_match: only id222 was answered right
    "id11": (0.0, 0.0, 0.0),
    "id147": (0.0, 0.0, 0.0),
    "id222": (1.0, 0.0, 1.0),
}
SPLIT = {"id11": "valid", "id147": "test", "id222": "test"}


def _expected_samples() -> list[tuple[object, ...]]:
    return [
        (*HEAD, item, 0, None, SPLIT[item], metric, SCORES[item][i], True, RUNTIME[item],
         None, None, None, None, None, None)
        for item in sorted(SCORES) for i, metric in enumerate(("exact_match", "logprob", "quasi_exact_match"))
    ]  # fmt: skip


def _hashes_from_scenario_state(folder: Path) -> dict[str, str]:
    """The documented hash, computed here with the standard library from the run's own instances."""
    states = json.loads((folder / "scenario_state.json").read_text())["request_states"]
    out = {}
    for state in states:
        inst = state["instance"]
        refs = [[r["output"]["text"], r["tags"]] for r in inst["references"]]
        text = json.dumps([inst["input"]["text"], refs], ensure_ascii=False, separators=(",", ":"))
        out[inst["id"]] = hashlib.sha256(text.encode()).hexdigest()
    return out


def _samples_with_hash(wh: Warehouse) -> list[tuple[object, ...]]:
    return rows(wh, f"SELECT {SAMPLE_COLS}, item_hash FROM samples ORDER BY ALL")


def test_real_run_value_by_value(wh: Warehouse) -> None:
    report = load(wh, TUTORIAL)
    assert sorted((Path(o.path).name, o.format, o.status) for o in report.offers) == [
        ("per_instance_stats.json", "helm", "ingested"),
        ("run_spec.json", "helm", "not-results"),
        ("scenario.json", "helm", "not-results"),
        ("scenario_state.json", "helm", "not-results"),
        ("stats.json", "helm", "ingested"),
    ]
    hashes = _hashes_from_scenario_state(TUTORIAL)
    # pinned, so that a change of the definition is seen
    assert hashes["id147"] == "2a7297bf71bb8ef8c2f80a7e941c530b00cabfca3b26fec87ee5a55e03a14a3e"
    assert len(set(hashes.values())) == 3
    assert _samples_with_hash(wh) == [(*row, hashes[str(row[4])]) for row in _expected_samples()]
    # stats.json: test split only; bookkeeping (num_instances, inference_runtime) skipped;
    # perplexity and bits_per_byte are lower-is-better; the worst case over robustness perturbations
    # is its own filter
    assert metrics(wh) == [
        (*HEAD, "bits_per_byte", None, 0.0, None, None, False),
        (*HEAD, "exact_match", "robustness:worst", 0.1111111111111111, None, None, True),
        (*HEAD, "exact_match", None, 0.1111111111111111, None, None, True),
        (*HEAD, "logprob", "robustness:worst", 0.0, None, None, True),
        (*HEAD, "logprob", None, 0.0, None, None, True),
        (*HEAD, "perplexity", None, 1.0, None, None, False),
    ]
    meta = json.dumps({"groups": ["mmlu"], "run_name": RUN, "suite": "my-suite"}, separators=(",", ":"))
    assert rows(wh, "SELECT source_format, model, model_base, quantization, harness, status, started_at, n_items, "
                    "metadata FROM runs ORDER BY n_items") == [
        ("helm", "openai/gpt2", "openai/gpt2", None, "helm", None, None, 0, meta),
        ("helm", "openai/gpt2", "openai/gpt2", None, "helm", None, None, 3, meta),
    ]  # fmt: skip
    # the files read beside each one are in the ledger
    deps = {Path(o.path).name: [Path(d["path"]).name for d in o.depends_on or []] for o in report.offers}
    assert deps["per_instance_stats.json"] == ["run_spec.json", "scenario_state.json"]
    assert deps["stats.json"] == ["run_spec.json"]


def test_instances_json_is_preferred_to_scenario_state(tmp_path: Path, wh: Warehouse) -> None:
    """helm-summarize writes instances.json (run_display.py); items missing from it get no hash."""
    folder = tmp_path / "my-suite" / RUN
    shutil.copytree(TUTORIAL, folder)
    states = json.loads((folder / "scenario_state.json").read_text())["request_states"]
    kept = [s["instance"] for s in states if s["instance"]["id"] != "id222"]
    (folder / "instances.json").write_text(json.dumps(kept, indent=2))
    (folder / "scenario_state.json").write_text(json.dumps({"adapter_spec": {}, "request_states": []}))
    report = load(wh, folder)
    hashes = _hashes_from_scenario_state(TUTORIAL)
    assert rows(wh, "SELECT DISTINCT item_id, item_hash FROM scores ORDER BY ALL") == [
        ("id11", hashes["id11"]), ("id147", hashes["id147"]), ("id222", None)]  # fmt: skip
    pis = next(o for o in report.offers if o.path.endswith("per_instance_stats.json"))
    assert [Path(d["path"]).name for d in pis.depends_on or []] == ["instances.json", "run_spec.json"]


def test_run_without_run_spec_reads_the_model_from_the_folder_name(wh: Warehouse) -> None:
    """The folder says model=openai_gpt2, run_spec.json says openai/gpt2: both runs read openai/gpt2.

    The rows are those of the run with its run_spec.json, but for the hash (no instances here).
    """
    load(wh, NO_SPEC)
    assert _samples_with_hash(wh) == [(*row, None) for row in _expected_samples()]
    assert rows(wh, "SELECT model, model_base, metadata FROM runs") == [
        ("openai/gpt2", "openai/gpt2", json.dumps({"run_name": RUN, "suite": "my-suite"}, separators=(",", ":")))
    ]


@pytest.mark.parametrize(
    ("spelled", "model"),
    [
        # names from HELM's src/helm/config/model_metadata.yaml; the second and third keep a "_"
        ("google_gemini-1.5-pro-001", "google/gemini-1.5-pro-001"),
        ("microsoft_TNLGv2_530B", "microsoft/TNLGv2_530B"),
        ("openai_whisper-1_gpt-4o-2024-11-20", "openai/whisper-1_gpt-4o-2024-11-20"),
        ("openai/gpt2", "openai/gpt2"),
    ],
)
def test_model_from_run_name(spelled: str, model: str) -> None:
    assert model_from_run_name(spelled) == model


def test_instance_without_input_text_has_no_hash() -> None:
    assert instance_hash({"input": {"text": ""}, "references": [{"output": {"text": "a"}, "tags": []}]}) is None
