"""Charts of models side by side: mean per model, score distributions, model x category, quantization.

Each builder takes a Polars frame and returns an Altair chart. Frames with a ``benchmark`` column
(``evalhouse.report.like_for_like``: every model of a benchmark on the same items) are drawn one panel
per benchmark, so a mean is only ever set beside means over the same items; ``basis`` says which
items in the subtitle. Every builder sorts and caps what it draws (keeping the best and the worst
rows, and saying so) so that a chart stays readable at 5 models and at 80.

>>> import polars as pl
>>> frame = pl.DataFrame({"model": ["a", "b"], "mean": [0.5, 0.7], "ci_low": [0.4, 0.6],
...                       "ci_high": [0.6, 0.8], "n": [10, 10]})
>>> spec = mean_by_model(frame).to_dict()
>>> [row["model"] for row in next(iter(spec["datasets"].values()))]
['b', 'a']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import altair as alt
import polars as pl

from evalhouse.charts.common import (
    NAME_WIDTH,
    STEP,
    TEXT_COLOUR,
    WIDTH,
    cap,
    clean,
    gap_order,
    heat_cells,
    one_metric,
    panels,
    style,
    text_px,
    title,
    with_labels,
)
from evalhouse.pairs import precision_rank

MODEL_TIP = alt.Tooltip("model_full:N", title="model")
VALUE_PX = 100  # the value and n written beside each bar


def _by_benchmark(
    frame: pl.DataFrame, build: Callable[[pl.DataFrame, str, bool], Any], max_benchmarks: int
) -> tuple[list[Any], str]:
    """One panel per benchmark (those with the most models kept), or one panel without the column.

    ``build(rows, heading, last)`` draws a panel; only the last one carries the x axis title.
    """
    if "benchmark" not in frame.columns:
        return [build(frame, "", True)], ""
    sizes = frame.group_by("benchmark").agg(pl.len().alias("models"), pl.col("n").min(), pl.col("n").max().alias("hi"))
    sizes = sizes.sort(["models", "benchmark"], descending=[True, False])
    note = f"{max_benchmarks} of {sizes.height} benchmarks (most models)" if sizes.height > max_benchmarks else ""
    shown = sizes.head(max_benchmarks).sort("benchmark")
    out = []
    for i, b in enumerate(shown.iter_rows(named=True)):
        each = f"{b['n']:,} items each" if b["n"] == b["hi"] else f"{b['n']:,} to {b['hi']:,} items"
        rows = frame.filter(pl.col("benchmark") == b["benchmark"])
        out.append(build(rows, f"{b['benchmark']} · {each}", i == shown.height - 1))
    return out, note


def _x_domain(frame: pl.DataFrame, columns: Sequence[str]) -> list[float]:
    """One x domain for every panel, from 0 (or below) to the largest value drawn."""
    present = [frame[c].cast(pl.Float64) for c in columns if c in frame.columns]
    values = pl.concat(present).drop_nulls() if present else pl.Series([], dtype=pl.Float64)
    lo = min(0.0, float(values.min())) if values.len() else 0.0  # type: ignore[arg-type]
    hi = max(lo + 1e-9, float(values.max())) if values.len() else 1.0  # type: ignore[arg-type]
    return [lo, hi]


def _model_axis(order: list[str], label_px: int) -> alt.Y:
    """Models down the side; every panel reserves the same label room so the plots line up."""
    return alt.Y("model:N", sort=order, scale=alt.Scale(domain=order), title=None, axis=alt.Axis(minExtent=label_px))


# ---------------------------------------------------------------------------------------------
# Mean per model with interval and n
# ---------------------------------------------------------------------------------------------


def mean_by_model(
    frame: pl.DataFrame, *, metric: str = "score", limit: int = 50, basis: str = "", max_benchmarks: int = 20
) -> Any:
    """Mean score per model as bars with the 95 % interval as error bars and ``n`` beside each bar.

    Args:
        frame: One row per model (per benchmark, with a ``benchmark`` column) with ``model, mean,
            ci_low, ci_high, n``: ``LikeForLike.means`` or ``stats.describe`` by model.
        metric: Metric name, for the title (the frame holds one metric).
        limit: Most models per panel; beyond it the best and worst ``limit / 2`` are kept.
        basis: Which items the means are over, shown under the title.
        max_benchmarks: Most benchmark panels.

    Returns:
        A chart, one panel per benchmark, models sorted by mean, best at the top.
    """
    one_metric(frame)
    frame = clean(with_labels(frame, {"model": NAME_WIDTH, "benchmark": NAME_WIDTH}))
    domain = _x_domain(frame, ["mean", "ci_low", "ci_high"])
    label_px = text_px(frame["model"].to_list())
    width = WIDTH - label_px - VALUE_PX

    def panel(rows: pl.DataFrame, heading: str, last: bool) -> Any:
        kept, note = cap(rows, "mean", limit, noun="models")
        kept = kept.with_columns(pl.max_horizontal("mean", "ci_high").alias("label_at"))
        order = gap_order(kept["model"].to_list(), rows.height)
        base = alt.Chart(kept).encode(y=_model_axis(order, label_px))
        x_title = f"mean {metric} (95 % interval)" if last else None
        bars = base.mark_bar(color="#4c78a8", height={"band": 0.7}).encode(
            x=alt.X(
                "mean:Q",
                title=x_title,
                scale=alt.Scale(domain=domain, nice=True),
                axis=alt.Axis(tickCount=max(2, width // 80)),
            ),
            tooltip=[
                MODEL_TIP,
                alt.Tooltip("mean:Q", format=".3f"),
                alt.Tooltip("ci_low:Q", format=".3f"),
                alt.Tooltip("ci_high:Q", format=".3f"),
                "n:Q",
            ],
        )
        err = base.mark_rule(color="#222", strokeWidth=1.5).encode(x="ci_low:Q", x2="ci_high:Q")
        text = (
            base.transform_calculate(label="format(datum.mean, '.3f') + '  n=' + datum.n")
            .mark_text(align="left", dx=4, fontSize=10, color="#333")
            .encode(x="label_at:Q", text="label:N")
        )
        return alt.layer(bars, err, text).properties(
            width=width, height=alt.Step(STEP), title=_panel_title(heading, note)
        )

    charts, note = _by_benchmark(frame, panel, max_benchmarks)
    head = title(f"Mean {metric} per model", basis, note)
    return style(_titled(charts, head))


def _panel_title(heading: str, note: str) -> alt.TitleParams | str:
    if not heading:
        return alt.TitleParams("", subtitle=note) if note else ""
    return alt.TitleParams(heading, subtitle=note or alt.Undefined, anchor="start", fontSize=13)


def _titled(charts: list[Any], head: alt.TitleParams) -> Any:
    """One panel takes the chart's title (its own heading joins the subtitle); several are stacked under it."""
    if len(charts) == 1:
        own = charts[0].title
        lines = [] if head.subtitle is alt.Undefined else list(head.subtitle)
        if isinstance(own, alt.TitleParams):
            lines += [str(own.text), *([] if own.subtitle is alt.Undefined else [own.subtitle])]
        return charts[0].properties(title=title(str(head.text), *[str(x) for x in lines if x]))
    return panels(charts).properties(title=head)


# ---------------------------------------------------------------------------------------------
# Distribution per model
# ---------------------------------------------------------------------------------------------


def distribution(
    frame: pl.DataFrame, *, metric: str = "score", limit: int = 50, basis: str = "", max_benchmarks: int = 20
) -> Any:
    """Score distribution per model: a box plot, or for 0/1 scores the proportion with its interval.

    Args:
        frame: ``LikeForLike.boxes`` (per benchmark, on shared items): ``model, n, mean, min, q1,
            median, q3, max, lower, upper, binary`` and, for 0/1 metrics, ``ci_low, ci_high``.
        metric: Metric name, for the title.
        limit: Most models per panel (best and worst by median, or by proportion for 0/1 scores).
        basis: Which items the distributions are over, shown under the title.
        max_benchmarks: Most benchmark panels.

    Returns:
        The chart, one panel per benchmark, models sorted best first.
    """
    one_metric(frame)
    frame = clean(with_labels(frame, {"model": NAME_WIDTH, "benchmark": NAME_WIDTH}))
    binary = frame.height > 0 and bool(frame["binary"].all()) and "ci_low" in frame.columns
    label_px = text_px(frame["model"].to_list())
    width = WIDTH - label_px - 40
    ticks = alt.Axis(tickCount=max(2, width // 80))

    def proportion(rows: pl.DataFrame, heading: str, last: bool) -> Any:
        kept, note = cap(rows, "mean", limit, noun="models")
        order = gap_order(kept["model"].to_list(), rows.height)
        base = alt.Chart(kept).encode(y=_model_axis(order, label_px))
        x_title = f"proportion {metric} = 1 (95 % interval)" if last else None
        marks = [
            base.mark_rule(color="#4c78a8", strokeWidth=2).encode(
                x=alt.X("ci_low:Q", title=x_title, scale=alt.Scale(domain=[0, 1]), axis=ticks), x2="ci_high:Q"
            ),
            base.mark_point(filled=True, size=60, color="#1f3f66").encode(
                x="mean:Q", tooltip=[MODEL_TIP, alt.Tooltip("mean:Q", format=".3f"), "n:Q"]
            ),
        ]
        return alt.layer(*marks).properties(width=width, height=alt.Step(STEP), title=_panel_title(heading, note))

    domain = _x_domain(frame, ["lower", "upper", "min", "max"])

    def box(rows: pl.DataFrame, heading: str, last: bool) -> Any:
        kept, note = cap(rows.sort("mean", descending=True, nulls_last=True), "median", limit, noun="models")
        order = gap_order(kept["model"].to_list(), rows.height)
        base = alt.Chart(kept).encode(y=_model_axis(order, label_px))
        marks = [
            base.mark_rule(color="#444").encode(
                # Padding keeps a median or box edge on 0 or 1 clear of the plot border.
                x=alt.X(
                    "lower:Q",
                    title=metric if last else None,
                    scale=alt.Scale(domain=domain, padding=8, nice=False),
                    axis=ticks,
                ),
                x2="upper:Q",
            ),
            base.mark_bar(color="#9ecae1", stroke="#3a6d99", height={"band": 0.6}).encode(x="q1:Q", x2="q3:Q"),
            base.mark_tick(color="#08306b", thickness=2.5, size=STEP * 0.6).encode(x="median:Q"),
            base.mark_point(shape="diamond", filled=True, size=30, color="#d95f02").encode(
                x="mean:Q",
                tooltip=[
                    MODEL_TIP,
                    "n:Q",
                    alt.Tooltip("mean:Q", format=".3f"),
                    alt.Tooltip("median:Q", format=".3f"),
                    alt.Tooltip("q1:Q", format=".3f"),
                    alt.Tooltip("q3:Q", format=".3f"),
                ],
            ),
        ]
        return alt.layer(*marks).properties(width=width, height=alt.Step(STEP), title=_panel_title(heading, note))

    charts, note = _by_benchmark(frame, proportion if binary else box, max_benchmarks)
    if binary:
        head = title(f"Proportion of {metric} = 1 per model", basis, note)
    else:
        legend = "box: quartiles; dark tick: median; orange diamond: mean; whiskers: 1.5 IQR"
        head = title(f"Distribution of {metric} per model", basis, note, legend)
    return style(_titled(charts, head))


# ---------------------------------------------------------------------------------------------
# Heatmap model x category
# ---------------------------------------------------------------------------------------------


def category_heatmap(
    frame: pl.DataFrame,
    *,
    metric: str = "score",
    max_models: int = 80,
    max_categories: int = 50,
    basis: str = "",
) -> alt.LayerChart:
    """Mean score per model (rows) and category (columns), the value written in every cell.

    Args:
        frame: ``model, category, mean, n`` and optionally ``benchmark`` (``LikeForLike.categories``:
            each category's models on the same items); a category name found in several benchmarks
            is shown as ``benchmark/category``.
        metric: Metric name, for the title.
        max_models: Most model rows (best and worst by their mean over categories kept).
        max_categories: Most category columns (those with the most scores kept).
        basis: Which items the means are over, shown under the title.

    Returns:
        The heatmap; models sorted by mean, categories by benchmark then name; colours span the
        values drawn.
    """
    one_metric(frame)
    if "benchmark" in frame.columns:
        repeated = frame.group_by("category").agg(pl.col("benchmark").n_unique().alias("k")).filter(pl.col("k") > 1)
        frame = frame.with_columns(
            pl.when(pl.col("category").is_in(repeated["category"].implode()))
            .then(pl.concat_str([pl.col("benchmark"), pl.lit("/"), pl.col("category")]))
            .otherwise(pl.col("category"))
            .alias("category")
        )
    frame = clean(with_labels(frame, {"model": NAME_WIDTH, "category": 24}))
    per_model = frame.group_by("model").agg(pl.col("mean").mean().alias("overall"))
    models, model_note = cap(per_model, "overall", max_models, noun="models", by_name="mean over categories")
    keys = ["benchmark", "category"] if "benchmark" in frame.columns else ["category"]
    per_cat = frame.group_by(keys).agg(pl.col("n").sum().alias("scores"))
    cats = per_cat.sort("scores", descending=True, maintain_order=True).head(max_categories).sort(keys)
    cat_note = (
        f"{max_categories} of {per_cat.height} categories (most scores)" if per_cat.height > max_categories else ""
    )
    kept = frame.join(models.select("model"), on="model").join(cats.select("category"), on="category")
    model_order = gap_order(models["model"].to_list(), per_model.height)
    cat_order = cats["category"].to_list()
    cell, font = heat_cells(len(cat_order), text_px(models["model"].to_list()))
    lo = float(kept["mean"].min()) if kept["mean"].drop_nulls().len() else 0.0  # type: ignore[arg-type]
    hi = float(kept["mean"].max()) if kept["mean"].drop_nulls().len() else 1.0  # type: ignore[arg-type]
    hi = max(hi, lo + 1e-9)
    kept = kept.with_columns(
        # Dark cells get white text; the threshold sits where the scheme turns dark.
        (((pl.col("mean") - lo) / (hi - lo)) > 0.6).alias("dark"),
        # Narrow cells drop the leading zero (".45"): the value still fits at a readable size.
        pl.col("mean").map_elements(lambda v: _short_number(v, cell), return_dtype=pl.String).alias("shown"),
    )
    base = alt.Chart(kept).encode(
        x=alt.X("category:N", sort=cat_order, title=None, axis=alt.Axis(orient="top", labelAngle=-45, labelLimit=170)),
        y=alt.Y("model:N", sort=model_order, scale=alt.Scale(domain=model_order), title=None),
    )
    tooltip = [MODEL_TIP, alt.Tooltip("category_full:N", title="category")]
    if "benchmark" in kept.columns:
        tooltip.append(alt.Tooltip("benchmark:N"))
    cells = base.mark_rect(stroke="white", strokeWidth=0.5).encode(
        color=alt.Color(
            "mean:Q", scale=alt.Scale(scheme="viridis", reverse=True, domain=[lo, hi]), title=f"mean {metric}"
        ),
        tooltip=[*tooltip, alt.Tooltip("mean:Q", format=".3f"), "n:Q"],
    )
    text = base.mark_text(fontSize=font).encode(
        text="shown:N", color=alt.condition("datum.dark", alt.value("white"), alt.value(TEXT_COLOUR))
    )
    chart = alt.layer(cells, text).properties(
        width=alt.Step(cell),
        height=alt.Step(STEP),
        title=title(
            f"Mean {metric} by model and category", basis, model_note, cat_note, "blank: model not compared on it"
        ),
    )
    return style(chart)


def _short_number(value: float | None, cell: int) -> str:
    """A mean as its cell shows it.

    >>> _short_number(0.456, 40), _short_number(0.456, 20), _short_number(-0.5, 20), _short_number(None, 20)
    ('0.46', '.46', '-.50', '')
    """
    if value is None:
        return ""
    text = f"{value:.2f}"
    if cell < 28 and abs(value) < 1:
        text = text.replace("0.", ".", 1)
    return text


# ---------------------------------------------------------------------------------------------
# Score by quantization level per model base
# ---------------------------------------------------------------------------------------------


def quantization(
    frame: pl.DataFrame, *, metric: str = "score", max_bases: int = 15, columns: int = 5, basis: str = ""
) -> alt.FacetChart:
    """Mean score per quantization level (ordered by bits, widest first), one panel per model base.

    Args:
        frame: ``model_base, quantization, mean, ci_low, ci_high, n`` and optionally ``model``; one row
            per model (``LikeForLike.quantization``: each base's models on the same items). Bases with
            a single level are dropped (nothing to compare); a NULL quantization is drawn as ``none``;
            two models of one level are told apart by their names.
        metric: Metric name, for the title.
        max_bases: Most panels (the bases with the most levels, then the most scores, kept).
        columns: Panels per row.
        basis: Which items the means are over, shown under the title.

    Returns:
        A faceted chart.
    """
    one_metric(frame)
    frame = frame.with_columns(pl.col("quantization").fill_null("none").alias("level"))
    if "model" in frame.columns:
        twins = pl.len().over("model_base", "level") > 1
        frame = frame.with_columns(
            pl.when(twins).then(pl.format("{} ({})", "level", "model")).otherwise(pl.col("level")).alias("level")
        )
    frame = clean(with_labels(frame, {"model_base": NAME_WIDTH, "level": 24, "model": NAME_WIDTH}))
    levels = frame.group_by("model_base").agg(
        pl.col("level").n_unique().alias("levels"), pl.col("n").sum().alias("total"), pl.col("n").min(),
        pl.col("n").max().alias("hi"),
    )  # fmt: skip
    levels = levels.filter(pl.col("levels") >= 2).sort(
        ["levels", "total", "model_base"], descending=[True, True, False]
    )
    note = f"{max_bases} of {levels.height} model bases (most levels)" if levels.height > max_bases else ""
    # The panel header says how many items its means are over: the same for every level on shared items.
    heads = levels.head(max_bases).with_columns(
        pl.when(pl.col("n") == pl.col("hi"))
        .then(pl.format("{} · {} items", "model_base", "n"))
        .otherwise(pl.col("model_base"))
        .alias("panel")
    )
    kept = frame.join(heads.select("model_base", "panel"), on="model_base")
    raw = kept.select("level", "quantization").unique()
    rank = {lvl: precision_rank(q) for lvl, q in raw.iter_rows()}
    order = sorted(rank, key=lambda lvl: (-rank[lvl], lvl))
    # Short level names read level; long or many ones are turned to fit under their points.
    angle = 0 if len(order) <= 5 and max((len(lvl) for lvl in order), default=0) <= 8 else -40
    x = alt.X("level:N", sort=order, title=None, axis=alt.Axis(labelAngle=angle))
    base = alt.Chart().encode(x=x)
    line = base.mark_line(color="#9ab", strokeWidth=1.5).encode(y="mean:Q")
    err = base.mark_rule(color="#3a6d99", strokeWidth=1.5).encode(y="ci_low:Q", y2="ci_high:Q")
    tips: list[Any] = [alt.Tooltip("model_base_full:N", title="model base"), alt.Tooltip("level_full:N", title="level")]
    if "model_full" in kept.columns:
        tips.append(MODEL_TIP)
    point = base.mark_point(filled=True, size=50, color="#1f3f66").encode(
        # Not from 0: the levels of a base differ by a few points, and the intervals show how surely.
        y=alt.Y("mean:Q", title=f"mean {metric} (95 % interval)", scale=alt.Scale(zero=False)),
        tooltip=[
            *tips,
            alt.Tooltip("mean:Q", format=".3f"),
            alt.Tooltip("ci_low:Q", format=".3f"),
            alt.Tooltip("ci_high:Q", format=".3f"),
            "n:Q",
        ],
    )
    panels_order = heads["panel"].to_list()
    cols = min(columns, max(1, len(panels_order)))
    chart = (
        alt.layer(line, err, point, data=kept)
        .properties(width=max(120, (WIDTH - 80) // cols - 20), height=160)
        .facet(
            facet=alt.Facet(
                "panel:N", sort=panels_order, title=None, header=alt.Header(labelFontSize=11, labelLimit=220)
            ),
            columns=cols,
        )
        .properties(
            title=title(
                f"Mean {metric} by quantization level, per model base",
                basis,
                note,
                "levels widest first; 'none': no quantization in the model name",
            )
        )
    )
    return style(chart)
