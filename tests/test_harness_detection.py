"""Detection by content: every fixture is claimed by exactly one adapter, the intended one."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from engine import adapters
from engine.adapters.base import Source
from engine.errors import BadResultFile
from tests._harness import FIXTURES
from tests.test_inspect_ai import make_eval
from tests.test_lighteval import write_details

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


@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_each_fixture_is_claimed_by_one_adapter(rel: str) -> None:
    assert claimants(FIXTURES / rel) == [EXPECTED[rel]]


def test_every_harness_fixture_is_listed() -> None:
    """A new fixture file must say which adapter reads it."""
    listed = {FIXTURES / rel for rel in EXPECTED}
    found = {
        p for folder in ("lm_eval", "lm_eval_v03", "inspect/good", "inspect/bad", "helm", "lighteval", "opencompass",
                         "open_format", "open_format_bad")
        for p in (FIXTURES / folder).rglob("*") if p.is_file()
    }  # fmt: skip
    assert found == listed


def test_built_binaries_are_claimed_by_one_adapter(tmp_path: Path) -> None:
    assert claimants(make_eval(tmp_path)) == ["inspect-ai"]
    assert claimants(write_details(tmp_path, [1.0])) == ["lighteval"]


def test_so8t_fixtures_keep_their_adapters() -> None:
    good = FIXTURES / "so8t" / "good"
    got = {p.name: claimants(p) for p in sorted(good.rglob("*.json"))}
    assert all(len(names) == 1 and (names[0].startswith("so8t") or names[0] == "no-scores")
               for names in got.values()), got  # fmt: skip
