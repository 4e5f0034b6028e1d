"""Chart builders: each spec carries the right data and encodings; rendering gives sane PNG and SVG."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from engine import charts
from engine.ingest import ingest
from engine.warehouse import connect

FIXTURES = Path(__file__).parent / "fixtures" / "so8t" / "good"


def datasets(spec: dict[str, Any]) -> list[list[dict[str, Any]]]:
    return list(spec.get("datasets", {}).values())


def main_rows(spec: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The dataset whose rows carry ``key`` (the chart's own data, not a helper layer's)."""
    found = [rows for rows in datasets(spec) if rows and key in rows[0]]
    assert len(found) == 1, f"expected one dataset with {key!r}"
    return found[0]


def layers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return spec["spec"]["layer"] if "spec" in spec else spec["layer"]


def layer_with(spec: dict[str, Any], mark: str) -> list[dict[str, Any]]:
    out = []
    for layer in layers(spec):
        m = layer["mark"]
        if (m if isinstance(m, str) else m["type"]) == mark:
            out.append(layer)
    return out


def subtitle(spec: dict[str, Any]) -> list[str]:
    sub = spec["title"].get("subtitle", [])
    return [sub] if isinstance(sub, str) else sub


def describe_frame(models: list[str], seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    mean = rng.uniform(0.05, 0.95, len(models))
    n = rng.integers(5, 100, len(models))
    half = 1.96 * 0.3 / np.sqrt(n)
    return pl.DataFrame({"model": models, "mean": mean, "ci_low": mean - half, "ci_high": mean + half, "n": n})


MODELS_80 = [f"model-{i:02d}" if i % 7 else f"日本語モデル{i:02d}" for i in range(80)]


# ---------------------------------------------------------------------------------------------
# 1. mean per model
# ---------------------------------------------------------------------------------------------


def test_mean_by_model_sorts_best_first_with_interval_and_n():
    frame = describe_frame(["a", "アイギス", "c", "d", "e"])
    spec = charts.mean_by_model(frame, metric="acc").to_dict()
    rows = main_rows(spec, "model")
    expected = frame.sort("mean", descending=True)
    assert [r["model"] for r in rows] == expected["model"].to_list()
    assert [r["mean"] for r in rows] == pytest.approx(expected["mean"].to_list(), abs=1e-6)
    bar = layer_with(spec, "bar")[0]["encoding"]
    assert bar["x"]["field"] == "mean"
    assert bar["y"]["scale"]["domain"] == expected["model"].to_list()
    rule = layer_with(spec, "rule")[0]["encoding"]
    assert (rule["x"]["field"], rule["x2"]["field"]) == ("ci_low", "ci_high")
    text = layer_with(spec, "text")[0]
    assert text["encoding"]["text"]["field"] == "label"
    assert "datum.n" in text["transform"][0]["calculate"]
    assert spec["title"]["text"] == "Mean acc per model"
    assert subtitle(spec) == []


def test_mean_by_model_caps_80_models_to_best_and_worst_with_a_note():
    frame = describe_frame(MODELS_80)
    spec = charts.mean_by_model(frame, limit=40).to_dict()
    rows = main_rows(spec, "model")
    ranked = frame.sort("mean", descending=True)["model"].to_list()
    assert [r["model"] for r in rows] == ranked[:20] + ranked[-20:]
    domain = layer_with(spec, "bar")[0]["encoding"]["y"]["scale"]["domain"]
    assert domain[20] == "… 40 more …" and len(domain) == 41
    assert subtitle(spec) == ["top 20 and bottom 20 of 80 models by mean"]


def test_cap_and_gap_order():
    frame = pl.DataFrame({"m": list("abcde"), "v": [3.0, None, 1.0, 5.0, 2.0]})
    kept, note = charts.cap(frame, "v", 10, noun="models")
    assert kept["m"].to_list() == ["d", "a", "e", "c", "b"] and note == ""  # nulls last
    kept, note = charts.cap(frame, "v", 3, noun="pairs", descending=False, ends=("lowest", "highest"))
    assert kept["m"].to_list() == ["c", "d", "b"]
    assert note == "lowest 1 and highest 2 of 5 pairs by v"
    assert charts.gap_order(["x"], 1) == ["x"]


# ---------------------------------------------------------------------------------------------
# 2. heatmap
# ---------------------------------------------------------------------------------------------


def heat_frame(models: list[str], categories: list[str]) -> pl.DataFrame:
    rng = np.random.default_rng(1)
    rows = [(m, c, float(rng.uniform()), int(rng.integers(1, 20))) for m in models for c in categories]
    return pl.DataFrame(rows, schema=["model", "category", "mean", "n"], orient="row")


def test_category_heatmap_cells_and_values():
    frame = heat_frame(["a", "b", "モデル"], ["数学", "logic", "ethics"]).filter(
        ~((pl.col("model") == "a") & (pl.col("category") == "logic"))
    )
    spec = charts.category_heatmap(frame).to_dict()
    rows = main_rows(spec, "category")
    assert len(rows) == 8  # the missing cell stays missing (blank), not zero
    got = {(r["model"], r["category"]): r["mean"] for r in rows}
    for m, c, mean in frame.select("model", "category", "mean").iter_rows():
        assert got[(m, c)] == pytest.approx(mean, abs=1e-6)
    rect = layer_with(spec, "rect")[0]["encoding"]
    assert rect["color"]["field"] == "mean" and rect["x"]["field"] == "category" and rect["y"]["field"] == "model"
    assert rect["x"]["sort"] == sorted(["数学", "logic", "ethics"])
    overall = frame.group_by("model").agg(pl.col("mean").mean()).sort("mean", descending=True)
    assert rect["y"]["scale"]["domain"] == overall["model"].to_list()
    assert layer_with(spec, "text")[0]["encoding"]["text"]["field"] == "shown"


def test_category_heatmap_drops_cell_text_and_caps_when_large():
    frame = heat_frame(MODELS_80, [f"cat{i:02d}" for i in range(45)])
    spec = charts.category_heatmap(frame, max_models=50, max_categories=40).to_dict()
    assert layer_with(spec, "text") == []
    rows = main_rows(spec, "category")
    assert len({r["model"] for r in rows}) == 50 and len({r["category"] for r in rows}) == 40
    assert subtitle(spec)[:2] == [
        "top 25 and bottom 25 of 80 models by mean over categories",
        "40 of 45 categories (most scores)",
    ]


# ---------------------------------------------------------------------------------------------
# 3. distribution
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def fixture_con(wh):
    ingest(wh, [str(FIXTURES)], workers=1)
    con = connect(wh)
    yield con
    con.close()


def test_box_stats_match_numpy(fixture_con):
    got = charts.box_stats(fixture_con, "score")
    raw = fixture_con.sql("SELECT model, score FROM scores WHERE metric = 'score'").pl()
    assert got.height == raw["model"].n_unique() > 1
    for row in got.iter_rows(named=True):
        s = raw.filter(pl.col("model") == row["model"])["score"].to_numpy()
        q1, med, q3 = np.percentile(s, [25, 50, 75])
        assert (row["n"], row["q1"], row["median"], row["q3"]) == (
            len(s),
            pytest.approx(q1),
            pytest.approx(med),
            pytest.approx(q3),
        )
        inside = s[(s >= q1 - 1.5 * (q3 - q1)) & (s <= q3 + 1.5 * (q3 - q1))]
        assert (row["lower"], row["upper"]) == (pytest.approx(inside.min()), pytest.approx(inside.max()))
        assert row["binary"] == bool(np.isin(s, [0.0, 1.0]).all())
    only = charts.box_stats(fixture_con, "score", models=[got["model"][0]])
    assert only["model"].to_list() == [got["model"][0]]


def test_distribution_box_plot_layers():
    box = pl.DataFrame(
        {
            "model": ["a", "b"],
            "n": [10, 12],
            "mean": [0.4, 0.6],
            "min": [0.0, 0.1],
            "q1": [0.2, 0.5],
            "median": [0.3, 0.65],
            "q3": [0.5, 0.8],
            "max": [1.0, 0.9],
            "lower": [0.0, 0.1],
            "upper": [0.9, 0.9],
            "binary": [False, False],
        }
    )
    spec = charts.distribution(box).to_dict()
    assert [r["model"] for r in main_rows(spec, "q1")] == ["b", "a"]  # sorted by median
    bar = layer_with(spec, "bar")[0]["encoding"]
    assert (bar["x"]["field"], bar["x2"]["field"]) == ("q1", "q3")
    assert layer_with(spec, "tick")[0]["encoding"]["x"]["field"] == "median"
    whisker = layer_with(spec, "rule")[0]["encoding"]
    assert (whisker["x"]["field"], whisker["x2"]["field"]) == ("lower", "upper")


def test_distribution_of_binary_scores_is_a_proportion_with_interval():
    box = pl.DataFrame(
        {
            "model": ["a", "b"],
            "n": [10, 12],
            "mean": [0.4, 0.75],
            "binary": [True, True],
            "ci_low": [0.17, 0.47],
            "ci_high": [0.69, 0.91],
        }
    )
    spec = charts.distribution(box, metric="correct").to_dict()
    assert layer_with(spec, "bar") == [] and layer_with(spec, "point")[0]["encoding"]["x"]["field"] == "mean"
    rule = layer_with(spec, "rule")[0]["encoding"]
    assert (rule["x"]["field"], rule["x2"]["field"]) == ("ci_low", "ci_high")
    assert rule["x"]["scale"]["domain"] == [0, 1]
    assert spec["title"]["text"] == "Proportion of correct = 1 per model"


# ---------------------------------------------------------------------------------------------
# 4-6. comparisons
# ---------------------------------------------------------------------------------------------


def compare_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "baseline": ["base"] * 6,
            "candidate": ["v1", "v2", "v3", "v4", "v5", "v6"],
            "metric": ["score"] * 6,
            "scope": ["overall"] * 6,
            "diff": [-0.3, -0.05, 0.04, 0.2, 0.0, 0.1],
            "ci_low": [-0.4, -0.15, -0.05, 0.1, 0.0, None],
            "ci_high": [-0.2, 0.05, 0.13, 0.3, 0.0, None],
            "direction": ["degraded", "degraded", "improved", "improved", "no change", "improved"],
            "significant": [True, False, False, True, False, None],
            "comparable": [True, True, True, True, True, False],
            "p_adjusted": [0.001, 0.4, 0.5, 0.01, 1.0, None],
        }
    )


def test_classify_gives_every_class():
    frame = compare_frame()
    assert frame.select(charts.classify(frame))["class"].to_list() == list(charts.CLASSES)


def test_degradation_spec():
    frame = compare_frame()
    spec = charts.degradation(frame).to_dict()
    rows = main_rows(spec, "pair")
    assert [r["pair"] for r in rows] == ["base → v1", "base → v2", "base → v5", "base → v3", "base → v6", "base → v4"]
    assert {r["pair"]: r["class"] for r in rows}["base → v1"] == "degraded, significant"
    point = layer_with(spec, "point")[0]["encoding"]
    assert point["x"]["field"] == "diff"
    assert point["color"]["field"] == "class" and point["color"]["scale"]["domain"] == list(charts.CLASSES)
    zero = [rows for rows in datasets(spec) if rows and "x" in rows[0]]
    assert zero == [[{"x": 0.0}]]


def category_compare(pairs: int = 3, categories: int = 4) -> pl.DataFrame:
    rng = np.random.default_rng(2)
    rows = []
    for p in range(pairs):
        for c in range(categories):
            b, k = float(rng.uniform()), float(rng.uniform())
            rows.append(
                (
                    "base",
                    f"v{p}",
                    f"カテゴリ{c}",
                    b,
                    k,
                    (k - b) / b * 100 if c else None,
                    "degraded" if k < b else "improved",
                    bool(c % 2),
                )
            )
    cols = [
        "baseline",
        "candidate",
        "category",
        "mean_baseline",
        "mean_candidate",
        "rel_change_pct",
        "direction",
        "significant",
    ]
    return pl.DataFrame(rows, schema=cols, orient="row")


def test_baseline_vs_candidate_facets_with_diagonal():
    frame = category_compare()
    spec = charts.baseline_vs_candidate(frame).to_dict()
    assert spec["facet"]["field"] == "pair" and spec["columns"] == 3
    assert len(main_rows(spec, "category")) == 12
    rule = layer_with(spec, "rule")[0]["encoding"]
    lo, hi = rule["x"]["datum"], rule["x2"]["datum"]
    assert (lo, hi) == (rule["y"]["datum"], rule["y2"]["datum"]) == (0.0, 1.0)
    point = layer_with(spec, "point")[0]["encoding"]
    assert (point["x"]["field"], point["y"]["field"]) == ("mean_baseline", "mean_candidate")
    pad = 0.03 * (hi - lo)
    assert point["x"]["scale"]["domain"] == point["y"]["scale"]["domain"] == [lo - pad, hi + pad]


def test_relative_change_heatmap_shows_null_as_na():
    frame = category_compare()
    spec = charts.relative_change_heatmap(frame).to_dict()
    rows = main_rows(spec, "rel_change_pct")
    nulls = [r for r in rows if r["rel_change_pct"] is None]
    assert len(nulls) == 3 and {r["shown"] for r in nulls} == {"n/a"}
    some = next(r for r in rows if r["rel_change_pct"] is not None)
    assert some["shown"] == f"{round(some['rel_change_pct'])}%"
    rects = layer_with(spec, "rect")
    assert rects[0]["transform"][0]["filter"] == "datum.rel_change_pct === null"
    colour = rects[1]["encoding"]["color"]
    assert colour["field"] == "rel_change_pct"
    assert colour["scale"]["domainMid"] == 0 and colour["scale"]["domain"] == [-100.0, 100.0]


# ---------------------------------------------------------------------------------------------
# 7. quantization
# ---------------------------------------------------------------------------------------------


def test_quantization_orders_levels_by_bits_and_drops_single_level_bases():
    frame = pl.DataFrame(
        {
            "model_base": ["m", "m", "m", "m", "solo"],
            "quantization": ["q4_k_m", None, "q8_0", "fp16", "q8_0"],
            "mean": [0.3, 0.6, 0.5, 0.55, 0.9],
            "ci_low": [0.2, 0.5, 0.4, 0.45, 0.8],
            "ci_high": [0.4, 0.7, 0.6, 0.65, 1.0],
            "n": [10, 10, 10, 10, 10],
        }
    )
    spec = charts.quantization(frame).to_dict()
    rows = main_rows(spec, "level")
    assert {r["model_base"] for r in rows} == {"m"}
    point = layer_with(spec, "point")[0]["encoding"]
    assert point["x"]["sort"] == ["none", "fp16", "q8_0", "q4_k_m"]
    assert point["y"]["field"] == "mean"
    assert spec["facet"]["field"] == "model_base"


# ---------------------------------------------------------------------------------------------
# Rendering (slowish: few renders)
# ---------------------------------------------------------------------------------------------


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_render_png_and_svg(tmp_path):
    chart = charts.mean_by_model(describe_frame(["a", "b", "モデル"]))
    png = charts.render(chart, tmp_path / "m.png")
    w, h = png_size(png.read_bytes())
    assert 600 < w < 2000 and 100 < h < 600  # scale 2 of a ~700 x 120 chart
    svg = charts.render(chart, tmp_path / "m.SVG")
    root = ET.fromstring(svg.read_text(encoding="utf-8"))
    assert root.tag.endswith("svg") and 300 < float(root.get("width", 0)) < 1000
    assert "モデル" in svg.read_text(encoding="utf-8")
    with pytest.raises(ValueError, match=r"use a \.png or \.svg"):
        charts.render(chart, tmp_path / "m.jpg")


def test_japanese_text_renders_as_glyphs():
    """With only a fallback font, every CJK character is the same box: '日本' and '本日' would match."""
    import altair as alt

    def word(text: str) -> bytes:
        chart = alt.Chart(pl.DataFrame({"t": [text]})).mark_text(fontSize=40).encode(text="t:N")
        return charts.to_png(chart.properties(width=160, height=60), scale=1)

    assert word("日本") != word("本日")
