"""Verdicts an expert would sign: the ten findings of "Verdicts you can trust", each on a warehouse
built for it, with the expected answer computed independently (SciPy, statsmodels, or by hand).
"""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from click.testing import CliRunner
from scipy import stats
from statsmodels.stats import proportion
from statsmodels.stats.power import TTestPower

from evalhouse.adapters.base import higher_is_better
from evalhouse.cli import main


def _items(model: str, scores, *, prefix: str = "q", epochs: int = 1, **extra) -> list[dict]:
    return [
        {"model": model, "score": float(s), "item_id": f"{prefix}{i}", "epoch": e, **extra}
        for i, s in enumerate(scores)
        for e in range(epochs)
    ]


def _compare(wh, *args: str) -> list[dict]:
    result = CliRunner().invoke(main, ["compare", "-w", str(wh.root), "--no-save", "--format", "json", *args])
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout)


def _gate(wh, *args: str):
    return CliRunner().invoke(main, ["gate", "-w", str(wh.root), "--no-save", *args])


def _overall(rows: list[dict]) -> dict:
    (row,) = [r for r in rows if r["scope"] == "overall"]
    return row


# 1. Repeated answers are one observation --------------------------------------------------------


def test_epochs_are_averaged_before_an_unpaired_test(put_scores) -> None:
    base = [1] * 24 + [0] * 16
    cand = [1] * 16 + [0] * 24
    wh = put_scores(_items("base", base, prefix="b", epochs=5) + _items("cand", cand, prefix="c", epochs=5))
    r = _overall(_compare(wh, "-b", "base", "-c", "cand", "--by", "none"))
    assert (r["n_baseline"], r["n_candidate"], r["n_answers_baseline"]) == (40, 40, 200)
    assert r["test"] == "score" and r["n_paired"] == 0
    ref = proportion.test_proportions_2indep(16, 40, 24, 40, method="score", compare="diff", correction=True)
    assert r["p_value"] == pytest.approx(ref.pvalue, rel=1e-6)
    fisher = _overall(_compare(wh, "-b", "base", "-c", "cand", "--by", "none", "--test", "fisher"))
    assert fisher["p_value"] == pytest.approx(stats.fisher_exact([[16, 24], [24, 16]]).pvalue)
    assert round(fisher["p_value"], 3) == 0.117  # the figure, not 9e-5 from 200 vs 200
    welch = _overall(_compare(wh, "-b", "base", "-c", "cand", "--by", "none", "--test", "welch"))
    assert welch["p_value"] == pytest.approx(stats.ttest_ind(cand, base, equal_var=False).pvalue)


# 2. A small overlap is not a like-for-like comparison --------------------------------------------


@pytest.fixture
def partial_wh(put_scores):
    rng = np.random.default_rng(1)
    shared = _items("base", [1, 1, 1], prefix="s") + _items("cand", [1, 1, 1], prefix="s")
    base = _items("base", (rng.random(1000) < 0.8).astype(int), prefix="b")
    cand = _items("cand", (rng.random(1000) < 0.4).astype(int), prefix="c")
    return put_scores(shared + base + cand)


def test_partial_overlap_reports_both_and_never_passes(partial_wh) -> None:
    r = _overall(_compare(partial_wh, "-b", "base", "-c", "cand", "--by", "none"))
    assert r["test"] == "mcnemar" and r["n_paired"] == 3 and r["p_value"] == 1.0
    assert r["coverage"] == pytest.approx(3 / 1003)
    assert "partial overlap" in r["note"]
    # Beside it, the unpaired result on all items: a large, clear drop.
    assert r["unpaired_test"] == "score" and r["unpaired_diff"] < -0.3 and r["unpaired_p_value"] < 1e-6
    result = _gate(partial_wh, "-b", "base", "-c", "cand", "--max-drop", "2")
    assert result.exit_code == 3, result.output
    assert result.output.startswith("INCONCLUSIVE") and "partial overlap" in result.output


# 3. The gate: non-inferiority with three outcomes ------------------------------------------------


def test_gate_does_not_pass_a_large_underpowered_drop(put_scores) -> None:
    wh = put_scores(_items("base", [1] * 8 + [0] * 2) + _items("cand", [1] * 5 + [0] * 5))
    r = _overall(_compare(wh, "-b", "base", "-c", "cand", "--by", "none", "--margin", "2%"))
    assert r["test"] == "mcnemar" and r["p_value"] == pytest.approx(stats.binomtest(0, 3).pvalue)
    assert r["verdict"] == "inconclusive" and r["items_needed"] > 10
    result = _gate(wh, "-b", "base", "-c", "cand", "--max-drop", "2")
    assert result.exit_code == 3, result.output
    assert "INCONCLUSIVE" in result.output and "n 10 items" in result.output and "items would decide" in result.output


def test_gate_exit_codes_pass_regressed_inconclusive(put_scores) -> None:
    rng = np.random.default_rng(7)
    base = (rng.random(2000) < 0.7).astype(int)
    same = base.copy()
    flip = rng.choice(2000, 20, replace=False)
    same[flip] = 1 - same[flip]  # 20 answers flipped either way: no real change
    worse = base.copy()
    worse[np.flatnonzero(base == 1)[:400]] = 0  # 400 right answers lost: -20 points
    wh = put_scores(_items("base", base) + _items("same", same) + _items("worse", worse))
    passed = _gate(wh, "-b", "base", "-c", "same", "--margin", "2%")
    assert passed.exit_code == 0, passed.output
    assert passed.output.startswith("PASS") and "lower bound" in passed.output and "n 2000 items" in passed.output
    failed = _gate(wh, "-b", "base", "-c", "worse", "--margin", "0.02")
    assert failed.exit_code == 1 and failed.output.startswith("REGRESSED") and "upper bound" in failed.output
    both = _gate(wh, "-b", "base", "-c", "same", "-c", "worse", "--margin", "2%", "--format", "json")
    assert both.exit_code == 1
    rows = orjson.loads(both.stdout)
    assert {r["candidate"]: r["verdict"] for r in rows} == {"same": "pass", "worse": "regressed"}


def test_gate_bounds_by_hand(put_scores) -> None:
    """Pass and regressed follow the one-sided bounds: checked against scipy's paired t interval."""
    rng = np.random.default_rng(3)
    base = rng.uniform(0.2, 0.8, 200)
    cand = base - 0.01 + rng.normal(0, 0.02, 200)
    wh = put_scores(_items("base", base) + _items("cand", cand))
    r = _overall(_compare(wh, "-b", "base", "-c", "cand", "--by", "none", "--margin", "0.02"))
    assert r["test"] == "paired"
    lo, hi = stats.ttest_rel(cand, base).confidence_interval(0.90)  # one-sided 95 % bounds
    assert (r["bound_low"], r["bound_high"]) == (pytest.approx(lo), pytest.approx(hi))
    assert r["verdict"] == ("pass" if lo > -0.02 else "regressed" if hi < -0.02 else "inconclusive")


# 4. Zero variance on two items is not p = 0 ------------------------------------------------------


def test_two_items_with_equal_differences_are_inconclusive(put_scores) -> None:
    wh = put_scores(_items("base", [0.5, 0.75]) + _items("cand", [0.25, 0.5]))
    r = _overall(_compare(wh, "-b", "base", "-c", "cand", "--by", "none", "--margin", "0"))
    ref = stats.permutation_test(
        ([0.25, 0.5], [0.5, 0.75]), lambda x, y: np.mean(x - y), permutation_type="samples", n_resamples=np.inf
    )
    assert r["test"] == "sign-flip" and r["p_value"] == pytest.approx(ref.pvalue) == 0.5
    # Two equal differences have no spread: no interval (not a zero-width one), and no verdict.
    assert r["ci_low"] is None and "no spread: no interval" in r["note"] and r["verdict"] == "inconclusive"
    assert _gate(wh, "-b", "base", "-c", "cand", "--margin", "0").exit_code == 3


# 5. The family: overall is primary; repeats are not tested again ---------------------------------


def test_identical_category_rows_do_not_inflate_the_family(put_scores) -> None:
    rng = np.random.default_rng(11)
    base = rng.uniform(0.3, 0.9, 60)
    cand = base - 0.03 + rng.normal(0, 0.1, 60)
    rows = _items("base", base, benchmark="bench", category="only") + _items("cand", cand, benchmark="bench",
                                                                               category="only")  # fmt: skip
    other = _items("cand2", base + rng.normal(0, 0.1, 60), benchmark="bench", category="only")
    wh = put_scores(rows + other)
    alone = _overall(_compare(wh, "-b", "base", "-c", "cand", "--by", "none"))
    assert alone["p_value"] == pytest.approx(stats.ttest_rel(cand, base).pvalue)
    assert alone["p_adjusted"] == alone["p_value"] and alone["adjusted_over"] == "primary"
    full = _compare(wh, "-b", "base", "-c", "cand", "-c", "cand2", "--by", "category,benchmark")
    mine = [r for r in full if r["candidate"] == "cand"]
    assert _overall(mine)["p_adjusted"] == pytest.approx(alone["p_value"])
    for r in mine:
        if r["scope"] != "overall":
            assert "same items as the overall row" in r["note"]
            assert r["p_adjusted"] == pytest.approx(alone["p_value"])


def test_secondary_rows_are_adjusted_within_their_pair_and_metric(put_scores) -> None:
    rng = np.random.default_rng(5)
    rows = []
    ps = []
    for cat in ("a", "b", "c"):
        base = rng.uniform(0.3, 0.9, 40)
        cand = base - 0.04 + rng.normal(0, 0.1, 40)
        rows += _items("base", base, prefix=cat, category=cat) + _items("cand", cand, prefix=cat, category=cat)
        ps.append(stats.ttest_rel(cand, base).pvalue)
    wh = put_scores(rows)
    out = _compare(wh, "-b", "base", "-c", "cand", "--by", "category")
    cats = {r["category"]: r for r in out if r["scope"] == "category"}
    order = np.argsort(ps)
    expected = np.minimum(1, np.maximum.accumulate((3 - np.arange(3)) * np.array(ps)[order]))
    for rank, i in enumerate(order):
        r = cats["abc"[i]]
        assert r["p_value"] == pytest.approx(ps[i]) and r["p_adjusted"] == pytest.approx(expected[rank])
        assert r["adjusted_over"] == "3 row(s) of this pair and metric (holm)"
        # Bonferroni-adjusted interval of the family: level 1 - alpha / 3.
        lo, hi = stats.ttest_rel(
            [s["score"] for s in rows if s["model"] == "cand" and s["category"] == "abc"[i]],
            [s["score"] for s in rows if s["model"] == "base" and s["category"] == "abc"[i]],
        ).confidence_interval(1 - 0.05 / 3)
        assert (r["ci_low"], r["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))


# 6. Direction from whole words, and from evalhouse.toml -----------------------------------------


def test_answer_accuracy_drop_is_a_degradation(put_scores) -> None:
    hib = higher_is_better("answer_accuracy")
    base = [1] * 45 + [0] * 5
    cand = [1] * 15 + [0] * 35
    wh = put_scores(_items("base", base, metric="answer_accuracy", higher_is_better=hib)
                    + _items("cand", cand, metric="answer_accuracy", higher_is_better=hib))  # fmt: skip
    r = _overall(_compare(wh, "-b", "base", "-c", "cand", "--by", "none"))
    assert r["direction"] == "degraded" and r["higher_is_better"] is True
    assert _gate(wh, "-b", "base", "-c", "cand", "--margin", "2%").exit_code == 1


def test_metrics_section_overrides_the_stored_direction(put_scores, tmp_path) -> None:
    base = [0] * 45 + [1] * 5
    cand = [0] * 15 + [1] * 35
    wh = put_scores(_items("base", base, metric="refusal_rate") + _items("cand", cand, metric="refusal_rate"))
    assert _overall(_compare(wh, "-b", "base", "-c", "cand", "--by", "none"))["direction"] == "improved"
    cfg = tmp_path / "evalhouse.toml"
    cfg.write_text('[metrics]\nrefusal_rate = "lower"\n', encoding="utf-8")
    r = _overall(_compare(wh, "-b", "base", "-c", "cand", "--by", "none", "--config", str(cfg)))
    assert r["direction"] == "degraded" and r["higher_is_better"] is False
    assert _gate(wh, "-b", "base", "-c", "cand", "--margin", "2%", "--config", str(cfg)).exit_code == 1


# 7. Intervals agree with their tests and their scale --------------------------------------------


def test_mcnemar_interval_agrees_with_exact_p(put_scores) -> None:
    base = [1] * 5 + [1] * 60 + [0] * 35
    cand = [0] * 5 + [1] * 60 + [0] * 35
    wh = put_scores(_items("base", base) + _items("cand", cand))
    r = _overall(_compare(wh, "-b", "base", "-c", "cand", "--by", "none"))
    assert r["p_value"] == pytest.approx(0.0625)
    assert r["ci_low"] < 0 < r["ci_high"]  # a Wald interval excluded 0 here
    same = put_scores(_items("b2", [1] * 30 + [0] * 20) + _items("c2", [1] * 30 + [0] * 20))
    r = _overall(_compare(same, "-b", "b2", "-c", "c2", "--by", "none"))
    assert r["p_value"] == 1.0 and r["ci_low"] < 0 < r["ci_high"]  # not [0, 0]


def test_intervals_of_proportions_stay_in_range(put_scores) -> None:
    wh = put_scores(_items("base", [1, 1, 1, 0]) + _items("cand", [0, 0, 0, 0], prefix="x"))
    r = _overall(_compare(wh, "-b", "base", "-c", "cand", "--by", "none"))
    assert -1 <= r["ci_low"] <= r["ci_high"] <= 1


# 8. The item key, not item_id alone ------------------------------------------------------------


def test_doc_zero_of_two_tasks_is_two_items(put_scores) -> None:
    rows = []
    for model, scores in (("base", [1, 0, 1, 1]), ("cand", [0, 0, 1, 0])):
        keys = [("t1", "0"), ("t1", "1"), ("t2", "0"), ("t2", "1")]
        rows += [{"model": model, "score": float(s), "task": t, "item_id": d, "category": "c"}
                 for (t, d), s in zip(keys, scores, strict=True)]  # fmt: skip
    wh = put_scores(rows)
    r = _overall(_compare(wh, "-b", "base", "-c", "cand", "--by", "none"))
    assert (r["n_baseline"], r["n_paired"]) == (4, 4)
    by_task = _overall(_compare(wh, "-b", "base", "-c", "cand", "--by", "none", "--cluster", "task"))
    assert (by_task["n_baseline"], by_task["n_paired"]) == (2, 2)
    assert by_task["mean_baseline"] == pytest.approx(np.mean([0.5, 1.0]))


# 9. Nothing silent ------------------------------------------------------------------------------


def test_pair_without_shared_metric_gets_a_row(put_scores) -> None:
    wh = put_scores(_items("base", [1, 0, 1], metric="acc") + _items("cand", [0.2, 0.4], metric="f1"))
    (r,) = _compare(wh, "-b", "base", "-c", "cand")
    assert r["metric"] is None and r["test"] is None
    assert r["note"] == "no metric in common: baseline has acc; candidate has f1"
    result = _gate(wh, "-b", "base", "-c", "cand", "--margin", "2%")
    assert result.exit_code == 3 and "no metric in common" in result.output


def test_aggregate_only_sources_are_compared_per_benchmark(put_scores) -> None:
    metrics = []
    for model, shift in (("base", 0.0), ("cand", -0.05)):
        metrics += [
            {"model": model, "metric": "acc", "benchmark": "gsm8k", "category": "gsm8k", "value": 0.6 + shift,
             "stderr": 0.013, "n": 1319},
            {"model": model, "metric": "acc", "benchmark": "mmlu", "category": "anatomy", "value": 0.5 + shift,
             "stderr": 0.04, "n": 135},
            {"model": model, "metric": "acc", "benchmark": "mmlu", "category": "virology", "value": 0.7 + shift,
             "stderr": 0.035, "n": 166},
        ]  # fmt: skip
    wh = put_scores([], metrics=metrics)
    rows = _compare(wh, "-b", "base", "-c", "cand", "--by", "none")
    overall = _overall(rows)
    assert overall["test"] is None and "aggregates only" in overall["note"]
    bench = {r["benchmark"]: r for r in rows if r["scope"] == "benchmark"}
    gsm = bench["gsm8k"]
    z = -0.05 / np.hypot(0.013, 0.013)
    assert gsm["test"] == "z" and gsm["p_value"] == pytest.approx(2 * stats.norm.sf(abs(z)))
    assert gsm["adjusted_over"] == "primary" and gsm["p_adjusted"] == gsm["p_value"]
    mmlu = bench["mmlu"]
    assert mmlu["test"] is None and mmlu["mean_baseline"] is None and "not averaged" in mmlu["note"]


def test_z_test_with_zero_stderr_is_not_significant(put_scores) -> None:
    metrics = [{"model": m, "metric": "acc", "benchmark": "b", "category": "b", "value": v, "stderr": 0.0, "n": 10}
               for m, v in (("base", 0.6), ("cand", 0.5))]  # fmt: skip
    wh = put_scores([], metrics=metrics)
    b = next(r for r in _compare(wh, "-b", "base", "-c", "cand", "--by", "none") if r["scope"] == "benchmark")
    assert b["p_value"] is None and "standard error is missing or 0" in b["note"]


# 10. MDE from the noncentral t at the alpha used -------------------------------------------------


def test_mde_is_the_noncentral_t_one(put_scores) -> None:
    rng = np.random.default_rng(2)
    base = rng.uniform(0.2, 0.8, 40)
    cand = base + rng.normal(0, 0.1, 40)
    wh = put_scores(_items("base", base) + _items("cand", cand))
    r = _overall(_compare(wh, "-b", "base", "-c", "cand", "--by", "none"))
    sd = np.std(cand - base, ddof=1)
    effect = TTestPower().solve_power(nobs=40, alpha=0.05, power=0.8, alternative="two-sided")
    assert r["mde"] == pytest.approx(effect * sd, rel=1e-3)


def test_a_forced_t_test_without_spread_gives_no_p(put_scores) -> None:
    wh = put_scores(_items("base", [0.5, 0.75, 0.6]) + _items("cand", [0.25, 0.5, 0.35]))
    r = _overall(_compare(wh, "-b", "base", "-c", "cand", "--by", "none", "--test", "paired"))
    assert r["p_value"] is None and r["ci_low"] is None and "zero variance: the t-test is undefined" in r["note"]


# Review findings: each a case that once gave a verdict an expert would not sign -------------------


def test_cluster_pairs_items_then_averages_and_counts_coverage_on_items(put_scores) -> None:
    """Clusters hold the shared items only; coverage counts items, so half the items is partial."""
    rng = np.random.default_rng(0)
    rows = []
    for t in range(40):
        rows += [{"model": "base", "score": float(i < 50), "task": f"t{t}", "item_id": str(i)} for i in range(100)]
        cand = (rng.random(50) < 0.6).astype(float)
        rows += [{"model": "cand", "score": float(s), "task": f"t{t}", "item_id": str(i)} for i, s in enumerate(cand)]
    wh = put_scores(rows)
    r = _overall(_compare(wh, "-b", "base", "-c", "cand", "--by", "none", "--cluster", "task", "--margin", "2%"))
    assert r["n_paired"] == 40 and r["coverage"] == pytest.approx(0.5)
    assert r["mean_baseline"] == pytest.approx(1.0)  # the shared items only: every one right for base
    assert r["diff"] < -0.3 and r["verdict"] == "regressed" and "partial overlap" in r["note"]
    assert "paired on the 40 task cluster(s)" in r["note"]
    result = _gate(wh, "-b", "base", "-c", "cand", "--cluster", "benchmark", "--margin", "2%")
    assert result.exit_code == 1 and "cannot cluster a comparison on 'benchmark'" in result.output


def test_aggregates_of_a_benchmark_without_scores_keep_their_row(put_scores) -> None:
    rows = _items("base", [1] * 2000 + [0] * 1000, benchmark="arc", category="arc", metric="acc")
    rows += _items("cand", [1] * 2000 + [0] * 1000, benchmark="arc", category="arc", metric="acc")
    metrics = [{"model": m, "metric": "acc", "benchmark": "hellaswag", "category": "hellaswag", "task": "hellaswag",
                "value": v, "stderr": 0.004, "n": 10042} for m, v in (("base", 0.8), ("cand", 0.5))]  # fmt: skip
    wh = put_scores(rows, metrics=metrics)
    out = _compare(wh, "-b", "base", "-c", "cand", "--by", "none", "--margin", "2%")
    hella = next(r for r in out if r["benchmark"] == "hellaswag")
    assert hella["test"] == "z" and hella["verdict"] == "regressed" and hella["adjusted_over"] == "primary"
    assert _gate(wh, "-b", "base", "-c", "cand", "--margin", "2%").exit_code == 1


def test_repeated_aggregates_are_one_run_and_tasks_are_not_pooled(put_scores) -> None:
    one = [{"model": m, "metric": "acc", "benchmark": "b", "category": "b", "task": "b", "value": v, "stderr": 0.03,
            "n": 500} for m, v in (("base", 0.6), ("cand", 0.52))]  # fmt: skip
    put_scores([], metrics=one, source="/r/first.json")
    wh = put_scores([], metrics=one, source="/r/again.json")
    b = next(r for r in _compare(wh, "-b", "base", "-c", "cand", "--by", "none") if r["scope"] == "benchmark")
    z = -0.08 / np.hypot(0.03, 0.03)
    assert b["n_baseline"] == 500 and b["p_value"] == pytest.approx(2 * stats.norm.sf(abs(z)))
    fewshot = (("arc|0", 0.5), ("arc|25", 0.6))
    two = [{"model": m, "metric": "acc", "benchmark": "arc", "category": "arc", "task": t, "value": v,
            "stderr": 0.014, "n": 1172} for m in ("base", "cand") for t, v in fewshot]  # fmt: skip
    wh2 = put_scores([], metrics=two, source="/r/fewshot.json")
    arc = next(r for r in _compare(wh2, "-b", "base", "-c", "cand", "--by", "none") if r["benchmark"] == "arc")
    assert arc["test"] is None and "only its 2 tasks: not averaged" in arc["note"]


def test_equal_aggregates_of_different_categories_are_both_tested(put_scores) -> None:
    metrics = []
    for cat, (vb, vc, se) in {"anatomy": (0.5, 0.4, 0.04), "virology": (0.5, 0.4, 0.04),
                              "astronomy": (0.6, 0.5, 0.03)}.items():  # fmt: skip
        metrics += [{"model": m, "metric": "acc", "benchmark": "mmlu", "category": cat, "task": f"mmlu_{cat}",
                     "value": v, "stderr": se, "n": 150} for m, v in (("base", vb), ("cand", vc))]  # fmt: skip
    wh = put_scores([], metrics=metrics)
    cats = {r["category"]: r for r in _compare(wh, "-b", "base", "-c", "cand", "--by", "category")
            if r["scope"] == "category"}  # fmt: skip
    assert all(r["test"] == "z" and "not tested again" not in (r["note"] or "") for r in cats.values())
    assert cats["virology"]["adjusted_over"] == "3 row(s) of this pair and metric (holm)"


def test_z_test_with_one_zero_stderr_is_not_run(put_scores) -> None:
    metrics = [{"model": "base", "metric": "acc", "benchmark": "b", "category": "b", "value": 1.0, "stderr": 0.0,
                "n": 50}, {"model": "cand", "metric": "acc", "benchmark": "b", "category": "b", "value": 0.9,
                "stderr": 0.0424, "n": 50}]  # fmt: skip
    wh = put_scores([], metrics=metrics)
    b = next(r for r in _compare(wh, "-b", "base", "-c", "cand", "--by", "none") if r["scope"] == "benchmark")
    assert b["p_value"] is None and b["test"] == "z"


def test_unadjusted_secondary_rows_have_unadjusted_intervals(put_scores) -> None:
    rng = np.random.default_rng(12)
    rows = []
    for cat in ("a", "b"):
        base = rng.uniform(0.3, 0.9, 40)
        rows += _items("base", base, prefix=cat, category=cat) + _items("cand", base - 0.05 + rng.normal(0, 0.1, 40),
                                                                          prefix=cat, category=cat)  # fmt: skip
    wh = put_scores(rows)
    for r in _compare(wh, "-b", "base", "-c", "cand", "--by", "category", "--adjust", "none"):
        if r["scope"] == "category":
            assert r["adjusted_over"] == "not adjusted" and r["p_adjusted"] == r["p_value"]
            assert (r["ci_high"] < 0) == (r["p_value"] < 0.05)


def test_rounding_dust_is_no_spread(put_scores) -> None:
    base = np.round(np.linspace(0.31, 0.97, 35), 2)
    wh = put_scores(_items("base", base) + _items("cand", np.round(base - 0.1, 2)))
    r = _overall(_compare(wh, "-b", "base", "-c", "cand", "--by", "none", "--margin", "0.01"))
    assert r["test"] == "sign-flip" and r["p_value"] > 0 and r["ci_low"] is None and r["verdict"] == "inconclusive"


def test_mde_on_permutation_rows_and_filter_none_is_no_filter(put_scores) -> None:
    wh = put_scores(_items("base", [0.5, 0.7, 0.6, 0.9], filter="none") + _items("cand", [0.4, 0.75, 0.5, 0.8]))
    r = _overall(_compare(wh, "-b", "base", "-c", "cand", "--by", "none"))
    assert r["n_paired"] == 4 and r["metric"] == "score" and r["test"] == "sign-flip"
    d = np.array([0.4, 0.75, 0.5, 0.8]) - np.array([0.5, 0.7, 0.6, 0.9])
    effect = TTestPower().power(effect_size=r["mde"] / d.std(ddof=1), nobs=4, alpha=0.05)
    assert effect == pytest.approx(0.8, abs=1e-3)


def test_scores_and_aggregates_of_one_metric_are_named_apart(put_scores) -> None:
    metrics = [{"model": "cand", "metric": "acc", "benchmark": "b", "category": "b", "value": 0.5, "stderr": 0.01,
                "n": 100}]  # fmt: skip
    wh = put_scores(_items("base", [1, 0, 1], metric="acc"), metrics=metrics)
    (r,) = _compare(wh, "-b", "base", "-c", "cand")
    assert r["note"] == "no metric in common: baseline has acc; candidate has acc (aggregate)"


def test_items_whose_content_changed_are_not_paired(put_scores) -> None:
    """Same doc ids, but the dataset changed for 3 of 10: only the 7 unchanged docs pair, and the row says so."""
    base = [{"model": "base", "score": 1.0, "item_id": str(i), "item_hash": f"h{i}"} for i in range(10)]
    cand = [{"model": "cand", "score": float(i % 2), "item_id": str(i), "item_hash": f"h{i}" if i < 7 else f"new{i}"}
            for i in range(10)]  # fmt: skip
    wh = put_scores(base + cand)
    r = _overall(_compare(wh, "-b", "base", "-c", "cand", "--by", "none"))
    assert (r["n_paired"], r["n_changed"]) == (7, 3)
    assert r["mean_candidate"] == pytest.approx(np.mean([i % 2 for i in range(7)]))
    assert "3 item(s) with the same id changed content between the runs" in r["note"]


def test_a_benchmarks_own_aggregate_is_its_row(put_scores) -> None:
    """lm-eval's group value (0.6504) is mmlu's, not the unweighted mean of its subjects."""
    metrics = []
    for m, shift in (("base", 0.0), ("cand", -0.06)):
        metrics += [{"model": m, "metric": "acc", "benchmark": "mmlu", "category": "mmlu", "task": "mmlu",
                     "value": 0.6504 + shift, "stderr": 0.0038, "n": 14042}]  # fmt: skip
        metrics += [{"model": m, "metric": "acc", "benchmark": "mmlu", "category": s, "task": f"mmlu_{s}",
                     "value": v + shift, "stderr": 0.04, "n": 150}
                    for s, v in (("anatomy", 0.9), ("virology", 0.5))]  # fmt: skip
    wh = put_scores([], metrics=metrics)
    rows = _compare(wh, "-b", "base", "-c", "cand", "--by", "category")
    mmlu = next(r for r in rows if r["scope"] == "benchmark")
    assert mmlu["mean_baseline"] == pytest.approx(0.6504) and mmlu["n_baseline"] == 14042 and mmlu["test"] == "z"
    assert sorted(r["category"] for r in rows if r["scope"] == "category") == ["anatomy", "virology"]


def test_model_aliases_and_bases_from_evalhouse_toml(put_scores, tmp_path) -> None:
    rows = _items("model_a", [1, 0, 1, 1], prefix="x") + _items("modela", [1, 1, 0, 1], prefix="y")
    rows += _items("aegis", [0, 0, 1, 1], prefix="x") + _items("aegis", [1, 0, 0, 1], prefix="y")
    wh = put_scores(rows)
    cfg = tmp_path / "evalhouse.toml"
    cfg.write_text('[models.aliases]\n"model-a" = ["model_a", "modela"]\n[models.bases]\naegis = "model-a"\n',
                   encoding="utf-8")  # fmt: skip
    # No pattern: the base relation pairs aegis with model-a, whose two spellings are one model (8 items).
    (r,) = _compare(wh, "--config", str(cfg), "--by", "none")
    assert (r["baseline"], r["candidate"], r["n_baseline"], r["n_paired"]) == ("model-a", "aegis", 8, 8)
    # Any spelling selects the model.
    (s,) = _compare(wh, "--config", str(cfg), "--by", "none", "-b", "modela", "-c", "aegis")
    assert s["baseline"] == "model-a" and s["n_paired"] == 8


def test_differing_run_settings_are_named(put_scores) -> None:
    import json as _json

    from evalhouse.warehouse import connect as _connect

    wh = put_scores(_items("base", [1, 0, 1]) + _items("cand", [1, 1, 0]))
    con = _connect(wh)
    runs = dict(con.sql("SELECT model, run_id FROM runs").fetchall())
    con.close()
    # Runs written by put_scores have no metadata; add settings as an adapter would, in a new batch.
    import pyarrow as pa

    from evalhouse.commit import Commit
    from evalhouse.schema import RUNS

    batch = Commit(wh, "ingest")
    settings = {"base": {"n_shot": 5, "harness": "0.4.2"}, "cand": {"n_shot": 0, "harness": "0.4.2"}}
    new = [{"run_id": runs[m] + "-s", "source_path": "/x", "model": m, "model_base": m, "n_items": 3,
            "batch_id": batch.batch_id, "metadata": _json.dumps({"settings": settings[m]})} for m in runs]  # fmt: skip
    batch.write("runs", pa.Table.from_pylist(new, schema=RUNS.arrow_schema()))
    batch.publish()
    r = _overall(_compare(wh, "-b", "base", "-c", "cand", "--by", "none"))
    assert r["settings_diff"] == "n_shot: 5 vs 0" and r["note"].endswith("run settings differ: n_shot: 5 vs 0")


@pytest.mark.parametrize(("run_sd", "expected"), [(0.001, "regressed"), (0.1, "inconclusive")])
def test_a_drop_within_the_baselines_run_to_run_noise_is_not_a_regression(put_scores, run_sd, expected) -> None:
    """The candidate is 0.05 below the baseline on every one of 200 items (a certain drop beyond a 1 %
    margin). The baseline ran 4 times: with runs that agree (sd 0.001) that is a regression; with
    runs whose means move by 0.1 (floor 1.96 x 0.1 x sqrt(1/4 + 1) = 0.22), it is within the noise."""
    rng = np.random.default_rng(11)
    level = rng.uniform(0.3, 0.7, 200)
    offsets = rng.normal(0, run_sd, 4)
    rows = [{"model": "m", "item_id": f"q{i}", "score": float(v + offsets[e]), "epoch": e}
            for e in range(4) for i, v in enumerate(level)]  # fmt: skip
    mean_runs = level[:, None] + offsets[None, :]
    shift = -0.05 + rng.normal(0, 0.01, 200)
    shift -= shift.mean() + 0.05  # exactly -0.05 on average
    rows += [{"model": "m-q4km", "item_id": f"q{i}", "score": float(v + d)}
             for i, (v, d) in enumerate(zip(mean_runs.mean(1), shift, strict=True))]  # fmt: skip
    r = _overall(_compare(put_scores(rows), "-b", "m", "-c", "m-q4km", "--by", "none", "--margin", "1%"))
    assert r["diff"] == pytest.approx(-0.05) and r["bound_high"] < -0.01
    assert r["verdict"] == expected and r["within_noise"] is (expected == "inconclusive")
