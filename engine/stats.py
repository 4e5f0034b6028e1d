"""Descriptive statistics with confidence intervals, per model, category or benchmark.

The unit is the item: each model's answers to one item (``ITEM_KEY``, per metric: several epochs
or runs) are averaged first, and ``n``, mean, std, sem, median, min, max and the interval are over
those per-item means (``n_answers`` counts the rows behind them). ``per_answer`` gives statistics
over the score rows instead. Groups are aggregated in DuckDB; the intervals are then computed in
NumPy/SciPy on whole columns, so a thousand groups cost one ``stdtrit`` call.

Interval methods (``ci_method``), chosen per group with ``method="auto"``:

- ``wilson``: Wilson score interval for groups whose values are all 0 or 1 (k = values at 1);
- ``t-logit``: for the other groups of a metric whose scores all lie in [0, 1] (averaged epochs,
  partial credit), Student t on the logit scale (delta method: ``logit(mean) +- t * sem /
  (mean (1 - mean))``, mapped back), so the interval stays inside (0, 1);
- ``t``: Student t on the standard error of the mean, ``n - 1`` degrees of freedom, otherwise;
- ``cluster-t`` / ``cluster-t-logit``: with ``cluster=COLUMN``, statistics over the rows with a
  cluster-robust standard error and ``clusters - 1`` degrees of freedom; 0/1 rows take the logit
  form, and a mean of exactly 0 or 1 a Wilson interval over the clusters. Clustering on
  ``item_id``, ``task`` or ``category`` uses the full item hierarchy (``_CLUSTER_KEYS``); a NULL in
  the named column makes a cluster of one.

No interval, and a ``note`` saying why, for a single item (or cluster) and for a group with no
variance away from the edge of [0, 1] (a zero-width interval would claim certainty the data do not
have). ``method="t"`` never uses Wilson except at the edge (mean 0 or 1), where t has no width;
``method="wilson"`` gives Wilson for 0/1 groups and nothing for the others.

>>> import numpy as np
>>> lo, hi = t_interval(np.array([0.5]), np.array([0.1]), np.array([9]), 0.95)
>>> round(float(lo[0]), 4), round(float(hi[0]), 4)
(0.2738, 0.7262)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from scipy import special

from evalhouse.errors import AnalysisError
from evalhouse.schema import ITEM_KEY, SCORES, metric_label_sql
from evalhouse.significance import wilson

if TYPE_CHECKING:
    import duckdb

BY_KEYS = ("model", "category", "benchmark")
CI_METHODS = ("auto", "t", "wilson")
# Clustering on a level of the item hierarchy means that level's full key.
_CLUSTER_KEYS = {"item_id": ITEM_KEY, "task": ITEM_KEY[:3], "category": ITEM_KEY[:2], "benchmark": ITEM_KEY[:1]}
DESCRIBE_COLUMNS = ("n", "n_answers", "mean", "std", "sem", "median", "min", "max", "ci_low", "ci_high", "ci_method",
                    "note")  # fmt: skip
# Key expressions over the scores view; NULL benchmarks are shown as `unknown`, as in the views. Raw
# columns are qualified: `benchmark` is also the name of the (coalesced) grouping key.
_METRIC = metric_label_sql("scores")
_KEY_SQL = {
    "model": "scores.model",
    "category": "scores.category",
    "benchmark": "coalesce(scores.benchmark, 'unknown')",
}
# Columns a describe may cluster on or filter by.
_SCORE_COLUMNS = frozenset(SCORES.names) - {"score"}

Where = Mapping[str, object]


def quote(identifier: str) -> str:
    """A SQL identifier, double-quoted.

    >>> quote('odd"name')
    '"odd""name"'
    """
    return '"' + identifier.replace('"', '""') + '"'


@contextlib.contextmanager
def quiet(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Turn DuckDB's progress bar off for a while: it writes to stdout, where CSV or JSON output goes."""
    from evalhouse.spark import SparkConnection

    if isinstance(con, SparkConnection):  # Spark's goes to stderr, and evalhouse's sessions turn it off
        yield
        return
    (before,) = con.sql("SELECT current_setting('enable_progress_bar')").fetchall()[0]
    con.execute("SET enable_progress_bar = false")
    try:
        yield
    finally:
        con.execute(f"SET enable_progress_bar = {'true' if before else 'false'}")


def where_sql(where: Where | None, prefix: str = "w") -> tuple[str, dict[str, object]]:
    """A ``WHERE`` clause (``AND``-ed equality or membership tests) and its bound parameters.

    Values are bound, never pasted; column names are checked against the ``scores`` columns.

    >>> where_sql({"model": ["a", "b"], "metric": "acc"})
    ('WHERE list_contains($w0, "model") AND "metric" = $w1', {'w0': ['a', 'b'], 'w1': 'acc'})
    """
    if not where:
        return "", {}
    parts: list[str] = []
    params: dict[str, object] = {}
    for i, (column, value) in enumerate(where.items()):
        if column not in _SCORE_COLUMNS:
            raise AnalysisError(f"cannot filter on {column!r}: not a column of scores")
        name = f"{prefix}{i}"
        if isinstance(value, (list, tuple, set, frozenset)):
            parts.append(f"list_contains(${name}, {quote(column)})")
            params[name] = list(value)
        else:
            parts.append(f"{quote(column)} = ${name}")
            params[name] = value
    return "WHERE " + " AND ".join(parts), params


def describe(
    con: duckdb.DuckDBPyConnection,
    by: Sequence[str],
    *,
    level: float = 0.95,
    method: str = "auto",
    cluster: str | None = None,
    per_answer: bool = False,
    where: Where | None = None,
) -> pl.DataFrame:
    """Score statistics with a confidence interval per group of ``by`` keys and metric.

    Args:
        con: a connection from ``evalhouse.warehouse.connect``.
        by: grouping keys, any of ``model``, ``category``, ``benchmark`` (``metric`` is always added).
        level: confidence level of the intervals, in (0, 1).
        method: ``auto``, ``t`` or ``wilson`` (see the module docstring).
        cluster: a ``scores`` column whose values group the answers: cluster-robust standard errors
            over the rows (``item_id``, ``task`` and ``category`` mean their full item hierarchy).
        per_answer: statistics over score rows instead of per-item means (implied by ``cluster``).
        where: ``{column: value or [values]}`` filters on ``scores`` columns.

    Returns:
        by-keys, metric, n, n_answers, mean, std, sem, median, min, max, ci_low, ci_high, ci_method,
        note; sorted by the keys. ``n`` counts items (rows with ``per_answer`` or ``cluster``),
        ``n_answers`` the score rows behind them; ``note`` says why a group has no interval.

    >>> import duckdb
    >>> con = duckdb.connect()
    >>> _ = con.execute("CREATE VIEW scores AS SELECT 'm' AS model, NULL AS benchmark, 'c' AS category, "
    ...     "NULL AS task, item_id, NULL AS filter, 'acc' AS metric, score "
    ...     "FROM (VALUES ('q1', 1.0), ('q1', 0.0), ('q2', 1.0), ('q3', 1.0)) v(item_id, score)")
    >>> describe(con, ["model"]).select("n", "n_answers", "mean", "ci_method").row(0)
    (3, 4, 0.8333333333333334, 't-logit')
    """
    keys = _check_by(by)
    if not 0 < level < 1:
        raise AnalysisError(f"confidence level must be between 0 and 1, not {level}")
    if method not in CI_METHODS:
        raise AnalysisError(f"unknown interval method {method!r}; choose one of {', '.join(CI_METHODS)}")
    if cluster is not None and cluster not in _SCORE_COLUMNS:
        raise AnalysisError(f"cannot cluster on {cluster!r}: not a column of scores")
    if cluster is not None and method == "wilson":
        raise AnalysisError(
            "a Wilson interval treats answers as independent; it cannot be clustered",
            hint="use --interval auto or t with --cluster",
        )
    with quiet(con):
        frame = group_stats(con, keys, per_answer=per_answer, cluster=cluster, where=where)
    unit = "answer" if per_answer or cluster is not None else "item"
    return add_intervals(frame, level=level, method=method, unit=unit).select(*keys, "metric", *DESCRIBE_COLUMNS)


def _check_by(by: Sequence[str]) -> list[str]:
    by = [by] if isinstance(by, str) else list(by)
    unknown = [k for k in by if k not in BY_KEYS]
    if unknown or len(set(by)) != len(by):
        raise AnalysisError(f"cannot group by {', '.join(by)}; choose from {', '.join(BY_KEYS)}")
    return [k for k in BY_KEYS if k in by]


def group_stats(
    con: duckdb.DuckDBPyConnection,
    keys: Sequence[str],
    *,
    per_answer: bool = False,
    cluster: str | None = None,
    where: Where | None = None,
) -> pl.DataFrame:
    """Per-group aggregates from DuckDB: n, n_answers, mean, std, median, min, max, successes, binary, bounded.

    By default each model's answers to one item (``ITEM_KEY``, per metric) are averaged first and
    the aggregates are over those per-item means; rows with a NULL ``item_id`` are items of their
    own. With ``per_answer`` or ``cluster`` they are over the score rows. ``binary``: every value
    is 0 or 1; ``bounded``: every score of the metric (in the whole selection) lies in [0, 1].

    With ``cluster``, also ``n_clusters`` and ``ss_clusters`` (the sum over clusters of the squared
    sum of residuals from the group mean), the ingredients of the clustered standard error.
    """
    cond, params = where_sql(where)
    group = ", ".join([*keys, "metric"])
    select_keys = "".join(f"{_KEY_SQL[k]} AS {k}, " for k in keys)
    rows = f"SELECT {select_keys}{_METRIC} AS metric, scores.score AS score, 1 AS answers FROM scores"
    if per_answer or cluster is not None:
        units = f"{rows} {cond}"
    else:
        # Grouped on the raw columns (the by-keys are functions of them); rows with a NULL item_id
        # bypass the GROUP BY, which would merge them, as items of their own.
        item = ", ".join(f"scores.{quote(c)}" for c in (*ITEM_KEY, "model", "metric"))
        also = "AND" if cond else "WHERE"
        units = f"""
            SELECT {select_keys}{_METRIC} AS metric, avg(scores.score) AS score, count(*) AS answers
            FROM scores {cond} {also} scores.item_id IS NOT NULL GROUP BY {item}
            UNION ALL
            {rows} {cond} {also} scores.item_id IS NULL
        """
    sql = f"""
        WITH u AS ({units})
        SELECT {group}, count(*) AS n, sum(answers)::BIGINT AS n_answers, avg(score) AS mean,
               stddev_samp(score) AS std, median(score)::DOUBLE AS median, min(score) AS min, max(score) AS max,
               sum(score) AS successes, bool_and(score = 0 OR score = 1) AS binary,
               bool_and(score >= 0 AND score <= 1) AS bounded
        FROM u
        GROUP BY {group}
        ORDER BY {group}
    """
    frame = con.sql(sql, params=params).pl()
    frame = frame.with_columns(pl.col("bounded").all().over("metric"))
    if cluster is None:
        return frame
    columns = _CLUSTER_KEYS.get(cluster, (cluster,))
    cluster_cols = "".join(f"scores.{quote(c)} AS _k{i}, " for i, c in enumerate(columns))
    named = f"_k{columns.index(cluster)}"  # the column asked for; NULL there makes a cluster of one
    ks = ", ".join(f"_k{i}" for i in range(len(columns)))
    # Residuals from the group mean summed per cluster, then squared and summed per group: stable,
    # unlike expanding sum(x)^2 terms.
    sql = f"""
        WITH s AS (SELECT {select_keys}{cluster_cols}{_METRIC} AS metric, scores.score AS score FROM scores {cond}),
        r AS (SELECT {group}, {ks}, score - avg(score) OVER (PARTITION BY {group}) AS resid FROM s),
        c AS (
            SELECT {group}, sum(resid) AS u FROM r WHERE {named} IS NOT NULL GROUP BY {group}, {ks}
            UNION ALL
            SELECT {group}, resid AS u FROM r WHERE {named} IS NULL
        )
        SELECT {group}, count(*) AS n_clusters, sum(u * u) AS ss_clusters FROM c GROUP BY {group}
    """
    clusters = con.sql(sql, params=params).pl()
    return frame.join(clusters, on=[*keys, "metric"], how="left", nulls_equal=True)


def _t_quantile(df: np.ndarray, level: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return special.stdtrit(np.where(np.asarray(df) >= 1, df, np.nan), 1 - (1 - level) / 2)


def t_interval(mean: np.ndarray, sem: np.ndarray, df: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Student t interval ``mean +- t(level, df) * sem``; NaN where ``df < 1`` (n = 1)."""
    q = _t_quantile(df, level)
    return mean - q * sem, mean + q * sem


def logit_t_interval(mean: np.ndarray, sem: np.ndarray, df: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Student t interval on the logit scale, mapped back: inside (0, 1) for a mean inside (0, 1).

    Delta method: ``logit(mean) +- t(level, df) * sem / (mean (1 - mean))``, through ``expit``.
    NaN where ``df < 1`` or the mean is 0 or 1.

    >>> lo, hi = logit_t_interval(np.array([0.1]), np.array([0.1]), np.array([9]), 0.95)
    >>> round(float(lo[0]), 4), round(float(hi[0]), 4)
    (0.0089, 0.5784)
    """
    q = _t_quantile(df, level)
    mean = np.asarray(mean, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        inside = (mean > 0) & (mean < 1)
        centre = np.where(inside, special.logit(mean), np.nan)
        half = q * sem / (mean * (1 - mean))
        return special.expit(centre - half), special.expit(centre + half)


def clustered_sem(n: np.ndarray, n_clusters: np.ndarray, ss_clusters: np.ndarray) -> np.ndarray:
    """Cluster-robust standard error of a mean: ``sqrt(G / (G - 1) * sum_g u_g^2) / n``.

    ``u_g`` is the sum of residuals in cluster ``g``; with one item per cluster this is the usual
    ``std / sqrt(n)``. NaN with fewer than two clusters.

    >>> round(float(clustered_sem(np.array([4]), np.array([2]), np.array([0.5]))[0]), 4)
    0.25
    """
    g = np.asarray(n_clusters, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(g >= 2, np.sqrt(g / (g - 1) * np.asarray(ss_clusters, dtype=np.float64)) / n, np.nan)


def add_intervals(
    frame: pl.DataFrame, *, level: float = 0.95, method: str = "auto", unit: str = "item"
) -> pl.DataFrame:
    """Add ``sem``, ``ci_low``, ``ci_high``, ``ci_method`` and ``note`` to a frame of group aggregates.

    Args:
        frame: columns n, mean, std, successes, binary, bounded (and n_clusters, ss_clusters when
            clustered), as returned by :func:`group_stats`.
        level: confidence level.
        method: ``auto``, ``t`` or ``wilson`` (see the module docstring).
        unit: what ``n`` counts, for the notes: ``item`` or ``answer``.

    >>> f = pl.DataFrame({"n": [10, 4, 6, 7], "mean": [0.3, 2.0, 0.45, 0.5], "std": [0.483, 1.0, 0.2, 0.0],
    ...                   "successes": [3.0, 8.0, 2.7, 3.5], "binary": [True, False, False, False],
    ...                   "bounded": [True, False, True, True]})
    >>> for row in add_intervals(f).select("ci_method", "note").rows():
    ...     print(row)
    ('wilson', None)
    ('t', None)
    ('t-logit', None)
    (None, 'no variance among 7 items: no interval')
    """
    n = frame["n"].to_numpy().astype(np.float64)
    mean = frame["mean"].to_numpy().astype(np.float64)
    std = frame["std"].fill_null(np.nan).to_numpy().astype(np.float64)
    binary = frame["binary"].fill_null(False).to_numpy()
    bounded = frame["bounded"].fill_null(False).to_numpy()
    clustered = "n_clusters" in frame.columns
    if clustered:
        g = frame["n_clusters"].to_numpy().astype(np.float64)
        sem = clustered_sem(n, g, frame["ss_clusters"].to_numpy())
        df = g - 1
        # At the edge Wilson counts clusters, not rows: 500 zeros in 5 clusters are not 500 draws.
        w_k, w_n = mean * g, g
    else:
        with np.errstate(invalid="ignore"):
            sem = std / np.sqrt(n)
        df = n - 1
        w_k, w_n = frame["successes"].to_numpy().astype(np.float64), n
    edge = bounded & ((mean == 0) | (mean == 1))
    # Zero within rounding: cluster residuals of a constant are ~1e-17, not 0.
    flat = sem <= 1e-12 * np.maximum(1.0, np.abs(mean))
    why = np.select([n < 2, df < 1], ["one", "one-cluster"], "")  # why there is no interval ("": none)
    if method == "wilson":
        why = np.where((why == "") & ~binary, "not-binary", why)
        use_wilson = why == ""
    else:
        use_wilson = (why == "") & (edge | (binary & (method == "auto") & (not clustered)))
        why = np.where((why == "") & ~use_wilson & flat, "flat", why)
        why = np.where(use_wilson & edge & clustered, "edge", why)  # not a failure: says what Wilson counted
    use_logit = (why == "") & ~use_wilson & bounded
    use_t = (why == "") & ~use_wilson & ~bounded
    w_low, w_high = wilson(w_k, w_n, level)
    l_low, l_high = logit_t_interval(mean, sem, df, level)
    t_low, t_high = t_interval(mean, sem, df, level)
    choices = [use_wilson, use_logit, use_t]
    t_name = "cluster-t" if clustered else "t"
    low = np.select(choices, [w_low, l_low, t_low], np.nan)
    high = np.select(choices, [w_high, l_high, t_high], np.nan)
    ci_method = np.where(np.isnan(low), "", np.select(choices, ["wilson", f"{t_name}-logit", t_name], ""))
    out = frame.with_columns(
        pl.Series("sem", sem, dtype=pl.Float64),
        pl.Series("ci_low", low, dtype=pl.Float64),
        pl.Series("ci_high", high, dtype=pl.Float64),
        pl.Series("ci_method", ci_method, dtype=pl.String),
        pl.Series("_why", why, dtype=pl.String),
    )
    count = pl.col("n_clusters" if clustered else "n")
    texts = {
        "one": pl.lit(f"one {unit}: no interval"),
        "one-cluster": pl.lit("one cluster: no interval"),
        "flat": pl.format("no variance between the {} clusters: no interval", count)
        if clustered
        else pl.format(f"no variance among {{}} {unit}s: no interval", count),
        "not-binary": pl.lit("scores not all 0 or 1: no Wilson interval"),
        "edge": pl.format(f"all {unit}s at {{}}: Wilson over {{}} clusters", pl.col("mean").cast(pl.Int64), count),
    }
    note: pl.Expr = pl.lit(None, dtype=pl.String)
    for code, text in texts.items():
        note = pl.when(pl.col("_why") == code).then(text).otherwise(note)
    return out.with_columns(
        pl.col("sem", "ci_low", "ci_high").fill_nan(None),
        pl.when(pl.col("ci_method") != "").then(pl.col("ci_method")).alias("ci_method"),
        note.alias("note"),
    ).drop("_why")
