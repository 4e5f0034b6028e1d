"""What every chart builder shares: sizes, titles, styles, capping, label truncation, comparison classes.

Names come from user files and can be anything: 100 KB long, Japanese, with control characters.
Builders pass them through :func:`with_labels` first, which puts a short, unique label in the name's
column (what axes and headers draw) and the name itself, capped, in ``<column>_full`` (what tooltips
show). Rendering time then does not depend on name length: vl-convert measures every label it draws.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import altair as alt
import polars as pl

from evalhouse.tabular import display_width, shorten

# The report's HTML column is 1100 px: a chart is about this wide, labels and legend included.
WIDTH = 1000
STEP = 18  # px per row of a bar or heatmap chart
NAME_WIDTH = 40  # display columns a model, category or benchmark name is cut to (middle ellipsis)
LABEL_LIMIT = 260  # px: a backstop; labels are already short
FULL_LIMIT = 300  # characters of a full name kept for its tooltip
TEXT_COLOUR = "#222"

# The classes a comparison falls into, in legend order: red and blue (apart for red-green
# colour-blind readers), pale when not significant, grey for "no change". Non-comparable rows are
# never drawn (``split_comparable``); the class stays for tables and callers that list them.
CLASSES = (
    "degraded, significant",
    "degraded, not significant",
    "improved, not significant",
    "improved, significant",
    "no change",
    "not comparable",
)
CLASS_COLOURS = ("#c0392b", "#f0a58f", "#9ec3e6", "#1f5fa8", "#6e6e6e", "#c4c4c4")
# What drawn rows can be: every class but "not comparable" (never drawn), so the legend omits it.
CLASS_SCALE = alt.Scale(domain=list(CLASSES[:5]), range=list(CLASS_COLOURS[:5]))

# Control characters and bidirectional overrides in text (which comes from user files) could forge
# line breaks or make one name display as another: charts show them as U+FFFD.
_UNSAFE_CHARS = r"[\x00-\x1f\x7f\x{202a}-\x{202e}\x{2066}-\x{2069}]"


def short_labels(names: Sequence[str | None], width: int = NAME_WIDTH) -> dict[str, str]:
    """A short label for every distinct name: cut in the middle to ``width`` display columns, unique.

    Names that fit keep their text (control characters shown escaped, as in terminal tables); names
    cut to the same label get ``~2``, ``~3``... so two models never share one row of a chart.

    Args:
        names: The names (None is skipped).
        width: Display columns (a CJK character takes two).

    Returns:
        ``{name: label}``.

    >>> short_labels(["basemodel-instruct-v1-q4_k_m", "basemodel-instruct-v2-q4_k_m", "x"], 16)
    {'x': 'x', 'basemodel-instruct-v1-q4_k_m': 'basemode…-q4_k_m', 'basemodel-instruct-v2-q4_k_m': 'basemod…q4_k_m~2'}
    """
    distinct = list(dict.fromkeys(n for n in names if n is not None))
    labels: dict[str, str] = {}
    used: set[str] = set()
    # Names that fit first, so a cut name never takes a label that is another name's own text.
    for name in sorted(distinct, key=lambda n: display_width(n) > width):
        label = shorten(name, width)
        k = 2
        while label in used:
            label = shorten(name, width - len(f"~{k}")) + f"~{k}"
            k += 1
        used.add(label)
        labels[name] = label
    return labels


def with_labels(frame: pl.DataFrame, columns: Mapping[str, int]) -> pl.DataFrame:
    """``frame`` with each named column replaced by short labels and its full text in ``<column>_full``.

    Args:
        frame: Rows to draw.
        columns: ``{column: display width}``; columns missing from the frame are skipped.

    Returns:
        The frame; ``<column>_full`` holds the name capped at ``FULL_LIMIT`` characters, for tooltips.

    >>> with_labels(pl.DataFrame({"model": ["a" * 50]}), {"model": 10}).row(0)
    ('aaaaa…aaaa', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')
    """
    out = frame
    for column, width in columns.items():
        if column not in frame.columns:
            continue
        mapping = short_labels(frame[column].cast(pl.String).to_list(), width)
        full = pl.col(column).cast(pl.String)
        out = out.with_columns(
            pl.when(full.str.len_chars() > FULL_LIMIT)
            .then(full.str.slice(0, FULL_LIMIT) + "…")
            .otherwise(full)
            .str.replace_all(_UNSAFE_CHARS, "\ufffd")
            .alias(f"{column}_full"),
            full.replace_strict(mapping, default=None, return_dtype=pl.String).alias(column),
        )
    return out


def clean(frame: pl.DataFrame) -> pl.DataFrame:
    """NaN to null (JSON has no NaN), floats rounded (small specs), unsafe characters in text replaced.

    >>> clean(pl.DataFrame({"model": ["a\u202eb"], "x": [float("nan")]})).row(0)
    ('a\ufffdb', None)
    """
    return frame.with_columns(
        pl.col(pl.Float64, pl.Float32).fill_nan(None).round(6),
        pl.col(pl.String).str.replace_all(_UNSAFE_CHARS, "\ufffd"),
    )


def text_px(labels: Sequence[str], font: float = 11, limit: int = LABEL_LIMIT) -> int:
    """About how many pixels the widest of ``labels`` takes at ``font`` px (sans-serif; CJK counted wide).

    Used to size a plot so that the chart, labels included, fills ``WIDTH``.

    >>> text_px(["model-a", "日本語モデル"])
    85
    """
    widest = max((display_width(label) for label in labels), default=0)
    return min(limit, round(widest * font * 0.58) + 8)


def one_metric(frame: pl.DataFrame) -> None:
    """Raise ``ValueError`` when ``frame`` holds rows of more than one metric (charts never mix them)."""
    if "metric" in frame.columns and frame["metric"].drop_nulls().n_unique() > 1:
        found = ", ".join(sorted(frame["metric"].drop_nulls().unique().to_list())[:5])
        raise ValueError(f"one metric per chart, got several ({found}): filter the frame first")


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


def listing(names: Sequence[str], most: int = 3) -> str:
    """A few names for a note, and how many more.

    >>> listing(["a", "b", "c", "d", "e"])
    'a, b, c and 2 more'
    """
    shown = ", ".join(names[:most])
    return f"{shown} and {len(names) - most} more" if len(names) > most else shown


def title(text: str, *notes: str) -> alt.TitleParams:
    """A chart title, anchored left, with the non-empty ``notes`` as subtitle lines."""
    subtitle = [n for n in notes if n]
    return alt.TitleParams(
        text, subtitle=subtitle or alt.Undefined, anchor="start", fontSize=15, subtitleFontSize=12, subtitleColor="#555"
    )


def style(chart: Any) -> Any:
    """The shared look: axis and legend fonts, no frame around the plot."""
    return (
        chart.configure_axis(labelFontSize=11, titleFontSize=12, labelLimit=LABEL_LIMIT)
        .configure_view(stroke=None)
        .configure_legend(labelFontSize=11, titleFontSize=11, labelLimit=LABEL_LIMIT)
        .configure_header(labelLimit=LABEL_LIMIT)
    )


def panels(charts: Sequence[Any]) -> Any:
    """One panel, or several stacked (each with its own rows); style the result once."""
    if len(charts) == 1:
        return charts[0]
    return alt.vconcat(*charts, spacing=28).resolve_scale(y="independent", color="shared")


def heat_cells(columns: int, label_px: int = LABEL_LIMIT, *, widest: int = 46, narrowest: int = 18) -> tuple[int, int]:
    """Cell width (px) and value font size for a heatmap of ``columns`` columns that fills the page.

    Args:
        columns: Columns drawn.
        label_px: Room the row labels take.
        widest, narrowest: Bounds of the cell width.

    >>> heat_cells(5), heat_cells(50)
    ((46, 10), (18, 7))
    """
    width = max(narrowest, min(widest, (WIDTH - label_px - 120) // max(1, columns)))
    font = 10 if width >= 34 else 9 if width >= 28 else 8 if width >= 22 else 7
    return width, font


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
    """``baseline → candidate``, the name of a comparison on an axis or a panel (short labels in, short out)."""
    return pl.concat_str([pl.col("baseline"), pl.lit(" → "), pl.col("candidate")]).alias("pair")


def pair_labels(frame: pl.DataFrame, width: int = 30) -> pl.DataFrame:
    """``frame`` with a short ``pair`` label (each side cut to ``width``) and the full one in ``pair_full``."""
    full = pl.concat_str([pl.col("baseline_full"), pl.lit(" → "), pl.col("candidate_full")]).alias("pair_full")
    labelled = with_labels(frame, {"baseline": width, "candidate": width})
    return labelled.with_columns(pair_label(labelled), full)


def split_comparable(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Comparison rows that can be drawn (comparable, with a difference) and the rest, to list apart.

    Args:
        frame: ``compare`` rows (``comparable``, ``diff``, ``metric`` used).

    Returns:
        ``(drawn, apart)``; together they are the input rows.

    >>> f = pl.DataFrame({"metric": ["acc", "acc", None], "diff": [0.1, -0.2, None],
    ...                   "comparable": [True, False, False]})
    >>> [x.height for x in split_comparable(f)]
    [1, 2]
    """
    ok = pl.col("diff").is_not_null() & pl.col("metric").is_not_null()
    if "comparable" in frame.columns:
        ok = ok & pl.col("comparable").fill_null(True)
    ok = ok & pl.col("diff").is_not_nan()
    flagged = frame.with_columns(ok.fill_null(False).alias("_drawn"))
    return flagged.filter("_drawn").drop("_drawn"), flagged.filter(~pl.col("_drawn")).drop("_drawn")
