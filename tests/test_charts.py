"""Chart builders: each spec carries the right rows and encodings; rendering gives sane PNG and SVG."""

from __future__ import annotations

import json
import math
import struct
import time
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np
import polars as pl
import pytest

from evalhouse import charts
from evalhouse.tabular import display_width


def datasets(spec: dict[str, Any]) -> list[list[dict[str, Any]]]:
    return list(spec.get("datasets", {}).values())


def rows_of(spec: dict[str, Any], view: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows a view (a panel, a layer, or the whole chart) draws."""
    data = view.get("data") or next(layer["data"] for layer in layers(view) if "data" in layer)
    return spec["datasets"][data["name"]]


def main_rows(spec: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The dataset whose rows carry ``key`` (the chart's own data, not a helper layer's)."""
    found = [rows for rows in datasets(spec) if rows and key in rows[0]]
    assert len(found) == 1, f"expected one dataset with {key!r}"
    return found[0]


def panels(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The panels of a stacked chart, or the chart itself."""
    return spec.get("vconcat", [spec])


def layers(view: dict[str, Any]) -> list[dict[str, Any]]:
    return view["spec"]["layer"] if "spec" in view else view["layer"]


def layer_with(view: dict[str, Any], mark: str) -> list[dict[str, Any]]:
    out = []
    for layer in layers(view):
        m = layer["mark"]
        if (m if isinstance(m, str) else m["type"]) == mark:
            out.append(layer)
    return out


def subtitle(spec: dict[str, Any]) -> list[str]:
    sub = spec["title"].get("subtitle", [])
    return [sub] if isinstance(sub, str) else sub


def tooltip_fields(layer: dict[str, Any]) -> list[str]:
    return [t["field"] for t in layer["encoding"]["tooltip"]]


def describe_frame(models: list[str], seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    mean = rng.uniform(0.05, 0.95, len(models))
    n = rng.integers(5, 100, len(models))
    half = 1.96 * 0.3 / np.sqrt(n)
    return pl.DataFrame({"model": models, "mean": mean, "ci_low": mean - half, "ci_high": mean + half, "n": n})


MODELS_80 = [f"model-{i:02d}" if i % 7 else f"日本語モデル{i:02d}" for i in range(80)]
LONG = "very-long-model-name-" * 500 + "q4_k_m"  # 10 KB


# ---------------------------------------------------------------------------------------------
# Labels: truncated before rendering, full names in tooltips
# ---------------------------------------------------------------------------------------------


def test_short_labels_are_cut_in_the_middle_and_unique():
    names = [LONG, LONG + "-v2", "a", "日本語" * 40]
    labels = charts.short_labels(names, 20)
    assert len(set(labels.values())) == 4
    assert labels["a"] == "a"
    assert all(display_width(v) <= 20 for v in labels.values())
    assert labels[LONG].startswith("very-long") and labels[LONG].endswith("q4_k_m")


def test_long_names_are_drawn_short_with_the_full_name_in_the_tooltip():
    frame = describe_frame([LONG, "b", "モデル"])
    spec = charts.mean_by_model(frame).to_dict()
    rows = main_rows(spec, "model")
    long_row = next(r for r in rows if r["model"] not in ("b", "モデル"))
    assert display_width(long_row["model"]) <= charts.NAME_WIDTH and "…" in long_row["model"]
    assert long_row["model_full"].startswith(LONG[:200]) and len(long_row["model_full"]) <= 301
    bar = layer_with(spec, "bar")[0]
    assert tooltip_fields(bar)[0] == "model_full"
    assert long_row["model"] in bar["encoding"]["y"]["scale"]["domain"]


def test_render_time_does_not_depend_on_name_length():
    def seconds(name: str) -> float:
        frame = describe_frame([name, "b", name + "-2"])
        comp = compare_frame().with_columns(pl.lit(name).alias("baseline"))
        start = time.perf_counter()
        charts.to_svg(charts.mean_by_model(frame))
        charts.to_svg(charts.difference(comp))
        return time.perf_counter() - start

    seconds("warm-up")
    short = seconds("short")
    assert seconds("x" * 100_000) < 3 * short + 0.5


# ---------------------------------------------------------------------------------------------
# Mean per model
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


def test_mean_by_model_fills_the_page_width():
    spec = charts.mean_by_model(describe_frame(["a", "b"])).to_dict()
    # Plot width + label room + the value beside the bars: about the 1000 px of the report column.
    assert 850 <= spec["width"] + layer_with(spec, "bar")[0]["encoding"]["y"]["axis"]["minExtent"] + 100 <= 1000


def test_mean_by_model_caps_80_models_to_best_and_worst_with_a_note():
    frame = describe_frame(MODELS_80)
    spec = charts.mean_by_model(frame, limit=40).to_dict()
    rows = main_rows(spec, "model")
    ranked = frame.sort("mean", descending=True)["model"].to_list()
    assert [r["model"] for r in rows] == ranked[:20] + ranked[-20:]
    domain = layer_with(spec, "bar")[0]["encoding"]["y"]["scale"]["domain"]
    assert domain[20] == "… 40 more …" and len(domain) == 41
    assert subtitle(spec) == ["top 20 and bottom 20 of 80 models by mean"]


def test_mean_by_model_draws_one_panel_per_benchmark_with_its_own_models():
    frame = pl.concat(
        [
            describe_frame(["a", "b", "c"]).with_columns(pl.lit("mmlu").alias("benchmark"), pl.lit(40).alias("n")),
            describe_frame(["a", "d"], seed=1).with_columns(pl.lit("gsm8k").alias("benchmark"), pl.lit(7).alias("n")),
        ]
    )
    spec = charts.mean_by_model(frame, basis="per benchmark, on shared items").to_dict()
    views = panels(spec)
    assert [v["title"]["text"] for v in views] == ["gsm8k · 7 items each", "mmlu · 40 items each"]
    assert [{r["model"] for r in rows_of(spec, v)} for v in views] == [{"a", "d"}, {"a", "b", "c"}]
    assert subtitle(spec) == ["per benchmark, on shared items"]
    scales = [layer_with(v, "bar")[0]["encoding"]["x"]["scale"]["domain"] for v in views]
    assert scales[0] == scales[1]  # one x scale: bars of different panels read alike
    assert spec["resolve"]["scale"]["y"] == "independent"
    # The x axis is titled once, under the last panel; every panel keeps the same label room.
    titles = [layer_with(v, "bar")[0]["encoding"]["x"]["title"] for v in views]
    assert titles == [None, "mean score (95 % interval)"]
    assert len({layer_with(v, "bar")[0]["encoding"]["y"]["axis"]["minExtent"] for v in views}) == 1


def test_charts_refuse_to_mix_metrics():
    frame = describe_frame(["a", "b"]).with_columns(pl.Series("metric", ["acc", "score"]))
    with pytest.raises(ValueError, match="one metric per chart"):
        charts.mean_by_model(frame)


def test_cap_and_gap_order():
    frame = pl.DataFrame({"m": list("abcde"), "v": [3.0, None, 1.0, 5.0, 2.0]})
    kept, note = charts.cap(frame, "v", 10, noun="models")
    assert kept["m"].to_list() == ["d", "a", "e", "c", "b"] and note == ""  # nulls last
    kept, note = charts.cap(frame, "v", 3, noun="pairs", descending=False, ends=("lowest", "highest"))
    assert kept["m"].to_list() == ["c", "d", "b"]
    assert note == "lowest 1 and highest 2 of 5 pairs by v"
    assert charts.gap_order(["x"], 1) == ["x"]


# ---------------------------------------------------------------------------------------------
# Heatmap model x category
# ---------------------------------------------------------------------------------------------


def heat_frame(models: list[str], categories: list[str]) -> pl.DataFrame:
    rng = np.random.default_rng(1)
    rows = [(m, c, float(rng.uniform()), int(rng.integers(1, 20))) for m in models for c in categories]
    return pl.DataFrame(rows, schema=["model", "category", "mean", "n"], orient="row")


def test_category_heatmap_cells_values_and_colours_from_the_data():
    frame = heat_frame(["a", "b", "モデル"], ["数学", "logic", "ethics"]).filter(
        ~((pl.col("model") == "a") & (pl.col("category") == "logic"))
    )
    spec = charts.category_heatmap(frame).to_dict()
    rows = main_rows(spec, "category")
    assert len(rows) == 8  # the missing cell stays missing (blank), not zero
    got = {(r["model"], r["category"]): r for r in rows}
    for m, c, mean in frame.select("model", "category", "mean").iter_rows():
        assert got[(m, c)]["mean"] == pytest.approx(mean, abs=1e-6)
        assert got[(m, c)]["shown"] == f"{mean:.2f}"  # every cell has its value written
    rect = layer_with(spec, "rect")[0]["encoding"]
    assert rect["color"]["field"] == "mean" and rect["x"]["field"] == "category" and rect["y"]["field"] == "model"
    assert rect["color"]["scale"]["domain"] == pytest.approx([frame["mean"].min(), frame["mean"].max()], abs=1e-6)
    assert rect["x"]["sort"] == sorted(["数学", "logic", "ethics"])
    overall = frame.group_by("model").agg(pl.col("mean").mean()).sort("mean", descending=True)
    assert rect["y"]["scale"]["domain"] == overall["model"].to_list()
    assert layer_with(spec, "text")[0]["encoding"]["text"]["field"] == "shown"


def test_category_heatmap_names_a_category_of_several_benchmarks_with_its_benchmark():
    frame = pl.DataFrame(
        {
            "benchmark": ["mmlu", "mmlu", "arc", "arc"],
            "category": ["math", "math", "math", "arc"],
            "model": ["a", "b", "a", "b"],
            "mean": [0.1, 0.2, 0.3, 0.4],
            "n": [5, 5, 5, 5],
        }
    )
    spec = charts.category_heatmap(frame).to_dict()
    assert layer_with(spec, "rect")[0]["encoding"]["x"]["sort"] == ["arc", "arc/math", "mmlu/math"]


def test_category_heatmap_of_80_models_and_50_categories_keeps_every_value():
    frame = heat_frame(MODELS_80, [f"cat{i:02d}" for i in range(50)])
    spec = charts.category_heatmap(frame).to_dict()
    rows = main_rows(spec, "category")
    assert len(rows) == 80 * 50 and all(r["shown"] for r in rows)
    text = layer_with(spec, "text")[0]
    assert text["mark"]["fontSize"] == 7 and spec["width"]["step"] == 18
    assert all(len(r["shown"]) <= 4 for r in rows)  # ".45" fits the narrow cells


def test_category_heatmap_caps_models_and_categories():
    frame = heat_frame(MODELS_80, [f"cat{i:02d}" for i in range(45)])
    spec = charts.category_heatmap(frame, max_models=50, max_categories=40).to_dict()
    rows = main_rows(spec, "category")
    assert len({r["model"] for r in rows}) == 50 and len({r["category"] for r in rows}) == 40
    assert subtitle(spec)[:2] == [
        "top 25 and bottom 25 of 80 models by mean over categories",
        "40 of 45 categories (most scores)",
    ]


# ---------------------------------------------------------------------------------------------
# Distribution
# ---------------------------------------------------------------------------------------------


def box_frame() -> pl.DataFrame:
    return pl.DataFrame(
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


def test_distribution_box_plot_layers():
    spec = charts.distribution(box_frame()).to_dict()
    assert [r["model"] for r in main_rows(spec, "q1")] == ["b", "a"]  # sorted by median
    bar = layer_with(spec, "bar")[0]["encoding"]
    assert (bar["x"]["field"], bar["x2"]["field"]) == ("q1", "q3")
    assert layer_with(spec, "tick")[0]["encoding"]["x"]["field"] == "median"
    whisker = layer_with(spec, "rule")[0]["encoding"]
    assert (whisker["x"]["field"], whisker["x2"]["field"]) == ("lower", "upper")


def test_distribution_per_benchmark():
    frame = pl.concat([box_frame().with_columns(pl.lit(b).alias("benchmark")) for b in ("x", "y")])
    frame = frame.with_columns(pl.when(pl.col("benchmark") == "y").then(pl.col("model") + "2").otherwise("model"))
    spec = charts.distribution(frame, basis="shared items").to_dict()
    assert [[r["model"] for r in rows_of(spec, v)] for v in panels(spec)] == [["b", "a"], ["b2", "a2"]]
    assert subtitle(spec)[0] == "shared items"


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
# Comparisons
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


def test_difference_draws_only_comparable_pairs_with_a_rule_at_zero():
    frame = compare_frame()
    spec = charts.difference(frame).to_dict()
    rows = main_rows(spec, "pair")
    # v6 is not comparable: not drawn at its value, named under the title instead.
    assert [r["pair"] for r in rows] == ["base → v1", "base → v2", "base → v5", "base → v3", "base → v4"]
    assert "not comparable" not in {r["class"] for r in rows}
    assert subtitle(spec) == ["metric score", "not comparable, not drawn (1): base → v6"]
    assert {r["pair"]: r["class"] for r in rows}["base → v1"] == "degraded, significant"
    point = layer_with(spec, "point")[0]["encoding"]
    assert point["x"]["field"] == "diff" and "pair_full" in tooltip_fields(layer_with(spec, "point")[0])
    assert point["color"]["field"] == "class" and point["color"]["scale"]["domain"] == list(charts.CLASSES[:5])
    zero = [rows for rows in datasets(spec) if rows and "x" in rows[0]]
    assert zero == [[{"x": 0.0}]]
    assert layer_with(spec, "rule")[0]["encoding"]["x"]["field"] == "x"
    drawn, apart = charts.split_comparable(frame)
    assert (drawn.height, apart["candidate"].to_list()) == (5, ["v6"])


def test_difference_axis_includes_zero_when_every_difference_is_positive():
    frame = compare_frame().filter(pl.col("diff") > 0.05).with_columns(pl.lit(True).alias("comparable"))
    frame = frame.with_columns(pl.col("ci_low").fill_null(0.05), pl.col("ci_high").fill_null(0.15))
    spec = charts.difference(frame).to_dict()
    domain = layer_with(spec, "rule")[1]["encoding"]["x"]["scale"]["domain"]
    assert domain[0] < 0 < domain[1]


def test_difference_draws_one_panel_per_metric():
    frame = pl.concat(
        [
            compare_frame().with_columns(pl.lit("acc").alias("metric")),
            compare_frame().with_columns(pl.lit("score").alias("metric"), pl.col("diff") * 10),
            # A pair with no metric in common: no difference to draw.
            compare_frame()
            .head(1)
            .with_columns(
                pl.lit(None, pl.String).alias("metric"), pl.lit("v9").alias("candidate"), pl.lit(None).alias("diff")
            ),
        ]
    )
    spec = charts.difference(frame).to_dict()
    views = panels(spec)
    assert [v["title"]["text"] for v in views] == ["acc", "score"]
    for view, metric in zip(views, ("acc", "score"), strict=True):
        drawn = rows_of(spec, layer_with(view, "point")[0])
        assert {r["metric"] for r in drawn} == {metric} and len(drawn) == 5
        title = layer_with(view, "rule")[1]["encoding"]["x"]["title"]
        assert title == f"difference in mean {metric}, candidate − baseline"
    assert "not comparable, not drawn (2): base → v6, base → v9" in subtitle(spec)
    assert charts.degradation is charts.difference


def test_difference_with_nothing_comparable_draws_no_value():
    spec = charts.difference(compare_frame().tail(1)).to_dict()
    assert main_rows(spec, "text") == [{"text": "no comparable pair to draw"}]
    assert "base → v6" in subtitle(spec)[0]


def category_compare(pairs: int = 3, categories: int = 4) -> pl.DataFrame:
    rng = np.random.default_rng(2)
    rows = []
    for p in range(pairs):
        for c in range(categories):
            b, k = float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.2, 0.8))
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


def test_baseline_vs_candidate_facets_with_diagonal_and_named_points():
    frame = category_compare()
    spec = charts.baseline_vs_candidate(frame, labels=2).to_dict()
    assert spec["facet"]["field"] == "pair" and spec["columns"] == 3
    rows = main_rows(spec, "category")
    assert len(rows) == 12
    rule = layer_with(spec, "rule")[0]["encoding"]
    lo, hi = rule["x"]["datum"], rule["x2"]["datum"]
    values = frame["mean_baseline"].to_list() + frame["mean_candidate"].to_list()
    assert (lo, hi) == (rule["y"]["datum"], rule["y2"]["datum"]) == pytest.approx((min(values), max(values)))
    point = layer_with(spec, "point")[0]["encoding"]
    assert (point["x"]["field"], point["y"]["field"]) == ("mean_baseline", "mean_candidate")
    pad = 0.03 * (hi - lo)
    assert point["x"]["scale"]["domain"] == point["y"]["scale"]["domain"] == pytest.approx([lo - pad, hi + pad])
    # Two categories named per pair: significant drops first, else significant gains, else the largest.
    assert layer_with(spec, "text")[0]["encoding"]["text"]["field"] == "label"
    for pair in {r["pair"] for r in rows}:
        mine = [r for r in rows if r["pair"] == pair]
        named = [r for r in mine if r["label"]]
        assert len(named) == 2 and all(r["label"] == r["category"] for r in named)
        ranked = sorted(
            mine,
            key=lambda r: (
                {"degraded, significant": 2, "improved, significant": 1}.get(r["class"], 0),
                abs(r["mean_candidate"] - r["mean_baseline"]),
            ),
            reverse=True,
        )
        assert {r["category"] for r in ranked[:2]} == {r["category"] for r in named}


def test_baseline_vs_candidate_spreads_labels_at_one_height():
    frame = category_compare(1, 4).with_columns(pl.lit(0.3).alias("mean_candidate"), pl.lit(True).alias("significant"))
    rows = main_rows(charts.baseline_vs_candidate(frame, labels=3).to_dict(), "category")
    heights = sorted(r["label_at"] for r in rows if r["label"])
    # Written upwards from the points' height, one label's height (12 px in data units) apart.
    assert heights[0] == pytest.approx(0.3) and len(heights) == 3
    assert heights[2] - heights[1] == pytest.approx(heights[1] - heights[0]) and heights[1] > heights[0]


def test_relative_change_heatmap_writes_every_value_and_marks_significance():
    frame = category_compare()
    spec = charts.relative_change_heatmap(frame).to_dict()
    rows = main_rows(spec, "rel_change_pct")
    nulls = [r for r in rows if r["rel_change_pct"] is None]
    assert len(nulls) == 3 and {r["shown"] for r in nulls} == {"n/a"}
    for r in rows:
        if r["rel_change_pct"] is not None:
            assert r["shown"].rstrip("%") == str(round(r["rel_change_pct"]))
    rects = layer_with(spec, "rect")
    assert rects[0]["transform"][0]["filter"] == "datum.rel_change_pct === null"
    colour = rects[1]["encoding"]["color"]
    assert colour["field"] == "gain_pct" and colour["scale"]["type"] == "symlog"  # coloured by direction
    biggest = max(abs(r["rel_change_pct"]) for r in rows if r["rel_change_pct"] is not None)
    assert colour["scale"]["domain"] == pytest.approx([-biggest, biggest], abs=1e-6)
    # Significant cells: outlined and written in bold; the two text layers together cover every cell.
    assert rects[2]["transform"][0]["filter"] == "datum.significant" and rects[2]["mark"]["stroke"] == "#111"
    texts = layer_with(spec, "text")
    assert [(t["transform"][0]["filter"], t["mark"]["fontWeight"]) for t in texts] == [
        ("!datum.significant", "normal"),
        ("datum.significant", "bold"),
    ]
    assert all(t["encoding"]["text"]["field"] == "shown" for t in texts)


def test_relative_change_colours_scale_to_the_largest_change():
    """A -44 % drop, the largest change, takes the darkest red (no clamp at +-100 %)."""
    frame = category_compare(1, 3).with_columns(pl.Series("rel_change_pct", [-44.0, 5.0, -3.0]))
    spec = charts.relative_change_heatmap(frame).to_dict()
    assert layer_with(spec, "rect")[1]["encoding"]["color"]["scale"]["domain"] == [-44.0, 44.0]
    dark = {r["rel_change_pct"]: r["dark"] for r in main_rows(spec, "rel_change_pct")}
    assert dark == {-44.0: True, 5.0: False, -3.0: False}
    assert charts.colour_limit(pl.Series([-44.0, 900.0])) == 900.0


def test_relative_change_heatmap_of_80_pairs_and_50_categories_keeps_every_value():
    rng = np.random.default_rng(3)
    rows = [
        ("base", f"v{p:02d}", f"cat{c:02d}", float(rng.normal(0, 30)), bool(rng.uniform() < 0.2))
        for p in range(80)
        for c in range(50)
    ]
    frame = pl.DataFrame(
        rows, schema=["baseline", "candidate", "category", "rel_change_pct", "significant"], orient="row"
    )
    spec = charts.relative_change_heatmap(frame).to_dict()
    drawn = main_rows(spec, "rel_change_pct")
    assert len(drawn) == 4000 and all(r["shown"] for r in drawn)
    assert spec["width"]["step"] >= 22 and {t["mark"]["fontSize"] for t in layer_with(spec, "text")} == {8}


def test_comparison_charts_drop_rows_that_are_not_comparable():
    frame = category_compare().with_columns((pl.col("candidate") != "v1").alias("comparable"))
    for chart in (charts.relative_change_heatmap(frame), charts.baseline_vs_candidate(frame)):
        rows = main_rows(chart.to_dict(), "category")
        assert len(rows) == 8 and "base → v1" not in {r["pair"] for r in rows}


# ---------------------------------------------------------------------------------------------
# Quantization
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
    assert spec["facet"]["field"] == "panel" and {r["panel"] for r in rows} == {"m · 10 items"}


def test_quantization_tells_two_models_of_one_level_apart():
    frame = pl.DataFrame(
        {
            "model_base": ["m", "m", "m"],
            "quantization": [None, "q8_0", "q8_0"],
            "model": ["m", "m-q8_0", "m:q8_0"],
            "mean": [0.6, 0.5, 0.4],
            "ci_low": [0.5, 0.4, 0.3],
            "ci_high": [0.7, 0.6, 0.5],
            "n": [10, 10, 10],
        }
    )
    rows = main_rows(charts.quantization(frame).to_dict(), "level")
    assert sorted(r["level"] for r in rows) == ["none", "q8_0 (m-q8_0)", "q8_0 (m:q8_0)"]


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
    assert 1700 < w < 2100 and 100 < h < 600  # scale 2 of a ~950 x 120 chart
    svg = charts.render(chart, tmp_path / "m.SVG")
    root = ET.fromstring(svg.read_text(encoding="utf-8"))
    assert root.tag.endswith("svg") and 850 < float(root.get("width", 0)) < 1050
    assert "モデル" in svg.read_text(encoding="utf-8")
    with pytest.raises(ValueError, match=r"use a \.png or \.svg"):
        charts.render(chart, tmp_path / "m.jpg")


def test_to_spec_inlines_the_data_as_json():
    frame = describe_frame(["a", "b"]).with_columns(pl.Series("ci_low", [float("nan"), 0.1]))
    spec = charts.to_spec(charts.mean_by_model(frame))
    assert "url" not in json.dumps(spec["datasets"])
    rows = main_rows(spec, "model")
    assert {r["model"] for r in rows} == {"a", "b"} and any(r["ci_low"] is None for r in rows)
    assert not any(isinstance(v, float) and not math.isfinite(v) for r in rows for v in r.values())
    assert json.loads(json.dumps(spec, allow_nan=False)) == spec
    assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/")


def test_japanese_text_renders_as_glyphs():
    """With only a fallback font, every CJK character is the same box: '日本' and '本日' would match."""
    import altair as alt

    def word(text: str) -> bytes:
        chart = alt.Chart(pl.DataFrame({"t": [text]})).mark_text(fontSize=40).encode(text="t:N")
        return charts.to_png(chart.properties(width=160, height=60), scale=1)

    assert word("日本") != word("本日")


def test_relative_change_heatmap_colours_a_rise_of_a_lower_is_better_metric_as_worse() -> None:
    frame = pl.DataFrame({"baseline": ["a", "a"], "candidate": ["b", "b"], "metric": ["ppl", "ppl"],
                          "category": ["up", "down"], "rel_change_pct": [85.0, -28.0], "significant": [True, True],
                          "higher_is_better": [False, False], "comparable": [True, True]})  # fmt: skip
    spec = charts.relative_change_heatmap(frame).to_dict()
    data = {r["category_full"]: r for r in next(iter(spec["datasets"].values()))}
    assert data["up"]["gain_pct"] == -85.0 and data["down"]["gain_pct"] == 28.0  # red: worse
