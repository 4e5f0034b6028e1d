"""Detection by content: every fixture is claimed by exactly one adapter, the intended one."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from evalhouse import adapters
from evalhouse.adapters.base import Source
from evalhouse.errors import BadResultFile
from tests._harness import FIXTURES
from tests.test_inspect_ai import make_eval
from tests.test_lighteval import write_details

# lm-eval names an output folder after the sanitised model path (a real 0.4.11 run).
_QWEN = "__root__.openclaw__workspace__quantized__Qwen_Qwen3.5-2B-W4A16"
EXPECTED = {
    "lm_eval/out/EleutherAI__pythia-160m/results_2024-05-29T10-20-30.123456.json": "lm-eval",
    "lm_eval/out/EleutherAI__pythia-160m/samples_arc_easy_2024-05-29T10-20-30.123456.jsonl": "lm-eval-samples",
    "lm_eval/out/EleutherAI__pythia-160m/samples_gsm8k_2024-05-29T10-20-30.123456.jsonl": "lm-eval-samples",
    "lm_eval/out/EleutherAI__pythia-160m/samples_mmlu_anatomy_2024-05-29T10-20-30.123456.jsonl": "lm-eval-samples",
    "lm_eval/out/EleutherAI__pythia-410m/results_2024-05-30T08-00-00.json": "lm-eval",
    "lm_eval/out/EleutherAI__pythia-410m/samples_arc_easy_2024-05-30T08-00-00.jsonl": "lm-eval-samples",
    "lm_eval/out/org__model-c/samples_arc_easy_2024-06-01T12-00-00.jsonl": "lm-eval-samples",
    "lm_eval/old/results.json": "lm-eval",
    "lm_eval/old/pretrained__EleutherAI__pythia-70m_arc_easy.jsonl": "lm-eval-samples",
    "lm_eval_v03/results.json": "lm-eval-0.3",
    "inspect/good/2024-06-01T10-00-00+00-00_arith_gpt4omini.json": "inspect-ai",
    "inspect/good/2024-06-02T09-30-00+00-00_arith_haiku.json": "inspect-ai",
    "inspect/bad/letter_not_a_score.json": "inspect-ai",
    "helm/v1/mmlu:subject=anatomy,method=multiple_choice_joint,model=openai_gpt2/per_instance_stats.json": "helm",
    "helm/v1/mmlu:subject=anatomy,method=multiple_choice_joint,model=openai_gpt2/stats.json": "helm",
    "helm/v1/mmlu:subject=anatomy,method=multiple_choice_joint,model=openai_gpt2/run_spec.json": "helm",
    "helm/v1/mmlu:subject=anatomy,method=multiple_choice_joint,model=openai_gpt2/scenario_state.json": "helm",
    "helm/v1/mmlu:subject=anatomy,method=multiple_choice_joint,model=together_llama-7b/per_instance_stats.json": "helm",
    "lighteval/results/openai/gpt2/results_2024-05-01T12-00-00.000000.json": "lighteval",
    "opencompass/summary/summary_20240601_120000.csv": "opencompass",
    "opencompass/bad/summary_20240601_130000.csv": "opencompass",
    "open_format/arith.jsonl": "evalhouse-samples",
    "open_format/arith.csv": "evalhouse-samples",
    "open_format_bad/typo.jsonl": "evalhouse-samples",
    "lm_eval/inline_samples/HuggingFaceTB__SmolLM2-135M/results.json": "lm-eval",
    "lm_eval/output_json/evals/qwen2.5-gsm8k_2025-09-30T08-12-05.774310.json": "lm-eval",
    "lm_eval/output_json/evals/samples_gsm8k_2025-09-30T08-12-05.774310.jsonl": "lm-eval-samples",
    "lm_eval/v0_3_neox/pythia-160m-0shot-global_step11500_eval_results_12-30-2022-23-05-56.json": "lm-eval-0.3",
    "lm_eval/v0_3_pythia/160m_step143000.json": "lm-eval-0.3",
    "lm_eval/v0_3_pythia/160m_step3000.json": "lm-eval-0.3",
    f"lm_eval/v0_4_11/{_QWEN}/results_2026-04-29T08-20-36.619114.json": "lm-eval",
    f"lm_eval/v0_4_12/{_QWEN}/results_2026-05-12T09-15-42.031877.json": "lm-eval",
    f"lm_eval/v0_4_12/{_QWEN}/samples_gsm8k_2026-05-12T09-15-42.031877.jsonl": "lm-eval-samples",
    f"lm_eval/v0_4_12/{_QWEN}/samples_mmlu_anatomy_2026-05-12T09-15-42.031877.jsonl": "lm-eval-samples",
    "lm_eval/v0_4_9_dict/results/results_2025-07-02T14-03-11.512201.json": "lm-eval",
    "lm_eval/v0_4_9_dict/results/results_2025-07-02T15-47-40.090817.json": "lm-eval",
    "lm_eval/v0_4_9_dict/results/samples_gsm8k_2025-07-02T14-03-11.512201.jsonl": "lm-eval-samples",
    "lm_eval/v0_4_9_dict/results/samples_gsm8k_2025-07-02T15-47-40.090817.jsonl": "lm-eval-samples",
    "opencompass/outputs/default/20240601_120000/results/internlm2-7b-hf/gsm8k.json": "opencompass",
    "opencompass/outputs/default/20240601_120000/summary/summary_20240601_120000.csv": "opencompass",
    "opencompass/outputs/default/20240815_100000/results/qwen-7b-hf/gsm8k.json": "opencompass",
    "opencompass/outputs/default/20250301_090000/results/qwen-7b-hf/gsm8k.json": "opencompass",
}


def claimants(path: Path) -> list[str]:
    data = path.read_bytes()
    source = Source(str(path), data, hashlib.sha256(data).hexdigest())
    names = []
    for adapter in adapters.ADAPTERS:
        try:
            if adapter.detect(source):
                names.append(adapter.NAME)
        except BadResultFile:  # JSON adapters refuse bytes that are not JSON
            pass
    return names


# lighteval's layouts, written by the real harness versions (tests/fixtures/inspect/generators/).
LIGHTEVAL_LAYOUTS = {
    str(p.relative_to(FIXTURES)): "lighteval" for p in sorted((FIXTURES / "lighteval").glob("v*/**/*")) if p.is_file()
}
EXPECTED.update(LIGHTEVAL_LAYOUTS)
# Files a later adapter would also accept; the order of evalhouse.adapters.ADAPTERS gives them to the first.
# no-scores takes any flat JSON object, so an OpenCompass per-dataset result ({"accuracy": 70.5}) reaches
# it only if opencompass declines.
SHARED = {
    "opencompass/outputs/default/20240601_120000/results/internlm2-7b-hf/gsm8k.json": ["opencompass", "no-scores"]
}


@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_each_fixture_is_claimed_by_one_adapter(rel: str) -> None:
    assert claimants(FIXTURES / rel) == SHARED.get(rel, [EXPECTED[rel]])
    order = [a.NAME for a in adapters.ADAPTERS]
    assert all(order.index(EXPECTED[rel]) <= order.index(name) for name in claimants(FIXTURES / rel))


def test_the_lighteval_layouts_are_there() -> None:
    # Listed by a glob: an empty folder would list nothing and test nothing.
    versions = {rel.split("/")[1] for rel in LIGHTEVAL_LAYOUTS}
    assert len(versions) >= 3 and len(LIGHTEVAL_LAYOUTS) >= 2 * len(versions), sorted(LIGHTEVAL_LAYOUTS)


def test_every_harness_fixture_is_listed() -> None:
    """A new fixture file must say which adapter reads it."""
    listed = {FIXTURES / rel for rel in EXPECTED}
    found = {
        p for folder in ("lm_eval", "lm_eval_v03", "inspect/good", "inspect/bad", "helm", "lighteval", "opencompass",
                         "open_format", "open_format_bad")
        for p in (FIXTURES / folder).rglob("*") if p.is_file() and not p.name.startswith("README")
    }  # fmt: skip
    assert found == listed


def test_built_binaries_are_claimed_by_one_adapter(tmp_path: Path) -> None:
    assert claimants(make_eval(tmp_path)) == ["inspect-ai"]
    assert claimants(write_details(tmp_path, [1.0])) == ["lighteval"]


def test_so8t_fixtures_keep_their_adapters() -> None:
    # Every file by name: a missing or empty folder fails here rather than passing vacuously.
    good = FIXTURES / "so8t" / "good"
    got = {str(p.relative_to(good)): claimants(p) for p in sorted(good.rglob("*.json"))}
    assert got == {
        "20250301_101500_automated_benchmark_results.json": ["so8t-results"],
        "20250302_090000_simple_abc_results.json": ["so8t-results"],
        "20250303_critical_infrastructure_abc_results.json": ["so8t-results"],
        "deepeval/metadata.json": ["no-scores"],
        "improvement_benchmark_results_20250304_120000.json": ["so8t-ab"],
        "tiny-model_q8_0_results.json": ["so8t-tasks"],
    }
