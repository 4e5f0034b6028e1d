"""Rows of a comparison: both sides' statistics joined per pair, metric and scope."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from evalhouse.compare import sql as q

# What a row is about: the metric, the scope, its key (category or benchmark) and the benchmark a
# category belongs to. A key may be NULL (a NULL category), and NULL matches NULL here.
KEY = ["metric", "scope", "key", "bench"]


def _side(frame: pl.DataFrame, model_col: str, suffix: str, keep: Sequence[str]) -> pl.DataFrame:
    return frame.select(pl.col("model").alias(model_col), *KEY, *[pl.col(c).alias(c + suffix) for c in keep])


def _join(left: pl.DataFrame, right: pl.DataFrame, on: list[str], how: str = "inner") -> pl.DataFrame:
    return left.join(right, on=on, how=how, nulls_equal=True)  # type: ignore[arg-type]


def assemble(
    pair_frame: pl.DataFrame,
    items: pl.DataFrame,
    paired: pl.DataFrame,
    reported: pl.DataFrame,
    answers: pl.DataFrame | None,
    scopes: Sequence[str],
    changed: pl.DataFrame | None = None,
    noise: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Join both sides' statistics per pair, metric and scope; decide comparability and the primary rows.

    Returns one row per (pair, metric, scope, key) that both models have scores for (or, failing
    that, reported aggregates for), with the columns :func:`run_tests` reads; ``noise`` (the sums of
    ``evalhouse.noise.noise_sql`` for the baselines) adds the baseline's run-to-run variance of the mean.
    """
    keep = ["n", "n_items", "mean", "var", "successes", "binary", "n_answers", "hib", "unit_range", "items_hash"]
    rows = _join(pair_frame.join(_side(items, "baseline", "_b", keep), on="baseline"),
                 _side(items, "candidate", "_c", keep), ["candidate", *KEY])  # fmt: skip
    rows = _join(rows, paired, ["pair_id", *KEY], how="left").with_columns(
        pl.col("n_paired").fill_null(0), pl.col("n_paired_items").fill_null(0), pl.lit("scores").alias("source")
    )
    if changed is not None:
        rows = _join(rows, changed, ["pair_id", *KEY], how="left")
    rows = rows.with_columns(pl.col("n_changed").fill_null(0) if "n_changed" in rows.columns
                             else pl.lit(0, dtype=pl.Int64).alias("n_changed"))  # fmt: skip
    if noise is not None:  # the baseline's run-to-run noise in each scope (evalhouse.noise), where it has some
        baseline_noise = noise.select(pl.col("model").alias("baseline"), *KEY, pl.col("var_run").alias("noise_var"),
                                      pl.col("n_runs").alias("noise_runs"))  # fmt: skip
        rows = _join(rows, baseline_noise, ["baseline", *KEY], how="left")
    if answers is not None:
        akeep = ["n_ans", "mean_ans", "var_ans"]
        rows = _join(rows, _side(answers, "baseline", "_b", akeep), ["baseline", *KEY])
        rows = _join(rows, _side(answers, "candidate", "_c", akeep), ["candidate", *KEY])
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
                for c in ("n_items_b", "n_items_c", "n_paired_items", "items_hash_b", "items_hash_c", "paired_hash")
            ],
            separator="/",
            ignore_nulls=True,
        ).alias("signature"),
    )
    rows = rows.drop("shares_group")
    # Aggregates of what the scores cover (at any scope, shown or not) add nothing: only the rest.
    extra = _reported_rows(pair_frame, reported, rows, scopes)
    return pl.concat([rows.filter(pl.col("scope").is_in(list(scopes))), extra], how="diagonal_relaxed")


def _reported_rows(
    pair_frame: pl.DataFrame, reported: pl.DataFrame, scored: pl.DataFrame, scopes: Sequence[str]
) -> pl.DataFrame:
    """Rows from reported aggregates, where no scores cover the same pair, metric, scope and key.

    A benchmark's own aggregate is a primary row (there is no overall mean of aggregates to test);
    a benchmark or category known only through several tasks gets a row that says so, untested.
    """
    rkeep = ["value", "se", "has_se", "n", "hib", "parts", "tasks_hash"]
    rep = _join(pair_frame.join(_side(reported, "baseline", "_b", rkeep), on="baseline"),
                _side(reported, "candidate", "_c", rkeep), ["candidate", *KEY])  # fmt: skip
    rep = (
        _join(rep, scored.select("pair_id", *KEY).unique(), ["pair_id", *KEY], how="anti")
        .filter((pl.col("scope") == "benchmark") | pl.lit("category" in scopes))
        .select(
            "pair_id", "baseline", "candidate", *KEY,
            pl.col("n_b"), pl.col("n_c"), pl.col("value_b").alias("mean_b"), pl.col("value_c").alias("mean_c"),
            pl.col("se_b"), pl.col("se_c"), pl.col("has_se_b"), pl.col("has_se_c"), pl.col("hib_b"), pl.col("hib_c"),
            pl.max_horizontal("parts_b", "parts_c").alias("parts"),
            pl.lit(0, dtype=pl.Int64).alias("n_paired"), pl.lit("metrics").alias("source"),
            (pl.col("key") != q.UNKNOWN).alias("comparable"),
            (pl.col("scope") == "benchmark").alias("primary"),
            # The same tasks on both sides: a category row holding a benchmark's one task repeats it.
            pl.concat_str([pl.lit("tasks"), pl.col("tasks_hash_b").cast(pl.String),
                           pl.col("tasks_hash_c").cast(pl.String)], separator="/").alias("signature"),
        )
    )  # fmt: skip
    # An overall row for each pair and metric known only from aggregates, saying where its results are.
    only = rep.join(scored.select("pair_id", "metric").unique(), on=["pair_id", "metric"], how="anti")
    if only.height == 0:
        return rep
    overall = only.group_by("pair_id", "baseline", "candidate", "metric").agg(
        pl.col("hib_b").first(), pl.col("hib_c").first()
    )
    overall = overall.with_columns(
        pl.lit("overall").alias("scope"), pl.lit("").alias("key"), pl.lit("").alias("bench"),
        pl.lit(0, dtype=pl.Int64).alias("n_paired"), pl.lit("metrics").alias("source"),
        pl.lit(False).alias("comparable"), pl.lit(True).alias("primary"), pl.lit("aggregates").alias("why_untested"),
    )  # fmt: skip
    return pl.concat([overall, rep], how="diagonal_relaxed")


def _names(metrics: list[str] | None) -> str:
    return ", ".join(metrics) if metrics else "none (no scores or aggregates, or only in excluded sources)"


def add_unshared(rows: pl.DataFrame, pair_frame: pl.DataFrame, metrics_of: dict[str, list[str]]) -> pl.DataFrame:
    """A row for every pair that has no metric in common, saying which metrics each side has."""
    missing = pair_frame.join(rows.select("pair_id").unique(), on="pair_id", how="anti")
    if missing.height == 0:
        return rows
    extra = missing.with_columns(
        pl.lit("overall").alias("scope"), pl.lit("").alias("key"), pl.lit("").alias("bench"),
        pl.lit(0, dtype=pl.Int64).alias("n_paired"), pl.lit("scores").alias("source"),
        pl.lit(False).alias("comparable"), pl.lit(True).alias("primary"),
        pl.Series([
            f"no metric in common: baseline has {_names(metrics_of.get(b))}; candidate has {_names(metrics_of.get(c))}"
            for b, c in zip(missing["baseline"], missing["candidate"], strict=True)
        ], dtype=pl.String).alias("why_untested"),
    )  # fmt: skip
    return pl.concat([rows, extra], how="diagonal_relaxed")
