"""The original SO8T analysis reproduced on the real corpus, then done right (skips without the corpus)."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner
from scipy import stats

from evalhouse.cli import main
from evalhouse.ingest import ingest
from evalhouse.warehouse import connect, open_warehouse
from tests.conftest import SO8T

PAIRING = ["-b", "model-a", "-b", "model_a", "-b", "modela", "-b", "modela-q4km", "-c", "aegis*", "-c", "agiasi*"]
EXCLUDE = ["--exclude-source", "*/abc_test_initial/*"]  # the original never read that file
# Published in ../shared/corpus/README.md: mean (3 decimals) and n per model.
MEANS = {"model-a": (0.500, 10), "AEGIS-phi35-golden-sigmoid": (0.300, 10), "modela": (0.247, 44),
         "aegis": (0.135, 77), "agiasi": (0.049, 42), "model_a": (0.027, 75), "aegis_alpha_0_6": (0.000, 44),
         "modela-q4km": (0.0, 7), "aegis-q4km": (0.0, 7), "aegis-alpha-0.6-q4km": (0.0, 7)}  # fmt: skip
# (baseline, candidate): (published degradation rate %, published p-value; None = "p < 0.0001").
PUBLISHED = {
    ("model-a", "agiasi"): (90.20, None),
    ("model-a", "aegis"): (72.91, 0.0009),
    ("modela", "aegis"): (45.07, 0.0518),
    ("model_a", "AEGIS-phi35-golden-sigmoid"): (-993.29, None),
}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> str:
    if not SO8T.is_dir():
        pytest.skip("../shared/corpus/so8t is not present")
    root = tmp_path_factory.mktemp("so8t") / "wh"
    ingest(open_warehouse(root, create=True), [SO8T], workers=1)
    return str(root)


def _compare(warehouse: str, *args: str) -> list[dict]:
    """The rows of the pairs that share a metric (the published table's); the others are checked apart."""
    return [r for r in _all_rows(warehouse, *args) if r["metric"] is not None]


def _all_rows(warehouse: str, *args: str) -> list[dict]:
    result = CliRunner().invoke(main, ["compare", "-w", warehouse, *PAIRING, *EXCLUDE, "--format", "json", *args])
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout)


def test_original_analysis_reproduced(warehouse: str) -> None:
    rows = _compare(warehouse, "--test", "student", "--adjust", "none", "--by", "none")
    assert len(rows) == 24
    for r in rows:
        assert round(r["mean_baseline"], 3) == pytest.approx(MEANS[r["baseline"]][0])
        assert (r["n_baseline"], r["n_candidate"]) == (MEANS[r["baseline"]][1], MEANS[r["candidate"]][1])
        key = (r["baseline"], r["candidate"])
        if key in PUBLISHED:
            rate, p = PUBLISHED[key]
            assert round(-r["rel_change_pct"], 2) == pytest.approx(rate)  # degradation rate = -rel change
            assert round(r["p_value"], 4) == p if p is not None else r["p_value"] < 0.0001
    assert sum(bool(r["significant"]) for r in rows) == 10


def test_every_p_value_is_scipy_ttest_ind_on_the_scores(warehouse: str) -> None:
    con = connect(open_warehouse(warehouse))
    scores: dict[str, list[float]] = {}
    for model, score, path in con.sql(
        "SELECT s.model, s.score, r.source_path FROM scores AS s JOIN runs AS r USING (run_id)"
    ).fetchall():
        if "abc_test_initial" not in path:
            scores.setdefault(model, []).append(score)
    for r in _compare(warehouse, "--test", "student", "--adjust", "none", "--by", "none", "--no-save"):
        ref = stats.ttest_ind(scores[r["baseline"]], scores[r["candidate"]]) if r["p_value"] is not None else None
        if ref is None:  # both groups all 0: SciPy gives NaN too
            assert r["mean_baseline"] == r["mean_candidate"] == 0
            continue
        assert round(r["p_value"], 4) == round(float(ref.pvalue), 4)


def test_defaults_report_what_the_original_hid(warehouse: str) -> None:
    everything = _all_rows(warehouse)
    rows = [r for r in everything if r["metric"] is not None]
    overall = [r for r in rows if r["scope"] == "overall"]
    assert len(overall) == 24
    by_pair = {(r["baseline"], r["candidate"]): r for r in overall}
    # Every pair asked for has a row, with the reason where it cannot be tested: 4 baselines x 7 candidates.
    asked = {(r["baseline"], r["candidate"]) for r in everything if r["scope"] == "overall"}
    assert len(asked) == 28
    for r in everything:
        if r["metric"] is None:
            assert r["note"].startswith("no metric in common: baseline has score; candidate has none"), r
        if r["test"] is None or not r["comparable"]:
            assert r["note"], r
        if r["coverage"] is not None and r["coverage"] < 0.9 and r["test"] is not None:
            assert "partial overlap" in r["note"], r
    # Undefined rates where the baseline mean is 0, not 0.00 %.
    assert all(r["rel_change_pct"] is None for r in overall if r["baseline"] == "modela-q4km" and r["test"])
    # Models never run on the same items, categories or benchmarks: flagged, not tested.
    lone = by_pair[("model-a", "agiasi")]
    assert lone["comparable"] is False and lone["p_value"] is None and lone["test"] is None
    # Improvements are not degradations.
    assert by_pair[("model_a", "agiasi")]["direction"] == "improved"
    # Paired where items are shared; sign-flip below 20 items.
    r = by_pair[("modela", "aegis_alpha_0_6")]
    assert r["test"] == ("paired" if r["n_paired"] >= 20 else "sign-flip") and r["n_paired"] > 0
    # No verdict from a handful of items: nothing on 2 items is significant (four ethics_speed rows were).
    for r in rows:
        n = r["n_paired"] if r["test"] in ("paired", "sign-flip", "mcnemar") else min(r["n_baseline"], r["n_candidate"])
        if n <= 2:
            assert not r["significant"], r
    # Category rows are adjusted within their pair and metric; overall rows are the primary results.
    assert all(r["p_adjusted"] == r["p_value"] for r in overall if r["p_value"] is not None)
    assert all(r["p_adjusted"] >= r["p_value"] for r in rows if r["p_value"] is not None)


def test_source_file_is_excluded_by_glob(warehouse: str) -> None:
    args = [
        "compare",
        "-w",
        warehouse,
        "-b",
        "model-a*",
        "-c",
        "agiasi*",
        "--by",
        "none",
        "--no-save",
        "--format",
        "json",
    ]
    everything = orjson.loads(CliRunner().invoke(main, args).stdout)
    # The baseline-vs-improved file holds model-a:q8_0 and agiasi-...:q8_0 on metrics correct, partial_credit.
    assert {r["metric"] for r in everything} - {None} == {"correct", "partial_credit", "score"}
    result = CliRunner().invoke(main, [*args, *EXCLUDE])
    assert {r["metric"] for r in orjson.loads(result.stdout)} - {None} == {"score"}
