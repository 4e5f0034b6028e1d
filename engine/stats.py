"""Descriptive statistics with confidence intervals, per model, category or benchmark.

Groups are aggregated in DuckDB (one ``GROUP BY`` over the ``scores`` view); the intervals are
then computed in NumPy/SciPy on whole columns, so a thousand groups cost one ``t.ppf`` call.

Interval methods (``ci_method``):

- ``t``: Student t on the standard error of the mean, ``n - 1`` degrees of freedom;
- ``wilson``: Wilson score interval, for groups whose scores are all 0 or 1 (``method="auto"``
  picks it for them);
- ``cluster-t``: with ``cluster=COLUMN``, a cluster-robust standard error of the mean (items that
  come in groups, e.g. several answers per ``item_id`` or questions per ``task``) and Student t
  with ``clusters - 1`` degrees of freedom. Rows whose cluster value is NULL are clusters of one.

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

from engine.errors import AnalysisError
from engine.schema import SCORES
from engine.significance import wilson

if TYPE_CHECKING:
    import duckdb

BY_KEYS = ("model", "category", "benchmark")
CI_METHODS = ("auto", "t", "wilson")
# Key expressions over the scores view; NULL benchmarks are shown as `unknown`, as in the views.
_KEY_SQL = {"model": "model", "category": "category", "benchmark": "coalesce(benchmark, 'unknown')"}
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
    where: Where | None = None,
) -> pl.DataFrame:
    """Score statistics with a confidence interval per group of ``by`` keys and metric.

    Args:
        con: a connection from ``engine.warehouse.connect``.
        by: grouping keys, any of ``model``, ``category``, ``benchmark`` (``metric`` is always added).
        level: confidence level of the intervals, in (0, 1).
        method: ``auto`` (Wilson for all-0/1 groups, t otherwise), ``t``, or ``wilson`` (0/1 groups
            only; other groups get no interval).
        cluster: a ``scores`` column whose values group the items: clustered standard errors.
        where: ``{column: value or [values]}`` filters on ``scores`` columns.

    Returns:
        by-keys, metric, n, mean, std, sem, median, min, max, ci_low, ci_high, ci_method; sorted by
        the keys. With ``cluster``, ``sem`` is the cluster-robust standard error.
    """
    keys = _check_by(by)
    if not 0 < level < 1:
        raise AnalysisError(f"confidence level must be between 0 and 1, not {level}")
    if method not in CI_METHODS:
        raise AnalysisError(f"unknown interval method {method!r}; choose one of {', '.join(CI_METHODS)}")
    if cluster is not None and cluster not in _SCORE_COLUMNS:
        raise AnalysisError(f"cannot cluster on {cluster!r}: not a column of scores")
    with quiet(con):
        frame = group_stats(con, keys, cluster=cluster, where=where)
    return add_intervals(frame, level=level, method=method).select(
        *keys, "metric", "n", "mean", "std", "sem", "median", "min", "max", "ci_low", "ci_high", "ci_method"
    )


def _check_by(by: Sequence[str]) -> list[str]:
    by = [by] if isinstance(by, str) else list(by)
    unknown = [k for k in by if k not in BY_KEYS]
    if unknown or len(set(by)) != len(by):
        raise AnalysisError(f"cannot group by {', '.join(by)}; choose from {', '.join(BY_KEYS)}")
    return [k for k in BY_KEYS if k in by]


def group_stats(
    con: duckdb.DuckDBPyConnection, keys: Sequence[str], *, cluster: str | None = None, where: Where | None = None
) -> pl.DataFrame:
    """Per-group aggregates from one DuckDB query: n, mean, std, median, min, max, successes, binary.

    With ``cluster``, also ``n_clusters`` and ``ss_clusters`` (the sum over clusters of the squared
    sum of residuals from the group mean), the ingredients of the clustered standard error.
    """
    cond, params = where_sql(where)
    select_keys = ", ".join(f"{_KEY_SQL[k]} AS {k}" for k in keys)
    group = ", ".join([*keys, "metric"])
    cols = (select_keys + ", ") if keys else ""
    sql = f"""
        SELECT {cols}metric, count(*) AS n, avg(score) AS mean, stddev_samp(score) AS std,
               median(score)::DOUBLE AS median, min(score) AS min, max(score) AS max,
               sum(score) AS successes, bool_and(score = 0 OR score = 1) AS binary
        FROM scores {cond}
        GROUP BY {group}
        ORDER BY {group}
    """
    frame = con.sql(sql, params=params).pl()
    if cluster is None:
        return frame
    # Residuals from the group mean summed per cluster, then squared and summed per group: stable,
    # unlike expanding sum(x)^2 terms.
    cl = quote(cluster)
    sql = f"""
        WITH s AS (
            SELECT {cols}metric, score,
                   coalesce({cl}::VARCHAR, chr(0) || (row_number() OVER ())::VARCHAR) AS _cluster
            FROM scores {cond}
        ), r AS (
            SELECT {group}, _cluster, score - avg(score) OVER (PARTITION BY {group}) AS resid FROM s
        ), c AS (
            SELECT {group}, sum(resid) AS u FROM r GROUP BY {group}, _cluster
        )
        SELECT {group}, count(*) AS n_clusters, sum(u * u) AS ss_clusters FROM c GROUP BY {group}
    """
    clusters = con.sql(sql, params=params).pl()
    return frame.join(clusters, on=[*keys, "metric"], how="left", nulls_equal=True)


def t_interval(mean: np.ndarray, sem: np.ndarray, df: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Student t interval ``mean +- t(level, df) * sem``; NaN where ``df < 1`` (n = 1)."""
    with np.errstate(invalid="ignore"):
        q = special.stdtrit(np.where(np.asarray(df) >= 1, df, np.nan), 1 - (1 - level) / 2)
        return mean - q * sem, mean + q * sem


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


def add_intervals(frame: pl.DataFrame, *, level: float = 0.95, method: str = "auto") -> pl.DataFrame:
    """Add ``sem``, ``ci_low``, ``ci_high`` and ``ci_method`` to a frame of group aggregates.

    Args:
        frame: columns n, mean, std, successes, binary (and n_clusters, ss_clusters when clustered),
            as returned by :func:`group_stats`.
        level: confidence level.
        method: ``auto``, ``t`` or ``wilson`` (see :func:`describe`).

    >>> f = pl.DataFrame({"n": [10, 4], "mean": [0.3, 2.0], "std": [0.483, 1.0],
    ...                   "successes": [3.0, 8.0], "binary": [True, False]})
    >>> add_intervals(f)["ci_method"].to_list()
    ['wilson', 't']
    """
    n = frame["n"].to_numpy().astype(np.float64)
    mean = frame["mean"].to_numpy()
    std = frame["std"].fill_null(np.nan).to_numpy().astype(np.float64)
    binary = frame["binary"].fill_null(False).to_numpy()
    if "n_clusters" in frame.columns:
        sem = clustered_sem(n, frame["n_clusters"].to_numpy(), frame["ss_clusters"].to_numpy())
        low, high = t_interval(mean, sem, frame["n_clusters"].to_numpy() - 1, level)
        ci_method = np.full(n.shape, "cluster-t", dtype=object)
    else:
        with np.errstate(invalid="ignore"):
            sem = std / np.sqrt(n)
        t_low, t_high = t_interval(mean, sem, n - 1, level)
        w_low, w_high = wilson(frame["successes"].to_numpy(), n, level)
        use_wilson = binary if method in ("auto", "wilson") else np.zeros(n.shape, dtype=bool)
        low, high = np.where(use_wilson, w_low, t_low), np.where(use_wilson, w_high, t_high)
        ci_method = np.where(use_wilson, "wilson", "t").astype(object)
        if method == "wilson":
            # Wilson is only defined for proportions: other groups get no interval.
            low, high = np.where(binary, low, np.nan), np.where(binary, high, np.nan)
            ci_method = np.where(binary, ci_method, np.array(None, dtype=object))
    out = frame.with_columns(
        pl.Series("sem", sem, dtype=pl.Float64),
        pl.Series("ci_low", low, dtype=pl.Float64),
        pl.Series("ci_high", high, dtype=pl.Float64),
        pl.Series("ci_method", ci_method.tolist(), dtype=pl.String),
    )
    return out.with_columns(pl.col("sem", "ci_low", "ci_high").fill_nan(None))
