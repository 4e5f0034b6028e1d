"""What a warehouse says about a pair: the variance components of its shared items, or assumed ones,
and the rows of ``evalhouse power``.

Per metric, the items both models answered (paired as ``evalhouse.compare`` pairs them, repeated
answers averaged). ``sigma^2`` is the mean within-item sample variance of the items answered more
than once (unknown with one answer per item, then taken as 0: more answers are assumed not to
help, which never understates the items needed), and ``omega^2`` the variance of the per-item
differences less the within-item part of it (method of moments, never below 0).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from evalhouse.errors import AnalysisError
from evalhouse.power.design import Plan, Variance, solve
from evalhouse.schema import metric_label_sql

if TYPE_CHECKING:
    import duckdb

COLUMNS = (
    "baseline", "candidate", "metric", "n_paired", "mean_baseline", "mean_candidate", "sd_between_baseline",
    "sd_between_candidate", "rho", "sd_within_baseline", "sd_within_candidate", "epochs", "sd_diff", "test", "alpha",
    "delta", "items", "answers", "power", "note",
)  # fmt: skip

_FILTER = "CASE WHEN s.filter IS NULL OR s.filter IN ('', 'none') THEN NULL ELSE s.filter END"
_OBSERVED_SQL = f"""
WITH base AS (
    SELECT s.model AS model, {metric_label_sql("s")} AS metric, coalesce(s.benchmark, 'unknown') AS bk,
           s.category AS category, s.task AS task, s.item_id AS item_id, {_FILTER} AS filter, s.score AS score,
           s.item_hash AS item_hash
    FROM scores AS s
    WHERE s.model IN ($baseline, $candidate) AND s.item_id IS NOT NULL
      AND ($benchmark IS NULL OR coalesce(s.benchmark, 'unknown') = $benchmark)
      AND ($category IS NULL OR s.category = $category)
), items AS (
    SELECT model, metric, bk, category, task, item_id, filter, avg(score) AS s, count(*) AS k,
           var_samp(score) AS w, bool_and(score = 0 OR score = 1) AS b01,
           CASE WHEN count(DISTINCT item_hash) = 1 THEN min(item_hash) END AS h,
           count(DISTINCT item_hash) > 1 AS h_mixed
    FROM base
    GROUP BY model, metric, bk, category, task, item_id, filter
), paired AS (
    SELECT b.metric AS metric, b.s AS sb, c.s AS sc, b.k AS kb, c.k AS kc, b.w AS wb, c.w AS wc,
           b.b01 AND c.b01 AS b01
    FROM items AS b
    JOIN items AS c
      ON c.metric = b.metric AND c.bk = b.bk AND c.category IS NOT DISTINCT FROM b.category
     AND c.task IS NOT DISTINCT FROM b.task AND c.item_id = b.item_id AND c.filter IS NOT DISTINCT FROM b.filter
    WHERE b.model = $baseline AND c.model = $candidate
      AND NOT (b.h_mixed OR c.h_mixed OR coalesce(b.h <> c.h, false))
)
SELECT metric, count(*) AS n, avg(sb) AS mean_b, avg(sc) AS mean_c, var_samp(sb) AS var_b, var_samp(sc) AS var_c,
       covar_samp(sb, sc) AS cov, var_samp(sc - sb) AS var_d,
       avg(wb) FILTER (WHERE kb > 1) AS within_b, avg(wc) FILTER (WHERE kc > 1) AS within_c,
       avg(1.0 / kb) AS inv_kb, avg(1.0 / kc) AS inv_kc, bool_and(b01) AS binary,
       bool_and(kb = 1 AND kc = 1) AS single, avg((sb <> sc)::DOUBLE) AS disagree
FROM paired
WHERE $metric IS NULL OR metric = $metric
GROUP BY metric
HAVING count(*) >= 2
ORDER BY metric
"""


@dataclass(frozen=True)
class Observed:
    """One pair and metric as the warehouse shows it, and the variance components drawn from it."""

    metric: str
    n: int
    mean_b: float
    mean_c: float
    sd_between_b: float
    sd_between_c: float
    rho: float
    variance: Variance
    note: str | None


def observe(
    con: duckdb.DuckDBPyConnection,
    baseline: str,
    candidate: str,
    *,
    metric: str | None = None,
    benchmark: str | None = None,
    category: str | None = None,
) -> list[Observed]:
    """The variance components of every metric the two models share two or more items of."""
    params = {"baseline": baseline, "candidate": candidate, "metric": metric, "benchmark": benchmark,
              "category": category}  # fmt: skip
    out = []
    for r in con.sql(_OBSERVED_SQL, params=params).pl().iter_rows(named=True):
        known = [w is not None for w in (r["within_b"], r["within_c"])]
        wb, wc = r["within_b"] or 0.0, r["within_c"] or 0.0
        between = max(r["var_d"] - wb * r["inv_kb"] - wc * r["inv_kc"], 0.0)
        ob = max(r["var_b"] - wb * r["inv_kb"], 0.0)
        oc = max(r["var_c"] - wc * r["inv_kc"], 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = float(np.clip(r["cov"] / np.sqrt(ob * oc), -1, 1)) if ob > 0 and oc > 0 else float("nan")
        discordant = float("nan")
        if r["binary"]:
            # One answer each: the share of items they disagree on; from averaged answers, what one
            # answer each would give: P(differ) = p_b + p_c - 2 E[x_b x_c].
            single = (
                r["disagree"] if r["single"] else r["mean_b"] + r["mean_c"] - 2 * (r["cov"] + r["mean_b"] * r["mean_c"])
            )
            discordant = float(np.clip(single, 0, 1))
        note = None
        if not all(known):
            note = "one answer per item on a side: within-item variance unknown (taken as 0: more epochs do not help)"
        w_b, w_c = (float("nan") if w is None else float(w) for w in (r["within_b"], r["within_c"]))
        out.append(Observed(r["metric"], int(r["n"]), r["mean_b"], r["mean_c"], float(np.sqrt(ob)), float(np.sqrt(oc)),
                            rho, Variance(between, w_b, w_c, bool(r["binary"]), discordant), note))  # fmt: skip
    return out


def assume(o: Observed | None, sd: float | None, rho: float | None) -> Observed:
    """``o`` with the per-item standard deviation and correlation replaced where given.

    ``sd`` is the standard deviation of each model's score on an item with one answer (between and
    within items together, so more epochs are not planned to help); ``rho`` the correlation of the
    two models' item scores. Without data (``o`` None): ``sd`` is required, ``rho`` defaults to 0
    (as if the items were not shared).

    >>> assume(None, 0.5, 0.5).variance.between
    0.25
    """
    if o is None:
        if sd is None:
            raise AnalysisError("no data for the pair", hint="give the per-item --sd (and --rho) to assume")
        r = 0.0 if rho is None else rho
        said = "assumed: --sd" + (" and --rho" if rho is not None else ", rho 0 (items not shared)")
        nan = float("nan")
        return Observed("", 0, nan, nan, sd, sd, r, Variance(2 * sd * sd * (1 - r), nan, nan), said)
    ob = o.sd_between_b if sd is None else sd
    oc = o.sd_between_c if sd is None else sd
    r = o.rho if rho is None else rho
    if not np.isfinite(r):
        raise AnalysisError("the correlation is undefined (a model's scores do not vary)", hint="give --rho")
    between = ob * ob + oc * oc - 2 * r * ob * oc
    v = replace(o.variance, between=max(between, 0.0))
    if sd is not None:  # a stated SD is of one answer's score: it replaces the within-item split and the 0/1 structure
        v = replace(v, within_b=float("nan"), within_c=float("nan"), binary=False, discordant=float("nan"))
    elif rho is not None and v.binary:
        v = replace(v, discordant=float(np.clip(o.mean_b + o.mean_c - 2 * (r * ob * oc + o.mean_b * o.mean_c), 0, 1)))
    said = " and ".join(x for x, given in (("--sd", sd is not None), ("--rho", rho is not None)) if given)
    note = "; ".join(x for x in (o.note, f"assumed: {said}") if x)
    return replace(o, sd_between_b=ob, sd_between_c=oc, rho=r, variance=v, note=note)


def plan_rows(baseline: str | None, candidate: str | None, o: Observed, plan: Plan) -> list[tuple[object, ...]]:
    """One output row per number of answers per item planned (1 and ``plan.epochs``), in :data:`COLUMNS`."""
    rows: list[tuple[object, ...]] = []
    for epochs in sorted({1, plan.epochs}):
        r = solve(o.variance, replace(plan, epochs=epochs))
        within = (o.variance.within_b, o.variance.within_c)
        rows.append((
            baseline, candidate, o.metric or None, o.n or None, _f(o.mean_b), _f(o.mean_c), _f(o.sd_between_b),
            _f(o.sd_between_c), _f(o.rho), *(_f(np.sqrt(w)) for w in within), epochs,
            _f(r.sd_diff), r.test, plan.alpha, r.delta, r.items, r.items * epochs, r.power, o.note,
        ))  # fmt: skip
    return rows


def _f(x: float) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


def frame(rows: list[tuple[object, ...]]) -> pl.DataFrame:
    """The rows of :func:`plan_rows` as a frame.

    >>> frame([]).columns[:3]
    ['baseline', 'candidate', 'metric']
    """
    return pl.DataFrame(rows, schema=list(COLUMNS), orient="row")


@dataclass(frozen=True)
class PowerQuery:
    """Which pairs to plan for (model globs, as ``compare -b/-c``; none: assumptions only), the
    filters of their items, and assumptions replacing what the data say."""

    baseline: tuple[str, ...] = ()
    candidate: tuple[str, ...] = ()
    metric: str | None = None
    benchmark: str | None = None
    category: str | None = None
    sd: float | None = None
    rho: float | None = None


def power(con: duckdb.DuckDBPyConnection | None, query: PowerQuery, plan: Plan) -> pl.DataFrame:
    """Plan ``plan`` for every pair and metric ``query`` names (or for the assumptions alone).

    Args:
        con: a connection with the warehouse's views; None when the query names no models.
        query: the pairs, filters and assumptions.
        plan: the design to solve.

    Returns:
        A frame with :data:`COLUMNS`: one row per pair, metric and number of answers per item.

    >>> power(None, PowerQuery(sd=0.3, rho=0.5), Plan(delta=0.05))["items"].to_list()
    [285]
    """
    if not query.baseline and not query.candidate:
        return frame(plan_rows(None, None, assume(None, query.sd, query.rho), plan))
    from evalhouse.flips import model_pairs

    if con is None:
        raise AnalysisError("a warehouse is needed to plan for named models")
    rows: list[tuple[object, ...]] = []
    for b, c in model_pairs(con, query.baseline, query.candidate):
        found = observe(con, b, c, metric=query.metric, benchmark=query.benchmark, category=query.category)
        if not found:
            if query.sd is None:
                raise AnalysisError(
                    f"{b} and {c} share no two items" + (f" of metric {query.metric}" if query.metric else ""),
                    hint="give the per-item --sd (and --rho) to plan from assumptions",
                )
            found = [assume(None, query.sd, query.rho)]
        elif query.sd is not None or query.rho is not None:
            found = [assume(o, query.sd, query.rho) for o in found]
        for o in found:
            rows += plan_rows(b, c, o, plan)
    return frame(rows)
