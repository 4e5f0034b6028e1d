"""Compare candidate models with their baselines, overall and per category or benchmark.

For each pair of models, each metric and each scope (``overall``, every shared ``category`` or
``benchmark``), :func:`compare` reports both sides' items, the items they share, means, the
difference (candidate - baseline), a direction that knows whether lower is better, a test, its
p-value, an interval from the same test, one-sided bounds for the gate, an effect size and the
minimum detectable difference (README, "Statistics and comparisons").

The rules that keep the verdicts honest:

- The item is the unit: repeated answers to an item are averaged first (``engine.compare_sql``).
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
import shutil
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from engine import compare_sql as q
from engine import permutation as perm
from engine import significance as sig
from engine.errors import AnalysisError
from engine.pairs import Rule, default_pairs, pairs_from_rules
from engine.schema import _COMPARISON_COLUMNS, SCORES
from engine.settings import SCOPES, Settings, merge
from engine.stats import quiet
from engine.verdict import items_needed, verdicts

if TYPE_CHECKING:
    import duckdb

    from engine.warehouse import Warehouse

COLUMNS = tuple(name for name, _, _ in _COMPARISON_COLUMNS)
# Below this many items (or without spread) a t-test's p-value rests on its normal approximation
# more than on the data: exact permutation tests are used instead.
LARGE_N = 30
# Comparison batches kept on disk; the views read only the newest, older ones are history.
KEEP_ANALYSES = 3
_PAIRED = ("paired", "sign-flip", "mcnemar")
_CLUSTER_COLUMNS = frozenset(SCORES.names) - {"score", "model", "metric"}

Fetch = Callable[[pl.DataFrame, bool], dict[int, np.ndarray]]


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
        con: a connection from ``engine.warehouse.connect``.
        settings: the analysis (``engine.settings``); ``options`` (any of its fields: ``baseline``,
            ``candidate``, ``by``, ``test``, ``adjust``, ``alpha``, ``margin``, ``overlap``, ``cluster``,
            ``exclude_sources``, ...) are merged over it. With no pair rule or pattern, every variant
            is paired with its base model (``engine.pairs.default_pairs``).
        pairs: exact (baseline, candidate) model names; replaces every pattern when given.
        default_by: scopes besides ``overall`` when the settings name none.

    Returns:
        A frame with the columns of ``COLUMNS`` (see README, "Comparisons").
    """
    s = merge(settings or Settings(), **options)
    if s.cluster is not None and s.cluster not in _CLUSTER_COLUMNS:
        raise AnalysisError(f"cannot cluster on {s.cluster!r}: not a column of scores")
    scopes = s.scopes(default_by)
    models = con.sql("SELECT model, model_base, quantization FROM models ORDER BY model").pl()
    pair_list = _resolve_pairs(models, s.pair_rules, pairs)
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
        "_eh_pairs": pair_frame,
        "_eh_models": pl.DataFrame({"model": names}, schema={"model": pl.String}),
        "_eh_excluded": pl.DataFrame({"run_id": excluded}, schema={"run_id": pl.String}),
    }
    for name, frame in registered.items():
        con.register(name, frame.to_arrow())

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
            reported = con.sql(q.METRICS_SQL).pl()
            answers = con.sql(q.ANSWERS_SQL).pl() if s.test == "student" else None
            metrics_of = dict(con.sql(q.METRIC_NAMES_SQL).fetchall())
            rows = assemble(pair_frame, items, paired, reported, answers, scopes)
            rows = _add_unshared(rows, pair_frame, metrics_of)
            return run_tests(rows, s, fetch)
    finally:
        for name in registered:
            con.unregister(name)


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
# Rows: both sides' statistics per pair, metric and scope
# ---------------------------------------------------------------------------------------------


def _side(frame: pl.DataFrame, model_col: str, suffix: str, keep: Sequence[str]) -> pl.DataFrame:
    return frame.select(
        pl.col("model").alias(model_col), "metric", "scope", "key", *[pl.col(c).alias(c + suffix) for c in keep]
    )


def assemble(
    pair_frame: pl.DataFrame,
    items: pl.DataFrame,
    paired: pl.DataFrame,
    reported: pl.DataFrame,
    answers: pl.DataFrame | None,
    scopes: Sequence[str],
) -> pl.DataFrame:
    """Join both sides' statistics per pair, metric and scope; decide comparability and the primary rows.

    Returns one row per (pair, metric, scope, key) that both models have scores for (or, failing
    that, reported aggregates for), with the columns :func:`run_tests` reads.
    """
    keep = ["n", "mean", "var", "successes", "binary", "n_answers", "hib", "unit_range", "items_hash"]
    on = ["candidate", "metric", "scope", "key"]
    rows = pair_frame.join(_side(items, "baseline", "_b", keep), on="baseline").join(
        _side(items, "candidate", "_c", keep), on=on
    )
    rows = rows.join(paired, on=["pair_id", "metric", "scope", "key"], how="left").with_columns(
        pl.col("n_paired").fill_null(0), pl.lit("scores").alias("source")
    )
    if answers is not None:
        akeep = ["n_ans", "mean_ans", "var_ans"]
        rows = rows.join(_side(answers, "baseline", "_b", akeep), on=["baseline", "metric", "scope", "key"]).join(
            _side(answers, "candidate", "_c", akeep), on=on
        )
    # Shared categories or benchmarks (not the `unknown` placeholder) make a pair comparable overall.
    shared = (
        rows.filter((pl.col("scope") != "overall") & (pl.col("key") != q.UNKNOWN))
        .select("pair_id", "metric")
        .unique()
        .with_columns(pl.lit(True).alias("shares_group"))
    )
    rows = rows.join(shared, on=["pair_id", "metric"], how="left").with_columns(
        pl.when(pl.col("scope") == "overall")
        .then((pl.col("n_paired") > 0) | pl.col("shares_group").fill_null(False))
        .otherwise((pl.col("n_paired") > 0) | (pl.col("key") != q.UNKNOWN))
        .alias("comparable"),
        (pl.col("scope") == "overall").alias("primary"),
        pl.concat_str(
            [
                pl.col(c).cast(pl.String)
                for c in ("n_b", "n_c", "n_paired", "items_hash_b", "items_hash_c", "paired_hash")
            ],
            separator="/",
            ignore_nulls=True,
        ).alias("signature"),
    )
    rows = rows.drop("shares_group").filter(pl.col("scope").is_in(list(scopes)))
    return pl.concat([rows, _reported_rows(pair_frame, reported, rows, scopes)], how="diagonal_relaxed")


def _reported_rows(
    pair_frame: pl.DataFrame, reported: pl.DataFrame, scored: pl.DataFrame, scopes: Sequence[str]
) -> pl.DataFrame:
    """Rows from reported aggregates, where no scores cover the same pair, metric and key.

    A benchmark's own aggregate is a primary row (there is no overall mean of aggregates to test);
    a benchmark known only through several tasks gets a row that says so, untested.
    """
    rkeep = ["value", "se", "has_se", "n", "hib", "parts"]
    rep = pair_frame.join(_side(reported, "baseline", "_b", rkeep), on="baseline").join(
        _side(reported, "candidate", "_c", rkeep), on=["candidate", "metric", "scope", "key"]
    )
    keys = ["pair_id", "metric"]
    rep = (
        rep.join(scored.select(keys).unique(), on=keys, how="anti")
        .filter((pl.col("scope") == "benchmark") | pl.lit("category" in scopes))
        .select(
            "pair_id", "baseline", "candidate", "metric", "scope", "key",
            pl.col("n_b"), pl.col("n_c"), pl.col("value_b").alias("mean_b"), pl.col("value_c").alias("mean_c"),
            pl.col("se_b"), pl.col("se_c"), pl.col("has_se_b"), pl.col("has_se_c"), pl.col("hib_b"), pl.col("hib_c"),
            pl.max_horizontal("parts_b", "parts_c").alias("parts"),
            pl.lit(0, dtype=pl.Int64).alias("n_paired"), pl.lit("metrics").alias("source"),
            (pl.col("key") != q.UNKNOWN).alias("comparable"),
            (pl.col("scope") == "benchmark").alias("primary"),
            pl.concat_str([pl.col(c).cast(pl.String) for c in ("value_b", "value_c", "se_b", "se_c")],
                          separator="/", ignore_nulls=True).alias("signature"),
        )
    )  # fmt: skip
    if rep.height == 0:
        return rep
    # An overall row for each aggregate-only pair and metric, saying where its results are.
    overall = rep.group_by("pair_id", "baseline", "candidate", "metric").agg(
        pl.col("hib_b").first(), pl.col("hib_c").first()
    )
    overall = overall.with_columns(
        pl.lit("overall").alias("scope"), pl.lit("").alias("key"), pl.lit(0, dtype=pl.Int64).alias("n_paired"),
        pl.lit("metrics").alias("source"), pl.lit(False).alias("comparable"), pl.lit(True).alias("primary"),
        pl.lit("aggregates").alias("why_untested"),
    )  # fmt: skip
    return pl.concat([overall, rep], how="diagonal_relaxed")


def _names(metrics: list[str] | None) -> str:
    return ", ".join(metrics) if metrics else "none (no scores or aggregates, or only in excluded sources)"


def _add_unshared(rows: pl.DataFrame, pair_frame: pl.DataFrame, metrics_of: dict[str, list[str]]) -> pl.DataFrame:
    """A row for every pair that has no metric in common, saying which metrics each side has."""
    missing = pair_frame.join(rows.select("pair_id").unique(), on="pair_id", how="anti")
    if missing.height == 0:
        return rows
    extra = missing.with_columns(
        pl.lit("overall").alias("scope"), pl.lit("").alias("key"), pl.lit(0, dtype=pl.Int64).alias("n_paired"),
        pl.lit("scores").alias("source"), pl.lit(False).alias("comparable"), pl.lit(True).alias("primary"),
        pl.Series([
            f"no metric in common: baseline has {_names(metrics_of.get(b))}; candidate has {_names(metrics_of.get(c))}"
            for b, c in zip(missing["baseline"], missing["candidate"], strict=True)
        ], dtype=pl.String).alias("why_untested"),
    )  # fmt: skip
    return pl.concat([rows, extra], how="diagonal_relaxed")


# ---------------------------------------------------------------------------------------------
# Tests, in NumPy
# ---------------------------------------------------------------------------------------------


def _num(frame: pl.DataFrame, col: str) -> np.ndarray:
    if col not in frame.columns:
        return np.full(frame.height, np.nan)
    return frame[col].cast(pl.Float64).fill_null(np.nan).to_numpy().copy()


def _flag(frame: pl.DataFrame, col: str) -> np.ndarray:
    if col not in frame.columns:
        return np.zeros(frame.height, dtype=bool)
    return frame[col].fill_null(False).to_numpy().astype(bool)


def _text(frame: pl.DataFrame, col: str) -> list[str | None]:
    return frame[col].to_list() if col in frame.columns else [None] * frame.height


def _choose(test: str, a: dict[str, np.ndarray], *, unpaired_only: bool = False) -> np.ndarray:
    """The test family of every row under ``test`` (``""``: not tested)."""
    h = a["n_b"].shape[0]
    unpaired = np.select(
        [a["binary"], (np.minimum(a["n_b"], a["n_c"]) >= LARGE_N) & (a["var_b"] > 0) & (a["var_c"] > 0)],
        ["score", "welch"],
        "permutation",
    )
    if unpaired_only:
        return unpaired.astype(object)
    if test == "auto":
        chosen = np.select(
            [
                ~a["comparable"], a["reported"], (a["n_p"] > 0) & a["p_binary"],
                (a["n_p"] >= LARGE_N) & (a["d_var"] > 0), a["n_p"] > 0,
            ],
            ["", "z", "mcnemar", "paired", "sign-flip"],
            unpaired,
        )  # fmt: skip
    else:
        chosen = np.where(a["reported"], "z", np.full(h, test, dtype=object))
        chosen = np.where(a["comparable"] | (test != "auto"), chosen, "")
    return chosen.astype(object)


def _usable(chosen: np.ndarray, a: dict[str, np.ndarray]) -> np.ndarray:
    """Rows whose chosen family can serve them (others get no result and a note)."""
    paired = np.isin(chosen, _PAIRED)
    return ~(
        (paired & (a["n_p"] == 0))
        | ((chosen == "mcnemar") & ~a["p_binary"])
        | (np.isin(chosen, ["score", "fisher"]) & ~a["binary"])
        | (chosen == "")
    )


def _family(name: str, idx: np.ndarray, a: dict[str, np.ndarray], alpha: np.ndarray, fetch: Callable) -> sig.Outcome:
    """One test family's results on the rows ``idx`` (at per-row ``alpha``)."""
    g = {k: v[idx] for k, v in a.items()}
    al = alpha[idx]
    limits = (np.where(g["bounded"], -1.0, -np.inf), np.where(g["bounded"], 1.0, np.inf))
    if name == "student":
        return sig.student_t(g["n_ans_b"], g["mean_ans_b"], g["var_ans_b"], g["n_ans_c"], g["mean_ans_c"],
                             g["var_ans_c"], al)  # fmt: skip
    if name == "welch":
        return sig.welch_t(g["n_b"], g["mean_b"], g["var_b"], g["n_c"], g["mean_c"], g["var_c"], al)
    if name == "paired":
        return sig.paired_t(g["n_p"], g["d_mean"], g["d_var"], al)
    if name == "mcnemar":
        return sig.mcnemar_exact(g["n10"], g["n01"], g["n_p"], g["pmean_b"], g["pmean_c"], al)
    if name == "score":
        return sig.score_diff(np.rint(g["successes_b"]), g["n_b"], np.rint(g["successes_c"]), g["n_c"], al)
    if name == "fisher":
        return sig.fisher_exact(np.rint(g["successes_b"]), g["n_b"], np.rint(g["successes_c"]), g["n_c"], al)
    if name == "z":
        return sig.z_test(g["mean_b"], g["se_b"], g["mean_c"], g["se_c"], al)
    if name == "sign-flip":
        values = fetch(idx, True)
        return perm.sign_flip([values["d"][i] for i in range(idx.size)], al, limits=limits)
    if name == "permutation":
        values = fetch(idx, False)
        return perm.two_sample([values["b"][i] for i in range(idx.size)], [values["c"][i] for i in range(idx.size)],
                               al, limits=limits)  # fmt: skip
    raise AssertionError(name)


def _run(chosen: np.ndarray, usable: np.ndarray, a: dict[str, np.ndarray], alpha: np.ndarray,
         fetch: Callable) -> dict[str, np.ndarray]:  # fmt: skip
    """Every row's results from its chosen family (NaN where none), each family run once on its rows."""
    h = chosen.shape[0]
    out = {f: np.full(h, np.nan) for f in sig.Outcome._fields}
    for name in sorted({c for c in chosen[usable].tolist() if c}):
        idx = np.flatnonzero((chosen == name) & usable)
        result = _family(name, idx, a, alpha, fetch)
        for field, values in zip(sig.Outcome._fields, result, strict=True):
            out[field][idx] = values
    # Differences of [0, 1] scores lie in [-1, 1]: an interval never reaches past that.
    for end in ("ci_low", "ci_high"):
        out[end] = np.where(a["bounded"], np.clip(out[end], -1, 1), out[end])
    return out


def run_tests(rows: pl.DataFrame, settings: Settings, fetch_values: Fetch) -> pl.DataFrame:
    """Choose and run a test for every row of :func:`assemble`, adjust within families, decide verdicts."""
    s = settings
    h = rows.height
    a: dict[str, np.ndarray] = {c: _num(rows, c) for c in (
        "n_b", "n_c", "mean_b", "mean_c", "var_b", "var_c", "successes_b", "successes_c", "n_paired", "pmean_b",
        "pmean_c", "d_mean", "d_var", "n10", "n01", "se_b", "se_c", "n_ans_b", "n_ans_c", "mean_ans_b", "mean_ans_c",
        "var_ans_b", "var_ans_c", "n_answers_b", "n_answers_c")}  # fmt: skip
    a["n_p"] = a["n_paired"]
    a["binary"] = _flag(rows, "binary_b") & _flag(rows, "binary_c")
    a["p_binary"] = _flag(rows, "p_binary")
    a["comparable"] = _flag(rows, "comparable")
    a["reported"] = np.array(_text(rows, "source"), dtype=object) == "metrics"
    a["bounded"] = _flag(rows, "unit_range_b") & _flag(rows, "unit_range_c")
    a["se_b"] = np.where(_flag(rows, "has_se_b"), a["se_b"], np.nan)
    a["se_c"] = np.where(_flag(rows, "has_se_c"), a["se_c"], np.nan)
    primary = _flag(rows, "primary")
    why_untested = _text(rows, "why_untested")
    chosen = _choose(s.test, a)
    several_parts = a["reported"] & (_num(rows, "parts") > 1)
    chosen = np.where([w is not None for w in why_untested] | several_parts, "", chosen).astype(object)
    usable = _usable(chosen, a)

    # The family of each secondary row: its pair and metric; repeats of the same items are not tested again.
    family = [f"{p}\x00{m}" for p, m in zip(rows["pair_id"].to_list(), _text(rows, "metric"), strict=True)]
    signature = _text(rows, "signature")
    first: dict[tuple[str, str | None], int] = {}
    dup_of = np.full(h, -1)
    for i in np.argsort(~primary, kind="stable"):  # primary rows first, so repeats point at them
        if signature[i] is None or not usable[i]:
            continue
        key = (family[i], signature[i])
        if key in first:
            dup_of[i] = first[key]
        else:
            first[key] = i
    tested_secondary = usable & ~primary & (dup_of < 0)
    family_size = {f: 0 for f in family}
    for i in np.flatnonzero(tested_secondary):
        family_size[family[i]] += 1
    m = np.array([max(family_size[f], 1) for f in family], dtype=np.float64)
    alpha_row = np.where(primary, s.alpha, s.alpha / m)

    run_mask = usable & (dup_of < 0)
    res = _run(chosen, run_mask, a, alpha_row, lambda idx, paired: _fetch(rows, idx, paired, fetch_values))
    one_sided = _run(chosen, run_mask, a, 2 * alpha_row, lambda idx, paired: _fetch(rows, idx, paired, fetch_values))
    res["bound_low"], res["bound_high"] = one_sided["ci_low"], one_sided["ci_high"]

    # Partial overlap: the unpaired result on all items, beside the paired one on the shared items.
    with np.errstate(divide="ignore", invalid="ignore"):
        coverage = np.where(a["reported"], np.nan, a["n_p"] / np.maximum(a["n_b"], a["n_c"]))
    partial = ~a["reported"] & (coverage < s.overlap) & a["comparable"]
    beside_chosen = np.where(
        partial & (a["n_p"] > 0) & np.isin(chosen, _PAIRED), _choose(s.test, a, unpaired_only=True), ""
    )
    beside_chosen = beside_chosen.astype(object)
    beside = _run(beside_chosen, _usable(beside_chosen, a) & (dup_of < 0), a, alpha_row,
                  lambda idx, paired: _fetch(rows, idx, paired, fetch_values))  # fmt: skip

    # Repeats take the results of the row they repeat.
    for i in np.flatnonzero(dup_of >= 0):
        j = dup_of[i]
        chosen[i] = chosen[j]
        for d in (res, beside):
            for k in d:
                d[k][i] = d[k][j]
        beside_chosen[i] = beside_chosen[j]

    p_adjusted = _adjust(res["p_value"], primary, tested_secondary, dup_of, family, s.adjust)

    uses_pairs = np.isin(chosen, _PAIRED) & (a["n_p"] > 0)
    student = chosen == "student"
    mean_b = np.select([uses_pairs, student], [a["pmean_b"], a["mean_ans_b"]], a["mean_b"])
    mean_c = np.select([uses_pairs, student], [a["pmean_c"], a["mean_ans_c"]], a["mean_c"])
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = mean_c - mean_b
        rel = np.where(mean_b != 0, diff / mean_b * 100, np.nan)
        sd_unit = np.where(uses_pairs, np.sqrt(a["d_var"]), np.sqrt(a["var_b"] + a["var_c"]))

    hib = _directions(rows, s)
    better = np.where(hib, diff, -diff)
    direction = np.select([better > 0, better < 0, better == 0], ["improved", "degraded", "no change"], "")

    margin_abs, verdict = verdicts(
        s.margin, mean_b, res["bound_low"], res["bound_high"], hib, tested=~np.isnan(res["p_value"]),
        partial=partial,
    )  # fmt: skip
    needed = items_needed(diff, hib, margin_abs, sd_unit, alpha_row, verdict)

    n_b = np.where(student, a["n_ans_b"], a["n_b"])
    n_c = np.where(student, a["n_ans_c"], a["n_c"])
    out = pl.DataFrame(
        {
            "pair_id": rows["pair_id"], "baseline": rows["baseline"], "candidate": rows["candidate"],
            "metric": rows["metric"], "scope": rows["scope"], "key": rows["key"],
            "n_baseline": n_b, "n_candidate": n_c, "n_paired": a["n_p"],
            "n_answers_baseline": a["n_answers_b"], "n_answers_candidate": a["n_answers_c"], "coverage": coverage,
            "mean_baseline": mean_b, "mean_candidate": mean_c, "diff": diff, "rel_change_pct": rel,
            "direction": [d or None for d in direction.tolist()], "higher_is_better": hib,
            "test": [c or None for c in chosen.tolist()],
            **{f: res[f] for f in ("statistic", "p_value", "ci_low", "ci_high", "bound_low", "bound_high",
                                   "effect_size", "mde")},
            "p_adjusted": p_adjusted,
            "adjusted_over": _adjusted_over(primary, family, family_size, s.adjust, ~np.isnan(p_adjusted)),
            "margin": margin_abs, "verdict": verdict, "items_needed": needed,
            "unpaired_test": [c or None for c in beside_chosen.tolist()],
            "unpaired_diff": beside_diff(a, beside_chosen),
            "unpaired_p_value": beside["p_value"], "unpaired_ci_low": beside["ci_low"],
            "unpaired_ci_high": beside["ci_high"], "comparable": a["comparable"],
        },
        strict=False,
    )  # fmt: skip
    floats = [c for c, t in out.schema.items() if t == pl.Float64]
    out = out.with_columns(
        [pl.when(pl.col(c).is_finite()).then(pl.col(c)).otherwise(None).alias(c) for c in floats]
    ).with_columns(
        pl.when(pl.col("scope") == "category").then(pl.col("key")).otherwise(None).alias("category"),
        pl.when(pl.col("scope") == "benchmark").then(pl.col("key")).otherwise(None).alias("benchmark"),
        pl.when(pl.col("p_adjusted").is_not_null()).then(pl.col("p_adjusted") < s.alpha).alias("significant"),
        *[pl.col(c).cast(pl.Int64, strict=False) for c in ("n_baseline", "n_candidate", "n_paired",
                                                           "n_answers_baseline", "n_answers_candidate")],
        pl.Series("note", _notes(rows, a, chosen, usable, res, coverage, partial, dup_of, why_untested, s),
                  dtype=pl.String),
    )  # fmt: skip
    scope_rank = pl.col("scope").replace_strict({x: i for i, x in enumerate(SCOPES)}, return_dtype=pl.Int8)
    return out.sort(["pair_id", "metric", scope_rank, "key"], nulls_last=True).select(COLUMNS)


def beside_diff(a: dict[str, np.ndarray], beside_chosen: np.ndarray) -> np.ndarray:
    """The difference of means over all items, on rows with an unpaired result beside the paired one."""
    return np.where(beside_chosen != "", a["mean_c"] - a["mean_b"], np.nan)


def _fetch(rows: pl.DataFrame, idx: np.ndarray, paired: bool, fetch_values: Fetch) -> dict[str, list[np.ndarray]]:
    """The per-unit values of the rows ``idx``: differences (paired) or both sides' unit means."""
    base = (
        rows[idx.tolist()]
        .select("pair_id", "metric", "scope", "key")
        .with_columns(pl.Series("row", range(idx.size), dtype=pl.Int64))
    )
    empty = np.zeros(0)
    if paired:
        got = fetch_values(base.with_columns(pl.lit("").alias("side")), True)
        return {"d": [got.get(i, empty) for i in range(idx.size)]}
    sides = {}
    for side in ("baseline", "candidate"):
        got = fetch_values(base.with_columns(pl.lit(side).alias("side")), False)
        sides[side[0]] = [got.get(i, empty) for i in range(idx.size)]
    return sides


def _adjust(p: np.ndarray, primary: np.ndarray, tested_secondary: np.ndarray, dup_of: np.ndarray,
            family: list[str], method: str) -> np.ndarray:  # fmt: skip
    """Primary rows keep their p-value; secondary rows are adjusted within their pair and metric."""
    out = np.where(primary, p, np.nan)
    groups: dict[str, list[int]] = {}
    for i in np.flatnonzero(tested_secondary):
        groups.setdefault(family[i], []).append(i)
    for members in groups.values():
        idx = np.array(members)
        out[idx] = sig.adjust(p[idx], method)
    for i in np.flatnonzero(dup_of >= 0):
        out[i] = out[dup_of[i]]
    return out


def _adjusted_over(primary: np.ndarray, family: list[str], size: dict[str, int], method: str,
                   has_p: np.ndarray) -> list[str | None]:  # fmt: skip
    out: list[str | None] = []
    for i, f in enumerate(family):
        if not has_p[i]:
            out.append(None)
        elif primary[i]:
            out.append("primary")
        else:
            out.append(f"{size[f]} row(s) of this pair and metric ({method})")
    return out


def _directions(rows: pl.DataFrame, s: Settings) -> np.ndarray:
    """Each row's metric direction: evalhouse.toml's [metrics] first, then what was stored."""
    stored = _flag(rows, "hib_b") if "hib_b" in rows.columns else np.ones(rows.height, dtype=bool)
    stored = np.where(rows["hib_b"].is_null().to_numpy(), True, stored) if "hib_b" in rows.columns else stored
    if not s.directions:
        return stored
    named = []
    for metric in _text(rows, "metric"):
        name = metric or ""
        named.append(s.directions.get(name, s.directions.get(name.split(",")[0])))
    return np.array([stored[i] if d is None else d for i, d in enumerate(named)], dtype=bool)


def _notes(rows: pl.DataFrame, a: dict[str, np.ndarray], chosen: np.ndarray, usable: np.ndarray,
           res: dict[str, np.ndarray], coverage: np.ndarray, partial: np.ndarray, dup_of: np.ndarray,
           why_untested: list[str | None], s: Settings) -> list[str | None]:  # fmt: skip
    """Why each row was computed as it was, in words (what matters to read it right)."""
    scope, key, parts = _text(rows, "scope"), _text(rows, "key"), _num(rows, "parts")
    repeated = _flag(rows, "repeated")
    notes: list[str | None] = []
    for i in range(rows.height):
        t, n_p = chosen[i], int(a["n_p"][i])
        why = why_untested[i]
        parts_i: list[str] = []
        if why == "aggregates":
            parts_i.append("aggregates only (no per-item scores): each benchmark's own aggregate is a primary row")
        elif why:
            parts_i.append(why)
        elif a["reported"][i] and scope[i] == "benchmark" and parts[i] > 1:
            parts_i.append(f"no aggregate of its own stored, only its {int(parts[i])} tasks: not averaged, not tested")
        elif not a["comparable"][i]:
            parts_i.append("not comparable: no item, category or benchmark in common")
        if dup_of[i] >= 0:
            j = dup_of[i]
            other = "the overall row" if scope[j] == "overall" else f"{scope[j]} {key[j]}"
            parts_i.append(f"same items as {other}: not tested again")
        if t in _PAIRED and n_p == 0:
            parts_i.append("no items in common to pair")
        if t == "mcnemar" and n_p > 0 and not a["p_binary"][i]:
            parts_i.append("McNemar needs 0/1 scores on every paired item")
        if t in ("score", "fisher") and not a["binary"][i]:
            parts_i.append("needs 0/1 scores")
        if t in _PAIRED and n_p > 0:
            parts_i.append(f"paired on the {n_p} item(s) both answered; means are over those items")
        if repeated[i] or (a["n_answers_b"][i] > a["n_b"][i]) or (a["n_answers_c"][i] > a["n_c"][i]):
            parts_i.append("repeated answers averaged per item first")
        if partial[i] and not a["reported"][i] and t:
            parts_i.append(
                f"partial overlap: {n_p} shared of {int(a['n_b'][i])} and {int(a['n_c'][i])} items "
                f"({coverage[i]:.0%} < {s.overlap:.0%}); the gate cannot pass it"
                + ("; unpaired result on all items beside" if n_p > 0 and t in _PAIRED else "")
            )
        if t == "sign-flip":
            parts_i.append("exact sign-flip test" + (": no spread in the differences" if a["d_var"][i] == 0 else ""))
        if t == "permutation":
            parts_i.append("two-group permutation test (few items or no spread)")
        if t == "student":
            parts_i.append("the original scripts' unpaired t-test: every answer counted as independent")
        if t == "z" and not np.isnan(res["statistic"][i]):
            parts_i.append("unpaired z-test on reported aggregates (value, stderr)")
        if t == "z" and np.isnan(res["p_value"][i]):
            parts_i.append("no test: reported standard errors missing or 0")
        if usable[i] and t not in ("", "z") and np.isnan(res["p_value"][i]) and dup_of[i] < 0:
            parts_i.append("no p-value: too few items, or no variance and no difference")
        if t in ("paired", "welch", "student") and usable[i] and np.isnan(res["statistic"][i]):
            parts_i.append("zero variance: the t-test is undefined")
        if (a["mean_b"][i] == 0 or (t in _PAIRED and a["pmean_b"][i] == 0)) and a["comparable"][i]:
            parts_i.append("relative change undefined: baseline mean is 0")
        notes.append("; ".join(dict.fromkeys(parts_i)) or None)
    return notes


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
