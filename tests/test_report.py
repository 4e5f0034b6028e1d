"""The report: its tables and figures agree with the statistics functions; Markdown and HTML come out whole."""

from __future__ import annotations

import json
import re
import struct
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from cli import main
from engine.compare import compare
from engine.ingest import ingest
from engine.report import ReportResult, build_report
from engine.stats import describe
from engine.warehouse import connect, open_warehouse

BASE, WORSE, SAME, ODD = "ベース", "ベース-q4km", "ベース-q8_0", "odd|<b>name</b>"
CATEGORIES = ("math", "日本語", "logic")


def write_corpus(folder: Path) -> None:
    """One SO8T-shaped file: a base model, a clearly worse q4km variant, a q8_0 like the base, an odd name."""
    rng = np.random.default_rng(7)
    results = []
    shift = {BASE: 0.0, WORSE: -0.3, SAME: 0.0, ODD: 0.1}
    for c in CATEGORIES:
        level = rng.uniform(0.4, 0.7, 12)
        for model, d in shift.items():
            for i, lv in enumerate(level):
                score = float(np.clip(lv + d + rng.normal(0, 0.05), 0, 1))
                results.append({"model": model, "category": c, "test_name": f"{c}-{i}", "score": round(score, 3)})
    doc = {"metadata": {"timestamp": "2025-03-01T10:00:00"}, "results": results, "summary": {}}
    folder.mkdir(parents=True)
    (folder / "synthetic_results.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ReportResult]:
    root = tmp_path_factory.mktemp("report")
    write_corpus(root / "corpus")
    wh = open_warehouse(root / "wh", create=True)
    ingest(wh, [str(root / "corpus")], workers=1)
    return root / "wh", build_report(wh, root / "out", fmt="both")


@pytest.fixture(scope="module")
def frames(built: tuple[Path, ReportResult]) -> dict[str, pl.DataFrame]:
    con = connect(open_warehouse(built[0]))
    try:
        return {"model": describe(con, ["model"]), "category": describe(con, ["category"]), "compare": compare(con)}
    finally:
        con.close()


def md_table(text: str, header_start: str) -> list[list[str]]:
    """The rows of the first Markdown table whose header line starts with ``header_start``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = re.split(r"(?<!\\)\|", line.strip()[1:-1])
        rows.append([c.strip().replace("\\|", "|") for c in cells])
    return rows


def test_models_table_matches_describe(built, frames):
    text = built[1].markdown.read_text(encoding="utf-8")
    rows = {(r[0], r[1]): r for r in md_table(text, "| model | metric |")}
    expected = frames["model"]
    assert len(rows) == expected.height == 4
    for r in expected.iter_rows(named=True):
        row = rows[(r["model"], r["metric"])]
        assert row[2:5] == [str(r["n"]), f"{r['mean']:.3f}", f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]"]


def test_category_table_matches_describe(built, frames):
    text = built[1].markdown.read_text(encoding="utf-8")
    rows = {r[0]: r for r in md_table(text, "| category | metric |")}
    assert set(rows) == set(CATEGORIES)
    for r in frames["category"].iter_rows(named=True):
        assert rows[r["category"]][3] == f"{r['mean']:.3f}"


def test_comparison_table_and_summary_match_compare(built, frames):
    text = built[1].markdown.read_text(encoding="utf-8")
    overall = frames["compare"].filter(pl.col("scope") == "overall")
    rows = {(r[0], r[1]): r for r in md_table(text, "| baseline | candidate | metric | n (b / c / paired)")}
    assert set(rows) == {(BASE, WORSE), (BASE, SAME)} == set(overall.select("baseline", "candidate").iter_rows())
    worse = overall.filter(pl.col("candidate") == WORSE).row(0, named=True)
    assert worse["direction"] == "degraded" and worse["significant"]
    row = rows[(BASE, WORSE)]
    assert row[6] == f"{worse['diff']:+.3f} [{worse['ci_low']:.3f}, {worse['ci_high']:.3f}]"
    assert row[-1] == "degraded, significant"
    summary = text.split("## Models")[0]
    assert f"4 models, 4 runs, {4 * 3 * 12} scored answers (144 score rows over 1 metric), 3 categories." in summary
    assert "Largest significant degradations" in summary
    # The biggest one is named first, with its difference.
    first = summary.split("Largest significant degradations")[1].splitlines()[2]
    assert f"`{WORSE}` vs `{BASE}`" in first
    assert "No significant improvements." in summary


def test_figures_and_data_written(built, frames):
    result = built[1]
    names = {p.stem for p in result.figures}
    assert names == {
        "mean_by_model",
        "distribution",
        "category_heatmap",
        "quantization",
        "degradation",
        "baseline_vs_candidate",
        "relative_change",
    }
    text = result.markdown.read_text(encoding="utf-8")
    for p in result.figures:
        assert f"](figures/{p.name})" in text
        data = p.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        w, h = struct.unpack(">II", data[16:24])
        assert 300 < w < 4000 and 150 < h < 4000, p.name
    saved = pl.read_csv(result.out / "data" / "comparison.csv")
    assert saved.height == frames["compare"].height
    assert saved["diff"].to_list() == pytest.approx(frames["compare"]["diff"].to_list(), nan_ok=True)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]


def test_html_is_self_contained_with_inline_svg(built):
    result = built[1]
    doc = result.html.read_text(encoding="utf-8")
    parser = _Tags()
    parser.feed(doc)
    assert parser.tags.count("svg") == result.charts == 7
    assert "script" not in parser.tags and "link" not in parser.tags
    assert parser.urls == []  # nothing to fetch: no images, stylesheets or scripts by URL
    assert "odd|&lt;b&gt;name&lt;/b&gt;" in doc and "<b>name</b>" not in doc


def test_cli_report(built, tmp_path):
    runner = CliRunner()
    config = tmp_path / "evalhouse.toml"
    config.write_text('[compare]\nadjust = "none"\nalpha = 0.1\n', encoding="utf-8")
    args = ["report", "-w", str(built[0]), "--out", str(tmp_path / "r"), "--format", "html", "--config", str(config)]
    res = runner.invoke(main, args)
    assert res.exit_code == 0, res.output
    assert f"wrote {tmp_path / 'r' / 'report.html'}" in res.output
    doc = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert "overall rows at alpha 0.1, category rows not adjusted within their pair" in doc
    assert "primary results at alpha 0.1 (not adjusted)" in doc
    assert not (tmp_path / "r" / "report.md").exists() and not (tmp_path / "r" / "figures").exists()
    res = runner.invoke(main, ["report", "-w", str(built[0]), "--out", str(tmp_path / "x"), "--baseline", "nope"])
    assert res.exit_code == 1
    assert "Error: no pairs of models to compare" in res.output


def test_cli_report_errors(built, wh, tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["report", "-w", str(wh.root), "--out", str(tmp_path / "a")])
    assert res.exit_code == 1
    assert f"Error: the warehouse {wh.root} has no scores to report on" in res.output
    res = runner.invoke(main, ["report", "-w", str(built[0]), "--out", str(tmp_path / "b"), "--metric", "nope"])
    assert res.exit_code == 1
    assert "Error: no scores for metric 'nope'" in res.output
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # nothing written on failure


def test_report_lists_a_pair_with_no_metric_in_common(put_scores, tmp_path):
    rows = [{"model": "m", "score": s, "metric": "acc", "item_id": f"q{i}"} for i, s in enumerate([1.0, 0.0, 1.0])]
    rows += [{"model": "m-q4km", "score": s, "metric": "f1", "item_id": f"q{i}"} for i, s in enumerate([0.4, 0.5])]
    wh = put_scores(rows)
    result = build_report(wh, tmp_path / "r", fmt="both")
    md = result.markdown.read_text(encoding="utf-8")
    assert "(none in common)" in md and result.html.read_text(encoding="utf-8").count("(none in common)") >= 1
