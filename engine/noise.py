"""The run-to-run noise floor: how much the same model's mean moves between repeated runs.

A *replicate* is one run of a model, or one epoch of a run that has several (seeds, batch sizes,
backends, repeated runs, inspect epochs). Items are those of ``evalhouse.schema.ITEM_KEY`` within a
metric; an item counts when two or more replicates of the model answered it (and its content hash,
where the sources give one, is the same in all of them).

Per model, metric and scope (``overall``, each benchmark, each category of a benchmark):

- ``sd_run``: the standard deviation of the model's mean over the scope's items from one set of
  replicates to the next. Each replicate's answers are taken as deviations from the item's mean
  over its replicates (so which items a replicate answered does not matter, only how it did on
  them); with ``S_r`` the sum of replicate ``r``'s deviations and ``R_r`` the number of replicates of
  its items, ``sd_run^2 = sum_r S_r^2 / (R_r - 1) / N^2`` over the scope's ``N`` items. When every
  replicate answered the same items this is exactly the sample variance of the replicates' means;
  when replicates cover different parts of a scope (one run per benchmark), each part counts by its
  share of the items. The interval is the chi-square interval of a standard deviation on
  ``sum_r (1 - 1/R_r)`` degrees of freedom (``R - 1`` for ``R`` replicates of the same items).
- ``flip_rate`` (0/1 scores only): the share of (item, pair of replicates) whose two scores
  differ, over every pair of replicates of every item; its Wilson interval counts each item once
  (pairs of replicates share their items, so they are not independent evidence).
- ``noise_floor``: ``z(1 - alpha/2) * sqrt(2) * sd_run``, the difference two single runs of the
  model stay within with probability ``1 - alpha`` (assuming a normal mean).

``evalhouse.compare`` puts the baseline's ``sd_run`` beside every difference, scaled to the number of
replicates averaged on each side, and flags differences inside it.

>>> import duckdb; con = duckdb.connect()
>>> _ = con.execute("CREATE TABLE s AS SELECT * FROM (VALUES ('m', 'r1', 'q1', 1.0), ('m', 'r1', 'q2', 1.0), "
...     "('m', 'r2', 'q1', 0.0), ('m', 'r2', 'q2', 1.0)) t(model, run_id, item_id, score)")
>>> _ = con.execute("CREATE VIEW v AS SELECT *, 'score' AS metric, NULL::VARCHAR AS filter, NULL::VARCHAR AS "
...     "benchmark, 'c' AS category, NULL::VARCHAR AS task, 0 AS epoch, NULL::VARCHAR AS item_hash FROM s")
>>> r = noise(con, source="v").filter(scope="overall").row(0, named=True)
>>> r["n_runs"], r["n_pairs"], r["n_items"], r["sd_run"], r["flip_rate"]
(2, 1, 2, 0.3535533905932738, 0.5)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from scipy import special

from evalhouse.compare.sql import GROUPING_SETS, SCOPE_KEY, UNKNOWN
from evalhouse.errors import AnalysisError
from evalhouse.schema import metric_label_sql
from evalhouse.significance import wilson

if TYPE_CHECKING:
    import duckdb

# Scopes the `noise` command reports by, and the key columns each shows.
BY = {"overall": [], "benchmark": ["benchmark"], "category": ["benchmark", "category"]}
COLUMNS = (
    "model", "metric", "scope", "benchmark", "category", "n_runs", "n_pairs", "n_items", "mean", "sd_run", "sd_low",
    "sd_high", "noise_floor", "flip_rate", "flip_low", "flip_high", "note",
)  # fmt: skip

_FILTER = "CASE WHEN s.filter IS NULL OR s.filter IN ('', 'none') THEN NULL ELSE s.filter END"


def noise_sql(source: str, where: str = "true", *, labelled: bool = False) -> str:
    """Per model, metric and scope: the sums the noise statistics are made of.

    Args:
        source: a relation with the columns of the ``scores`` view (``scores``, or compare's aliased
            ``_eh_scores``); read as ``s``.
        where: a condition on its rows (compare's live runs and models), SQL over ``s``' columns.
        labelled: ``source``'s metric is already the label analyses show (compare's ``_eh_scores``:
            the metric with its filter, or its alias), not the stored metric name.
    """
    metric = "s.metric" if labelled else metric_label_sql("s")
    return f"""
    WITH base AS (
        SELECT s.model AS model, {metric} AS metric, coalesce(s.benchmark, '{UNKNOWN}') AS bk,
               s.category AS category, hash(s.task, s.item_id, {_FILTER}) AS item, s.run_id AS run_id,
               coalesce(s.epoch, 0) AS epoch, s.score AS score, s.item_hash AS item_hash
        FROM {source} AS s
        WHERE s.item_id IS NOT NULL AND ({where})
    ), reps AS (
        -- One score per item and replicate (a run, or an epoch of it).
        SELECT model, metric, bk, category, item, run_id, epoch, avg(score) AS s,
               min(item_hash) AS h_min, max(item_hash) AS h_max
        FROM base
        GROUP BY model, metric, bk, category, item, run_id, epoch
    ), items AS (
        -- Items with two replicates or more, and one content hash (else the dataset changed between them).
        SELECT model, metric, bk, category, item, avg(s) AS s_bar, count(*) AS r_i, sum(s) AS ones,
               bool_and(s = 0 OR s = 1) AS is01
        FROM reps
        GROUP BY model, metric, bk, category, item
        HAVING count(*) >= 2 AND (max(h_max) IS NULL OR min(h_min) = max(h_max))
    ), kept AS (
        SELECT r.model AS model, r.metric AS metric, r.bk AS bk, r.category AS category, r.run_id AS run_id,
               r.epoch AS epoch, r.s - i.s_bar AS e, i.r_i AS r_i
        FROM reps AS r
        JOIN items AS i ON i.model = r.model AND i.metric = r.metric AND i.bk = r.bk
                           AND i.category IS NOT DISTINCT FROM r.category AND i.item = r.item
    ), per_rep AS (
        SELECT model, metric, {SCOPE_KEY}, run_id, epoch, sum(e) AS dev, avg(r_i) AS r_avg
        FROM kept
        GROUP BY {GROUPING_SETS.format("model, run_id, epoch")}
    ), per_item AS (
        SELECT model, metric, {SCOPE_KEY}, count(*) AS n_items, avg(s_bar) AS mean, bool_and(is01) AS binary,
               -- Pairs of replicates whose scores differ: ones * zeros, out of r (r - 1) / 2 pairs.
               sum(ones * (r_i - ones)) AS flips, sum(r_i * (r_i - 1) / 2) AS pairs
        FROM items
        GROUP BY {GROUPING_SETS.format("model")}
    )
    SELECT r.model AS model, r.metric AS metric, r.scope AS scope, r.key AS key, r.bench AS bench,
           count(*) AS n_runs, round(sum((r_avg - 1) / 2))::BIGINT AS n_pairs, any_value(i.n_items) AS n_items,
           any_value(i.mean) AS mean, sum(dev * dev / (r_avg - 1)) / pow(any_value(i.n_items), 2) AS var_run,
           sum(1 - 1 / r_avg) AS df, any_value(i.binary) AS binary, any_value(i.flips) AS flips,
           any_value(i.pairs) AS pairs
    FROM per_rep AS r
    JOIN per_item AS i ON i.model = r.model AND i.metric = r.metric AND i.scope = r.scope
                          AND i.key IS NOT DISTINCT FROM r.key AND i.bench = r.bench
    GROUP BY r.model, r.metric, r.scope, r.key, r.bench
    """


def estimates(sums: pl.DataFrame, alpha: float = 0.05) -> pl.DataFrame:
    """The noise statistics from the sums of :func:`noise_sql` (intervals at ``1 - alpha``).

    >>> sums = pl.DataFrame({"n_runs": [5], "n_items": [100], "var_run": [0.0004], "df": [4.0], "binary": [True],
    ...                      "flips": [60.0], "pairs": [1000.0]})
    >>> r = estimates(sums).row(0, named=True)
    >>> round(r["sd_run"], 4), round(r["sd_low"], 4), round(r["sd_high"], 4), round(r["flip_rate"], 3)
    (0.02, 0.012, 0.0575, 0.06)
    """
    var = sums["var_run"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    df = sums["df"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    n = sums["n_items"].cast(pl.Float64).to_numpy()
    mean = sums["mean"].cast(pl.Float64).fill_null(np.nan).to_numpy() if "mean" in sums.columns else np.ones(len(var))
    with np.errstate(invalid="ignore", divide="ignore"):
        # Variance below this share of the squared scale is rounding dust (sums of deviations), not spread.
        sd = np.where(var > 1e-12 * np.maximum(1.0, mean * mean), np.sqrt(np.maximum(var, 0)), 0.0)
        # chdtri(df, p) is the chi-square quantile with upper tail p. No spread seen: no interval (a
        # zero-width one would claim what a few identical runs cannot show).
        low = np.where(sd > 0, sd * np.sqrt(df / special.chdtri(df, alpha / 2)), np.nan)
        high = np.where(sd > 0, sd * np.sqrt(df / special.chdtri(df, 1 - alpha / 2)), np.nan)
        rate = np.where(sums["binary"].fill_null(False).to_numpy(), sums["flips"].to_numpy() / sums["pairs"].to_numpy(),
                        np.nan)  # fmt: skip
    flip_low, flip_high = wilson(rate * n, n, 1 - alpha)
    z = float(special.ndtri(1 - alpha / 2))
    out = {
        "sd_run": sd, "sd_low": low, "sd_high": high, "noise_floor": z * np.sqrt(2) * sd,
        "flip_rate": rate, "flip_low": flip_low, "flip_high": flip_high,
    }  # fmt: skip
    return sums.with_columns([pl.Series(k, np.where(np.isfinite(v), v, np.nan)).fill_nan(None) for k, v in out.items()])


def noise(
    con: duckdb.DuckDBPyConnection,
    *,
    models: Sequence[str] = (),
    metric: str | None = None,
    alpha: float = 0.05,
    source: str = "scores",
) -> pl.DataFrame:
    """The noise floor of every model with repeated runs, per metric and scope.

    Args:
        con: a connection with the warehouse's views (``evalhouse.warehouse.connect``).
        models: glob patterns (case-insensitive) of the models to report; default all.
        metric: only this metric (as compare labels it: ``acc`` or ``exact_match,strict-match``).
        alpha: the intervals are at ``1 - alpha``.
        source: the relation to read (the ``scores`` view).

    Returns:
        One row per model, metric and scope with :data:`COLUMNS` (``benchmark`` and ``category``
        NULL where the scope has none); no rows for models without two replicates of an item.
    """
    from evalhouse.pairs import match_patterns

    names = [m for (m,) in con.sql(f"SELECT DISTINCT model FROM {source} ORDER BY 1").fetchall()]
    chosen = match_patterns(names, models) if models else names
    if not chosen:
        raise AnalysisError(f"no model matches {', '.join(models)}", hint="`evalhouse models` lists the names")
    con.register("_eh_noise_models", pl.DataFrame({"model": chosen}).to_arrow())
    try:
        where = "s.model IN (SELECT model FROM _eh_noise_models)"
        sql = f"SELECT * FROM ({noise_sql(source, where)}) WHERE $metric IS NULL OR metric = $metric"
        sums = con.sql(sql, params={"metric": metric}).pl()
    finally:
        con.unregister("_eh_noise_models")
    out = estimates(sums, alpha).with_columns(
        pl.when(pl.col("scope") != "overall").then(pl.col("bench")).alias("benchmark"),
        pl.when(pl.col("scope") == "category").then(pl.col("key")).alias("category"),
        pl.when(pl.col("sd_run") == 0)
        .then(pl.lit("no difference between the runs' means: no interval"))
        .when(pl.col("df") < 2)
        .then(pl.lit("few replicates: a wide interval"))
        .when(~pl.col("binary").fill_null(False))
        .then(pl.lit("scores not all 0 or 1: no flip rate"))
        .alias("note"),
    )
    scope_rank = pl.col("scope").replace_strict({"overall": 0, "benchmark": 1, "category": 2}, return_dtype=pl.Int8)
    return out.sort(["model", "metric", scope_rank, "benchmark", "category"], nulls_last=True).select(COLUMNS)


def for_scope(frame: pl.DataFrame, by: str) -> pl.DataFrame:
    """The rows of one scope of :func:`noise`, with the columns that scope shows.

    >>> for_scope(pl.DataFrame({c: [] for c in COLUMNS}), "benchmark").columns[:4]
    ['model', 'metric', 'benchmark', 'n_runs']
    """
    if by not in BY:
        raise AnalysisError(f"cannot report noise by {by!r}", hint=f"choose one of {', '.join(BY)}")
    hidden = {"scope", *(c for c in ("benchmark", "category") if c not in BY[by])}
    return frame.filter(pl.col("scope") == by).select([c for c in COLUMNS if c not in hidden])
