"""Compare candidate models with their baselines, overall and per category or benchmark.

For each pair of models, each metric and each scope (``overall``, every shared ``category`` or
``benchmark``), :func:`compare` reports both sides' n and means, the difference
(candidate - baseline), the relative change, a direction that knows whether lower is better, a
test, its p-value adjusted over the whole analysis, a confidence interval of the difference, an
effect size and the minimum detectable difference at 80 % power.

How it stays fast: DuckDB computes sufficient statistics per (model, metric, scope) and per
(pair, metric, scope) over the items both models answered, in three queries; every test is then
one array computation over all rows (``engine.significance``).

Test choice under ``test="auto"``: the items both models answered when there are any (exact
McNemar on 0/1 scores, paired t otherwise, on per-item means where a model answered an item more
than once); otherwise Fisher's exact test (0/1 scores) or Welch's t. Rows known only from reported
aggregates (the ``metrics`` view) get a z-test. A pair that shares no item, category or benchmark
is not comparable: no test under ``auto``; a test named explicitly is still run and the row
keeps the flag.
"""

from __future__ import annotations

import fnmatch
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from engine import significance as sig
from engine.errors import AnalysisError
from engine.pairs import Rule, default_pairs, pairs_from_rules
from engine.stats import quiet

if TYPE_CHECKING:
    import duckdb

    from engine.warehouse import Warehouse

SCOPES = ("overall", "category", "benchmark")
TESTS = ("auto", "student", "welch", "paired", "mcnemar", "fisher")
COLUMNS = (
    "baseline", "candidate", "metric", "scope", "category", "benchmark",
    "n_baseline", "n_candidate", "n_paired", "mean_baseline", "mean_candidate", "diff", "rel_change_pct",
    "direction", "test", "statistic", "p_value", "p_adjusted", "significant", "ci_low", "ci_high",
    "effect_size", "mde", "comparable", "note",
)  # fmt: skip
# Comparison batches kept on disk; the views read only the newest, older ones are history.
KEEP_ANALYSES = 3
_UNKNOWN = "unknown"


def compare(
    con: duckdb.DuckDBPyConnection,
    *,
    baseline: Sequence[str] | None = None,
    candidate: Sequence[str] | None = None,
    rules: Sequence[Rule] | None = None,
    pairs: Sequence[tuple[str, str]] | None = None,
    by: Sequence[str] = ("category",),
    test: str = "auto",
    adjust: str = "holm",
    alpha: float = 0.05,
    exclude_sources: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Compare candidates with baselines; one row per pair, metric and scope.

    Args:
        con: a connection from ``engine.warehouse.connect``.
        baseline: glob patterns of baseline models (case-insensitive).
        candidate: glob patterns of candidate models. With neither, and no ``rules`` or ``pairs``,
            every variant is paired with its base model (``engine.pairs.default_pairs``).
        rules: more pair rules (e.g. from ``evalhouse.toml``), added to baseline/candidate.
        pairs: exact (baseline, candidate) model names; replaces every pattern when given.
        by: scopes besides ``overall``: any of ``category``, ``benchmark``.
        test: ``auto``, ``student``, ``welch``, ``paired``, ``mcnemar`` or ``fisher``.
        adjust: ``holm``, ``bh`` or ``none``, over every p-value of the analysis.
        alpha: significance level (after adjustment); the intervals are at ``1 - alpha``.
        exclude_sources: glob patterns of source paths whose runs are left out.

    Returns:
        A frame with the columns of ``COLUMNS`` (see README, "Comparisons").
    """
    scopes = _check_args(by, test, adjust, alpha)
    models = con.sql("SELECT model, model_base, quantization FROM models ORDER BY model").pl()
    pair_list = _resolve_pairs(models, baseline, candidate, rules, pairs)
    pair_frame = pl.DataFrame(
        {
            "pair_id": list(range(len(pair_list))),
            "baseline": [b for b, _ in pair_list],
            "candidate": [c for _, c in pair_list],
        },
        schema={"pair_id": pl.Int64, "baseline": pl.String, "candidate": pl.String},
    )
    excluded = _excluded_runs(con, exclude_sources or [])
    names = sorted({m for p in pair_list for m in p})
    con.register("_eh_pairs", pair_frame.to_arrow())
    con.register("_eh_models", pl.DataFrame({"model": names}, schema={"model": pl.String}).to_arrow())
    con.register("_eh_excluded", pl.DataFrame({"run_id": excluded}, schema={"run_id": pl.String}).to_arrow())
    try:
        with quiet(con):
            unpaired = con.sql(_UNPAIRED_SQL).pl()
            paired = con.sql(_PAIRED_SQL).pl()
            reported = con.sql(_METRICS_SQL).pl()
    finally:
        for name in ("_eh_pairs", "_eh_models", "_eh_excluded"):
            con.unregister(name)
    rows = assemble(pair_frame, unpaired, paired, reported, scopes)
    return run_tests(rows, test=test, adjust=adjust, alpha=alpha)


def _check_args(by: Sequence[str], test: str, adjust: str, alpha: float) -> list[str]:
    by = [by] if isinstance(by, str) else list(by)
    bad = [b for b in by if b not in SCOPES[1:]]
    if bad:
        raise AnalysisError(f"cannot compare by {', '.join(bad)}; choose category and/or benchmark")
    if test not in TESTS:
        raise AnalysisError(f"unknown test {test!r}; choose one of {', '.join(TESTS)}")
    if adjust not in sig.ADJUST_METHODS:
        raise AnalysisError(f"unknown adjustment {adjust!r}; choose one of {', '.join(sig.ADJUST_METHODS)}")
    if not 0 < alpha < 1:
        raise AnalysisError(f"alpha must be between 0 and 1, not {alpha}")
    return ["overall", *[s for s in SCOPES[1:] if s in by]]


def _resolve_pairs(
    models: pl.DataFrame,
    baseline: Sequence[str] | None,
    candidate: Sequence[str] | None,
    rules: Sequence[Rule] | None,
    pairs: Sequence[tuple[str, str]] | None,
) -> list[tuple[str, str]]:
    names = models["model"].to_list()
    if pairs is not None:
        known = set(names)
        missing = sorted({m for p in pairs for m in p} - known)
        if missing:
            raise AnalysisError(f"no such model: {', '.join(missing)}", hint="`evalhouse models` lists them")
        out = [(b, c) for b, c in pairs if b != c]
    else:
        all_rules = list(rules or [])
        if baseline or candidate:
            all_rules.insert(0, Rule(tuple(baseline or ()), tuple(candidate or ())))
        if all_rules:
            out = pairs_from_rules(names, all_rules)
        else:
            bases = {r["model"]: (r["model_base"], r["quantization"]) for r in models.iter_rows(named=True)}
            out = default_pairs(names, bases)
    if not out:
        hint = (
            "no model matches those patterns; `evalhouse models` lists the names"
            if (baseline or candidate or rules)
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
# Sufficient statistics, in DuckDB
# ---------------------------------------------------------------------------------------------

_SCOPE_KEY = """
    CASE WHEN grouping(category) = 0 THEN 'category' WHEN grouping(bk) = 0 THEN 'benchmark' ELSE 'overall' END AS scope,
    CASE WHEN grouping(category) = 0 THEN category WHEN grouping(bk) = 0 THEN bk ELSE '' END AS key"""
_SETS = "GROUPING SETS (({0}, metric), ({0}, metric, category), ({0}, metric, bk))"
_LIVE = "model IN (SELECT model FROM _eh_models) AND run_id NOT IN (SELECT run_id FROM _eh_excluded)"

# Per model, metric and scope: every answer as it is (what the unpaired tests use).
_UNPAIRED_SQL = f"""
WITH s AS (
    SELECT model, metric, category, coalesce(benchmark, '{_UNKNOWN}') AS bk, score, higher_is_better
    FROM scores WHERE {_LIVE}
)
SELECT model, metric, {_SCOPE_KEY},
       count(*) AS n, avg(score) AS mean, var_samp(score) AS var, sum(score) AS successes,
       bool_and(score = 0 OR score = 1) AS binary, coalesce(bool_and(higher_is_better), true) AS hib
FROM s
GROUP BY {_SETS.format("model")}
"""

# Per pair, metric and scope: the items both models answered, each side's answers to an item
# averaged first (repeated runs, epochs), then differences taken item by item. The item key is
# numbered once so that the pair join compares one integer rather than six NULL-able strings.
_PAIRED_SQL = f"""
WITH im AS (
    SELECT model, metric, benchmark, category, task, item_id, filter, avg(score) AS s, count(*) AS k
    FROM scores WHERE {_LIVE}
    GROUP BY model, metric, benchmark, category, task, item_id, filter
), keyed AS (
    SELECT model, metric, category, coalesce(benchmark, '{_UNKNOWN}') AS bk, s, k,
           dense_rank() OVER (ORDER BY metric, benchmark, category, task, item_id, filter) AS item
    FROM im
), j AS (
    SELECT p.pair_id AS pair_id, b.metric AS metric, b.category AS category, b.bk AS bk,
           b.s AS sb, c.s AS sc, greatest(b.k, c.k) AS k
    FROM _eh_pairs AS p
    JOIN keyed AS b ON b.model = p.baseline
    JOIN keyed AS c ON c.model = p.candidate AND c.item = b.item
)
SELECT pair_id, metric, {_SCOPE_KEY},
       count(*) AS n_paired, avg(sb) AS pmean_b, avg(sc) AS pmean_c,
       avg(sc - sb) AS d_mean, var_samp(sc - sb) AS d_var,
       count(*) FILTER (WHERE sb = 1 AND sc = 0) AS n10, count(*) FILTER (WHERE sb = 0 AND sc = 1) AS n01,
       bool_and((sb = 0 OR sb = 1) AND (sc = 0 OR sc = 1)) AS p_binary, max(k) > 1 AS repeated
FROM j
GROUP BY {_SETS.format("pair_id")}
"""

# Reported aggregates (value, stderr) per model, metric and category or benchmark; several rows
# for one key (repeated runs) are averaged, their standard errors combined as for a mean.
_METRICS_SQL = f"""
WITH m AS (
    SELECT model, metric, category, coalesce(benchmark, '{_UNKNOWN}') AS bk, value, stderr, n, higher_is_better
    FROM metrics WHERE {_LIVE}
)
SELECT model, metric, {_SCOPE_KEY},
       avg(value) AS value, sqrt(sum(stderr * stderr)) / count(*) AS se,
       CASE WHEN count(stderr) = count(*) THEN true ELSE false END AS has_se,
       sum(n)::BIGINT AS n, coalesce(bool_and(higher_is_better), true) AS hib
FROM m
GROUP BY GROUPING SETS ((model, metric, category), (model, metric, bk))
"""


# ---------------------------------------------------------------------------------------------
# Rows and tests, in Polars and NumPy
# ---------------------------------------------------------------------------------------------


def _side(frame: pl.DataFrame, model_col: str, suffix: str, keep: Sequence[str]) -> pl.DataFrame:
    return frame.select(
        pl.col("model").alias(model_col), "metric", "scope", "key", *[pl.col(c).alias(c + suffix) for c in keep]
    )


def assemble(
    pair_frame: pl.DataFrame,
    unpaired: pl.DataFrame,
    paired: pl.DataFrame,
    reported: pl.DataFrame,
    scopes: Sequence[str],
) -> pl.DataFrame:
    """Join both sides' statistics per pair, metric and scope; decide comparability.

    Returns one row per (pair, metric, scope, key) that both models have scores for (or, failing
    that, reported aggregates for), with the columns :func:`run_tests` reads.
    """
    keep = ["n", "mean", "var", "successes", "binary", "hib"]
    rows = pair_frame.join(_side(unpaired, "baseline", "_b", keep), on="baseline").join(
        _side(unpaired, "candidate", "_c", keep), on=["candidate", "metric", "scope", "key"]
    )
    rows = rows.join(paired, on=["pair_id", "metric", "scope", "key"], how="left").with_columns(
        pl.col("n_paired").fill_null(0), pl.lit("scores").alias("source")
    )
    # Shared categories or benchmarks (not the `unknown` placeholder) make a pair comparable overall.
    shared = (
        rows.filter((pl.col("scope") != "overall") & (pl.col("key") != _UNKNOWN))
        .select("pair_id", "metric")
        .unique()
        .with_columns(pl.lit(True).alias("shares_group"))
    )
    rows = rows.join(shared, on=["pair_id", "metric"], how="left").with_columns(
        pl.when(pl.col("scope") == "overall")
        .then((pl.col("n_paired") > 0) | pl.col("shares_group").fill_null(False))
        .otherwise((pl.col("n_paired") > 0) | (pl.col("key") != _UNKNOWN))
        .alias("comparable")
    )
    rows = rows.drop("shares_group").filter(pl.col("scope").is_in(list(scopes)))

    rkeep = ["value", "se", "has_se", "n", "hib"]
    rep = pair_frame.join(_side(reported, "baseline", "_b", rkeep), on="baseline").join(
        _side(reported, "candidate", "_c", rkeep), on=["candidate", "metric", "scope", "key"]
    )
    rep = (
        rep.filter(pl.col("scope").is_in(list(scopes)))
        .join(rows.select("pair_id", "metric", "scope", "key"), on=["pair_id", "metric", "scope", "key"], how="anti")
        .select(
            "pair_id", "baseline", "candidate", "metric", "scope", "key",
            pl.col("n_b"), pl.col("n_c"), pl.col("value_b").alias("mean_b"), pl.col("value_c").alias("mean_c"),
            pl.col("se_b"), pl.col("se_c"), pl.col("hib_b"), pl.col("hib_c"),
            pl.lit(0, dtype=pl.Int64).alias("n_paired"), pl.lit("metrics").alias("source"),
            (pl.col("key") != _UNKNOWN).alias("comparable"),
        )
    )  # fmt: skip
    return pl.concat([rows, rep], how="diagonal_relaxed")


def _num(frame: pl.DataFrame, col: str) -> np.ndarray:
    if col not in frame.columns:
        return np.full(frame.height, np.nan)
    return frame[col].cast(pl.Float64).fill_null(np.nan).to_numpy()


def _flag(frame: pl.DataFrame, col: str) -> np.ndarray:
    if col not in frame.columns:
        return np.zeros(frame.height, dtype=bool)
    return frame[col].fill_null(False).to_numpy().astype(bool)


def run_tests(rows: pl.DataFrame, *, test: str = "auto", adjust: str = "holm", alpha: float = 0.05) -> pl.DataFrame:
    """Choose and run a test for every row of :func:`assemble`, adjust, and shape the output.

    Every test family is computed over all rows in one array expression; each row then takes
    the family chosen for it (Fisher's test runs only on the rows that chose it).
    """
    h = rows.height
    n_b, n_c, n_p = _num(rows, "n_b"), _num(rows, "n_c"), _num(rows, "n_paired")
    m_b, m_c, v_b, v_c = _num(rows, "mean_b"), _num(rows, "mean_c"), _num(rows, "var_b"), _num(rows, "var_c")
    binary = _flag(rows, "binary_b") & _flag(rows, "binary_c")
    p_binary = _flag(rows, "p_binary")
    comparable = _flag(rows, "comparable")
    reported = (rows["source"] == "metrics").to_numpy() if h else np.zeros(0, dtype=bool)

    if test == "auto":
        chosen = np.select(
            [~comparable, reported, (n_p > 0) & p_binary, n_p > 0, binary],
            ["", "z", "mcnemar", "paired", "fisher"],
            "welch",
        ).astype(object)
    else:
        chosen = np.where(reported, "z", test).astype(object)

    results = {
        "student": sig.student_t(n_b, m_b, v_b, n_c, m_c, v_c, alpha),
        "welch": sig.welch_t(n_b, m_b, v_b, n_c, m_c, v_c, alpha),
        "paired": sig.paired_t(n_p, _num(rows, "d_mean"), _num(rows, "d_var"), alpha),
        "mcnemar": sig.mcnemar_exact(
            _num(rows, "n10"), _num(rows, "n01"), n_p, _num(rows, "pmean_b"), _num(rows, "pmean_c"), alpha
        ),
        "z": sig.z_test(m_b, _num(rows, "se_b"), m_c, _num(rows, "se_c"), alpha),
    }
    fisher_rows = (chosen == "fisher") & binary
    empty = np.full(h, np.nan)
    fisher = [empty.copy() for _ in sig.Outcome._fields]
    if fisher_rows.any():
        part = sig.fisher_exact(
            np.rint(_num(rows, "successes_b")[fisher_rows]), n_b[fisher_rows],
            np.rint(_num(rows, "successes_c")[fisher_rows]), n_c[fisher_rows], alpha,
        )  # fmt: skip
        for full, values in zip(fisher, part, strict=True):
            full[fisher_rows] = values
    results["fisher"] = sig.Outcome(*fisher)

    # Which rows a family can actually serve; the others get no result and a note.
    uses_pairs = (chosen == "paired") | (chosen == "mcnemar")
    usable = ~((uses_pairs & (n_p == 0)) | ((chosen == "mcnemar") & ~p_binary) | ((chosen == "fisher") & ~binary))
    picked = {
        field: np.select(
            [(chosen == name) & usable for name in results], [getattr(r, field) for r in results.values()], np.nan
        )
        for field in sig.Outcome._fields
    }
    # Means and difference on the data the test used: paired tests see only the shared items.
    mean_b = np.where(uses_pairs & (n_p > 0), _num(rows, "pmean_b"), m_b)
    mean_c = np.where(uses_pairs & (n_p > 0), _num(rows, "pmean_c"), m_c)
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = mean_c - mean_b
        rel = np.where(mean_b != 0, diff / mean_b * 100, np.nan)
    p_value = picked["p_value"]
    p_adjusted = sig.adjust(p_value, adjust)
    # Lower-is-better metrics (losses, perplexity): an increase is a degradation.
    hib = rows["hib_b"].fill_null(True).to_numpy().astype(bool) if "hib_b" in rows.columns else np.ones(h, bool)
    better = np.where(hib, diff, -diff)
    direction: list[str | None] = np.select(
        [better > 0, better < 0, better == 0], ["improved", "degraded", "no change"], ""
    ).tolist()
    direction = [d or None for d in direction]  # NaN difference: no direction

    out = rows.select(
        "pair_id", "baseline", "candidate", "metric", "scope", "key", "source", "comparable"
    ).with_columns(
        pl.when(pl.col("scope") == "category").then(pl.col("key")).otherwise(None).alias("category"),
        pl.when(pl.col("scope") == "benchmark").then(pl.col("key")).otherwise(None).alias("benchmark"),
        pl.Series("n_baseline", n_b).cast(pl.Int64, strict=False),
        pl.Series("n_candidate", n_c).cast(pl.Int64, strict=False),
        pl.Series("n_paired", n_p).cast(pl.Int64, strict=False),
        pl.Series("mean_baseline", mean_b),
        pl.Series("mean_candidate", mean_c),
        pl.Series("diff", diff),
        pl.Series("rel_change_pct", rel),
        pl.Series("direction", direction, dtype=pl.String),
        pl.Series("test", [t or None for t in chosen.tolist()], dtype=pl.String),
        *[pl.Series(f, picked[f]) for f in ("statistic", "p_value", "ci_low", "ci_high", "effect_size", "mde")],
        pl.Series("p_adjusted", p_adjusted),
        pl.Series("_repeated", _flag(rows, "repeated")),
        pl.Series("_usable", usable),
        pl.Series("_binary", binary),
        pl.Series("_p_binary", p_binary),
    )
    floats = ["mean_baseline", "mean_candidate", "diff", "rel_change_pct", "statistic", "p_value", "p_adjusted",
              "ci_low", "ci_high", "effect_size", "mde"]  # fmt: skip
    # Infinite statistics and effect sizes (zero variance with a difference) are stored as NULL:
    # the p-value (0) already says what they would.
    out = out.with_columns(
        [pl.when(pl.col(c).is_finite()).then(pl.col(c)).otherwise(None).alias(c) for c in floats]
    ).with_columns(
        pl.when(pl.col("p_adjusted").is_not_null()).then(pl.col("p_adjusted") < alpha).alias("significant"),
        _note_expr(),
    )
    scope_rank = pl.col("scope").replace_strict({s: i for i, s in enumerate(SCOPES)}, return_dtype=pl.Int8)
    return out.sort(["pair_id", "metric", scope_rank, "key"]).select(COLUMNS)


def _note_expr() -> pl.Expr:
    t = pl.col("test")
    paired = t.is_in(["paired", "mcnemar"])
    parts = [
        pl.when(~pl.col("comparable")).then(pl.lit("not comparable: no item, category or benchmark in common")),
        pl.when(paired & (pl.col("n_paired") == 0)).then(pl.lit("no items in common to pair")),
        pl.when((t == "mcnemar") & (pl.col("n_paired") > 0) & ~pl.col("_p_binary")).then(
            pl.lit("McNemar needs 0/1 scores on every paired item")
        ),
        pl.when((t == "fisher") & ~pl.col("_binary")).then(pl.lit("Fisher's test needs 0/1 scores")),
        pl.when(paired & (pl.col("n_paired") > 0)).then(
            pl.format(
                "paired on the {} item(s) both answered{}; means are over those items",
                pl.col("n_paired"),
                pl.when(pl.col("_repeated"))
                .then(pl.lit(", on per-item means of repeated answers"))
                .otherwise(pl.lit("")),
            )
        ),
        pl.when(pl.col("_usable") & t.is_not_null() & pl.col("p_value").is_null()).then(
            pl.lit("no p-value: too few observations, or no variance and no difference")
        ),
        pl.when(
            pl.col("p_value").is_not_null() & pl.col("statistic").is_null() & t.is_in(["student", "welch", "paired"])
        ).then(pl.lit("zero variance: p is the limit of the test, read it with care")),
        pl.when(t.is_in(["welch", "fisher", "student"]) & (pl.col("n_paired") == 0) & pl.col("comparable")).then(
            pl.lit("unpaired: no items in common")
        ),
        pl.when(pl.col("source") == "metrics").then(pl.lit("unpaired z-test on reported aggregates (value, stderr)")),
        pl.when(pl.col("rel_change_pct").is_null() & (pl.col("mean_baseline") == 0)).then(
            pl.lit("relative change undefined: baseline mean is 0")
        ),
    ]
    return pl.concat_str(parts, separator="; ", ignore_nulls=True).replace("", None).alias("note")


def gate(frame: pl.DataFrame, max_drop: float) -> pl.DataFrame:
    """The rows of a comparison that fail a regression gate.

    A row fails when it is significant (after adjustment), its direction is ``degraded`` and the
    relative change is worse than ``max_drop`` percent, or undefined (baseline mean 0: any
    significant degradation from 0 is beyond every threshold).

    >>> f = pl.DataFrame({"direction": ["degraded", "degraded", "improved"], "significant": [True, True, True],
    ...                   "rel_change_pct": [-12.0, -3.0, 50.0]})
    >>> gate(f, 5.0).height
    1
    """
    return frame.filter(
        (pl.col("direction") == "degraded")
        & pl.col("significant").fill_null(False)
        & (pl.col("rel_change_pct").is_null() | (pl.col("rel_change_pct").abs() > max_drop))
    )


# ---------------------------------------------------------------------------------------------
# Writing results back to the warehouse
# ---------------------------------------------------------------------------------------------


def save(wh: Warehouse, frame: pl.DataFrame) -> str:
    """Store a comparison as the warehouse's current analysis; return its analysis id.

    The rows go into a batch of their own (committed by rename, under the write lock, like an
    ingest); the ``comparisons`` and ``category_comparisons`` views show only the newest analysis,
    so a new compare replaces the previous results. Older comparison batches beyond
    ``KEEP_ANALYSES`` are deleted.
    """
    import pyarrow.parquet as pq

    from engine.schema import COMPARISONS
    from engine.warehouse import Batch, lock

    with lock(wh):
        batch = Batch(wh)
        try:
            stamped = frame.with_columns(
                pl.lit(batch.batch_id).alias("analysis_id"),
                pl.lit(datetime.now(UTC)).dt.cast_time_unit("us").alias("analysis_time"),
            )
            table = stamped.select(COMPARISONS.names).to_arrow().cast(COMPARISONS.arrow_schema())
            pq.write_table(table, batch.staging / "comparisons.parquet", compression="zstd")
            batch.commit()
        except BaseException:
            batch.abort()
            raise
        _prune(wh)
    return batch.batch_id


def _prune(wh: Warehouse) -> None:
    """Delete all but the newest ``KEEP_ANALYSES`` batches that hold only comparison results."""
    only_comparisons = [
        d
        for d in wh.batch_dirs()
        if (files := list(d.iterdir())) and all(f.name.startswith("comparisons") for f in files)
    ]
    for d in only_comparisons[:-KEEP_ANALYSES]:
        shutil.rmtree(d, ignore_errors=True)
