"""The report: its first screen is the verdict, its tables and figures agree with the statistics
functions, models are compared on shared items, and Markdown and HTML come out whole."""

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

from evalhouse.cli import main
from evalhouse.compare import compare
from evalhouse.ingest import ingest
from evalhouse.report import DEFAULT_MARGIN, ReportResult, build_report
from evalhouse.settings import Settings, merge
from evalhouse.stats import describe
from evalhouse.warehouse import connect, open_warehouse

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
    return root / "wh", build_report(wh, root / "out", outputs=("md", "html", "interactive"))


@pytest.fixture(scope="module")
def frames(built: tuple[Path, ReportResult]) -> dict[str, pl.DataFrame]:
    con = connect(open_warehouse(built[0]))
    try:
        settings = merge(Settings(), margin=DEFAULT_MARGIN)
        return {
            "model": describe(con, ["model"]),
            "compare": compare(con, settings, default_by=["category", "benchmark"]),
        }
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
        rows.append([c.strip().replace("\\|", "|").replace("`", "").replace("\\", "") for c in cells])
    return rows


def test_the_first_section_is_the_verdict_table_matching_compare(built, frames):
    md = built[1].markdown.read_text(encoding="utf-8")
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    assert headings[0] == "## Verdict"
    rows = md_table(md, "| verdict |")
    overall = frames["compare"].filter(pl.col("scope") == "overall")
    assert len(rows) == overall.height == 2  # WORSE and SAME against BASE, one metric
    by_pair = {r[1]: r for r in rows}
    worse = overall.filter(pl.col("candidate") == WORSE).row(0, named=True)
    row = by_pair[f"{WORSE} vs {BASE}"]
    assert row[0] == worse["verdict"] == "regressed"
    assert row[3] == f"{worse['diff']:+.3f} [{worse['ci_low']:.3f}, {worse['ci_high']:.3f}]"
    assert row[5] == f"{worse['n_paired']:,}" == "36"
    # Where: every category got significantly worse, largest relative drop first.
    cats = (
        frames["compare"]
        .filter((pl.col("candidate") == WORSE) & (pl.col("scope") == "category") & pl.col("significant"))
        .sort("rel_change_pct")
    )
    assert row[6].startswith(f"{cats['category'][0]} {cats['diff'][0]:+.3f}")
    assert rows[0][0] == "regressed"  # regressed pairs come first
    assert "### Where it got worse" in md and "Verdict" in md.split("## Comparisons")[0]


def test_models_are_compared_on_shared_items(put_scores, tmp_path):
    """a answers 10 items (5 right), a-q4km the first 5 (all wrong); on their 5 shared items a scores 1.0."""
    rows = [{"model": "a", "benchmark": "x", "item_id": f"q{i}", "score": float(i < 5)} for i in range(10)]
    rows += [{"model": "a-q4km", "benchmark": "x", "item_id": f"q{i}", "score": 0.0} for i in range(5)]
    result = build_report(put_scores(rows), tmp_path / "r", outputs=("md",))
    md = result.markdown.read_text(encoding="utf-8")
    means = {r[1]: r for r in md_table(md, "| benchmark | model | shared items |")}
    assert means["a"][2:4] == ["5", "1.000"] and means["a-q4km"][2:4] == ["5", "0.000"]
    coverage = {r[0]: r[2] for r in md_table(md, "| model | metric | items |")}
    assert coverage == {"a": "10", "a-q4km": "5"}


def test_figures_and_data_written(built, frames):
    result = built[1]
    names = {p.stem for p in result.figures}
    assert names == {"mean_by_model", "distribution", "category_heatmap", "quantization", "differences",
                     "baseline_vs_candidate", "relative_change"}  # fmt: skip
    text = result.markdown.read_text(encoding="utf-8")
    for p in result.figures:
        assert f"](figures/{p.name})" in text
        data = p.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        w, h = struct.unpack(">II", data[16:24])
        assert 300 < w < 5000 and 150 < h < 5000, p.name
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


def test_static_html_is_self_contained_with_inline_svg(built):
    result = built[1]
    doc = result.html.read_text(encoding="utf-8")
    parser = _Tags()
    parser.feed(doc)
    assert parser.tags.count("svg") == result.charts == 7
    assert "script" not in parser.tags and "link" not in parser.tags
    assert parser.urls == []  # nothing to fetch: no images, stylesheets or scripts by URL
    assert "odd|&lt;b&gt;name&lt;/b&gt;" in doc and "<b>name</b>" not in doc
    assert "@font-face { font-family: evalhouse-cjk" in doc  # ベース and 日本語 render without system fonts


def test_interactive_html_carries_its_scripts_and_specs(built):
    doc = built[1].interactive.read_text(encoding="utf-8")
    parser = _Tags()
    parser.feed(doc)
    assert parser.urls == [] and parser.tags.count("script") == 3
    specs = json.loads(re.search(r'<script id="evalhouse-specs" type="application/json">(.*?)</script>', doc, re.S)
                       .group(1))  # fmt: skip
    assert len(specs) == built[1].charts and all("$schema" in s for s in specs.values())


def test_cli_report(built, tmp_path):
    runner = CliRunner()
    config = tmp_path / "evalhouse.toml"
    config.write_text('[compare]\nadjust = "none"\nalpha = 0.1\n', encoding="utf-8")
    args = ["report", "-w", str(built[0]), "--out", str(tmp_path / "r"), "--output", "html", "--config", str(config),
            "--margin", "5%"]  # fmt: skip
    res = runner.invoke(main, args)
    assert res.exit_code == 0, res.output
    assert f"wrote {tmp_path / 'r' / 'report.html'}" in res.output
    doc = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert "at a margin of 5% (one-sided bounds at 1 − 0.1)" in doc
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
    result = build_report(wh, tmp_path / "r", outputs=("md", "html"))
    md = result.markdown.read_text(encoding="utf-8")
    assert "Not comparable" in md and "(none in common)" in md


def test_worse_means_worse_for_a_lower_is_better_metric(put_scores, tmp_path):
    """Perplexity-like: the candidate's values rise by 5, 10, 20, 40 and 80 % in five categories;
    "worse in" names the 80 % rise first."""
    rng = np.random.default_rng(5)
    rows = []
    for k, rise in enumerate((0.05, 0.10, 0.20, 0.40, 0.80)):
        for i in range(30):
            v = float(rng.uniform(5, 6))
            common = {"category": f"k{k}", "benchmark": "b", "item_id": f"k{k}-{i}", "metric": "ppl",
                      "higher_is_better": False}  # fmt: skip
            rows += [{**common, "model": "p", "score": v}, {**common, "model": "p-q4_0", "score": v * (1 + rise)}]
    result = build_report(put_scores(rows), tmp_path / "r", outputs=("md",))
    row = md_table(result.markdown.read_text(encoding="utf-8"), "| verdict |")[0]
    assert row[0] == "regressed" and row[6].startswith("k4 +")
