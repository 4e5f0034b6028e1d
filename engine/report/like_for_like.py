"""Like for like: the data behind every chart that puts models side by side, on items they all answered.

A mean over 7,800 items drawn beside a mean over 2,000 other items compares the items, not the
models. So the charts of a report read their numbers from here, where every model beside another
is measured on the same items. The rule, per metric and benchmark:

1. The item is the unit (``evalhouse.schema.ITEM_KEY``): a model's repeated answers to an item
   (epochs, reruns) are averaged first. A row without an ``item_id`` is an item of its own, which
   no other model can share.
2. Keep the models whose item count is at least ``min_share`` (half) of the largest one's.
3. While three or more models are kept and they share fewer than ``min_share`` of the items they
   would share without one of them, leave that one out (it answered other items), the one whose
   absence gains most first. Of two models that share no item, the one with fewer is left out.
4. Every mean, interval, category mean and box is over the items all kept models answered.

For quantization the groups are model bases (all benchmarks pooled): a base model usually ran far
more benchmarks than its quantized variants, so only rules 1, 3 and 4 apply there (every level
of the base is a candidate, whatever its count).

Intervals come from ``evalhouse.stats.add_intervals``, as ``evalhouse summary`` computes them: Wilson
for 0/1 item scores, t on the logit scale for other scores within [0, 1], t otherwise.

>>> import duckdb
>>> con = duckdb.connect()
>>> _ = con.execute("CREATE VIEW scores AS SELECT * FROM (VALUES "
...     "('a', 'x', '1', 1.0), ('a', 'x', '2', 0.0), ('a', 'x', '3', 1.0), ('b', 'x', '1', 0.0), "
...     "('b', 'x', '2', 0.0)) v(model, benchmark, item_id, score), "
...     "(SELECT 'acc' AS metric, 'c' AS category, NULL AS task, NULL AS filter)")
>>> _ = con.execute("CREATE VIEW models AS SELECT DISTINCT model, model AS model_base, "
...     "NULL AS quantization FROM scores")
>>> lfl = like_for_like(con)
>>> lfl.means.select("model", "n", "mean").rows()
[('a', 2, 0.5), ('b', 2, 0.0)]
>>> lfl.basis
'per benchmark, on the items every charted model answered'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from evalhouse.schema import ITEM_KEY, metric_label_sql
from evalhouse.stats import DESCRIBE_COLUMNS, add_intervals, quiet
from evalhouse.tabular import shorten

if TYPE_CHECKING:
    import duckdb

MIN_SHARE = 0.5
# Left-out models named in the one-line basis (all are in ``LikeForLike.left_out``).
NAMED_IN_BASIS = 4
_ITEM_COLUMNS = [k for k in ITEM_KEY if k != "benchmark"]
_STAT_COLUMNS = [c for c in DESCRIBE_COLUMNS if c != "sem"]


@dataclass(frozen=True)
class LikeForLike:
    """The like-for-like frames of a warehouse (one row set per metric; ``metric`` in every frame).

    Attributes:
        common: per ``metric, benchmark``: ``models`` (list, kept), ``n_models``, ``items`` (the
            common item set's size), ``largest`` (items of the model with the most).
        left_out: ``metric, scope`` (``benchmark`` or ``model_base``), ``group`` (its name), ``model``,
            ``items`` (the model's items there), ``reason``.
        means: per ``metric, benchmark, model``: ``n`` (items), ``n_answers``, ``mean``, ``std``,
            ``median``, ``min``, ``max``, ``ci_low``, ``ci_high`` (95 %), ``ci_method``, ``note``.
        categories: the same per ``metric, benchmark, category, model``, on the benchmark's items.
        items: the item means behind them: ``metric, benchmark, category, task, item_id, filter,
            model, score, answers``.
        boxes: per ``metric, benchmark, model``: ``n, mean, min, q1, median, q3, max, lower, upper,
            binary, ci_low, ci_high`` (``lower``/``upper``: whisker ends within 1.5 IQR).
        quantization: per ``metric, model_base, quantization, model``: the statistics of ``means``
            on the items every kept model of the base answered (bases with two models or more).
        basis: one line saying which items the per-benchmark frames use and who was left out,
            e.g. ``per benchmark, on the items every charted model answered; left out: x (mmlu: 3 items)``.
        quantization_basis: the same for ``quantization``.
    """

    common: pl.DataFrame
    left_out: pl.DataFrame
    means: pl.DataFrame
    categories: pl.DataFrame
    items: pl.DataFrame
    boxes: pl.DataFrame
    quantization: pl.DataFrame
    basis: str
    quantization_basis: str


def like_for_like(
    con: duckdb.DuckDBPyConnection,
    *,
    metric: str | Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    level: float = 0.95,
    min_share: float = MIN_SHARE,
) -> LikeForLike:
    """Per benchmark, the items every charted model answered, and the statistics on them.

    Args:
        con: A connection from ``evalhouse.warehouse.connect`` (reads the ``scores`` and ``models`` views).
        metric: The metric(s) to compute, as summaries name them (``exact_match,strict-match``); all
            if None.
        models: The charted models (all if None).
        level: Confidence level of the intervals.
        min_share: The share of the largest item count (rule 2) and of the shared items (rule 3)
            below which a model is left out.

    Returns:
        A :class:`LikeForLike`.
    """
    metrics = [metric] if isinstance(metric, str) else metric
    with quiet(con):
        units = _item_means(con, metrics, models)
    bounded = units.group_by("metric").agg(pl.col("bounded").all())
    counts = units.group_by("metric", "benchmark", "model").agg(pl.len().alias("items"))
    kept, left_big = _enough_items(counts, min_share)
    kept, left_apart = _shared(units.join(kept, on=["metric", "benchmark", "model"]), ["benchmark"], min_share)
    left = [left_big.with_columns(pl.lit("benchmark").alias("scope")), left_apart]
    chosen = _on_common_items(units, kept, ["benchmark"])
    items = chosen.select("metric", "benchmark", *_ITEM_COLUMNS, "model", "score", "answers").sort(
        "metric", "benchmark", "model", *_ITEM_COLUMNS, nulls_last=True
    )
    means = _stats(chosen, ["metric", "benchmark", "model"], bounded, level)
    categories = _stats(chosen, ["metric", "benchmark", "category", "model"], bounded, level)
    common = (
        kept.group_by("metric", "benchmark")
        .agg(pl.col("model").sort().alias("models"), pl.len().alias("n_models"))
        .join(
            means.group_by("metric", "benchmark").agg(pl.col("n").max().alias("items")),
            on=["metric", "benchmark"],
            how="left",
        )
        .join(
            counts.group_by("metric", "benchmark").agg(pl.col("items").max().alias("largest")),
            on=["metric", "benchmark"],
        )
        .with_columns(pl.col("items").fill_null(0), pl.col("n_models", "largest").cast(pl.Int64))
        .sort("metric", "benchmark")
    )  # fmt: skip
    quant, left_quant = _quantization(con, units, bounded, level, min_share)
    left_out = pl.concat([*left, left_quant], how="diagonal_relaxed").select(
        "metric", "scope", "group", "model", "items", "reason"
    ).sort("metric", "scope", "group", "model")  # fmt: skip
    return LikeForLike(
        common=common,
        left_out=left_out,
        means=means,
        categories=categories,
        items=items,
        boxes=_boxes(items, means),
        quantization=quant,
        basis=_basis(left_out, "benchmark"),
        quantization_basis=_basis(left_out, "model_base"),
    )


def _item_means(
    con: duckdb.DuckDBPyConnection, metrics: Sequence[str] | None, models: Sequence[str] | None
) -> pl.DataFrame:
    """One row per model and item (its answers averaged), with ``item``: an integer naming the item.

    Rows without an ``item_id`` each get an item number of their own (negative), so they never match.
    """
    label = metric_label_sql("scores")
    conds, params = [], {}
    if metrics is not None:
        conds.append(f"list_contains($metrics, {label})")
        params["metrics"] = list(metrics)
    if models is not None:
        conds.append("list_contains($models, scores.model)")
        params["models"] = list(models)
    where = ("WHERE " + " AND ".join(conds)) if conds else ""
    keys = ", ".join(["metric", *ITEM_KEY, "model"])
    sql = f"""
        WITH s AS (
            SELECT {label} AS metric, scores.benchmark AS benchmark, scores.category AS category,
                   scores.task AS task, scores.item_id AS item_id, scores.filter AS filter,
                   scores.model AS model, scores.score AS score
            FROM scores {where}
        ),
        u AS (
            SELECT {keys}, avg(score) AS score, count(*) AS answers,
                   bool_and(score >= 0 AND score <= 1) AS bounded
            FROM s WHERE item_id IS NOT NULL GROUP BY {keys}
            UNION ALL
            SELECT {keys}, score, 1 AS answers, score >= 0 AND score <= 1 AS bounded
            FROM s WHERE item_id IS NULL
        )
        SELECT metric, coalesce(benchmark, 'unknown') AS benchmark, category, task, item_id, filter, model,
               score, answers::BIGINT AS answers, bounded,
               -- row_number's window ordered (Spark wants one) as dense_rank's: one sort serves both.
               CASE WHEN item_id IS NULL
                    THEN -row_number() OVER (ORDER BY metric, benchmark, category, task, item_id, filter)
                    ELSE dense_rank() OVER (ORDER BY metric, benchmark, category, task, item_id, filter) END AS item
        FROM u
    """
    return con.sql(sql, params=params).pl()


def _enough_items(counts: pl.DataFrame, min_share: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rule 2: the models with at least ``min_share`` of the largest item count of their benchmark."""
    group = ["metric", "benchmark"]
    ranked = counts.sort(["items", "model"], descending=[True, False]).with_columns(
        pl.col("items").max().over(group).alias("largest"), pl.col("model").first().over(group).alias("leader")
    )
    enough = pl.col("items") >= min_share * pl.col("largest")
    left = ranked.filter(~enough).with_columns(
        pl.col("benchmark").alias("group"),
        pl.format(
            "{} of {} items (the most, {}'s): fewer than {}",
            "items",
            "largest",
            pl.col("leader").map_elements(lambda m: shorten(m, 40), return_dtype=pl.String),
            pl.lit(_share_words(min_share)),
        ).alias("reason"),
    )
    return ranked.filter(enough).select(*group, "model"), left


def _share_words(share: float) -> str:
    return "half" if share == 0.5 else f"{share:.0%}"


def _shared(units: pl.DataFrame, group: list[str], min_share: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rule 3 per group: leave out models that cut the shared items below ``min_share`` of what the
    others share. Returns the kept ``metric, *group, model`` and the left-out rows."""
    keys = ["metric", *group]
    kept: list[dict[str, object]] = []
    left: list[dict[str, object]] = []
    for key, rows in units.group_by(keys, maintain_order=True):
        names, dropped = _drop_apart(rows.select("model", "item"), min_share)
        where = dict(zip(keys, key, strict=True))
        kept += [{**where, "model": m} for m in names]
        for m, items, reason in dropped:
            left.append({"metric": where["metric"], "scope": group[0], "group": where[group[0]], "model": m,
                         "items": items, "reason": reason})  # fmt: skip
    schema = {**dict.fromkeys(keys, pl.String), "model": pl.String}
    left_schema = {"metric": pl.String, "scope": pl.String, "group": pl.String, "model": pl.String,
                   "items": pl.Int64, "reason": pl.String}  # fmt: skip
    return pl.DataFrame(kept, schema=schema), pl.DataFrame(left, schema=left_schema)


def _drop_apart(rows: pl.DataFrame, min_share: float) -> tuple[list[str], list[tuple[str, int, str]]]:
    """The models of one group that stay, and those left out with their item count and why.

    >>> rows = pl.DataFrame({"model": ["a"] * 10 + ["b"] * 6 + ["c"] * 6,
    ...                      "item": [*range(10), *range(6), *range(4, 10)]})
    >>> _drop_apart(rows, 0.5)
    (['a', 'b'], [('c', 6, 'answered other items: the others share 6 without it, 2 with it')])
    """
    names = sorted(rows["model"].unique().to_list())
    if len(names) < 2:
        return names, []
    model_idx = rows["model"].replace_strict({m: i for i, m in enumerate(names)}, return_dtype=pl.Int64).to_numpy()
    item_idx = rows["item"].rank("dense").cast(pl.Int64).to_numpy() - 1
    answered = np.zeros((int(item_idx.max()) + 1, len(names)), dtype=bool)
    answered[item_idx, model_idx] = True
    kept = list(range(len(names)))
    dropped: list[tuple[str, int, str]] = []
    while len(kept) >= 2:
        sub = answered[:, kept]
        cover = sub.sum(axis=1)
        common = int((cover == len(kept)).sum())
        # Items all but one kept model answered: without that one they would be shared too.
        without = common + ((cover == len(kept) - 1)[:, None] & ~sub).sum(axis=0)
        own = sub.sum(axis=0)
        # The absence that gains most; among equals the model with fewer items, then the later name.
        j = max(range(len(kept)), key=lambda i: (int(without[i]), -int(own[i]), names[kept[i]]))
        # Two models that share items are compared on those, however few: a quantized variant run
        # on 7 of its base's 77 items is still set beside the base on those 7.
        if common >= min_share * int(without[j]) or (len(kept) == 2 and common > 0):
            break
        gone = kept.pop(j)
        reason = (
            f"shares no item with {shorten(names[kept[0]], 40)}"
            if len(kept) == 1
            else f"answered other items: the others share {int(without[j]):,} without it, {common:,} with it"
        )
        dropped.append((names[gone], int(own[j]), reason))
    return [names[i] for i in kept], dropped


def _on_common_items(units: pl.DataFrame, kept: pl.DataFrame, group: list[str]) -> pl.DataFrame:
    """The item means of the kept models on the items every kept model of their group answered."""
    keys = ["metric", *group]
    rows = units.join(kept, on=[*keys, "model"])
    size = kept.group_by(keys).agg(pl.len().alias("_models"))
    shared = rows.group_by([*keys, "item"]).agg(pl.len().alias("_answered")).join(size, on=keys)
    shared = shared.filter(pl.col("_answered") == pl.col("_models")).select(*keys, "item")
    return rows.join(shared, on=[*keys, "item"])


def _stats(rows: pl.DataFrame, by: list[str], bounded: pl.DataFrame, level: float) -> pl.DataFrame:
    """``describe``'s statistics of item means per group, with its intervals."""
    score = pl.col("score")
    frame = (
        rows.group_by(by)
        .agg(
            pl.len().alias("n"),
            pl.col("answers").sum().alias("n_answers"),
            score.mean().alias("mean"),
            score.std().alias("std"),
            score.median().alias("median"),
            score.min().alias("min"),
            score.max().alias("max"),
            score.sum().alias("successes"),
            ((score == 0) | (score == 1)).all().alias("binary"),
        )
        .join(bounded, on="metric", how="left")
        .sort(by, nulls_last=True)
    )
    out = add_intervals(frame, level=level, method="auto", unit="item").select(*by, *_STAT_COLUMNS)
    return out.with_columns(pl.col("n", "n_answers").cast(pl.Int64))


def _boxes(items: pl.DataFrame, means: pl.DataFrame) -> pl.DataFrame:
    """Five numbers and whisker ends (within 1.5 IQR) of the item means per benchmark and model."""
    by = ["metric", "benchmark", "model"]
    score = pl.col("score")
    quart = items.group_by(by).agg(
        pl.len().cast(pl.Int64).alias("n"),
        score.mean().alias("mean"),
        score.min().alias("min"),
        score.quantile(0.25, interpolation="linear").alias("q1"),
        score.median().alias("median"),
        score.quantile(0.75, interpolation="linear").alias("q3"),
        score.max().alias("max"),
        ((score == 0) | (score == 1)).all().alias("binary"),
    )
    iqr = pl.col("q3") - pl.col("q1")
    whiskers = (
        items.join(quart.select(*by, "q1", "q3"), on=by)
        .group_by(by)
        .agg(
            score.filter(score >= pl.col("q1") - 1.5 * iqr).min().alias("lower"),
            score.filter(score <= pl.col("q3") + 1.5 * iqr).max().alias("upper"),
        )
    )
    return (
        quart.join(whiskers, on=by)
        .join(means.select(*by, "ci_low", "ci_high"), on=by, how="left")
        .select(*by, "n", "mean", "min", "q1", "median", "q3", "max", "lower", "upper", "binary", "ci_low", "ci_high")
        .sort(by)
    )


def _quantization(
    con: duckdb.DuckDBPyConnection, units: pl.DataFrame, bounded: pl.DataFrame, level: float, min_share: float
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per model base, its models on the items all of them answered (rules 1, 3, 4)."""
    names = con.sql("SELECT model, model_base, quantization FROM models").pl()
    based = units.join(names, on="model")
    several = based.group_by("metric", "model_base").agg(pl.col("model").n_unique().alias("k")).filter(pl.col("k") > 1)
    based = based.join(several.select("metric", "model_base"), on=["metric", "model_base"])
    kept, left = _shared(based, ["model_base"], min_share)
    rows = _on_common_items(based, kept, ["model_base"])
    stats = _stats(rows, ["metric", "model_base", "model"], bounded, level)
    stats = stats.join(names.select("model", "quantization"), on="model", how="left")
    # A base left with one model has nothing to set it beside.
    stats = stats.filter(pl.len().over("metric", "model_base") > 1)
    return stats.select("metric", "model_base", "quantization", "model", *_STAT_COLUMNS), left


def _basis(left_out: pl.DataFrame, scope: str) -> str:
    """The one line a chart's subtitle carries: which items, and who was left out."""
    if scope == "benchmark":
        text = "per benchmark, on the items every charted model answered"
    else:
        text = "per model base, on the items all its charted models answered"
    left_out = left_out.filter(pl.col("scope") == scope)
    if left_out.height == 0:
        return text
    # One mention per model and group, whatever the metric.
    seen = left_out.unique(["group", "model"], keep="first", maintain_order=True)
    named = [
        f"{shorten(r['model'], 40)} ({shorten(r['group'], 30)}: {r['items']:,} items)"
        for r in seen.head(NAMED_IN_BASIS).iter_rows(named=True)
    ]
    more = f" and {seen.height - NAMED_IN_BASIS} more" if seen.height > NAMED_IN_BASIS else ""
    return f"{text}; left out: {', '.join(named)}{more}"
