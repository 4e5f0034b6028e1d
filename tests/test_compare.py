"""compare(): pairing, test choice, results against SciPy, adjustment, storage and the views."""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl
import pytest
from scipy import stats

from evalhouse import compare as cmp
from evalhouse.errors import AnalysisError
from evalhouse.pairs import Rule, default_pairs, pairs_from_rules
from evalhouse.schema import COMPARISONS, VIEWS
from evalhouse.settings import load as load_config
from evalhouse.warehouse import connect, open_warehouse, table_source

BASE_BIN = [1, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1]
CAND_BIN = [0, 1, 0, 0, 1, 0, 0, 1, 1, 1, 0, 0]
BASE_CONT = [0.8, 0.7, 0.9, 0.65, 0.72, 0.88]
CAND_CONT = [0.6, 0.71, 0.7, 0.5, 0.74, 0.6]


def _items(model: str, scores: list[float], category: str, **extra) -> list[dict]:
    return [{"model": model, "score": s, "category": category, "item_id": f"{category}-{i}", **extra}
            for i, s in enumerate(scores)]  # fmt: skip


@pytest.fixture
def pair_wh(put_scores):
    rows = _items("base", BASE_BIN, "quiz") + _items("base-q4km", CAND_BIN, "quiz")
    rows += _items("base", BASE_CONT, "essay") + _items("base-q4km", CAND_CONT, "essay")
    # `other` answered different items of the same category `essay`, and nothing else.
    rows += [
        {"model": "other", "score": s, "category": "essay", "item_id": f"o{i}"} for i, s in enumerate([0.1, 0.3, 0.2])
    ]
    # `island` shares nothing with anyone.
    rows += [{"model": "island", "score": s, "category": "poetry", "item_id": f"p{i}"} for i, s in enumerate([1, 0, 1])]
    return put_scores(rows)


@pytest.fixture
def con(pair_wh):
    c = connect(pair_wh)
    yield c
    c.close()


def _one(frame: pl.DataFrame, **keys) -> dict:
    hit = frame.filter(*[pl.col(k).is_null() if v is None else pl.col(k) == v for k, v in keys.items()])
    assert hit.height == 1, (keys, hit)
    return hit.row(0, named=True)


def test_output_columns_are_the_interface(con) -> None:
    out = cmp.compare(con)
    assert list(out.columns) == list(cmp.COLUMNS)
    assert set(cmp.COLUMNS) <= set(COMPARISONS.names)


def test_default_pairing_by_model_base(con) -> None:
    out = cmp.compare(con)
    assert set(zip(out["baseline"], out["candidate"], strict=True)) == {("base", "base-q4km")}
    assert out["scope"].to_list() == ["overall", "category", "category"]


def test_auto_paired_mcnemar_on_binary_items(con) -> None:
    r = _one(cmp.compare(con), scope="category", category="quiz")
    b, c = np.array(BASE_BIN), np.array(CAND_BIN)
    n10, n01 = int(((b == 1) & (c == 0)).sum()), int(((b == 0) & (c == 1)).sum())
    assert r["test"] == "mcnemar" and r["n_paired"] == 12
    assert r["p_value"] == pytest.approx(stats.binomtest(n01, n10 + n01, 0.5).pvalue)
    assert r["mean_baseline"] == pytest.approx(b.mean()) and r["diff"] == pytest.approx(c.mean() - b.mean())
    assert r["rel_change_pct"] == pytest.approx((c.mean() - b.mean()) / b.mean() * 100)
    assert r["direction"] == "degraded"


def _sign_flip_p(cand: list[float], base: list[float]) -> float:
    return stats.permutation_test(
        (np.array(cand), np.array(base)), lambda x, y: np.mean(x - y), permutation_type="samples", n_resamples=np.inf
    ).pvalue


def test_auto_exact_sign_flip_on_few_continuous_items(con) -> None:
    r = _one(cmp.compare(con), scope="category", category="essay")
    assert r["test"] == "sign-flip" and r["n_paired"] == 6
    assert r["p_value"] == pytest.approx(_sign_flip_p(CAND_CONT, BASE_CONT))
    assert r["ci_low"] <= r["diff"] <= r["ci_high"]


def test_auto_paired_t_on_many_continuous_items(put_scores) -> None:
    rng = np.random.default_rng(4)
    base = rng.uniform(0.2, 0.9, 40)
    cand = base + rng.normal(-0.02, 0.05, 40)
    con = connect(put_scores(_items("m", base, "c") + _items("m-q4km", cand, "c")))
    r = _one(cmp.compare(con, by=[]), scope="overall")
    ref = stats.ttest_rel(cand, base)
    assert r["test"] == "paired"
    assert (r["statistic"], r["p_value"]) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue))
    ci = ref.confidence_interval(0.95)
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(ci.low), pytest.approx(ci.high))


def test_overall_pairs_all_shared_items(con) -> None:
    r = _one(cmp.compare(con), scope="overall")
    assert r["test"] == "sign-flip" and r["n_paired"] == 18  # mixed 0/1 and continuous, few items
    assert r["p_value"] == pytest.approx(_sign_flip_p(CAND_BIN + CAND_CONT, BASE_BIN + BASE_CONT), abs=0.01)


def test_repeated_answers_are_averaged_per_item(put_scores) -> None:
    rows = _items("m", [0.5, 0.6, 0.7], "c") + _items("m", [0.7, 0.6, 0.9], "c", epoch=1)
    rows += _items("m-q8_0", [0.4, 0.65, 0.5], "c")
    con = connect(put_scores(rows))
    r = _one(cmp.compare(con, by=[]), scope="overall")
    base_means = [(0.5 + 0.7) / 2, (0.6 + 0.6) / 2, (0.7 + 0.9) / 2]
    assert r["p_value"] == pytest.approx(_sign_flip_p([0.4, 0.65, 0.5], base_means))
    assert (r["n_baseline"], r["n_answers_baseline"], r["n_paired"]) == (3, 6, 3)
    assert "repeated answers" in r["note"]
    # The unpaired tests take items too: Welch on the per-item means.
    s = _one(cmp.compare(con, by=[], test="welch"), scope="overall")
    ref = stats.ttest_ind([0.4, 0.65, 0.5], base_means, equal_var=False)
    assert s["p_value"] == pytest.approx(ref.pvalue) and s["n_baseline"] == 3
    # Only the original scripts' Student test counts every answer.
    t = _one(cmp.compare(con, by=[], test="student"), scope="overall")
    ref = stats.ttest_ind([0.4, 0.65, 0.5], [0.5, 0.6, 0.7, 0.7, 0.6, 0.9])
    assert t["p_value"] == pytest.approx(ref.pvalue) and t["n_baseline"] == 6


def test_unpaired_when_no_items_shared(con) -> None:
    out = cmp.compare(con, baseline=["base"], candidate=["other"])
    r = _one(out, scope="category", category="essay")
    assert r["test"] == "permutation" and r["n_paired"] == 0 and r["comparable"]
    ref = stats.permutation_test(
        (np.array([0.1, 0.3, 0.2]), np.array(BASE_CONT)), lambda x, y: np.mean(x) - np.mean(y), n_resamples=np.inf
    )
    assert r["p_value"] == pytest.approx(ref.pvalue)
    assert "partial overlap: 0 shared" in r["note"]
    # Fisher's test named explicitly on scores that are not all 0/1: no result, and a note saying why.
    f = _one(cmp.compare(con, baseline=["base"], candidate=["island"], test="fisher"), scope="overall")
    assert f["p_value"] is None and "needs 0/1" in f["note"]


def test_binary_groups_score_test_and_fisher(put_scores) -> None:
    from statsmodels.stats import proportion

    rows = [{"model": "a", "score": s, "category": "c", "item_id": f"a{i}"} for i, s in enumerate([1] * 9 + [0] * 3)]
    rows += [{"model": "b", "score": s, "category": "c", "item_id": f"b{i}"} for i, s in enumerate([1] * 3 + [0] * 8)]
    con = connect(put_scores(rows))
    r = _one(cmp.compare(con, baseline=["a"], candidate=["b"], by=[]), scope="overall")
    ref = proportion.test_proportions_2indep(3, 11, 9, 12, method="score", compare="diff", correction=True)
    assert r["test"] == "score" and r["p_value"] == pytest.approx(ref.pvalue, rel=1e-6)
    f = _one(cmp.compare(con, baseline=["a"], candidate=["b"], by=[], test="fisher"), scope="overall")
    ref = stats.fisher_exact([[3, 8], [9, 3]])
    assert f["test"] == "fisher"
    assert (f["statistic"], f["p_value"]) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue))


def test_not_comparable_pairs(con) -> None:
    out = cmp.compare(con, baseline=["base"], candidate=["island"])
    r = _one(out, scope="overall")
    assert r["comparable"] is False and r["test"] is None and r["p_value"] is None and r["significant"] is None
    assert r["note"].startswith("not comparable")
    forced = _one(cmp.compare(con, baseline=["base"], candidate=["island"], test="student"), scope="overall")
    ref = stats.ttest_ind([1, 0, 1], BASE_BIN + BASE_CONT)
    assert forced["comparable"] is False and forced["p_value"] == pytest.approx(ref.pvalue)


def test_forced_paired_without_shared_items_has_no_result(con) -> None:
    r = _one(cmp.compare(con, baseline=["base"], candidate=["other"], test="paired", by=[]), scope="overall")
    assert r["test"] == "paired" and r["p_value"] is None and "no items in common" in r["note"]
    m = _one(cmp.compare(con, test="mcnemar"), scope="category", category="essay")
    assert m["p_value"] is None and "0/1" in m["note"]


def test_adjustment_within_pair_and_metric(con) -> None:
    raw = cmp.compare(con, adjust="none")
    overall = raw.filter(pl.col("scope") == "overall")
    assert overall["p_adjusted"].to_list() == overall["p_value"].to_list()  # primary: not adjusted
    cats = raw.filter(pl.col("scope") == "category")
    p = cats["p_value"].to_numpy()
    holm = cmp.compare(con).filter(pl.col("scope") == "category")["p_adjusted"].to_numpy()
    order = np.argsort(p)
    expected = np.minimum(1, np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order]))
    np.testing.assert_allclose(holm[order], expected)
    bh = cmp.compare(con, adjust="bh").filter(pl.col("scope") == "category")["p_adjusted"].to_numpy()
    np.testing.assert_allclose(bh, stats.false_discovery_control(p))
    strict = cmp.compare(con, alpha=1e-9)
    assert not strict["significant"].any()


def test_lower_is_better_and_zero_baseline(put_scores) -> None:
    rows = _items("m", [2.0, 2.5, 3.0], "ppl", metric="perplexity", higher_is_better=False)
    rows += _items("m-q4_0", [2.6, 3.1, 3.3], "ppl", metric="perplexity", higher_is_better=False)
    rows += _items("m", [0.0, 0.0, 0.0], "acc") + _items("m-q4_0", [1.0, 0.0, 1.0], "acc")
    con = connect(put_scores(rows))
    out = cmp.compare(con, by=[])
    ppl = _one(out, metric="perplexity")
    assert ppl["diff"] > 0 and ppl["rel_change_pct"] > 0 and ppl["direction"] == "degraded"
    acc = _one(out, metric="score")
    assert acc["rel_change_pct"] is None and acc["direction"] == "improved"
    assert "baseline mean is 0" in acc["note"]


def test_z_test_on_reported_aggregates(put_scores) -> None:
    mmlu = {"benchmark": "mmlu", "category": "mmlu", "metric": "acc", "n": 500}
    metrics = [
        {**mmlu, "model": "m", "value": 0.62, "stderr": 0.02},
        {**mmlu, "model": "m-q4km", "value": 0.58, "stderr": 0.015},
    ]
    con = connect(put_scores([], metrics=metrics))
    out = cmp.compare(con, by=["benchmark"])
    r = _one(out, scope="benchmark")
    z = (0.58 - 0.62) / np.hypot(0.02, 0.015)
    assert r["test"] == "z" and r["n_paired"] == 0 and r["comparable"]
    assert r["p_value"] == pytest.approx(2 * stats.norm.sf(abs(z)))
    assert (r["n_baseline"], r["mean_candidate"]) == (500, 0.58)
    assert "aggregates" in r["note"]


def test_pair_rules_and_errors(con) -> None:
    names = ["Aegis", "aegis-q4km", "modela", "modela-q4km", "agiasi"]
    assert pairs_from_rules(names, [Rule(("MODELA",), ("aeg*",))]) == [("modela", "Aegis"), ("modela", "aegis-q4km")]
    assert pairs_from_rules(names, [Rule((), ("*q4km",))]) == [("modela", "modela-q4km")]
    assert default_pairs(["x-q8_0", "x-q4_k_m", "y"]) == [("x-q8_0", "x-q4_k_m")]
    assert default_pairs(["x-q4_0", "x-q4_1"]) == []  # same precision: no way to tell the base
    with pytest.raises(AnalysisError, match="no pairs"):
        cmp.compare(con, baseline=["nothing*"], candidate=["base"])
    with pytest.raises(AnalysisError, match="no such model"):
        cmp.compare(con, pairs=[("base", "ghost")])
    with pytest.raises(AnalysisError, match="unknown test"):
        cmp.compare(con, test="anova")
    with pytest.raises(AnalysisError, match="cannot compare by"):
        cmp.compare(con, by=["model"])


def test_config_file(tmp_path) -> None:
    cfg_path = tmp_path / "evalhouse.toml"
    cfg_path.write_text(
        '[compare]\nbaseline = ["model-a", "modela"]\ncandidate = "aegis*"\ntest = "student"\nalpha = 0.01\n'
        'exclude_sources = ["*/abc_test_initial/*"]\n[[compare.pairs]]\nbaseline = "x"\ncandidate = ["y", "z"]\n'
    )
    cfg = load_config(cfg_path)
    assert cfg.rules == (Rule(("model-a", "modela"), ("aegis*",)), Rule(("x",), ("y", "z")))
    assert (cfg.test, cfg.alpha, cfg.exclude_sources) == ("student", 0.01, ("*/abc_test_initial/*",))
    cfg_path.write_text("[compare]\nbaselines = 1\n")
    with pytest.raises(AnalysisError, match="unknown key"):
        load_config(cfg_path)
    cfg_path.write_text("[compare\n")
    with pytest.raises(AnalysisError, match="not valid TOML"):
        load_config(cfg_path)


def test_exclude_sources(put_scores) -> None:
    put_scores(_items("m", [0.5, 0.6], "c") + _items("m-q8_0", [0.4, 0.5], "c"), source="/r/keep.json")
    wh = put_scores(_items("m", [0.0, 0.0], "d") + _items("m-q8_0", [1.0, 1.0], "d"), source="/r/old/skip.json")
    con = connect(wh)
    out = cmp.compare(con, exclude_sources=["*/old/*"])
    assert out["category"].drop_nulls().to_list() == ["c"]
    assert _one(out, scope="overall")["n_baseline"] == 2


def test_saved_results_replace_the_previous_analysis(pair_wh) -> None:
    wh = pair_wh
    con = connect(wh)
    first = cmp.save(wh, cmp.compare(con))
    second_frame = cmp.compare(con, baseline=["base"], candidate=["other"])
    second = cmp.save(wh, second_frame)
    assert second > first
    con = connect(wh)
    overall = con.sql("SELECT * FROM comparisons").pl()
    assert overall["analysis_id"].unique().to_list() == [second]
    assert overall["candidate"].to_list() == ["other"]
    cats = con.sql("SELECT * FROM category_comparisons").pl()
    assert cats["scope"].unique().to_list() == ["category"] and cats.height == 1
    assert list(overall.columns) == VIEWS["comparisons"].names
    for _ in range(cmp.KEEP_ANALYSES + 2):
        cmp.save(wh, second_frame)
    kept = duckdb.sql(f"SELECT count(DISTINCT analysis_id) FROM {table_source(wh, 'comparisons')}").fetchall()[0]
    assert kept == (cmp.KEEP_ANALYSES,)


def test_views_work_on_a_version_without_the_comparisons_table(pair_wh) -> None:
    wh = pair_wh
    from evalhouse import versions

    current = versions.current(wh.root)
    assert current is not None
    older = {t: v for t, v in current.tables.items() if t != "comparisons"}
    versions.publish(wh.root, versions.new(wh.root, "ingest", None, older))
    reopened = open_warehouse(wh.root)
    con = connect(reopened)
    assert con.sql("SELECT count(*) FROM comparisons").fetchall() == [(0,)]
    assert con.sql("SELECT count(*) FROM category_comparisons").fetchall() == [(0,)]
