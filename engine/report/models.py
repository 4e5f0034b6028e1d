"""The report's sections that put models side by side: means, distributions, categories and
quantization, each on the items the models share (engine/report/like_for_like.py), saying which.

What a model answered (its coverage) is shown apart, without a mean: a mean over other items is not
a comparison.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from evalhouse import charts
from evalhouse.escape import shorten
from evalhouse.report.blocks import Block, Cell, Code, Figure, Heading, Para, Table
from evalhouse.report.like_for_like import like_for_like
from evalhouse.report.numbers import ci, fmt
from evalhouse.report.sections import LABEL_CHARS, capped

if TYPE_CHECKING:
    import duckdb


def build(
    con: duckdb.DuckDBPyConnection, metric: str, by_model: pl.DataFrame
) -> tuple[list[Block], dict[str, pl.DataFrame]]:
    """The blocks of the models and categories sections, and the tables to write as CSV."""
    lfl = like_for_like(con, metric=metric)
    label = shorten(metric, LABEL_CHARS)  # titles are laid out: their size must not follow the name's
    blocks: list[Block] = [
        Heading("Models side by side", 2, anchor="models"),
        Para(
            [
                f"Means of {label} per benchmark, each model on the items every charted model of that benchmark "
                "answered (repeated answers averaged per item first), so the bars compare the models, not their "
                f"item sets. Basis: {lfl.basis}.",
            ]
        ),
    ]
    means = lfl.means.filter(pl.col("metric") == metric)
    if means.height:
        blocks.append(_means_table(means))
        chart = charts.mean_by_model(means, metric=label, basis=lfl.basis)
        caption = f"Mean {label} per model with its 95 % interval, per benchmark"
        blocks.append(Figure("mean_by_model", chart, caption, note=lfl.basis))
    boxes = lfl.boxes.filter(pl.col("metric") == metric)
    if boxes.height:
        chart = charts.distribution(boxes, metric=label, basis=lfl.basis)
        caption = f"Distribution of item scores ({label}) per model, per benchmark"
        blocks.append(Figure("distribution", chart, caption, note=lfl.basis))
    cats = lfl.categories.filter(pl.col("metric") == metric)
    if cats.height:
        blocks.append(Heading("Categories", 3, anchor="categories"))
        blocks.append(Figure("category_heatmap", charts.category_heatmap(cats, metric=label, basis=lfl.basis),
                             f"Mean {label} by model and category", note=lfl.basis))  # fmt: skip
    quant = lfl.quantization.filter(pl.col("metric") == metric)
    if (
        quant.height
        and quant.group_by("model_base").agg(pl.col("model").n_unique()).filter(pl.col("model") >= 2).height
    ):
        blocks.append(Heading("Quantization", 3, anchor="quantization"))
        blocks.append(Figure("quantization", charts.quantization(quant, metric=label, basis=lfl.quantization_basis),
                             f"Mean {label} by quantization level", note=lfl.quantization_basis))  # fmt: skip
    left = lfl.left_out.filter(pl.col("metric") == metric)
    if left.height:
        blocks.append(
            Para(
                [f"Left out of the side-by-side charts ({left.height}; they answered too few of the shared items): "]
                + [x for r in left.head(10).iter_rows(named=True)
                   for x in (Code(r["model"]), f" ({r['group']}: {r['items']:,} items), ")]
                + ["…" if left.height > 10 else ""],
                kind="note",
            )
        )  # fmt: skip
    blocks.append(Heading("Coverage", 3, anchor="coverage"))
    blocks.append(
        Para(["Items each model answered, per metric (no means: those are compared above, on shared items)."])
    )
    coverage = by_model.select("model", "metric", "n").sort("metric", "model")
    blocks.append(
        capped(Table(["model", "metric", "items"], [[Code(m), Code(k), f"{n:,}"] for m, k, n in coverage.iter_rows()]))
    )
    tables = {"like_for_like_means": lfl.means, "like_for_like_categories": lfl.categories, "left_out": lfl.left_out,
              "coverage": by_model}  # fmt: skip
    return blocks, tables


def _means_table(means: pl.DataFrame) -> Table:
    rows: list[list[Cell]] = [
        [Code(r["benchmark"] or "unknown"), Code(r["model"]), f"{r['n']:,}", fmt(r["mean"]), ci(r)]
        for r in means.sort("benchmark", "mean", descending=[False, True], nulls_last=True).iter_rows(named=True)
    ]
    return capped(Table(["benchmark", "model", "shared items", "mean", "95 % CI"], rows))
