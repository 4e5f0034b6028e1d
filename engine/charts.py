"""Charts: one builder per figure, each a Polars frame in and an Altair chart out; one renderer.

Every builder sorts what it draws and caps it (keeping the best and the worst rows, and saying so
in the subtitle) so that a chart stays readable at 5 models and at 80. ``render`` writes PNG or SVG
through vl-convert, after registering a font that covers Japanese (model and category names are
often Japanese) so labels come out as glyphs rather than boxes.

>>> import polars as pl
>>> frame = pl.DataFrame({"model": ["a", "b"], "mean": [0.5, 0.7], "ci_low": [0.4, 0.6],
...                       "ci_high": [0.6, 0.8], "n": [10, 10]})
>>> spec = mean_by_model(frame).to_dict()
>>> [row["model"] for row in next(iter(spec["datasets"].values()))]
['b', 'a']
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import altair as alt
import polars as pl

from engine.pairs import precision_rank

if TYPE_CHECKING:
    import duckdb

# Label widths (px) past which names are cut with an ellipsis: long model names otherwise eat the plot.
LABEL_LIMIT = 240
STEP = 18  # px per row of a bar or heatmap chart
WIDTH = 440

# The classes a comparison falls into, in legend order: red and blue (apart for red-green
# colour-blind readers), pale when not significant, greys for "no change" and "not comparable".
CLASSES = (
    "degraded, significant",
    "degraded, not significant",
    "improved, not significant",
    "improved, significant",
    "no change",
    "not comparable",
)
CLASS_COLOURS = ("#c0392b", "#f0a58f", "#9ec3e6", "#1f5fa8", "#6e6e6e", "#c4c4c4")

_fonts_registered = False


def register_fonts() -> list[str]:
    """Register the fonts vl-convert needs for Japanese labels (once per process).

    The font is Noto Sans JP from the ``pylopdf-fonts-jp`` package (a data-only wheel, installed as
    a dependency so a fresh machine needs no system package); ``EVALHOUSE_FONT_DIR`` adds another
    folder. vl-convert falls back glyph by glyph, so Latin text keeps its usual font.

    Returns:
        The folders registered.
    """
    global _fonts_registered
    import vl_convert as vlc

    dirs: list[str] = []
    try:
        import pylopdf_fonts_jp

        dirs.append(str(pylopdf_fonts_jp.sans_path().parent))
    except ImportError:  # pragma: no cover - a dependency; without it Japanese falls back to system fonts
        pass
    if os.environ.get("EVALHOUSE_FONT_DIR"):
        dirs.append(os.environ["EVALHOUSE_FONT_DIR"])
    if not _fonts_registered:
        for d in dirs:
            if os.path.isdir(d):
                vlc.register_font_directory(os.path.abspath(d))
        _fonts_registered = True
    return dirs


def render(chart: alt.TopLevelMixin, path: str | os.PathLike[str], *, scale: float = 2.0) -> Path:
    """Write ``chart`` to ``path`` as PNG or SVG, chosen by the file's suffix.

    Args:
        chart: Any Altair chart.
        path: Destination ending in ``.png`` or ``.svg``.
        scale: PNG pixel density (2 gives crisp text on high-resolution screens).

    Returns:
        The path written.
    """
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix == ".png":
        out.write_bytes(to_png(chart, scale=scale))
    elif suffix == ".svg":
        out.write_text(to_svg(chart), encoding="utf-8")
    else:
        raise ValueError(f"cannot render to {out.name}: use a .png or .svg file name")
    return out


def to_png(chart: alt.TopLevelMixin, *, scale: float = 2.0) -> bytes:
    """The chart as PNG bytes."""
    import vl_convert as vlc

    register_fonts()
    return vlc.vegalite_to_png(chart.to_dict(), scale=scale, allowed_base_urls=[])


def to_svg(chart: alt.TopLevelMixin) -> str:
    """The chart as an SVG document (text stays text; the viewer's fonts draw it)."""
    import vl_convert as vlc

    register_fonts()
    return vlc.vegalite_to_svg(chart.to_dict(), allowed_base_urls=[])


# ---------------------------------------------------------------------------------------------
# Helpers shared by the builders
# ---------------------------------------------------------------------------------------------


def cap(
    frame: pl.DataFrame,
    by: str,
    limit: int,
    *,
    noun: str,
    descending: bool = True,
    ends: tuple[str, str] = ("top", "bottom"),
    by_name: str | None = None,
) -> tuple[pl.DataFrame, str]:
    """Sort ``frame`` by ``by`` and keep the first and last ``limit // 2`` rows if it is longer.

    Args:
        frame: Rows to show.
        by: Column to sort on (nulls last).
        limit: Most rows to keep.
        noun: What a row is, for the note ("models", "pairs").
        descending: Sort order (best first for scores).
        ends: Words for the kept first and last rows in the note.
        by_name: How the note names ``by`` (default: the column name).

    Returns:
        The rows kept, in order, and a note saying what was left out ("" if nothing).

    >>> f = pl.DataFrame({"m": list("abcdef"), "v": [1, 2, 3, 4, 5, 6]})
    >>> kept, note = cap(f, "v", 4, noun="models")
    >>> kept["m"].to_list(), note
    (['f', 'e', 'b', 'a'], 'top 2 and bottom 2 of 6 models by v')
    """
    # Stable, so a caller's earlier order breaks ties (e.g. by mean among equal medians).
    ordered = frame.sort(by, descending=descending, nulls_last=True, maintain_order=True)
    if ordered.height <= limit:
        return ordered, ""
    head = limit // 2
    tail = limit - head
    kept = pl.concat([ordered.head(head), ordered.tail(tail)])
    return kept, f"{ends[0]} {head} and {ends[1]} {tail} of {ordered.height} {noun} by {by_name or by}"


def gap_order(labels: Sequence[str], total: int) -> list[str]:
    """Axis order for capped rows: a ``… N more …`` row between the top and the bottom halves.

    >>> gap_order(["a", "b", "y", "z"], 10)
    ['a', 'b', '… 6 more …', 'y', 'z']
    """
    labels = list(labels)
    if total <= len(labels):
        return labels
    half = len(labels) // 2
    return [*labels[:half], f"… {total - len(labels)} more …", *labels[half:]]


def _title(text: str, *notes: str) -> alt.TitleParams:
    subtitle = [n for n in notes if n]
    return alt.TitleParams(
        text, subtitle=subtitle or alt.Undefined, anchor="start", fontSize=15, subtitleFontSize=12, subtitleColor="#555"
    )


# Control characters and bidirectional overrides in names (which come from user files) could forge
# line breaks or make one name display as another: charts show them as U+FFFD instead.
_UNSAFE_CHARS = r"[\x00-\x1f\x7f\x{202a}-\x{202e}\x{2066}-\x{2069}]"


def _clean(frame: pl.DataFrame) -> pl.DataFrame:
    """NaN to null (JSON has no NaN), floats rounded (small specs), unsafe characters in names replaced.

    >>> _clean(pl.DataFrame({"model": ["a\u202eb"], "x": [float("nan")]})).row(0)
    ('a\ufffdb', None)
    """
    return frame.with_columns(
        pl.col(pl.Float64, pl.Float32).fill_nan(None).round(6),
        pl.col(pl.String).str.replace_all(_UNSAFE_CHARS, "\ufffd"),
    )


def _style(chart: Any) -> Any:
    return (
        chart.configure_axis(labelFontSize=11, titleFontSize=12, labelLimit=LABEL_LIMIT)
        .configure_view(stroke=None)
        .configure_legend(labelFontSize=11, titleFontSize=11, labelLimit=LABEL_LIMIT)
    )


def _category_axis(order: list[str], with_text: bool) -> alt.X:
    """Categories across the top of a heatmap; steeper labels when the cells are narrow."""
    return alt.X(
        "category:N",
        sort=order,
        title=None,
        axis=alt.Axis(orient="top", labelAngle=-45 if with_text else -90, labelLimit=160),
    )


def classify(frame: pl.DataFrame) -> pl.Expr:
    """Expression giving each comparison row its class (see ``CLASSES``) from direction/significant/comparable.

    A row with no direction (no difference could be computed) counts as not comparable.
    """
    comparable = pl.col("comparable").fill_null(True) if "comparable" in frame.columns else pl.lit(True)
    sig = pl.col("significant").fill_null(False)
    return (
        pl.when(~comparable | pl.col("direction").is_null())
        .then(pl.lit(CLASSES[5]))
        .when(pl.col("direction") == "no change")
        .then(pl.lit(CLASSES[4]))
        .when(pl.col("direction") == "degraded")
        .then(pl.when(sig).then(pl.lit(CLASSES[0])).otherwise(pl.lit(CLASSES[1])))
        .otherwise(pl.when(sig).then(pl.lit(CLASSES[3])).otherwise(pl.lit(CLASSES[2])))
        .alias("class")
    )


def pair_label(frame: pl.DataFrame) -> pl.Expr:
    """``baseline → candidate``, the name of a comparison on an axis or a panel."""
    return pl.concat_str([pl.col("baseline"), pl.lit(" → "), pl.col("candidate")]).alias("pair")


_class_scale = alt.Scale(domain=list(CLASSES), range=list(CLASS_COLOURS))


# ---------------------------------------------------------------------------------------------
# 1. Mean per model with interval and n
# ---------------------------------------------------------------------------------------------


def mean_by_model(frame: pl.DataFrame, *, metric: str = "score", limit: int = 50) -> alt.LayerChart:
    """Mean score per model as bars with the interval as error bars and ``n`` beside each bar.

    Args:
        frame: One row per model with ``model, mean, ci_low, ci_high, n`` (``stats.describe`` by model).
        metric: Metric name, for the title.
        limit: Most models drawn; beyond it the best and worst ``limit / 2`` are kept.

    Returns:
        A layered chart, models sorted by mean, best at the top.
    """
    kept, note = cap(_clean(frame), "mean", limit, noun="models")
    kept = kept.with_columns(pl.max_horizontal("mean", "ci_high").alias("label_at"))
    order = gap_order(kept["model"].to_list(), frame.height)
    y = alt.Y("model:N", sort=order, scale=alt.Scale(domain=order), title=None)
    base = alt.Chart(kept).encode(y=y)
    bars = base.mark_bar(color="#4c78a8", height={"band": 0.7}).encode(
        x=alt.X("mean:Q", title=f"mean {metric} (95 % interval)"),
        tooltip=[
            "model:N",
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
    chart = alt.layer(bars, err, text).properties(
        width=WIDTH, height=alt.Step(STEP), title=_title(f"Mean {metric} per model", note)
    )
    return _style(chart)


# ---------------------------------------------------------------------------------------------
# 2. Heatmap model x category
# ---------------------------------------------------------------------------------------------


def category_heatmap(
    frame: pl.DataFrame, *, metric: str = "score", max_models: int = 50, max_categories: int = 40
) -> alt.LayerChart:
    """Mean score per model (rows) and category (columns), with values in the cells when they fit.

    Args:
        frame: ``model, category, mean, n`` (``stats.describe`` by model and category).
        metric: Metric name, for the title.
        max_models: Most model rows (best and worst by their mean over categories kept).
        max_categories: Most category columns (those with the most scores kept).

    Returns:
        The heatmap; models sorted by mean, categories alphabetically.
    """
    frame = _clean(frame)
    per_model = frame.group_by("model").agg(pl.col("mean").mean().alias("overall"))
    models, model_note = cap(per_model, "overall", max_models, noun="models", by_name="mean over categories")
    per_cat = frame.group_by("category").agg(pl.col("n").sum().alias("scores"))
    cats = per_cat.sort("scores", descending=True).head(max_categories)
    cat_note = (
        f"{max_categories} of {per_cat.height} categories (most scores)" if per_cat.height > max_categories else ""
    )
    kept = frame.join(models.select("model"), on="model").join(cats.select("category"), on="category")
    model_order = gap_order(models["model"].to_list(), per_model.height)
    cat_order = sorted(cats["category"].to_list())
    with_text = len(cat_order) <= 36 and len(model_order) <= 60
    hi = kept["mean"].max() if kept.height else 1.0
    lo = kept["mean"].min() if kept.height else 0.0
    lo = min(0.0, float(lo)) if lo is not None else 0.0  # type: ignore[arg-type]
    hi = max(float(hi), lo + 1e-9) if hi is not None else 1.0  # type: ignore[arg-type]
    kept = kept.with_columns(
        # Dark cells get white text; the threshold sits where the scheme turns dark.
        (((pl.col("mean") - lo) / (hi - lo)) > 0.6).alias("dark"),
        pl.col("mean").round(2).alias("shown"),
    )
    base = alt.Chart(kept).encode(
        x=_category_axis(cat_order, with_text),
        y=alt.Y("model:N", sort=model_order, scale=alt.Scale(domain=model_order), title=None),
    )
    cells = base.mark_rect(stroke="white", strokeWidth=0.5).encode(
        color=alt.Color(
            "mean:Q", scale=alt.Scale(scheme="viridis", reverse=True, domain=[lo, hi]), title=f"mean {metric}"
        ),
        tooltip=["model:N", "category:N", alt.Tooltip("mean:Q", format=".3f"), "n:Q"],
    )
    layers: list[Any] = [cells]
    if with_text:
        layers.append(
            base.mark_text(fontSize=9).encode(
                text=alt.Text("shown:Q", format=".2f"),
                color=alt.condition("datum.dark", alt.value("white"), alt.value("#222")),
            )
        )
    step = 30 if with_text else STEP
    chart = alt.layer(*layers).properties(
        width=alt.Step(step),
        height=alt.Step(STEP),
        title=_title(f"Mean {metric} by model and category", model_note, cat_note, "blank: model not run on it"),
    )
    return _style(chart)


# ---------------------------------------------------------------------------------------------
# 3. Distribution per model
# ---------------------------------------------------------------------------------------------


def box_stats(con: duckdb.DuckDBPyConnection, metric: str, models: Sequence[str] | None = None) -> pl.DataFrame:
    """Five-number summaries per model, computed in DuckDB so no raw scores leave the database.

    Args:
        con: A connection from ``engine.warehouse.connect``.
        metric: The metric to summarise.
        models: Only these models (all if None).

    Returns:
        ``model, n, mean, min, q1, median, q3, max, lower, upper, binary``; ``lower``/``upper`` are
        the whisker ends (the most extreme scores within 1.5 IQR of the box); ``binary`` is true when
        every score is 0 or 1.
    """
    where = "metric = $metric" + (" AND list_contains($models, model)" if models is not None else "")
    params: dict[str, Any] = {"metric": metric}
    if models is not None:
        params["models"] = list(models)
    sql = f"""
        WITH s AS (SELECT model, score FROM scores WHERE {where}),
        q AS (
            SELECT model, count(*) AS n, avg(score) AS mean, min(score) AS min,
                   quantile_cont(score, 0.25) AS q1, median(score)::DOUBLE AS median,
                   quantile_cont(score, 0.75) AS q3, max(score) AS max,
                   bool_and(score = 0 OR score = 1) AS binary
            FROM s GROUP BY model
        )
        SELECT q.model AS model, any_value(q.n) AS n, any_value(q.mean) AS mean, any_value(q.min) AS min,
               any_value(q.q1) AS q1, any_value(q.median) AS median, any_value(q.q3) AS q3,
               any_value(q.max) AS max,
               min(s.score) FILTER (WHERE s.score >= q.q1 - 1.5 * (q.q3 - q.q1)) AS lower,
               max(s.score) FILTER (WHERE s.score <= q.q3 + 1.5 * (q.q3 - q.q1)) AS upper,
               any_value(q.binary) AS binary
        FROM q JOIN s USING (model)
        GROUP BY q.model
        ORDER BY q.model
    """
    return con.sql(sql, params=params).pl()


def distribution(frame: pl.DataFrame, *, metric: str = "score", limit: int = 50) -> alt.LayerChart:
    """Score distribution per model: a box plot, or for 0/1 scores the proportion with its interval.

    Args:
        frame: ``box_stats`` output; for 0/1 metrics also ``ci_low, ci_high`` (from ``stats.describe``).
        metric: Metric name, for the title.
        limit: Most models drawn (best and worst by median, or by proportion for 0/1 scores).

    Returns:
        The chart, models sorted best first.
    """
    frame = _clean(frame)
    binary = frame.height > 0 and bool(frame["binary"].all()) and "ci_low" in frame.columns
    if binary:
        kept, note = cap(frame, "mean", limit, noun="models")
        order = gap_order(kept["model"].to_list(), frame.height)
        base = alt.Chart(kept).encode(y=alt.Y("model:N", sort=order, scale=alt.Scale(domain=order), title=None))
        x_title = f"proportion {metric} = 1 (95 % interval)"
        marks = [
            base.mark_rule(color="#4c78a8", strokeWidth=2).encode(
                x=alt.X("ci_low:Q", title=x_title, scale=alt.Scale(domain=[0, 1])), x2="ci_high:Q"
            ),
            base.mark_point(filled=True, size=60, color="#1f3f66").encode(
                x="mean:Q", tooltip=["model:N", alt.Tooltip("mean:Q", format=".3f"), "n:Q"]
            ),
        ]
        title = _title(f"Proportion of {metric} = 1 per model", note)
    else:
        kept, note = cap(frame.sort("mean", descending=True, nulls_last=True), "median", limit, noun="models")
        order = gap_order(kept["model"].to_list(), frame.height)
        base = alt.Chart(kept).encode(y=alt.Y("model:N", sort=order, scale=alt.Scale(domain=order), title=None))
        marks = [
            base.mark_rule(color="#444").encode(
                # Padding keeps a median or box edge on 0 or 1 clear of the plot border.
                x=alt.X("lower:Q", title=f"{metric}", scale=alt.Scale(padding=8, nice=False)),
                x2="upper:Q",
            ),
            base.mark_bar(color="#9ecae1", stroke="#3a6d99", height={"band": 0.6}).encode(x="q1:Q", x2="q3:Q"),
            base.mark_tick(color="#08306b", thickness=2.5, size=STEP * 0.6).encode(x="median:Q"),
            base.mark_point(shape="diamond", filled=True, size=30, color="#d95f02").encode(
                x="mean:Q",
                tooltip=[
                    "model:N",
                    "n:Q",
                    alt.Tooltip("mean:Q", format=".3f"),
                    alt.Tooltip("median:Q", format=".3f"),
                    alt.Tooltip("q1:Q", format=".3f"),
                    alt.Tooltip("q3:Q", format=".3f"),
                ],
            ),
        ]
        title = _title(
            f"Distribution of {metric} per model",
            note,
            "box: quartiles; dark tick: median; orange diamond: mean; whiskers: 1.5 IQR",
        )
    chart = alt.layer(*marks).properties(width=WIDTH, height=alt.Step(STEP), title=title)
    return _style(chart)


# ---------------------------------------------------------------------------------------------
# 4. Degradation per pair
# ---------------------------------------------------------------------------------------------


def degradation(frame: pl.DataFrame, *, limit: int = 40) -> alt.LayerChart:
    """Difference (candidate - baseline) per pair with its interval, coloured by direction and significance.

    Args:
        frame: ``compare`` rows of one scope (usually ``overall``): ``baseline, candidate, metric, diff,
            ci_low, ci_high, direction, significant, comparable``.
        limit: Most pairs drawn (the most degraded and the most improved kept).

    Returns:
        The chart, most negative difference at the top.
    """
    # A pair with no metric in common has no difference to draw (its row says why in the tables).
    frame = frame.filter(pl.col("metric").is_not_null())
    frame = _clean(frame).with_columns(pair_label(frame), classify(frame))
    if frame["metric"].n_unique() > 1:
        frame = frame.with_columns(
            pl.concat_str([pl.col("pair"), pl.lit(" ["), pl.col("metric"), pl.lit("]")]).alias("pair")
        )
    kept, note = cap(
        frame, "diff", limit, noun="pairs", descending=False, ends=("lowest", "highest"), by_name="difference"
    )
    order = gap_order(kept["pair"].to_list(), frame.height)
    base = alt.Chart(kept).encode(y=alt.Y("pair:N", sort=order, scale=alt.Scale(domain=order), title=None))
    zero = alt.Chart(pl.DataFrame({"x": [0.0]})).mark_rule(color="#666", strokeDash=[4, 3]).encode(x="x:Q")
    colour = alt.Color("class:N", scale=_class_scale, title="direction (adjusted p)")
    err = base.mark_rule(strokeWidth=2).encode(
        x=alt.X("ci_low:Q", title="difference in mean, candidate − baseline (95 % interval)"),
        x2="ci_high:Q",
        color=colour,
    )
    point = base.mark_point(filled=True, size=60, opacity=1).encode(
        x="diff:Q",
        color=colour,
        tooltip=[
            "pair:N",
            "metric:N",
            alt.Tooltip("diff:Q", format=".3f"),
            alt.Tooltip("ci_low:Q", format=".3f"),
            alt.Tooltip("ci_high:Q", format=".3f"),
            alt.Tooltip("p_adjusted:Q", format=".4f"),
            "class:N",
        ],
    )
    chart = alt.layer(zero, err, point).properties(
        width=WIDTH, height=alt.Step(STEP), title=_title("Difference per pair (candidate − baseline)", note)
    )
    # Pair names are two model names: allow them more room than single names before cutting.
    return _style(chart).configure_axisY(labelLimit=LABEL_LIMIT + 120)


# ---------------------------------------------------------------------------------------------
# 5. Baseline vs candidate per category, one panel per pair
# ---------------------------------------------------------------------------------------------


def baseline_vs_candidate(frame: pl.DataFrame, *, max_pairs: int = 12, columns: int = 4) -> alt.FacetChart:
    """Candidate mean against baseline mean per category, with the diagonal, one panel per pair.

    Points below the diagonal are categories where the candidate scores lower.

    Args:
        frame: ``compare`` rows of scope ``category``: ``baseline, candidate, category, mean_baseline,
            mean_candidate, direction, significant``.
        max_pairs: Most panels (the pairs with the lowest mean difference kept).
        columns: Panels per row.

    Returns:
        A faceted chart.
    """
    frame = _clean(frame).with_columns(pair_label(frame), classify(frame))
    per_pair = frame.group_by("pair").agg((pl.col("mean_candidate") - pl.col("mean_baseline")).mean().alias("d"))
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
    values = pl.concat([kept["mean_baseline"], kept["mean_candidate"]]).drop_nulls()
    lo = min(0.0, float(values.min())) if values.len() else 0.0  # type: ignore[arg-type]
    hi = max(1.0, float(values.max())) if values.len() else 1.0  # type: ignore[arg-type]
    # A little room around the data so points on 0 or 1 are not cut by the axes.
    pad = 0.03 * (hi - lo)
    scale = alt.Scale(domain=[lo - pad, hi + pad], nice=False)
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
    points = (
        alt.Chart()
        .mark_point(filled=True, size=45, opacity=0.85)
        .encode(
            x=alt.X("mean_baseline:Q", scale=scale, title="baseline mean"),
            y=alt.Y("mean_candidate:Q", scale=scale, title="candidate mean"),
            color=alt.Color("class:N", scale=_class_scale, title="direction (adjusted p)"),
            tooltip=[
                "pair:N",
                "category:N",
                alt.Tooltip("mean_baseline:Q", format=".3f"),
                alt.Tooltip("mean_candidate:Q", format=".3f"),
                "class:N",
            ],
        )
    )
    order = pairs["pair"].to_list()
    chart = (
        alt.layer(diagonal, points, data=kept)
        .properties(width=170, height=170)
        # Pair names share long prefixes (one baseline, many candidates): two lines keep the part that differs.
        .facet(
            facet=alt.Facet(
                "pair:N",
                sort=order,
                title=None,
                header=alt.Header(
                    labelLimit=230,
                    labelFontSize=11,
                    labelExpr="[split(datum.value, ' → ')[0] + ' →', split(datum.value, ' → ')[1]]",
                ),
            ),
            columns=min(columns, max(1, len(order))),
        )
        .properties(title=_title("Baseline vs candidate per category (below the diagonal: candidate lower)", note))
    )
    return _style(chart)


# ---------------------------------------------------------------------------------------------
# 6. Relative change heatmap, category x pair
# ---------------------------------------------------------------------------------------------


def relative_change_heatmap(
    frame: pl.DataFrame, *, max_pairs: int = 30, max_categories: int = 40, clamp: float = 100.0
) -> alt.LayerChart:
    """Relative change (%) per category and pair, diverging colours centred on 0, NULL shown as ``n/a``.

    Args:
        frame: ``compare`` rows of scope ``category``: ``baseline, candidate, category, rel_change_pct``.
        max_pairs: Most pair columns (the most degraded and most improved by mean change kept).
        max_categories: Most category rows (those compared in the most pairs kept).
        clamp: Colours saturate at +-clamp %; the cell text keeps the true value.

    Returns:
        The heatmap.
    """
    frame = _clean(frame).with_columns(pair_label(frame))
    per_pair = frame.group_by("pair").agg(pl.col("rel_change_pct").mean().alias("mean change"))
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
    cats = per_cat.sort("pairs", descending=True).head(max_categories)
    cat_note = (
        f"{max_categories} of {per_cat.height} categories (in the most pairs)"
        if per_cat.height > max_categories
        else ""
    )
    kept = frame.join(pairs.select("pair"), on="pair").join(cats.select("category"), on="category")
    kept = kept.with_columns(
        pl.when(pl.col("rel_change_pct").is_null())
        .then(pl.lit("n/a"))
        .otherwise(pl.col("rel_change_pct").round(0).cast(pl.Int64).cast(pl.String) + "%")
        .alias("shown"),
        (pl.col("rel_change_pct").abs() > clamp * 0.7).fill_null(True).alias("dark"),
    )
    pair_order = gap_order(pairs["pair"].to_list(), per_pair.height)
    cat_order = sorted(cats["category"].to_list())
    with_text = len(cat_order) <= 20 and len(pair_order) <= 60
    # Pairs run down the side, where their long names read horizontally; categories across the top.
    base = alt.Chart(kept).encode(
        x=_category_axis(cat_order, with_text),
        y=alt.Y("pair:N", sort=pair_order, scale=alt.Scale(domain=pair_order), title=None),
    )
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
                "rel_change_pct:Q",
                scale=alt.Scale(scheme="redblue", domain=[-clamp, clamp], domainMid=0, clamp=True),
                title=["relative change %", f"(colour clamped at ±{clamp:g})"],
            ),
            tooltip=["pair:N", "category:N", alt.Tooltip("rel_change_pct:Q", format=".1f"), "shown:N"],
        )
    )
    layers: list[Any] = [missing, cells]
    if with_text:
        layers.append(
            base.mark_text(fontSize=9).encode(
                text="shown:N", color=alt.condition("datum.dark", alt.value("white"), alt.value("#222"))
            )
        )
    chart = alt.layer(*layers).properties(
        width=alt.Step(46 if with_text else STEP),
        height=alt.Step(STEP),
        title=_title(
            "Relative change of the mean per category (candidate vs baseline)",
            pair_note,
            cat_note,
            "dark grey (n/a): undefined, the baseline mean is 0; blank: pair not compared on that category",
        ),
    )
    return _style(chart)


# ---------------------------------------------------------------------------------------------
# 7. Score by quantization level per model base
# ---------------------------------------------------------------------------------------------


def quantization(
    frame: pl.DataFrame, *, metric: str = "score", max_bases: int = 15, columns: int = 5
) -> alt.FacetChart:
    """Mean score per quantization level (ordered by bits, widest first), one panel per model base.

    Args:
        frame: ``model_base, quantization, mean, ci_low, ci_high, n``; one row per model. Bases with a
            single level are dropped (nothing to compare); a NULL quantization is drawn as ``none``.
        metric: Metric name, for the title.
        max_bases: Most panels (the bases with the most levels, then the most scores, kept).
        columns: Panels per row.

    Returns:
        A faceted chart.
    """
    frame = _clean(frame).with_columns(pl.col("quantization").fill_null("none").alias("level"))
    levels = frame.group_by("model_base").agg(pl.col("level").n_unique().alias("levels"), pl.col("n").sum())
    levels = levels.filter(pl.col("levels") >= 2).sort(["levels", "n", "model_base"], descending=[True, True, False])
    note = f"{max_bases} of {levels.height} model bases (most levels)" if levels.height > max_bases else ""
    kept = frame.join(levels.head(max_bases).select("model_base"), on="model_base")
    order = sorted(set(kept["level"].to_list()), key=lambda q: (-precision_rank(None if q == "none" else q), q))
    x = alt.X("level:N", sort=order, title=None, axis=alt.Axis(labelAngle=-45))
    base = alt.Chart().encode(x=x)
    line = base.mark_line(color="#9ab", strokeWidth=1.5).encode(y="mean:Q")
    err = base.mark_rule(color="#3a6d99", strokeWidth=1.5).encode(y="ci_low:Q", y2="ci_high:Q")
    point = base.mark_point(filled=True, size=50, color="#1f3f66").encode(
        y=alt.Y("mean:Q", title=f"mean {metric} (95 % interval)"),
        tooltip=[
            "model_base:N",
            "level:N",
            alt.Tooltip("mean:Q", format=".3f"),
            alt.Tooltip("ci_low:Q", format=".3f"),
            alt.Tooltip("ci_high:Q", format=".3f"),
            "n:Q",
        ],
    )
    bases = levels.head(max_bases)["model_base"].to_list()
    chart = (
        alt.layer(line, err, point, data=kept)
        .properties(width=max(120, 34 * len(order)), height=150)
        .facet(
            facet=alt.Facet(
                "model_base:N", sort=bases, title=None, header=alt.Header(labelFontSize=11, labelLimit=220)
            ),
            columns=min(columns, max(1, len(bases))),
        )
        .properties(
            title=_title(
                f"Mean {metric} by quantization level, per model base",
                note,
                "levels widest first; 'none': no quantization in the model name",
            )
        )
    )
    return _style(chart)
