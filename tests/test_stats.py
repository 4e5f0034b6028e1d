"""describe(): per-item statistics and intervals, checked against SciPy, statsmodels and hand-computed values."""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from scipy import special, stats
from statsmodels.stats.proportion import proportion_confint

from evalhouse.errors import AnalysisError
from evalhouse.schema import SCORES
from evalhouse.stats import add_intervals, clustered_sem, describe, logit_t_interval, t_interval
from evalhouse.warehouse import connect

CONT = [0.2, 0.5, 0.9, 0.4, 0.75]
BIN = [1, 0, 0, 1, 1, 1, 0]
TOKENS = [120.0, 85.0, 230.0, 40.0, 99.0]  # a metric outside [0, 1]: plain t


@pytest.fixture
def con(put_scores):
    rows = [{"model": "alpha", "score": s, "category": "math", "benchmark": "gsm"} for s in CONT]
    rows += [{"model": "alpha", "score": s, "category": "math", "benchmark": "gsm", "metric": "tokens"} for s in TOKENS]
    rows += [{"model": "alpha", "score": s, "category": "logic", "benchmark": None} for s in BIN]
    rows += [{"model": "beta", "score": 0.3, "category": "math", "benchmark": "gsm"}]  # n = 1
    rows += [{"model": "beta", "score": 0.0, "category": "logic"} for _ in range(4)]  # all-equal 0/1
    rows += [{"model": "gamma", "score": 0.6, "category": "math", "metric": "f1"} for _ in range(3)]  # zero variance
    c = connect(put_scores(rows))
    yield c
    c.close()


@pytest.fixture
def make_con(put_scores):
    """A connection to the test's warehouse after adding ``rows`` (one batch); closed at the end of the test."""
    opened: list[duckdb.DuckDBPyConnection] = []

    def make(rows: list[dict]) -> duckdb.DuckDBPyConnection:
        opened.append(connect(put_scores(rows)))
        return opened[-1]

    yield make
    for c in opened:
        c.close()


def _row(frame: pl.DataFrame, **keys: str) -> dict:
    hit = frame.filter(*[pl.col(k) == v for k, v in keys.items()])
    assert hit.height == 1, keys
    return hit.row(0, named=True)


def _logit_t(x: np.ndarray, sem: float, df: int, level: float = 0.95) -> tuple[float, float]:
    """The reference t interval on the logit scale, from SciPy."""
    m = x.mean()
    half = stats.t.ppf(1 - (1 - level) / 2, df) * sem / (m * (1 - m))
    return float(special.expit(special.logit(m) - half)), float(special.expit(special.logit(m) + half))


def _cluster_sem(x: np.ndarray, clusters: list) -> tuple[float, int]:
    """Cluster-robust standard error of the mean by hand, and the number of clusters."""
    labels = sorted(set(clusters), key=repr)
    u = np.array([sum(v - x.mean() for v, c in zip(x, clusters, strict=True) if c == g) for g in labels])
    return float(np.sqrt(len(labels) / (len(labels) - 1) * (u**2).sum()) / len(x)), len(labels)


# ------------------------------------------------------------------------------------------------
# Columns, intervals per kind of group
# ------------------------------------------------------------------------------------------------


def test_columns_and_grouping(con) -> None:
    out = describe(con, ["model", "category"])
    assert out.columns == ["model", "category", "metric", "n", "n_answers", "mean", "std", "sem", "median", "min",
                           "max", "ci_low", "ci_high", "ci_method", "note"]  # fmt: skip
    assert out.height == 6
    bench = describe(con, ["benchmark"])
    assert set(bench["benchmark"]) == {"gsm", "unknown"}  # NULL benchmark shown as `unknown`


def test_t_interval_matches_scipy(con) -> None:
    r = _row(describe(con, ["model", "category"]), model="alpha", category="math", metric="tokens")
    x = np.array(TOKENS)
    assert (r["ci_method"], r["note"]) == ("t", None)
    assert (r["n"], r["n_answers"], r["mean"], r["median"], r["min"], r["max"]) == (
        5, 5, pytest.approx(x.mean()), 99.0, 40.0, 230.0)  # fmt: skip
    assert r["std"] == pytest.approx(x.std(ddof=1))
    assert r["sem"] == pytest.approx(stats.sem(x))
    ci = stats.ttest_1samp(x, 0).confidence_interval(0.95)
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(ci.low), pytest.approx(ci.high))
    r90 = _row(describe(con, ["model", "category"], level=0.9), model="alpha", category="math", metric="tokens")
    ci90 = stats.t.interval(0.9, 4, loc=x.mean(), scale=stats.sem(x))
    assert (r90["ci_low"], r90["ci_high"]) == (pytest.approx(ci90[0]), pytest.approx(ci90[1]))


def test_logit_t_interval_for_scores_in_0_1(con) -> None:
    r = _row(describe(con, ["model", "category"]), model="alpha", category="math", metric="score")
    x = np.array(CONT)
    assert r["ci_method"] == "t-logit" and r["sem"] == pytest.approx(stats.sem(x))
    lo, hi = _logit_t(x, stats.sem(x), 4)
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
    assert 0 < r["ci_low"] < x.mean() < r["ci_high"] < 1


def test_wilson_for_binary_groups(con) -> None:
    out = describe(con, ["model", "category"])
    r = _row(out, model="alpha", category="logic")
    lo, hi = proportion_confint(4, 7, alpha=0.05, method="wilson")
    assert r["ci_method"] == "wilson"
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
    ci = stats.binomtest(4, 7).proportion_ci(method="wilson")
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(ci.low), pytest.approx(ci.high))
    zeros = _row(out, model="beta", category="logic")  # all-equal 0/1: still an honest interval
    _, hi0 = proportion_confint(0, 4, alpha=0.05, method="wilson")
    assert zeros["ci_method"] == "wilson" and zeros["ci_low"] == 0.0 and zeros["ci_high"] == pytest.approx(hi0)


def test_method_t_and_wilson(con) -> None:
    forced_t = describe(con, ["model", "category"], method="t")
    x = np.array(BIN, dtype=float)
    logic = _row(forced_t, model="alpha", category="logic")  # 0/1 items: t on the logit scale, not Wilson
    assert logic["ci_method"] == "t-logit"
    assert (logic["ci_low"], logic["ci_high"]) == tuple(pytest.approx(v) for v in _logit_t(x, stats.sem(x), 6))
    assert _row(forced_t, model="beta", category="logic")["ci_method"] == "wilson"  # at 0, t has no width
    wilson_only = describe(con, ["model", "category"], method="wilson")
    cont = _row(wilson_only, model="alpha", category="math", metric="score")
    assert cont["ci_low"] is None and cont["note"] == "scores not all 0 or 1: no Wilson interval"
    assert _row(wilson_only, model="alpha", category="logic")["ci_method"] == "wilson"


def test_degenerate_groups(con) -> None:
    out = describe(con, ["model", "category"])
    one = _row(out, model="beta", category="math")
    assert one["n"] == 1 and one["std"] is None and one["sem"] is None and one["ci_low"] is None
    assert one["note"] == "one item: no interval" and one["ci_method"] is None
    flat = _row(out, model="gamma", category="math")  # 0.6, 0.6, 0.6: not a zero-width interval
    assert flat["std"] == 0.0 and flat["ci_low"] is None and flat["ci_high"] is None and flat["ci_method"] is None
    assert flat["note"] == "no variance among 3 items: no interval"


def test_constant_group_of_seven_has_no_interval(make_con) -> None:
    rows = [{"model": "m", "score": 0.5, "item_id": f"q{i}", "epoch": e} for i in range(7) for e in range(3)]
    rows += [{"model": "u", "score": 7.0, "item_id": f"q{i}", "metric": "tokens"} for i in range(7)]
    c = make_con(rows)
    out = describe(c, ["model"])
    r = _row(out, model="m")
    assert (r["n"], r["n_answers"], r["mean"], r["std"]) == (7, 21, 0.5, 0.0)
    assert (r["ci_low"], r["ci_high"], r["ci_method"]) == (None, None, None)
    assert r["note"] == "no variance among 7 items: no interval"
    unbounded = _row(out, model="u")
    assert unbounded["ci_low"] is None and unbounded["note"] == "no variance among 7 items: no interval"
    per_answer = _row(describe(c, ["model"], per_answer=True), model="m")
    assert per_answer["note"] == "no variance among 21 answers: no interval"


# ------------------------------------------------------------------------------------------------
# The item as the unit
# ------------------------------------------------------------------------------------------------


def test_identical_epochs_are_one_item(make_con) -> None:
    rng = np.random.default_rng(7)
    items = rng.uniform(0.05, 0.95, 40).round(3)
    rows = [
        {"model": "m", "score": float(s), "item_id": f"q{i}", "epoch": e} for i, s in enumerate(items) for e in range(5)
    ]
    c = make_con(rows)
    r = _row(describe(c, ["model"]), model="m")
    assert (r["n"], r["n_answers"]) == (40, 200)
    assert r["mean"] == pytest.approx(items.mean()) and r["median"] == pytest.approx(np.median(items))
    assert r["std"] == pytest.approx(items.std(ddof=1)) and r["sem"] == pytest.approx(stats.sem(items))
    assert r["ci_method"] == "t-logit"
    lo, hi = _logit_t(items, stats.sem(items), 39)
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
    # Per answer: 200 rows, and a standard error sqrt(5)-ish times too small.
    rows200 = np.repeat(items, 5)
    a = _row(describe(c, ["model"], per_answer=True), model="m")
    assert (a["n"], a["n_answers"]) == (200, 200)
    assert a["sem"] == pytest.approx(stats.sem(rows200)) and a["sem"] < r["sem"] / 2
    lo, hi = _logit_t(rows200, stats.sem(rows200), 199)
    assert (a["ci_low"], a["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))


def test_identical_binary_epochs_give_wilson_over_items(make_con) -> None:
    rng = np.random.default_rng(3)
    items = (rng.uniform(size=40) < 0.6).astype(float)
    rows = [
        {"model": "m", "score": float(s), "item_id": f"q{i}", "epoch": e} for i, s in enumerate(items) for e in range(5)
    ]
    r = _row(describe(make_con(rows), ["model"]), model="m")
    k = int(items.sum())
    lo, hi = proportion_confint(k, 40, alpha=0.05, method="wilson")
    assert (r["n"], r["n_answers"], r["ci_method"]) == (40, 200, "wilson")
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
    assert r["sem"] == pytest.approx(stats.sem(items))


def test_disagreeing_epochs_are_averaged_per_item(make_con) -> None:
    answers = {"q0": [1, 1, 0], "q1": [0, 0, 0], "q2": [1, 0, 1, 1], "q3": [1], "q4": [0, 1]}
    rows = [{"model": "m", "score": s, "item_id": q, "epoch": e} for q, ss in answers.items() for e, s in enumerate(ss)]
    # Another answer to q3 (as from a second run of the same model) is averaged in too.
    rows += [{"model": "m", "score": 0.0, "item_id": "q3", "epoch": 0}]
    answers["q3"].append(0)
    means = np.array([np.mean(v) for v in answers.values()])
    r = _row(describe(make_con(rows), ["model"]), model="m")
    assert (r["n"], r["n_answers"]) == (5, 14)
    assert r["mean"] == pytest.approx(means.mean()) and r["sem"] == pytest.approx(stats.sem(means))
    assert r["min"] == 0.0 and r["max"] == pytest.approx(0.75) and r["median"] == pytest.approx(np.median(means))
    assert r["ci_method"] == "t-logit" and 0 < r["ci_low"] < r["ci_high"] < 1


def test_lm_eval_doc_0_in_two_tasks_is_two_items(make_con) -> None:
    lm = {"model": "m", "benchmark": "lm", "category": "lm"}
    rows = [
        {**lm, "task": "arc_easy", "item_id": "0", "score": 1.0},
        {**lm, "task": "gsm8k", "item_id": "0", "score": 0.0},
    ]
    # One doc, two filters: two items; a second epoch of doc 1 is the same item.
    rows += [
        {**lm, "task": "gsm8k", "item_id": "1", "filter": f, "score": s} for f, s in (("strict", 1.0), ("flex", 0.0))
    ]
    rows += [{**lm, "task": "gsm8k", "item_id": "1", "filter": "strict", "score": 1.0, "epoch": 1}]
    # NULL task and filter: the same item_id is the same item (NULLs compare equal in the key).
    rows += [{**lm, "item_id": "7", "score": s, "epoch": e} for e, s in enumerate((1.0, 0.0))]
    c = make_con(rows)
    # Each filter is a metric of its own (`score,strict`): answers extracted two ways never pool.
    out = describe(c, ["model"])
    assert sorted(out["metric"]) == ["score", "score,flex", "score,strict"]
    r = _row(out, model="m", metric="score")
    means = np.array([1.0, 0.0, 0.5])
    assert (r["n"], r["n_answers"]) == (3, 4)
    assert r["mean"] == pytest.approx(means.mean()) and r["sem"] == pytest.approx(stats.sem(means))
    assert (
        _row(out, model="m", metric="score,strict")["n"],
        _row(out, model="m", metric="score,strict")["n_answers"],
    ) == (1, 2)
    # Clustered on item_id: the three items are the clusters, over the four rows.
    x = np.array([1.0, 0.0, 1.0, 0.0])
    keys = [("arc_easy", "0", None), ("gsm8k", "0", None), (None, "7", None), (None, "7", None)]
    se, g = _cluster_sem(x, keys)
    cl = _row(describe(c, ["model"], cluster="item_id"), model="m", metric="score")
    assert g == 3 and (cl["n"], cl["n_answers"]) == (4, 4)
    assert cl["sem"] == pytest.approx(se) and cl["ci_method"] == "cluster-t-logit"


def test_null_item_ids_are_items_of_their_own() -> None:
    base = {"run_id": "r", "model": "m", "category": "c", "item_id": None, "epoch": 0, "metric": "score",
            "higher_is_better": True}  # fmt: skip
    rows = [{**base, "sample_id": i, "score": s} for i, s in enumerate((0.2, 0.4, 0.9))]
    rows += [{**rows[0], "sample_id": 9, "item_id": "q", "score": s} for s in (0.1, 0.3)]
    table = pa.Table.from_pylist(rows, schema=SCORES.arrow_schema())
    c = duckdb.connect()
    c.register("scores_table", table)
    c.execute("CREATE VIEW scores AS SELECT * FROM scores_table")
    r = _row(describe(c, ["model"]), model="m")
    assert (r["n"], r["n_answers"]) == (4, 5)
    assert r["mean"] == pytest.approx(np.mean([0.2, 0.4, 0.9, 0.2]))
    cl = _row(describe(c, ["model"], cluster="item_id"), model="m")
    se, g = _cluster_sem(np.array([0.2, 0.4, 0.9, 0.1, 0.3]), [1, 2, 3, "q", "q"])
    assert g == 4 and cl["sem"] == pytest.approx(se)
    c.close()


# ------------------------------------------------------------------------------------------------
# Clustering
# ------------------------------------------------------------------------------------------------


def test_clustered_standard_errors(con) -> None:
    # Clusters of one answer each reduce to the ordinary standard error.
    by_sample = _row(describe(con, ["model", "category"], cluster="sample_id"), model="alpha", category="math",
                     metric="score")  # fmt: skip
    assert by_sample["ci_method"] == "cluster-t-logit"
    assert by_sample["sem"] == pytest.approx(stats.sem(CONT))
    lo, hi = _logit_t(np.array(CONT), stats.sem(CONT), 4)
    assert (by_sample["ci_low"], by_sample["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
    tokens = _row(describe(con, ["model"], cluster="sample_id"), model="alpha", metric="tokens")
    assert tokens["ci_method"] == "cluster-t" and tokens["sem"] == pytest.approx(stats.sem(TOKENS))
    # All of alpha's scores clustered by category (benchmark, category): two clusters, by hand.
    x = np.array(CONT + BIN, dtype=float)
    se, g = _cluster_sem(x, ["math"] * len(CONT) + ["logic"] * len(BIN))
    r = _row(describe(con, ["model"], cluster="category"), model="alpha", metric="score")
    assert g == 2 and r["sem"] == pytest.approx(se) and (r["n"], r["n_answers"]) == (12, 12)
    assert (r["ci_low"], r["ci_high"]) == tuple(pytest.approx(v) for v in _logit_t(x, se, 1))
    # NULL cluster values are clusters of one: 7 singletons (benchmark NULL) + the gsm cluster.
    nulls = _row(describe(con, ["model"], cluster="benchmark"), model="alpha", metric="score")
    se, g = _cluster_sem(x, ["gsm"] * len(CONT) + list(range(len(BIN))))
    assert g == 8 and nulls["sem"] == pytest.approx(se)
    # By hand, not only by the helper above: mean 0.5625; residuals summed per cluster: gsm -0.0625, the
    # seven singletons 0.4375 (x4) and -0.5625 (x3); squares sum to 1.71875; sqrt(8/7 * 1.71875) / 12.
    assert nulls["sem"] == pytest.approx(0.116794, abs=1e-6)


def test_cluster_on_task_keeps_proportions_inside_0_1(make_con) -> None:
    # Three tasks, strongly clustered 0/1 answers: the symmetric cluster-t interval runs past 0 and 1.
    per_task = {"t1": [1] * 10, "t2": [0] * 9 + [1], "t3": [1] * 6 + [0] * 4}
    rows = [{"model": "m", "benchmark": "b", "category": "c", "task": t, "item_id": f"{i}", "score": float(s)}
            for t, ss in per_task.items() for i, s in enumerate(ss)]  # fmt: skip
    # The same task name under another benchmark is another cluster.
    rows += [{"model": "m", "benchmark": "b2", "category": "c", "task": "t1", "item_id": f"{i}", "score": 0.0}
             for i in range(5)]  # fmt: skip
    x = np.array([r["score"] for r in rows])
    tasks = [(r["benchmark"], r["task"]) for r in rows]
    se, g = _cluster_sem(x, tasks)
    q = stats.t.ppf(0.975, g - 1)
    assert x.mean() - q * se < 0 < 1 < x.mean() + q * se  # what the plain cluster-t interval would say
    r = _row(describe(make_con(rows), ["model"], cluster="task"), model="m")
    assert g == 4 and r["sem"] == pytest.approx(se) and r["ci_method"] == "cluster-t-logit"
    assert 0 < r["ci_low"] < r["mean"] < r["ci_high"] < 1
    assert (r["ci_low"], r["ci_high"]) == tuple(pytest.approx(v) for v in _logit_t(x, se, g - 1))


def test_clustered_edge_cases(make_con) -> None:
    rows = [{"model": "m", "task": f"t{t}", "item_id": f"{i}", "score": 0.0} for t in range(4) for i in range(5)]
    rows += [{"model": "one", "task": "t0", "item_id": f"{i}", "score": s} for i, s in enumerate((0.0, 1.0, 1.0))]
    # Clusters with equal means: no variance between them, so no interval (not a zero-width one).
    rows += [
        {"model": "f", "task": f"t{t}", "item_id": f"{i}", "score": s}
        for t in range(3)
        for i, s in enumerate((0.2, 0.4))
    ]
    out = describe(make_con(rows), ["model"], cluster="task")
    r = _row(out, model="m")  # all 0: Wilson over the 4 clusters, not the 20 rows
    _, hi = proportion_confint(0, 4, alpha=0.05, method="wilson")
    assert (r["ci_method"], r["ci_low"], r["note"]) == ("wilson", 0.0, "all answers at 0: Wilson over 4 clusters")
    assert r["ci_high"] == pytest.approx(hi)
    single = _row(out, model="one")
    assert single["ci_low"] is None and single["note"] == "one cluster: no interval"
    f = _row(out, model="f")
    assert f["ci_low"] is None and f["note"] == "no variance between the 3 clusters: no interval"


def test_cluster_on_other_columns_as_given(make_con) -> None:
    rows = [
        {"model": "m", "item_id": f"q{i}", "epoch": e, "score": float((i + e) % 3 == 0)}
        for i in range(6)
        for e in range(3)
    ]
    x = np.array([r["score"] for r in rows])
    se, g = _cluster_sem(x, [r["epoch"] for r in rows])
    r = _row(describe(make_con(rows), ["model"], cluster="epoch"), model="m")
    assert g == 3 and r["sem"] == pytest.approx(se)


# ------------------------------------------------------------------------------------------------
# Requests and helpers
# ------------------------------------------------------------------------------------------------


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
    with pytest.raises(AnalysisError, match="Wilson interval treats answers as independent"):
        describe(con, ["model"], cluster="task", method="wilson")


def test_pure_helpers_vectorised() -> None:
    lo, _ = t_interval(np.array([1.0, 2.0]), np.array([0.5, 0.0]), np.array([3, 0]), 0.95)
    assert lo[0] == pytest.approx(1 - stats.t.ppf(0.975, 3) * 0.5) and np.isnan(lo[1])
    lo, hi = logit_t_interval(np.array([0.2, 0.0]), np.array([0.05, 0.1]), np.array([9, 9]), 0.95)
    half = stats.t.ppf(0.975, 9) * 0.05 / 0.16
    assert (lo[0], hi[0]) == (pytest.approx(special.expit(special.logit(0.2) - half)),
                              pytest.approx(special.expit(special.logit(0.2) + half)))  # fmt: skip
    assert np.isnan(lo[1]) and np.isnan(hi[1])
    assert np.isnan(clustered_sem(np.array([5]), np.array([1]), np.array([2.0]))[0])
    frame = pl.DataFrame({"n": [3], "mean": [0.5], "std": [None], "successes": [1.5], "binary": [None],
                          "bounded": [True]}, schema_overrides={"std": pl.Float64, "binary": pl.Boolean})  # fmt: skip
    out = add_intervals(frame)
    assert out.select("ci_low", "ci_high", "ci_method").row(0) == (None, None, None)
