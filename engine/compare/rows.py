"""Rows of a comparison: both sides' statistics joined per pair, metric and scope."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from engine.compare import sql as q


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


def add_unshared(rows: pl.DataFrame, pair_frame: pl.DataFrame, metrics_of: dict[str, list[str]]) -> pl.DataFrame:
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
