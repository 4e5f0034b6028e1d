"""Flips: the items whose score changed, listed exactly as planted, equal to compare's counts."""

from __future__ import annotations

import json

import polars as pl
import pyarrow as pa
import pytest
from click.testing import CliRunner

from evalhouse.cli import main
from evalhouse.commit import Commit
from evalhouse.compare import compare
from evalhouse.errors import AnalysisError
from evalhouse.flips import COLUMNS, FlipQuery, flips
from evalhouse.schema import TEXTS, VIEWS
from evalhouse.warehouse import Warehouse, connect

# Two categories of 0/1 items; the planted flips are where the two lists differ.
BASE = {"algebra": [1, 1, 0, 1, 0, 1, 1, 0, 1, 1], "日本語": [0, 1, 1, 1, 0, 0, 1, 1]}
CAND = {"algebra": [1, 0, 0, 1, 1, 1, 0, 0, 1, 1], "日本語": [0, 1, 0, 1, 0, 1, 1, 0]}
PLANTED = {
    (cat, f"{cat}-{i}"): (b, c)
    for cat in BASE
    for i, (b, c) in enumerate(zip(BASE[cat], CAND[cat], strict=True))
    if b != c
}


def _rows(model: str, scores: dict[str, list[int]], **extra: object) -> list[dict]:
    return [
        {"model": model, "benchmark": "quiz", "category": cat, "task": "t", "item_id": f"{cat}-{i}", "score": s,
         "item_hash": f"h-{cat}-{i}", **extra}
        for cat, values in scores.items() for i, s in enumerate(values)
    ]  # fmt: skip


@pytest.fixture
def planted(put_scores) -> Warehouse:
    rows = _rows("base", BASE) + _rows("base-q4km", CAND)
    # Noise that must not show: an item only one side answered, answers without an item id, an item
    # whose content changed between the runs (a different hash: not the same item), another metric.
    rows += [{"model": "base", "benchmark": "quiz", "category": "algebra", "task": "t", "item_id": "solo", "score": 1}]
    rows += [
        {"model": m, "benchmark": "quiz", "category": "algebra", "score": s} for m, s in (("base", 1), ("base-q4km", 0))
    ]
    rows += [{"model": m, "benchmark": "quiz", "category": "algebra", "task": "t", "item_id": "changed", "score": s,
              "item_hash": h} for m, s, h in (("base", 1, "old"), ("base-q4km", 0, "new"))]  # fmt: skip
    rows += _rows("base", {"algebra": [1, 1]}, metric="other") + _rows("base-q4km", {"algebra": [1, 1]}, metric="other")
    wh = put_scores(rows)
    # Texts for every answer: question, expected answer and a response naming its model.
    con = connect(wh)
    ids = con.execute("SELECT s.run_id, s.sample_id, s.model, s.item_id FROM scores AS s").fetchall()
    commit = Commit(wh, "ingest")
    texts = [{"run_id": r, "sample_id": i, "question": f"Q {item}?", "expected": f"A {item}", "response": f"{m} says"}
             for r, i, m, item in ids]  # fmt: skip
    commit.write(TEXTS.name, pa.Table.from_pylist(texts, schema=TEXTS.arrow_schema()))
    commit.publish()
    return wh


def test_flips_are_exactly_the_planted_items(planted: Warehouse) -> None:
    con = connect(planted)
    got = flips(con, FlipQuery(("base",), ("base-q4km",), metric="score"))
    assert list(got.columns) == list(COLUMNS) == VIEWS["flips"].names
    listed = {
        (r["category"], r["item_id"]): (r["score_baseline"], r["score_candidate"]) for r in got.iter_rows(named=True)
    }
    assert listed == {k: (float(b), float(c)) for k, (b, c) in PLANTED.items()}
    r = got.row(0, named=True)
    assert (r["baseline"], r["candidate"], r["benchmark"], r["task"]) == ("base", "base-q4km", "quiz", "t")
    assert r["change"] == r["score_candidate"] - r["score_baseline"] and abs(r["change"]) == 1
    assert (r["question"], r["expected"]) == (f"Q {r['item_id']}?", f"A {r['item_id']}")
    assert (r["response_baseline"], r["response_candidate"]) == ("base says", "base-q4km says")
    # The other metric changed nothing; --limit keeps the largest changes.
    assert flips(con, FlipQuery(("base",), ("base-q4km",), metric="other")).height == 0
    assert flips(con, FlipQuery(("base",), ("base-q4km",), limit=2)).height == 2
    assert set(flips(con, FlipQuery(("base",), ("base-q4km",), category="日本語"))["item_id"]) == {
        i for c, i in PLANTED if c == "日本語"
    }


def test_compare_counts_equal_the_list(planted: Warehouse) -> None:
    con = connect(planted)
    listed = flips(con, FlipQuery(("base",), ("base-q4km",), metric="score"))
    down = listed.filter(pl.col("change") < 0)
    for cluster in (None, "task"):
        out = compare(con, pairs=[("base", "base-q4km")], by=["category"], cluster=cluster).filter(metric="score")
        overall = out.filter(scope="overall").row(0, named=True)
        assert (overall["flips_down"], overall["flips_up"]) == (down.height, listed.height - down.height), cluster
        assert overall["flip_rate"] == pytest.approx(listed.height / 18)
        assert overall["n_changed"] == 1  # the item whose content changed: neither paired nor listed
        for cat in BASE:
            row = out.filter(category=cat).row(0, named=True)
            mine = listed.filter(category=cat)
            assert (row["flips_down"] + row["flips_up"], row["flips_down"]) == (
                mine.height, mine.filter(pl.col("change") < 0).height
            ), (cluster, cat)  # fmt: skip
    # The interval is statsmodels' Wilson interval at the row's level.
    from statsmodels.stats.proportion import proportion_confint

    overall = compare(con, pairs=[("base", "base-q4km")], by=[]).filter(metric="score").row(0, named=True)
    low, high = proportion_confint(listed.height, 18, alpha=0.05, method="wilson")
    assert (overall["flip_rate_low"], overall["flip_rate_high"]) == (pytest.approx(low), pytest.approx(high))
    assert f"{listed.height} of 18 paired items flipped" in overall["note"]


def test_repeated_answers_are_averaged_as_compare_does(put_scores) -> None:
    # Two answers each: base 1 and 1 (1.0), candidate 1 and 0 (0.5) on q0; equal on q1.
    rows = [{"model": "m", "item_id": "q0", "score": 1, "epoch": e} for e in (0, 1)]
    rows += [{"model": "m-q8_0", "item_id": "q0", "score": s, "epoch": e} for e, s in ((0, 1), (1, 0))]
    rows += [{"model": m, "item_id": "q1", "score": 0.5, "epoch": e} for m in ("m", "m-q8_0") for e in (0, 1)]
    con = connect(put_scores(rows))
    got = flips(con, FlipQuery(("m",), ("m-q8_0",)))
    assert got.select("item_id", "score_baseline", "score_candidate", "answers_baseline").rows() == [
        ("q0", 1.0, 0.5, 2)
    ]
    # Not 0/1 per item: compare carries no flip counts, and says nothing of flips.
    row = compare(con, pairs=[("m", "m-q8_0")], by=[]).row(0, named=True)
    assert row["flips_down"] is None and row["flip_rate"] is None


def test_float_dust_is_no_flip_and_a_small_real_change_is(put_scores) -> None:
    # 0.1 + 0.2 summed is 0.30000000000000004: the same mean reached by another summation order.
    # Worked by hand: q0 differs by 5.6e-17 (dust, no flip); q1 by 1e-4 (a change, however small);
    # q2 by 0 (no flip); q3 a large score equal but for its last bit (dust, no flip).
    pairs = {"q0": (0.3, 0.1 + 0.2), "q1": (0.3, 0.3001), "q2": (0.5, 0.5), "q3": (1e6, 1e6 + 1e6 * 2**-52)}
    rows = [{"model": m, "item_id": item, "score": s} for item, both in pairs.items()
            for m, s in zip(("m", "m-q8_0"), both, strict=True)]  # fmt: skip
    con = connect(put_scores(rows))
    got = flips(con, FlipQuery(("m",), ("m-q8_0",)))
    assert got["item_id"].to_list() == ["q1"]
    assert got["change"][0] == pytest.approx(1e-4)


def test_the_view_is_the_same_list_in_sql(planted: Warehouse) -> None:
    con = connect(planted)
    sql = "SELECT category, item_id, change FROM flips WHERE baseline = ? AND candidate = ? AND metric = 'score'"
    assert sorted(con.execute(sql, ["base", "base-q4km"]).fetchall()) == sorted(
        (c, i, float(cand - b)) for (c, i), (b, cand) in PLANTED.items()
    )
    # Both directions are there: the candidate as baseline sees the opposite changes.
    back = con.execute(sql, ["base-q4km", "base"]).fetchall()
    assert sorted((c, i, -d) for c, i, d in back) == sorted(con.execute(sql, ["base", "base-q4km"]).fetchall())


def test_patterns(planted: Warehouse) -> None:
    con = connect(planted)
    # Only a candidate: paired with its base model; globs are case-insensitive.
    assert flips(con, FlipQuery((), ("BASE-Q4*",), metric="score")).height == len(PLANTED)
    with pytest.raises(AnalysisError, match="no pair of models matches --baseline nope --candidate base"):
        flips(con, FlipQuery(("nope",), ("base*",)))


def test_cli(planted: Warehouse) -> None:
    runner = CliRunner()
    out = runner.invoke(main, ["flips", "-w", str(planted.root), "-b", "base", "-c", "base-q4km", "--metric", "score",
                               "--format", "json"])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert len(json.loads(out.stdout)) == len(PLANTED)
    out = runner.invoke(main, ["flips", "-w", str(planted.root), "-b", "nope", "-c", "base"])
    assert out.exit_code == 1 and out.stderr.startswith("Error: no pair of models matches --baseline nope")
    out = runner.invoke(main, ["flips", "-w", str(planted.root)])
    assert out.exit_code == 2 and "name the models" in out.stderr


def test_text_from_input_is_escaped_on_a_terminal(put_scores) -> None:
    wh = put_scores(
        [{"model": "m\x1b[31m", "item_id": "q", "score": 1}, {"model": "m-q8_0", "item_id": "q", "score": 0}]
    )
    out = CliRunner().invoke(main, ["flips", "-w", str(wh.root), "-b", "m*", "-c", "m-q8_0"])
    assert out.exit_code == 0, out.output
    assert "\x1b" not in out.stdout and "m\\x1b[31m" in out.stdout
