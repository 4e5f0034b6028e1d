"""Harness outputs become paired comparisons through `evalhouse compare`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from evalhouse.cli import main
from tests._harness import FIXTURES


def _compare(warehouse: Path, *args: str) -> list[dict[str, object]]:
    runner = CliRunner()
    result = runner.invoke(main, ["compare", "-w", str(warehouse), "--no-save", "--format", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def _ingest(warehouse: Path, *paths: Path) -> None:
    result = CliRunner().invoke(main, ["ingest", "-w", str(warehouse), "-q", *map(str, paths)])
    assert result.exit_code == 0 and "0 rejected" in result.output, result.output


def test_three_lm_eval_models_pair_on_one_task(tmp_path: Path) -> None:
    """Samples + results of three models: each pair is tested on the 4 docs of arc_easy, paired."""
    wh = tmp_path / "wh"
    _ingest(wh, FIXTURES / "lm_eval" / "out")
    got = _compare(wh, "-b", "EleutherAI/pythia-160m", "-c", "EleutherAI/pythia-410m", "-c", "org/*",
                   "--by", "benchmark")  # fmt: skip
    arc = {(r["candidate"], r["metric"]): r for r in got if r["benchmark"] == "arc_easy"}
    assert sorted(arc) == [("EleutherAI/pythia-410m", "acc"), ("EleutherAI/pythia-410m", "acc_norm"),
                           ("org/model-c", "acc"), ("org/model-c", "acc_norm")]  # fmt: skip
    base = {"acc": [1, 0, 0, 1], "acc_norm": [1, 1, 0, 1]}
    cand = {
        ("EleutherAI/pythia-410m", "acc"): [1, 1, 0, 1],
        ("EleutherAI/pythia-410m", "acc_norm"): [1, 1, 0, 1],
        ("org/model-c", "acc"): [0, 1, 1, 0],
        ("org/model-c", "acc_norm"): [0, 1, 1, 1],
    }
    for key, row in arc.items():
        b, c = base[key[1]], cand[key]
        assert (row["test"], row["n_paired"], row["comparable"]) == ("mcnemar", 4, True)
        assert (row["mean_baseline"], row["mean_candidate"]) == (sum(b) / 4, sum(c) / 4)
        # exact McNemar: a binomial test on the discordant docs
        worse = sum(1 for x, y in zip(b, c, strict=True) if x > y)
        better = sum(1 for x, y in zip(b, c, strict=True) if x < y)
        expected = stats.binomtest(min(worse, better), worse + better).pvalue if worse + better else 1.0
        assert row["p_value"] == pytest.approx(expected, rel=1e-12)


def test_two_inspect_logs_of_one_task_pair(tmp_path: Path) -> None:
    """Two models, three samples, two epochs each: an exact sign-flip test over per-item epoch means."""
    wh = tmp_path / "wh"
    _ingest(wh, FIXTURES / "inspect" / "good")
    [row] = _compare(wh, "-b", "openai/gpt-4o-mini", "-c", "anthropic/*", "--by", "none")
    assert (row["metric"], row["test"], row["n_paired"], row["comparable"]) == ("match", "sign-flip", 3, True)
    mini = [(1 + 1) / 2, (0.5 + 0) / 2, (0 + 1) / 2]  # items 1, q-2, 3
    haiku = [(1 + 0) / 2, (1 + 0.5) / 2, (1 + 1) / 2]
    expected = stats.permutation_test(
        (np.array(haiku), np.array(mini)), lambda x, y: np.mean(x - y), permutation_type="samples", n_resamples=np.inf
    )
    assert row["statistic"] == pytest.approx(np.mean(haiku) - np.mean(mini), rel=1e-12)
    assert row["p_value"] == pytest.approx(expected.pvalue, rel=1e-12)
    assert row["n_answers_baseline"] == 6 and "repeated answers averaged" in row["note"]
