"""HELM run folders: per-instance rows, stats.json aggregates, perturbations, splits, pairing."""

from __future__ import annotations

from pathlib import Path

from evalhouse.ingest import ingest
from evalhouse.warehouse import Warehouse
from tests._harness import FIXTURES, SAME, load, metrics, rows, samples

SUITE = FIXTURES / "helm" / "v1"
GPT2 = SUITE / "mmlu:subject=anatomy,method=multiple_choice_joint,model=openai_gpt2"
LLAMA = SUITE / "mmlu:subject=anatomy,method=multiple_choice_joint,model=together_llama-7b"
TASK = "mmlu:subject=anatomy,method=multiple_choice_joint"
MILD_MIX = '{"perturbation":{"computed_on":"perturbed","fairness":false,"name":"mild_mix","robustness":true,"seed":0}}'


def test_per_instance_stats_value_by_value(wh: Warehouse) -> None:
    report = load(wh, GPT2)
    assert sorted((Path(o.path).name, o.format, o.status) for o in report.offers) == [
        ("per_instance_stats.json", "helm", "ingested"),
        ("run_spec.json", "helm", "not-results"),
        ("scenario_state.json", "helm", "not-results"),
        ("stats.json", "helm", "ingested"),
    ]
    head = ("openai/gpt2", "mmlu", "anatomy", TASK)
    tail = (None, None, None, None)  # no tokens_per_sec, timestamp; no texts
    assert sorted(samples(wh), key=repr) == sorted([
        # inference_runtime -> response_time_s; num_prompt_tokens is bookkeeping, not a score
        (*head, "id12", 0, None, "test", "exact_match", 1.0, True, 0.5, None, None, None, *tail[:3]),
        (*head, "id12", 0, None, "test", "quasi_exact_match", 1.0, True, 0.5, None, None, None, *tail[:3]),
        # the perturbed answer keeps its own filter so it never pairs with the original
        (*head, "id12", 0, "mild_mix", "test", "exact_match", 0.0, True, None, None, None, MILD_MIX, *tail[:3]),
        (*head, "id12", 1, None, "test", "exact_match", 0.0, True, None, None, None, None, *tail[:3]),
        (*head, "id13", 0, None, "test", "exact_match", 0.0, True, None, None, None, None, *tail[:3]),
        (*head, "id13", 0, None, "test", "quasi_exact_match", 1.0, True, None, None, None, None, *tail[:3]),
        (*head, "id13", 1, None, "test", "exact_match", 1.0, True, None, None, None, None, *tail[:3]),
        (*head, "id3", 0, None, "valid", "exact_match", 1.0, True, None, None, None, None, *tail[:3]),
    ], key=repr)  # fmt: skip
    # stats.json: test split only, no n (count is trials) and no stderr; perturbations as filters
    assert sorted(metrics(wh), key=repr) == sorted([
        (*head, "exact_match", None, 0.5, None, None, True),
        (*head, "quasi_exact_match", None, 1.0, None, None, True),
        (*head, "exact_match", "mild_mix", 0.0, None, None, True),
        (*head, "exact_match", "robustness:worst", 0.0, None, None, True),
    ], key=repr)  # fmt: skip
    meta = f'{{"groups":["mmlu"],"run_name":"{TASK},model=openai_gpt2","suite":"v1"}}'
    # answers are (instance, trial, split, perturbation): 6 in per_instance_stats.json
    assert rows(wh, "SELECT harness, n_items, metadata FROM runs ORDER BY n_items") == [
        ("helm", 0, meta),
        ("helm", 6, meta),
    ]  # fmt: skip


def test_run_without_run_spec_reads_the_folder_name(wh: Warehouse) -> None:
    load(wh, LLAMA)
    assert rows(wh, "SELECT model, benchmark, category, task, item_id, epoch, score FROM scores ORDER BY ALL") == [
        ("together/llama-7b", "mmlu", "anatomy", TASK, "id12", 0, 0.0),
        ("together/llama-7b", "mmlu", "anatomy", TASK, "id12", 1, 1.0),  # no mean: sum / count
        ("together/llama-7b", "mmlu", "anatomy", TASK, "id13", 0, 1.0),
    ]


def test_two_models_pair_on_instance_and_trial(wh: Warehouse) -> None:
    load(wh, SUITE)
    assert rows(wh, f"""
        SELECT a.item_id, a.epoch, a.score, b.score FROM scores a
        JOIN scores b ON {SAME}
        WHERE a.model = 'openai/gpt2' AND b.model = 'together/llama-7b' ORDER BY ALL""") == [
        ("id12", 0, 1.0, 0.0), ("id12", 1, 0.0, 1.0), ("id13", 0, 0.0, 1.0)]  # fmt: skip


def test_broken_instance_rejects_the_file(wh: Warehouse) -> None:
    report = ingest(wh, [FIXTURES / "helm_bad"], workers=1)
    assert [(o.format, o.status, str(o.reason).split(": ", 1)[1]) for o in report.offers] == [
        ("helm", "rejected", "[1].train_trial_index: 'first' is not an integer")]  # fmt: skip
    assert rows(wh, "SELECT count(*) FROM scores") == [(0,)]
