"""Charts of comparisons (``evalhouse.compare`` rows): the difference per pair, baseline against
candidate per category, and the relative change per category and pair.

A comparison is already like for like (paired on the items both models answered). What these
charts add: one metric per panel, never a value drawn for a pair that is not comparable (those are
named under the title, and ``split_comparable`` hands them to the caller to list), 0 marked on
every difference axis, colours scaled to the values drawn, and significance marked.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import numpy as np
import polars as pl

from evalhouse.charts.common import (
    CLASS_SCALE,
    CLASSES,
    LABEL_LIMIT,
    STEP,
    TEXT_COLOUR,
    WIDTH,
    cap,
    classify,
    clean,
    gap_order,
    heat_cells,
    listing,
    one_metric,
    pair_labels,
    panels,
    split_comparable,
    style,
    text_px,
    title,
    with_labels,
)

PAIR_LIMIT = LABEL_LIMIT + 120  # a pair label is two names
LEGEND_PX = 200  # the colour legend beside a chart
PAIR_TIP = alt.Tooltip("pair_full:N", title="pair")
CATEGORY_TIP = alt.Tooltip("category_full:N", title="category")


def _not_drawn(apart: pl.DataFrame) -> str:
    """The subtitle line naming the pairs that are not drawn."""
    if apart.height == 0:
        return ""
    labelled = pair_labels(apart)
    names = labelled.select("pair").unique(maintain_order=True)["pair"].to_list()
    return f"not comparable, not drawn ({len(names)}): {listing(names)}"


# ---------------------------------------------------------------------------------------------
# Difference per pair, one panel per metric
# ---------------------------------------------------------------------------------------------


def difference(frame: pl.DataFrame, *, limit: int = 40) -> Any:
    """Difference (candidate - baseline) per pair with its interval, one panel per metric.

    Points are coloured by direction and significance; a dashed rule marks 0, which every panel's
    axis includes. Rows that are not comparable, or have no difference, are not drawn: the subtitle
    names them (``split_comparable`` gives them to list).

    Args:
        frame: ``compare`` rows of one scope (usually ``overall``): ``baseline, candidate, metric, diff,
            ci_low, ci_high, direction, significant, comparable`` (``p_adjusted``, ``n_paired`` shown in
            tooltips when present).
        limit: Most pairs per panel (the most degraded and the most improved kept).

    Returns:
        The chart, most negative difference at the top of each panel.
    """
    drawn, apart = split_comparable(frame)
    note = _not_drawn(apart)
    head = "Difference per pair (candidate − baseline), 95 % interval"
    if drawn.height == 0:
        empty = alt.Chart(pl.DataFrame({"text": ["no comparable pair to draw"]})).mark_text(fontSize=13)
        return style(empty.encode(text="text:N").properties(width=400, height=40, title=title(head, note)))
    drawn = clean(pair_labels(drawn)).with_columns(classify(drawn))
    metrics = sorted(drawn["metric"].unique().to_list())
    label_px = text_px(drawn["pair"].to_list(), limit=PAIR_LIMIT)
    if len(metrics) == 1:
        chart, cap_note = _difference_panel(drawn, metrics[0], limit, label_px, named=False)
        chart = chart.properties(title=title(head, f"metric {metrics[0]}", cap_note, note))
    else:
        charts = [
            _difference_panel(drawn.filter(pl.col("metric") == m), m, limit, label_px, named=True)[0] for m in metrics
        ]
        chart = panels(charts).properties(title=title(head, "one panel per metric", note))
    return style(chart).configure_axisY(labelLimit=PAIR_LIMIT)


def _difference_panel(rows: pl.DataFrame, metric: str, limit: int, label_px: int, *, named: bool) -> tuple[Any, str]:
    """One metric's pairs, and the note saying which were left out by the cap."""
    kept, note = cap(
        rows, "diff", limit, noun="pairs", descending=False, ends=("lowest", "highest"), by_name="difference"
    )
    order = gap_order(kept["pair"].to_list(), rows.height)
    values = pl.concat([kept["diff"], kept["ci_low"], kept["ci_high"]]).drop_nulls()
    lo, hi = min(0.0, float(values.min())), max(0.0, float(values.max()))  # type: ignore[arg-type]
    pad = 0.04 * (hi - lo or 1.0)
    width = WIDTH - label_px - LEGEND_PX
    scale = alt.Scale(domain=[lo - pad, hi + pad], zero=True, nice=False)
    y = alt.Y("pair:N", sort=order, scale=alt.Scale(domain=order), title=None, axis=alt.Axis(minExtent=label_px))
    base = alt.Chart(kept).encode(y=y)
    zero = alt.Chart(pl.DataFrame({"x": [0.0]})).mark_rule(color="#444", strokeDash=[4, 3]).encode(x="x:Q")
    colour = alt.Color("class:N", scale=CLASS_SCALE, title="direction (adjusted p)")
    err = base.mark_rule(strokeWidth=2).encode(
        x=alt.X(
            "ci_low:Q",
            title=f"difference in mean {metric}, candidate − baseline",
            scale=scale,
            axis=alt.Axis(tickCount=max(2, width // 80)),
        ),
        x2="ci_high:Q",
        color=colour,
    )
    tips: list[Any] = [PAIR_TIP, "metric:N", alt.Tooltip("diff:Q", format=".3f")]
    tips += [alt.Tooltip(f"{c}:Q", format=".3f") for c in ("ci_low", "ci_high")]
    tips += [alt.Tooltip("p_adjusted:Q", format=".4f")] if "p_adjusted" in rows.columns else []
    tips += ["n_paired:Q"] if "n_paired" in rows.columns else []
    point = base.mark_point(filled=True, size=60, opacity=1).encode(
        x="diff:Q", color=colour, tooltip=[*tips, "class:N"]
    )
    chart: Any = alt.layer(zero, err, point).properties(width=width, height=alt.Step(STEP))
    if named:
        heading = alt.TitleParams(metric, subtitle=note or alt.Undefined, anchor="start", fontSize=13)
        chart = chart.properties(title=heading)
    return chart, note


# The name the report has used for this chart.
degradation = difference


# ---------------------------------------------------------------------------------------------
# Baseline vs candidate per category, one panel per pair
# ---------------------------------------------------------------------------------------------


def baseline_vs_candidate(
    frame: pl.DataFrame, *, max_pairs: int = 12, columns: int = 4, labels: int = 3
) -> alt.FacetChart:
    """Candidate mean against baseline mean per category, with the diagonal, one panel per pair.

    Points below the diagonal are categories where the candidate scores lower; ``labels`` points of
    each panel are named beside them: significant drops first, then significant gains, then the
    largest changes.

    Args:
        frame: ``compare`` rows of scope ``category`` of one metric: ``baseline, candidate, category,
            mean_baseline, mean_candidate, direction, significant`` (rows not ``comparable`` dropped).
        max_pairs: Most panels (the pairs with the lowest mean difference kept).
        columns: Panels per row.
        labels: Categories named per panel.

    Returns:
        A faceted chart.
    """
    one_metric(frame)
    if "comparable" in frame.columns:
        frame = frame.filter(pl.col("comparable").fill_null(True))
    frame = frame.filter(pl.col("mean_baseline").is_not_null() & pl.col("mean_candidate").is_not_null())
    frame = clean(with_labels(pair_labels(frame), {"category": 24})).with_columns(classify(frame))
    frame = frame.with_columns((pl.col("mean_candidate") - pl.col("mean_baseline")).alias("change"))
    frame = with_gain(frame, "change")
    per_pair = frame.group_by("pair").agg(pl.col("gain").mean().alias("d"))
    pairs, note = cap(
        per_pair,
        "d",
        max_pairs,
        noun="pairs",
        descending=False,
        ends=("lowest", "highest"),
        by_name="mean difference over categories",
    )
    kept = frame.join(pairs.select("pair"), on="pair")
    # Significant drops first (what a reader looks for), then significant gains, then the rest.
    first = pl.col("class").replace_strict({CLASSES[0]: 2, CLASSES[3]: 1}, default=0, return_dtype=pl.Int8)
    rank = pl.struct(first, pl.col("change").abs()).rank("ordinal", descending=True).over("pair")
    kept = kept.with_columns(pl.when(rank <= labels).then(pl.col("category")).otherwise(pl.lit("")).alias("label"))
    values = pl.concat([kept["mean_baseline"], kept["mean_candidate"]]).drop_nulls()
    # The axes span the means drawn (not 0 to 1), so a cluster of categories spreads out.
    lo = float(values.min()) if values.len() else 0.0  # type: ignore[arg-type]
    hi = float(values.max()) if values.len() else 1.0  # type: ignore[arg-type]
    lo, hi = (lo - 0.05, hi + 0.05) if hi - lo < 0.1 else (lo, hi)
    cols = min(columns, max(1, pairs.height))
    size = max(150, (WIDTH - LEGEND_PX - 60) // cols - 30)
    # Names of points at about the same height are spread apart (12 px) so they stay legible.
    kept = _spread(kept, "mean_candidate", "label", 12 * (hi - lo) / size)
    # A little room around the data so points on 0 or 1 are not cut by the axes.
    pad = 0.03 * (hi - lo)
    scale = alt.Scale(domain=[lo - pad, hi + pad], nice=False, zero=False)
    diagonal = (
        alt.Chart()
        .mark_rule(color="#999", strokeDash=[4, 3])
        .encode(
            x=alt.datum(lo, type="quantitative"),
            y=alt.datum(lo, type="quantitative"),
            x2=alt.datum(hi),
            y2=alt.datum(hi),
        )
    )
    xy = {
        "x": alt.X("mean_baseline:Q", scale=scale, title="baseline mean"),
        "y": alt.Y("mean_candidate:Q", scale=scale, title="candidate mean"),
    }
    points = (
        alt.Chart()
        .mark_point(filled=True, size=45, opacity=0.85)
        .encode(
            **xy,
            color=alt.Color("class:N", scale=CLASS_SCALE, title="direction (adjusted p)"),
            tooltip=[
                PAIR_TIP,
                CATEGORY_TIP,
                alt.Tooltip("mean_baseline:Q", format=".3f"),
                alt.Tooltip("mean_candidate:Q", format=".3f"),
                "class:N",
            ],
        )
    )
    names = (
        alt.Chart()
        .mark_text(align="left", dx=6, fontSize=9, color="#333")
        .encode(x="mean_baseline:Q", y="label_at:Q", text="label:N")
    )
    # A label pushed away from its point is tied to it by a faint line.
    leaders = (
        alt.Chart()
        .transform_filter("datum.label != '' && datum.label_at != datum.mean_candidate")
        .mark_rule(color="#bbb", strokeWidth=0.8)
        .encode(x="mean_baseline:Q", y="mean_candidate:Q", y2="label_at:Q")
    )
    order = pairs["pair"].to_list()
    chart = (
        alt.layer(diagonal, leaders, points, names, data=kept)
        .properties(width=size, height=size)
        # Pair names share long prefixes (one baseline, many candidates): two lines keep the part that differs.
        .facet(
            facet=alt.Facet(
                "pair:N",
                sort=order,
                title=None,
                header=alt.Header(
                    labelLimit=size + 40,
                    labelFontSize=11,
                    labelExpr="[split(datum.value, ' → ')[0] + ' →', split(datum.value, ' → ')[1]]",
                ),
            ),
            columns=cols,
        )
        .properties(
            title=title(
                "Baseline vs candidate per category (below the diagonal: candidate lower)",
                note,
                f"named: {labels} categories per pair, significant drops first, then gains, then the largest changes",
            )
        )
    )
    return style(chart)


def _spread(frame: pl.DataFrame, y: str, label: str, gap: float) -> pl.DataFrame:
    """``label_at``: the height each label is written at, pushed up so labels of one pair stay ``gap`` apart.

    >>> f = pl.DataFrame({"pair": ["p"] * 3, "y": [0.0, 0.0, 0.5], "name": ["a", "b", "c"]})
    >>> _spread(f, "y", "name", 0.1)["label_at"].to_list()
    [0.0, 0.1, 0.5]
    """
    out = []
    for _, rows in frame.with_row_index("_i").group_by("pair", maintain_order=True):
        named = rows.filter(pl.col(label) != "").sort(y, "_i")
        at: list[float] = []
        for v in named[y].to_list():
            at.append(v if not at or v >= at[-1] + gap else at[-1] + gap)
        out.append(named.select("_i").with_columns(pl.Series("label_at", at, dtype=pl.Float64)))
    placed = pl.concat(out) if out else pl.DataFrame(schema={"_i": pl.UInt32, "label_at": pl.Float64})
    return (
        frame.with_row_index("_i")
        .join(placed, on="_i", how="left")
        .with_columns(pl.col("label_at").fill_null(pl.col(y)))
        .sort("_i")
        .drop("_i")
    )


# ---------------------------------------------------------------------------------------------
# Relative change heatmap, pair x category
# ---------------------------------------------------------------------------------------------


# Colours of relative changes follow a symmetric log scale, linear within +-SYMLOG_CONSTANT %: a
# +233 % jump from a tiny baseline then leaves a -44 % drop strongly coloured instead of pale.
SYMLOG_CONSTANT = 10.0


def with_gain(frame: pl.DataFrame, change: str, name: str = "gain") -> pl.DataFrame:
    """``frame`` with ``name``: ``change`` turned so that positive is better (a lower-is-better metric
    that rose got worse), for colouring and ordering pairs worst first."""
    better = pl.col("higher_is_better").fill_null(True) if "higher_is_better" in frame.columns else pl.lit(True)
    return frame.with_columns((pl.col(change) * pl.when(better).then(1.0).otherwise(-1.0)).alias(name))


def colour_limit(values: pl.Series) -> float:
    """Where the colours of relative changes saturate: the largest change drawn (at least 1 %).

    >>> colour_limit(pl.Series([-44.0, 10.0, None])), colour_limit(pl.Series([], dtype=pl.Float64))
    (44.0, 1.0)
    """
    sizes = values.drop_nulls().abs()
    return max(float(sizes.max()), 1.0) if sizes.len() else 1.0  # type: ignore[arg-type]


def _symlog_share(value: pl.Expr, limit: float) -> pl.Expr:
    """How far along the colour scale (0 to 1) a change sits: past ~0.55 its cell is dark."""
    return (value.abs() / SYMLOG_CONSTANT).log1p() / np.log1p(limit / SYMLOG_CONSTANT)


def relative_change_heatmap(
    frame: pl.DataFrame, *, max_pairs: int = 80, max_categories: int = 50, clamp: float | None = None
) -> alt.LayerChart:
    """Relative change (%) per pair (rows) and category (columns), the value in every cell.

    Diverging colours centred on 0 span the changes drawn (``colour_limit``) on a symmetric log scale
    (``SYMLOG_CONSTANT``); significant cells have a bold value and a dark outline; undefined changes
    (baseline mean 0) are grey ``n/a``.

    Args:
        frame: ``compare`` rows of scope ``category`` of one metric: ``baseline, candidate, category,
            rel_change_pct, significant`` (rows not ``comparable`` dropped).
        max_pairs: Most pair rows (the most degraded and most improved by mean change kept).
        max_categories: Most category columns (those compared in the most pairs kept).
        clamp: Colours saturate at +-clamp %; None: from the data.

    Returns:
        The heatmap.
    """
    one_metric(frame)
    if "comparable" in frame.columns:
        frame = frame.filter(pl.col("comparable").fill_null(True))
    if "significant" not in frame.columns:
        frame = frame.with_columns(pl.lit(False).alias("significant"))
    frame = clean(with_labels(pair_labels(frame), {"category": 24}))
    frame = with_gain(frame, "rel_change_pct", "gain_pct")
    per_pair = frame.group_by("pair").agg(pl.col("gain_pct").mean().alias("mean change"))
    pairs, pair_note = cap(
        per_pair,
        "mean change",
        max_pairs,
        noun="pairs",
        descending=False,
        ends=("lowest", "highest"),
        by_name="mean relative change",
    )
    per_cat = frame.group_by("category").agg(pl.len().alias("pairs"))
    cats = per_cat.sort(["pairs", "category"], descending=[True, False]).head(max_categories)
    cat_note = (
        f"{max_categories} of {per_cat.height} categories (in the most pairs)"
        if per_cat.height > max_categories
        else ""
    )
    kept = frame.join(pairs.select("pair"), on="pair").join(cats.select("category"), on="category")
    limit = clamp if clamp is not None else colour_limit(kept["gain_pct"])
    cell, font = heat_cells(cats.height, text_px(kept["pair"].to_list(), limit=PAIR_LIMIT), narrowest=22)
    percent = "%" if cell >= 34 else ""
    kept = kept.with_columns(
        pl.when(pl.col("rel_change_pct").is_null())
        .then(pl.lit("n/a"))
        .otherwise(pl.format("{}{}", pl.col("rel_change_pct").round(0).cast(pl.Int64), pl.lit(percent)))
        .alias("shown"),
        (_symlog_share(pl.col("rel_change_pct"), limit) > 0.55).fill_null(True).alias("dark"),
        pl.col("significant").fill_null(False).alias("significant"),
    )
    pair_order = gap_order(pairs["pair"].to_list(), per_pair.height)
    cat_order = sorted(cats["category"].to_list())
    # Pairs run down the side, where their long names read horizontally; categories across the top.
    base = alt.Chart(kept).encode(
        x=alt.X("category:N", sort=cat_order, title=None, axis=alt.Axis(orient="top", labelAngle=-45, labelLimit=170)),
        y=alt.Y("pair:N", sort=pair_order, scale=alt.Scale(domain=pair_order), title=None),
    )
    tooltip = [PAIR_TIP, CATEGORY_TIP, alt.Tooltip("rel_change_pct:Q", format=".1f"), "significant:N"]
    # Undefined cells are a grey no colour of the scale has; every drawn cell is outlined so that a
    # near-white 0 % cell stays distinct from a blank (pair not compared on that category).
    missing = base.transform_filter("datum.rel_change_pct === null").mark_rect(
        color="#8c8c8c", stroke="#cfcfcf", strokeWidth=0.5
    )
    cells = (
        base.transform_filter("datum.rel_change_pct !== null")
        .mark_rect(stroke="#cfcfcf", strokeWidth=0.5)
        .encode(
            color=alt.Color(
                "gain_pct:Q",
                scale=alt.Scale(
                    type="symlog", constant=SYMLOG_CONSTANT, scheme="redblue", domain=[-limit, limit], clamp=True
                ),
                title=["change for the better, %", "(log scale; red: worse)"],
            ),
            tooltip=tooltip,
        )
    )
    outline = (
        base.transform_filter("datum.significant")
        .mark_rect(fill=None, stroke="#111", strokeWidth=1.6)
        .encode(tooltip=tooltip)
    )
    colour = alt.condition("datum.dark", alt.value("white"), alt.value(TEXT_COLOUR))
    values = [
        base.transform_filter(f"{'' if sig else '!'}datum.significant")
        .mark_text(fontSize=font, fontWeight="bold" if sig else "normal")
        .encode(text="shown:N", color=colour, tooltip=tooltip)
        for sig in (False, True)
    ]
    chart = alt.layer(missing, cells, outline, *values).properties(
        width=alt.Step(cell),
        height=alt.Step(STEP),
        title=title(
            "Relative change of the mean per category, % (candidate vs baseline)",
            pair_note,
            cat_note,
            "bold, outlined: significant (adjusted p); grey n/a: undefined, the baseline mean is 0; "
            "blank: not compared",
        ),
    )
    return style(chart).configure_axisY(labelLimit=PAIR_LIMIT)
