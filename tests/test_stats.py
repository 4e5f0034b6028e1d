"""describe(): per-group statistics and intervals, checked against SciPy and hand-computed values."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from engine.errors import AnalysisError
from engine.stats import add_intervals, clustered_sem, describe, t_interval
from engine.warehouse import connect

CONT = [0.2, 0.5, 0.9, 0.4, 0.75]
BIN = [1, 0, 0, 1, 1, 1, 0]


@pytest.fixture
def con(put_scores):
    rows = [{"model": "alpha", "score": s, "category": "math", "benchmark": "gsm"} for s in CONT]
    rows += [{"model": "alpha", "score": s, "category": "logic", "benchmark": None} for s in BIN]
    rows += [{"model": "beta", "score": 0.3, "category": "math", "benchmark": "gsm"}]  # n = 1
    rows += [{"model": "beta", "score": 0.0, "category": "logic"} for _ in range(4)]  # all-equal 0/1
    rows += [{"model": "gamma", "score": 0.6, "category": "math", "metric": "f1"} for _ in range(3)]  # zero variance
    c = connect(put_scores(rows))
    yield c
    c.close()


def _row(frame: pl.DataFrame, **keys: str) -> dict:
    hit = frame.filter(*[pl.col(k) == v for k, v in keys.items()])
    assert hit.height == 1, keys
    return hit.row(0, named=True)


def test_columns_and_grouping(con) -> None:
    out = describe(con, ["model", "category"])
    assert out.columns == ["model", "category", "metric", "n", "mean", "std", "sem", "median", "min", "max",
                           "ci_low", "ci_high", "ci_method"]  # fmt: skip
    assert out.height == 5
    bench = describe(con, ["benchmark"])
    assert set(bench["benchmark"]) == {"gsm", "unknown"}  # NULL benchmark shown as `unknown`


def test_t_interval_matches_scipy(con) -> None:
    r = _row(describe(con, ["model", "category"]), model="alpha", category="math")
    x = np.array(CONT)
    assert r["ci_method"] == "t"
    assert (r["n"], r["mean"], r["median"], r["min"], r["max"]) == (5, pytest.approx(x.mean()), 0.5, 0.2, 0.9)
    assert r["std"] == pytest.approx(x.std(ddof=1))
    assert r["sem"] == pytest.approx(stats.sem(x))
    ci = stats.ttest_1samp(x, 0).confidence_interval(0.95)
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(ci.low), pytest.approx(ci.high))
    r90 = _row(describe(con, ["model", "category"], level=0.9), model="alpha", category="math")
    ci90 = stats.t.interval(0.9, 4, loc=x.mean(), scale=stats.sem(x))
    assert (r90["ci_low"], r90["ci_high"]) == (pytest.approx(ci90[0]), pytest.approx(ci90[1]))


def test_wilson_for_binary_groups(con) -> None:
    out = describe(con, ["model", "category"])
    r = _row(out, model="alpha", category="logic")
    ci = stats.binomtest(4, 7).proportion_ci(method="wilson")
    assert r["ci_method"] == "wilson"
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(ci.low), pytest.approx(ci.high))
    zeros = _row(out, model="beta", category="logic")  # all-equal 0/1: still an honest interval
    ci0 = stats.binomtest(0, 4).proportion_ci(method="wilson")
    assert zeros["ci_low"] == 0.0 and zeros["ci_high"] == pytest.approx(ci0.high)
    forced_t = _row(describe(con, ["model", "category"], method="t"), model="alpha", category="logic")
    assert forced_t["ci_method"] == "t"


def test_degenerate_groups(con) -> None:
    out = describe(con, ["model", "category"])
    one = _row(out, model="beta", category="math")
    assert one["n"] == 1 and one["std"] is None and one["sem"] is None and one["ci_low"] is None
    flat = _row(out, model="gamma", category="math")
    assert flat["std"] == 0.0 and flat["ci_low"] == pytest.approx(0.6) and flat["ci_high"] == pytest.approx(0.6)
    wilson_only = describe(con, ["model", "category"], method="wilson")
    assert _row(wilson_only, model="gamma", category="math")["ci_low"] is None


def test_clustered_standard_errors(con) -> None:
    # Clusters of one item each reduce to the ordinary standard error.
    by_sample = _row(describe(con, ["model", "category"], cluster="sample_id"), model="alpha", category="math")
    assert by_sample["ci_method"] == "cluster-t"
    assert by_sample["sem"] == pytest.approx(stats.sem(CONT))
    # All of alpha's scores clustered by category: two clusters, by hand.
    x = np.array(CONT + BIN, dtype=float)
    m = x.mean()
    u = np.array([(np.array(CONT) - m).sum(), (np.array(BIN) - m).sum()])
    se = np.sqrt(2 / 1 * (u**2).sum()) / len(x)
    r = _row(describe(con, ["model"], cluster="category"), model="alpha")
    assert r["sem"] == pytest.approx(se)
    assert r["ci_high"] == pytest.approx(m + stats.t.ppf(0.975, 1) * se)
    # NULL cluster values are clusters of one: 5 singletons (benchmark NULL) + the gsm cluster.
    nulls = _row(describe(con, ["model"], cluster="benchmark"), model="alpha")
    assert nulls["sem"] is not None


def test_where_filters_with_bound_values(con) -> None:
    out = describe(con, ["model"], where={"model": ["alpha", "beta"], "metric": "score"})
    assert out["model"].to_list() == ["alpha", "beta"]
    assert describe(con, ["model"], where={"model": "x' OR 1=1 --"}).height == 0


def test_bad_requests(con) -> None:
    with pytest.raises(AnalysisError, match="cannot group by"):
        describe(con, ["run_id"])
    with pytest.raises(AnalysisError, match="cannot cluster"):
        describe(con, ["model"], cluster="nope")
    with pytest.raises(AnalysisError, match="confidence level"):
        describe(con, ["model"], level=1.5)
    with pytest.raises(AnalysisError, match="cannot filter"):
        describe(con, ["model"], where={"score; drop": 1})


def test_pure_helpers_vectorised() -> None:
    lo, _ = t_interval(np.array([1.0, 2.0]), np.array([0.5, 0.0]), np.array([3, 0]), 0.95)
    assert lo[0] == pytest.approx(1 - stats.t.ppf(0.975, 3) * 0.5) and np.isnan(lo[1])
    assert np.isnan(clustered_sem(np.array([5]), np.array([1]), np.array([2.0]))[0])
    frame = pl.DataFrame({"n": [3], "mean": [0.5], "std": [None], "successes": [1.5], "binary": [None]},
                         schema_overrides={"std": pl.Float64, "binary": pl.Boolean})  # fmt: skip
    assert add_intervals(frame)["ci_low"].to_list() == [None]
