"""Compare candidate models with their baselines, overall and per category or benchmark.

For each pair of models, each metric and each scope (``overall``, every shared ``category`` or
``benchmark``), :func:`compare` reports both sides' items, the items they share, means, the
difference (candidate - baseline), a direction that knows whether lower is better, a test, its
p-value, an interval from the same test, one-sided bounds for the gate, an effect size and the
minimum detectable difference (README, "Statistics and comparisons").

The rules that keep the verdicts honest:

- The item is the unit: repeated answers to an item are averaged first (``evalhouse.compare.sql``).
- Like for like: paired tests run on the shared items. When those cover less than ``overlap`` of
  either side, the row says ``partial overlap`` and carries the unpaired result on all items beside
  it; the gate never passes such a row.
- The family: per pair and metric, the overall row is the primary result at alpha (not adjusted);
  category and benchmark rows are adjusted within their pair and metric, and a row with the same
  items as the overall row (or as another row) is not tested again.
- Small or degenerate samples get exact tests: McNemar for 0/1 items, sign-flip and two-group
  permutation tests below ``LARGE_N`` items or without spread, never p = 0 from a handful of items.

Test choice under ``test="auto"``: shared items: McNemar (0/1), paired t (``LARGE_N`` items or
more with spread), else the sign-flip test; no shared item: the Miettinen-Nurminen score test
(0/1), Welch's t (``LARGE_N`` items a side with spread), else the permutation test. Reported
aggregates get a z-test. ``student`` is the original SO8T scripts' test: unpaired, pooled
variance, every answer counted as independent.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import polars as pl

from evalhouse.compare import sql as q
from evalhouse.compare.families import LARGE_N, run_tests
from evalhouse.compare.rows import add_unshared, assemble
from evalhouse.compare.run_settings import settings_differences
from evalhouse.errors import AnalysisError
from evalhouse.pairs import Rule, default_pairs, pairs_from_rules
from evalhouse.schema import _COMPARISON_COLUMNS, _STABILITY_COLUMNS
from evalhouse.settings import Settings, merge
from evalhouse.stats import quiet

if TYPE_CHECKING:
    import duckdb

    from evalhouse.warehouse import Warehouse

__all__ = ["COLUMNS", "KEEP_ANALYSES", "LARGE_N", "assemble", "compare", "run_tests", "save"]

COLUMNS = tuple(name for name, _, _ in (*_COMPARISON_COLUMNS, *_STABILITY_COLUMNS))
# Comparison batches kept on disk; the views read only the newest, older ones are history.
KEEP_ANALYSES = 3


def compare(
    con: duckdb.DuckDBPyConnection,
    settings: Settings | None = None,
    *,
    pairs: Sequence[tuple[str, str]] | None = None,
    default_by: Sequence[str] = ("category",),
    **options: Any,
) -> pl.DataFrame:
    """Compare candidates with baselines; one row per pair, metric and scope.

    Args:
        con: a connection from ``evalhouse.warehouse.connect``.
        settings: the analysis (``evalhouse.settings``); ``options`` (any of its fields: ``baseline``,
            ``candidate``, ``by``, ``test``, ``adjust``, ``alpha``, ``margin``, ``overlap``, ``cluster``,
            ``exclude_sources``, ...) are merged over it. With no pair rule or pattern, every variant
            is paired with its base model (``evalhouse.pairs.default_pairs``).
        pairs: exact (baseline, candidate) model names; replaces every pattern when given.
        default_by: scopes besides ``overall`` when the settings name none.

    Returns:
        A frame with the columns of ``COLUMNS`` (see README, "Comparisons").
    """
    from evalhouse.noise import noise_sql  # evalhouse.noise reads this package's SQL: imported here, not above

    s = merge(settings or Settings(), **options)
    if s.cluster is not None and s.cluster not in q.CLUSTER_LEVELS:
        raise AnalysisError(
            f"cannot cluster a comparison on {s.cluster!r}",
            hint=f"choose one of {', '.join(q.CLUSTER_LEVELS)} (units within a benchmark's item hierarchy)",
        )
    scopes = s.scopes(default_by)
    models = _models(con, s)
    pair_list = _resolve_pairs(models, _with_aliases(s.pair_rules, s), pairs and [
        (s.canonical(b), s.canonical(c)) for b, c in pairs
    ])  # fmt: skip
    pair_frame = pl.DataFrame(
        {
            "pair_id": range(len(pair_list)),
            "baseline": [b for b, _ in pair_list],
            "candidate": [c for _, c in pair_list],
        },
        schema={"pair_id": pl.Int64, "baseline": pl.String, "candidate": pl.String},
    )
    names = sorted({m for p in pair_list for m in p})
    excluded = _excluded_runs(con, s.exclude_sources)
    registered = {
        "_eh_alias": _alias_frame(s.aliases),
        "_eh_metric_alias": _alias_frame(s.metric_aliases),
        "_eh_pairs": pair_frame,
        "_eh_models": pl.DataFrame({"model": names}, schema={"model": pl.String}),
        "_eh_excluded": pl.DataFrame({"run_id": excluded}, schema={"run_id": pl.String}),
    }
    for name, frame in registered.items():
        con.register(name, frame.to_arrow())
    for statement in q.ALIASED.values():
        con.execute(statement)

    def fetch(need: pl.DataFrame, paired: bool) -> dict[int, np.ndarray]:
        con.register("_eh_need", need.to_arrow())
        try:
            got = con.sql(q.values_sql(s.cluster, paired)).fetchall()
        finally:
            con.unregister("_eh_need")
        return {row: np.asarray(v, dtype=np.float64) for row, v in got}

    try:
        with quiet(con):
            items = con.sql(q.items_sql(s.cluster)).pl()
            paired = con.sql(q.paired_sql(s.cluster)).pl()
            changed = con.sql(q.changed_sql(s.cluster)).pl()
            reported = con.sql(q.METRICS_SQL).pl()
            answers = con.sql(q.ANSWERS_SQL).pl() if s.test == "student" else None
            metrics_of = dict(con.sql(q.METRIC_NAMES_SQL).fetchall())
            baselines = f"{q.LIVE} AND model IN (SELECT baseline FROM _eh_pairs)"
            noise = con.sql(noise_sql("_eh_scores", baselines, labelled=True)).pl()
            rows = assemble(pair_frame, items, paired, reported, answers, scopes, changed, noise)
            rows = add_unshared(rows, pair_frame, metrics_of)
            out = run_tests(rows, s, fetch).join(settings_differences(con, pair_frame), on="pair_id", how="left")
            # Said on the overall row too: a reader of the verdict must see it.
            differ = pl.when((pl.col("scope") == "overall") & pl.col("settings_diff").is_not_null())
            out = out.with_columns(
                pl.concat_str([pl.col("note"), differ.then(pl.format("run settings differ: {}", "settings_diff"))],
                              separator="; ", ignore_nulls=True).replace("", None).alias("note")
            )  # fmt: skip
            return out.select(COLUMNS)
    finally:
        for view in q.ALIASED:
            con.execute(f"DROP VIEW IF EXISTS {view}")
        for name in registered:
            con.unregister(name)


def _alias_frame(aliases: Mapping[str, str]) -> pl.DataFrame:
    return pl.DataFrame(
        {"spelling": list(aliases), "canonical": list(aliases.values())},
        schema={"spelling": pl.String, "canonical": pl.String},
    )


def _models(con: duckdb.DuckDBPyConnection, s: Settings) -> pl.DataFrame:
    """Model names as the analysis spells them (aliases merged), with base and quantization.

    The base comes from ``[models.bases]`` where it names one, else from the name (as ingest
    parsed it).
    """
    from evalhouse.modelname import split_model

    names = sorted({s.canonical(m) for (m,) in con.sql("SELECT model FROM models").fetchall()})
    parsed = [split_model(n) for n in names]
    return pl.DataFrame(
        {
            "model": names,
            "model_base": [s.bases.get(n, base) for n, (base, _q) in zip(names, parsed, strict=True)],
            "quantization": [q_ for _b, q_ in parsed],
        },
        schema={"model": pl.String, "model_base": pl.String, "quantization": pl.String},
    )


def _with_aliases(rules: Sequence[Rule], s: Settings) -> list[Rule]:
    """Rules whose patterns also select a model through any of its aliases (every spelling works)."""
    if not s.aliases:
        return list(rules)

    def expand(patterns: tuple[str, ...]) -> tuple[str, ...]:
        extra = [
            canonical for spelling, canonical in s.aliases.items()
            if any(fnmatch.fnmatchcase(spelling.lower(), p.lower()) for p in patterns)
        ]  # fmt: skip
        return tuple(dict.fromkeys([*patterns, *extra]))

    return [Rule(expand(r.baseline), expand(r.candidate)) for r in rules]


def _resolve_pairs(
    models: pl.DataFrame, rules: Sequence[Rule], pairs: Sequence[tuple[str, str]] | None
) -> list[tuple[str, str]]:
    names = models["model"].to_list()
    if pairs is not None:
        missing = sorted({m for p in pairs for m in p} - set(names))
        if missing:
            raise AnalysisError(f"no such model: {', '.join(missing)}", hint="`evalhouse models` lists them")
        out = [(b, c) for b, c in pairs if b != c]
    elif rules:
        out = pairs_from_rules(names, rules)
    else:
        bases = {r["model"]: (r["model_base"], r["quantization"]) for r in models.iter_rows(named=True)}
        out = default_pairs(names, bases)
    if not out:
        hint = (
            "no model matches those patterns; `evalhouse models` lists the names"
            if rules
            else "no model shares its model_base with another; name pairs with --baseline and --candidate"
        )
        raise AnalysisError("no pairs of models to compare", hint=hint)
    return out


def _excluded_runs(con: duckdb.DuckDBPyConnection, patterns: Sequence[str]) -> list[str]:
    if not patterns:
        return []
    runs = con.sql("SELECT run_id, source_path FROM runs").fetchall()
    return [r for r, path in runs if any(fnmatch.fnmatchcase(path, p) for p in patterns)]


# ---------------------------------------------------------------------------------------------
# Writing results back to the warehouse
# ---------------------------------------------------------------------------------------------


def save(wh: Warehouse, frame: pl.DataFrame) -> str:
    """Store a comparison as the warehouse's current analysis; return its analysis id.

    The rows are one commit of the ``comparisons`` table (under the write lock, like an ingest),
    which also removes the analyses beyond the newest ``KEEP_ANALYSES``; the ``comparisons`` and
    ``category_comparisons`` views show only the newest analysis, so a new compare replaces the
    previous results.
    """
    from evalhouse.commit import Commit, recover
    from evalhouse.schema import COMPARISONS
    from evalhouse.warehouse import lock, table_source

    with lock(wh):
        recover(wh)
        con = duckdb.connect()
        try:
            sql = f"SELECT DISTINCT analysis_id FROM {table_source(wh, 'comparisons')} ORDER BY 1 DESC"
            kept = [r[0] for r in con.execute(sql).fetchall()]
        finally:
            con.close()
        commit = Commit(wh, "compare")
        try:
            stamped = frame.with_columns(
                pl.lit(commit.batch_id).alias("analysis_id"),
                pl.lit(datetime.now(UTC)).dt.cast_time_unit("us").alias("analysis_time"),
            )
            commit.write("comparisons", stamped.select(COMPARISONS.names).to_arrow().cast(COMPARISONS.arrow_schema()))
            commit.remove("comparisons", "analysis_id", set(kept[KEEP_ANALYSES - 1 :]))
            commit.publish()
        except BaseException:
            commit.abort()
            raise
    return commit.batch_id
