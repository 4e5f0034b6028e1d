"""Like for like: models side by side on the items they all answered; right answers worked out by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from evalhouse import charts
from evalhouse.ingest import ingest
from evalhouse.report.like_for_like import like_for_like
from evalhouse.significance import wilson
from evalhouse.stats import describe
from evalhouse.warehouse import connect


def item_rows(model: str, scores: dict[int, float], benchmark: str | None = "X", **extra) -> list[dict]:
    return [
        {"model": model, "benchmark": benchmark, "item_id": f"q{i}", "score": s, **extra} for i, s in scores.items()
    ]


# Model A answers items 1-10 of X: 0.9 on items 1-5, 0.1 on 6-10, so 0.5 overall. B answers items
# 1-5 (mean 0.6). C answers item 1 only: 1 of the 10 items of the largest, fewer than half: left out.
A = {1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0, 5: 0.5, 6: 0.0, 7: 0.0, 8: 0.0, 9: 0.0, 10: 0.5}
B = {1: 1.0, 2: 0.0, 3: 1.0, 4: 0.0, 5: 1.0}
C = {1: 1.0}


@pytest.fixture
def con(put_scores):
    rows = item_rows("A", A) + item_rows("B", B) + item_rows("C", C)
    # Categories: items 1-3 are "p", the rest "q".
    rows = [{**r, "category": "p" if int(r["item_id"][1:]) <= 3 else "q"} for r in rows]
    con = connect(put_scores(rows))
    yield con
    con.close()


def test_means_are_over_the_items_both_answered(con):
    lfl = like_for_like(con)
    got = {r["model"]: (r["n"], r["mean"]) for r in lfl.means.iter_rows(named=True)}
    assert got == {"A": (5, pytest.approx(0.9)), "B": (5, pytest.approx(0.6))}  # A is 0.5 on all its items
    common = lfl.common.row(0, named=True)
    assert (common["benchmark"], common["models"], common["items"], common["largest"]) == ("X", ["A", "B"], 5, 10)
    assert lfl.left_out.rows() == [
        ("score", "benchmark", "X", "C", 1, "1 of 10 items (the most, A's): fewer than half")
    ]
    assert lfl.basis == "per benchmark, on the items every charted model answered; left out: C (X: 1 items)"


def test_the_chart_draws_the_like_for_like_means(con):
    lfl = like_for_like(con)
    spec = charts.mean_by_model(lfl.means, basis=lfl.basis).to_dict()
    rows = next(rows for rows in spec["datasets"].values() if rows and "mean" in rows[0])
    assert {r["model"]: r["mean"] for r in rows} == {"A": 0.9, "B": 0.6}
    assert lfl.basis in spec["title"]["subtitle"]


def test_intervals_are_summarys_on_the_same_items(con):
    """B's item scores are all 0 or 1: Wilson (3 of 5); A's are not: the same interval as ``describe``."""
    lfl = like_for_like(con)
    b = lfl.means.filter(pl.col("model") == "B").row(0, named=True)
    lo, hi = wilson(np.array([3.0]), np.array([5.0]))
    assert (b["ci_method"], b["ci_low"], b["ci_high"]) == ("wilson", pytest.approx(lo[0]), pytest.approx(hi[0]))
    same = describe(con, ["model"], where={"model": ["A", "B"], "item_id": [f"q{i}" for i in range(1, 6)]})
    cols = ["model", "n", "mean", "std", "median", "min", "max", "ci_low", "ci_high", "ci_method", "note"]
    assert_frame_equal(lfl.means.select(cols), same.select(cols), check_dtypes=False)


def test_category_means_and_item_means_use_the_same_items(con):
    lfl = like_for_like(con)
    cats = {(r["category"], r["model"]): (r["n"], r["mean"]) for r in lfl.categories.iter_rows(named=True)}
    assert cats == {
        ("p", "A"): (3, pytest.approx(1.0)),
        ("q", "A"): (2, pytest.approx(0.75)),
        ("p", "B"): (3, pytest.approx(2 / 3)),
        ("q", "B"): (2, pytest.approx(0.5)),
    }
    assert lfl.items.filter(pl.col("model") == "A")["item_id"].to_list() == [f"q{i}" for i in range(1, 6)]
    assert lfl.items["score"].sum() == pytest.approx(4.5 + 3.0)


def test_boxes_of_item_means(con):
    lfl = like_for_like(con)
    box = {r["model"]: r for r in lfl.boxes.iter_rows(named=True)}
    # A on items 1-5: 0.5, 1, 1, 1, 1. Quartiles all 1 (IQR 0): 0.5 is outside the whiskers.
    a = box["A"]
    assert (a["n"], a["min"], a["q1"], a["median"], a["q3"], a["lower"], a["upper"]) == (5, 0.5, 1, 1, 1, 1, 1)
    assert a["binary"] is False
    # B: 0, 0, 1, 1, 1 -> q1 = 0, median = q3 = 1, whiskers 0..1; binary, with B's Wilson interval.
    b = box["B"]
    assert (b["q1"], b["median"], b["q3"], b["lower"], b["upper"], b["binary"]) == (0, 1, 1, 0, 1, True)
    assert b["ci_low"] == pytest.approx(lfl.means.filter(pl.col("model") == "B")["ci_low"][0])


def test_boxes_match_numpy_on_the_fixture_corpus(wh):
    ingest(wh, [str(Path(__file__).parent / "fixtures" / "so8t" / "good")], workers=1)
    con = connect(wh)
    lfl = like_for_like(con, metric="score")
    assert lfl.boxes.height > 1
    for row in lfl.boxes.iter_rows(named=True):
        s = lfl.items.filter(pl.col("benchmark") == row["benchmark"], pl.col("model") == row["model"])["score"]
        s = s.to_numpy()
        q1, med, q3 = np.percentile(s, [25, 50, 75])
        assert (row["n"], row["mean"], row["q1"], row["median"], row["q3"]) == (
            len(s),
            pytest.approx(s.mean()),
            pytest.approx(q1),
            pytest.approx(med),
            pytest.approx(q3),
        )
        inside = s[(s >= q1 - 1.5 * (q3 - q1)) & (s <= q3 + 1.5 * (q3 - q1))]
        assert (row["lower"], row["upper"]) == (pytest.approx(inside.min()), pytest.approx(inside.max()))
        assert row["binary"] == bool(np.isin(s, [0.0, 1.0]).all())
    con.close()


def test_repeated_answers_are_averaged_per_item_first(put_scores):
    rows = item_rows("A", {1: 1.0, 2: 1.0}) + item_rows("B", {1: 0.0, 2: 1.0})
    rows += [{"model": "A", "benchmark": "X", "item_id": "q1", "score": 0.0, "epoch": 1}]
    con = connect(put_scores(rows))
    means = like_for_like(con).means
    assert means.select("model", "n", "n_answers", "mean").rows() == [("A", 2, 3, 0.75), ("B", 2, 2, 0.5)]


def test_models_that_share_no_item_are_not_set_side_by_side(put_scores):
    """D and E each answered 4 items of Y (enough by count) but not the same ones: one is left out."""
    rows = item_rows("D", dict.fromkeys(range(1, 5), 1.0), "Y") + item_rows("E", dict.fromkeys(range(5, 9), 0.0), "Y")
    con = connect(put_scores(rows))
    lfl = like_for_like(con)
    assert lfl.means.select("model", "n").rows() == [("D", 4)]
    assert lfl.left_out.select("model", "items", "reason").rows() == [("E", 4, "shares no item with D")]


def test_a_model_that_answered_other_items_is_left_out(put_scores):
    """A answers 1-10, B 1-6, C 5-10: all three share 2 items, A and B share 6, so C goes."""
    rows = item_rows("A", dict.fromkeys(range(1, 11), 1.0), "Z")
    rows += item_rows("B", dict.fromkeys(range(1, 7), 0.0), "Z") + item_rows("C", dict.fromkeys(range(5, 11), 0.0), "Z")
    con = connect(put_scores(rows))
    lfl = like_for_like(con)
    assert lfl.means.select("model", "n").rows() == [("A", 6), ("B", 6)]
    assert lfl.left_out.select("model", "reason").rows() == [
        ("C", "answered other items: the others share 6 without it, 2 with it")
    ]


def test_rows_without_an_item_id_are_never_shared():
    """F's six answers have no item id: each is an item of its own, which no other model shares."""
    import duckdb

    con = duckdb.connect()
    values = [("A", f"q{i}", s) for i, s in A.items()] + [("B", f"q{i}", s) for i, s in B.items()]
    values += [("F", None, 1.0)] * 6
    con.execute("CREATE TABLE t (model VARCHAR, item_id VARCHAR, score DOUBLE)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?)", values)
    con.execute(
        "CREATE VIEW scores AS SELECT model, 'X' AS benchmark, 'c' AS category, NULL::VARCHAR AS task, item_id, "
        "NULL::VARCHAR AS filter, 'score' AS metric, score FROM t"
    )
    con.execute("CREATE VIEW models AS SELECT DISTINCT model, model AS model_base, NULL AS quantization FROM t")
    lfl = like_for_like(con)
    assert lfl.means.select("model", "n").rows() == [("A", 5), ("B", 5)]
    assert lfl.left_out.select("model", "items", "reason").rows() == [
        ("F", 6, "answered other items: the others share 5 without it, 0 with it")
    ]


def test_per_benchmark_metric_and_model_filters(put_scores):
    rows = item_rows("A", A) + item_rows("B", B) + item_rows("C", C)
    rows += item_rows("A", {1: 0.0, 2: 1.0}, None) + item_rows("C", {1: 1.0, 2: 1.0}, None)
    rows += item_rows("B", {1: 0.2}, "X", metric="other")
    con = connect(put_scores(rows))
    lfl = like_for_like(con, metric="score", models=["A", "C", "o'brien"])
    # X: A (10 items) and C (1): C is left out, A alone; unknown (NULL benchmark): A and C on 2 items.
    assert lfl.means.select("benchmark", "model", "n", "mean").rows() == [
        ("X", "A", 10, 0.5),
        ("unknown", "A", 2, 0.5),
        ("unknown", "C", 2, 1.0),
    ]
    assert set(lfl.means["metric"]) == {"score"}
    assert lfl.left_out.select("group", "model").rows() == [("X", "C")]


def test_quantization_levels_on_the_items_all_of_them_answered(put_scores):
    """m ran items 1-10, m-q4km items 1-5 (of m's), m-q8_0 items 20-22 (none of theirs)."""
    rows = item_rows("m", {i: 1.0 if i <= 5 else 0.0 for i in range(1, 11)}, "X")
    rows += item_rows("m-q4km", {1: 1.0, 2: 0.0, 3: 1.0, 4: 0.0, 5: 0.0}, "X")
    rows += item_rows("m-q8_0", {20: 1.0, 21: 1.0, 22: 1.0}, "X")
    con = connect(put_scores(rows))
    lfl = like_for_like(con)
    q = lfl.quantization.select("model_base", "quantization", "model", "n", "mean")
    assert q.rows() == [("m", None, "m", 5, 1.0), ("m", "q4_k_m", "m-q4km", 5, 0.4)]
    left = lfl.left_out.filter(pl.col("scope") == "model_base")
    assert left.select("group", "model", "items").rows() == [("m", "m-q8_0", 3)]
    assert lfl.quantization_basis.startswith("per model base, on the items all its charted models answered")
    assert "m-q8_0 (m: 3 items)" in lfl.quantization_basis
    spec = charts.quantization(lfl.quantization, basis=lfl.quantization_basis).to_dict()
    rows = next(r for r in spec["datasets"].values() if r and "level" in r[0])
    assert {(r["level"], r["mean"]) for r in rows} == {("none", 1.0), ("q4_k_m", 0.4)}


def test_an_empty_selection_gives_empty_frames(con):
    lfl = like_for_like(con, metric="no-such-metric")
    assert [f.height for f in (lfl.common, lfl.left_out, lfl.means, lfl.categories, lfl.items, lfl.boxes)] == [0] * 6
    assert lfl.quantization.height == 0
    assert lfl.basis == "per benchmark, on the items every charted model answered"
