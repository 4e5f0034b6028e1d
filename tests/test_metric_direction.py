"""Metric direction from the whole words of a metric's name, and the [metrics] override."""

from __future__ import annotations

import re

import pytest

from evalhouse.adapters.base import higher_is_better
from evalhouse.errors import AnalysisError
from evalhouse.settings import load

HIGHER = ["acc", "acc_norm", "exact_match", "answer_accuracy", "correct_answer", "answer_f1", "f1", "bleu",
          "rouge_l", "pass@1", "answered", "lowercase_match", "terse_score", "tercet_acc", "powerful",
          "unbiased_acc", "lossless_rate_score", "mcc", "score", "partial_credit", "correct"]  # fmt: skip
LOWER = ["loss", "eval_loss", "word_perplexity", "byte_perplexity", "ppl", "bits_per_byte", "bpb", "wer", "cer",
         "ter", "error", "ErrorRate", "error_rate", "latency_s", "nll", "mse", "rmse", "brier_score", "ece",
         "bbq_metric_ambiguous_bias", "toxicity_fraction", "WER,none"]  # fmt: skip


@pytest.mark.parametrize("name", HIGHER)
def test_higher_is_better_names(name: str) -> None:
    assert higher_is_better(name) is True


@pytest.mark.parametrize("name", LOWER)
def test_lower_is_better_names(name: str) -> None:
    assert higher_is_better(name) is False


def test_metrics_section_sets_directions(tmp_path) -> None:
    path = tmp_path / "evalhouse.toml"
    path.write_text('[metrics]\nanswer_accuracy = "higher"\nrefusal_rate = "lower"\n', encoding="utf-8")
    assert dict(load(path).directions) == {"answer_accuracy": True, "refusal_rate": False}
    path.write_text('[metrics]\nrefusal_rate = "down"\n', encoding="utf-8")
    with pytest.raises(AnalysisError, match=re.escape('metrics.refusal_rate must be "higher" or "lower"')):
        load(path)
