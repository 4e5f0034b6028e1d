"""Ingest of the real SO8T corpus reproduces the counts and means the original analysis published."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from evalhouse.ingest import ingest
from evalhouse.warehouse import Warehouse, connect

# Published per-model figures (corpus README): mean to 3 decimals, n.
PUBLISHED = {
    "model-a": (0.500, 10),
    "AEGIS-phi35-golden-sigmoid": (0.300, 10),
    "modela": (0.247, 44),
    "aegis": (0.135, 77),
    "agiasi": (0.049, 42),
    "model_a": (0.027, 75),
    "aegis_alpha_0_6": (0.000, 44),
    "modela-q4km": (0.000, 7),
    "aegis-q4km": (0.000, 7),
    "aegis-alpha-0.6-q4km": (0.000, 7),
}


def test_results_and_task_arrays_give_the_published_rows(wh: Warehouse, so8t_corpus: Path, tmp_path: Path) -> None:
    # The original scripts read every file except the baseline-vs-improved one.
    corpus = tmp_path / "so8t"
    shutil.copytree(so8t_corpus, corpus, ignore=shutil.ignore_patterns("abc_test_initial"))
    report = ingest(wh, [corpus])
    assert report.count("rejected") == 0
    con = connect(wh)
    rows = con.execute("SELECT model, count(*), avg(score) FROM scores GROUP BY model").fetchall()
    assert sum(n for _, n, _ in rows) == 323
    assert {m: (round(mean, 3), n) for m, n, mean in rows} == PUBLISHED
    named = con.execute("SELECT count(DISTINCT category) FROM scores WHERE category <> 'unknown'").fetchone()
    assert named == (25 + 6,)  # 25 named categories, plus the 6 benchmarks of the 117 category-less items
    unknown_filed = con.execute(
        "SELECT count(*) FROM scores WHERE category = benchmark AND benchmark IN "
        "('math_speed', 'logic_speed', 'ethics_speed', 'elyza_100', 'mmlu', 'agi')"
    ).fetchone()
    assert unknown_filed == (117,)


def test_whole_corpus_then_reingest_changes_nothing(wh: Warehouse, so8t_corpus: Path) -> None:
    first = ingest(wh, [so8t_corpus])
    assert first.count("not-results") == 2
    assert {o.path.rsplit("/", 1)[1] for o in first.offers if o.status == "not-results"} == {"metadata.json"}
    assert first.count("rejected") == 0
    con = connect(wh)
    ab = con.execute(
        "SELECT model, source_format, n_items FROM runs WHERE source_format = 'so8t-ab' ORDER BY model"
    ).fetchall()
    assert ab == [("agiasi-phi35-golden-sigmoid:q8_0", "so8t-ab", 5), ("model-a:q8_0", "so8t-ab", 5)]
    # 323 score rows plus 2 sides x 5 items x 2 metrics.
    assert con.execute("SELECT count(*) FROM scores").fetchone() == (343,)

    second = ingest(wh, [so8t_corpus])
    assert second.count("unchanged") == len(second.offers) == len(first.offers)
    assert second.rows == 0
    assert connect(wh).execute("SELECT count(*) FROM scores").fetchone() == (343,)


@pytest.mark.parametrize("view", ["model_summary", "model_category_summary", "benchmark_summary"])
def test_summary_views_over_the_corpus(wh: Warehouse, so8t_corpus: Path, view: str) -> None:
    ingest(wh, [so8t_corpus])
    con = connect(wh)
    total = con.execute(f"SELECT sum(n) FROM {view}").fetchone()
    assert total == (343,)
