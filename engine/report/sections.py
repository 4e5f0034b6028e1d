"""The report's sections after the verdict: comparisons in detail, notes, provenance.

Tables too long to read are capped with a note; every table is written whole as CSV beside the
report (``data/``).
"""

from __future__ import annotations

import polars as pl

from evalhouse import charts
from evalhouse.escape import shorten
from evalhouse.report.blocks import Block, Bullets, Cell, Code, Figure, Heading, Para, Table
from evalhouse.report.numbers import ci, count, fmt, p
from evalhouse.settings import Settings

# Longest metric name a chart title or heading shows (longer ones keep both ends).
LABEL_CHARS = 60
# Rows shown in a document table before it is capped (the CSV beside it has them all).
MAX_TABLE_ROWS = 40

TEST_NAMES = {
    "paired": "paired t-test on the items both models answered",
    "sign-flip": "exact sign-flip test on the items both models answered",
    "mcnemar": "exact McNemar test on paired 0/1 scores",
    "score": "score test of two proportions (no items in common)",
    "permutation": "two-group permutation test (no items in common)",
    "fisher": "Fisher's exact test on 0/1 scores (no items in common)",
    "welch": "Welch's t-test (unequal variances; no items in common)",
    "student": "the original scripts' Student t-test (every answer counted as independent)",
    "z": "z-test on reported aggregates (value and standard error)",
}


def comparison_blocks(comparison: pl.DataFrame, metric: str, settings: Settings) -> list[Block]:
    """Every comparison row: overall rows per metric with the difference chart, then per pair and
    metric its category and benchmark rows."""
    overall = comparison.filter(pl.col("scope") == "overall")
    blocks: list[Block] = [
        Heading("Comparisons", 2, anchor="comparisons"),
        Para(
            [
                f"Overall rows are the primary results at alpha {settings.alpha:g} (not adjusted); category and "
                f"benchmark rows are {settings.adjust_name} within their pair and metric, with Bonferroni-adjusted "
                "intervals. Relative change is n/a where the baseline mean is 0. Where the models answered the same "
                "items the test is paired and the means are over those items only."
            ]
        ),
        capped(compare_table(overall.sort(["metric", "diff"], nulls_last=True), scope=False)),
    ]
    drawn = _short_metrics(overall.filter(pl.col("comparable").fill_null(True) & pl.col("diff").is_not_null()))
    if drawn.height:
        blocks.append(
            Figure(
                "differences",
                charts.degradation(drawn),
                "Difference per pair (candidate − baseline), one panel per metric",
                note="Pairs that are not comparable are listed under the verdict, not drawn.",
            )
        )
    detail = comparison.filter(pl.col("scope") != "overall")
    groups = (
        detail.select("baseline", "candidate", "metric")
        .unique(maintain_order=True)
        .sort("baseline", "candidate", "metric", nulls_last=True)
    )
    cat = _short_metrics(detail.filter((pl.col("scope") == "category") & (pl.col("metric") == metric)))
    label = shorten(metric, LABEL_CHARS)
    if cat.height:
        blocks.append(Heading(f"Per category ({label})", 3))
        blocks.append(
            Figure("relative_change", charts.relative_change_heatmap(cat), f"Relative change per category ({label})")
        )
        blocks.append(
            Figure(
                "baseline_vs_candidate",
                charts.baseline_vs_candidate(cat),
                f"Baseline vs candidate per category ({label})",
            )
        )
    for g in groups.iter_rows(named=True):
        rows = detail.filter(
            (pl.col("baseline") == g["baseline"])
            & (pl.col("candidate") == g["candidate"])
            & (pl.col("metric").eq_missing(g["metric"]))
        ).sort(
            [pl.col("significant").fill_null(False), pl.col("p_adjusted")], descending=[True, False], nulls_last=True
        )
        blocks.append(
            Para(
                [
                    Code(g["candidate"]),
                    " vs ",
                    Code(g["baseline"]),
                    " (",
                    Code(g["metric"] or "none"),
                    f"): {count(rows.height, 'row')}",
                ]
            )
        )
        blocks.append(capped(compare_table(rows, scope=True)))
    return blocks


def compare_table(frame: pl.DataFrame, *, scope: bool) -> Table:
    cols = ["baseline", "candidate", "metric", *(["scope", "where"] if scope else []), "n (b / c / paired)",
            "mean b", "mean c", "diff [CI]", "rel %", "test", "p adj", "result"]  # fmt: skip
    rows: list[list[Cell]] = []
    for r in frame.iter_rows(named=True):
        result = (
            "not comparable"
            if not r["comparable"]
            else (f"{r['direction']}{', significant' if r['significant'] else ''}" if r["direction"] else "")
        )
        where: list[Cell] = [r["scope"], Code(r["category"] or r["benchmark"] or "")] if scope else []
        rows.append(
            [
                Code(r["baseline"]), Code(r["candidate"]), Code(r["metric"] or "(none in common)"), *where,
                " / ".join("—" if v is None else f"{v:,}" for v in (r["n_baseline"], r["n_candidate"], r["n_paired"])),
                fmt(r["mean_baseline"]),
                fmt(r["mean_candidate"]), f"{fmt(r['diff'], sign=True)} {ci(r)}".strip(),
                "n/a" if r["rel_change_pct"] is None else f"{r['rel_change_pct']:+.1f}", r["test"] or "",
                p(r["p_adjusted"]), result,
            ]
        )  # fmt: skip
    return Table(cols, rows)


def _short_metrics(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with metric names cut for charts (their panels are titled by metric)."""
    cut = charts.short_labels(frame["metric"].drop_nulls().unique().to_list(), LABEL_CHARS)
    return frame.with_columns(pl.col("metric").replace_strict(cut, default=None, return_dtype=pl.String))


def capped(table: Table) -> Table:
    if len(table.rows) > MAX_TABLE_ROWS:
        table.note = f"First {MAX_TABLE_ROWS} of {len(table.rows)} rows; all are in data/."
        table.rows = table.rows[:MAX_TABLE_ROWS]
    return table


def notes_blocks(comparison: pl.DataFrame) -> list[Block]:
    tests = comparison.filter(pl.col("test").is_not_null()).group_by("test").len().sort("len", descending=True)
    return [
        Heading("Tests used", 3),
        Para(["Chosen per row: paired when the models answered the same items."]),
        Bullets([[f"{TEST_NAMES.get(t, t)}: {count(n, 'row')}"] for t, n in tests.iter_rows()]),
    ]


def provenance_blocks(provenance: dict[str, str]) -> list[Block]:
    return [
        Heading("Provenance", 2),
        Table(["", ""], [[k, v] for k, v in provenance.items()]),
        Para(["Every table in full, as CSV: ", Code("data/"), "."]),
    ]


def stats_table(frame: pl.DataFrame, keys: list[str], *, sort: list[str], descending: bool = True) -> Table:
    frame = frame.sort(sort, descending=[False, descending] if len(sort) == 2 else descending, nulls_last=True)
    rows: list[list[Cell]] = [
        [
            *(Code(str(r[k])) for k in keys),
            f"{r['n']:,}",
            fmt(r["mean"]),
            ci(r),
            fmt(r.get("std")),
            fmt(r.get("median")),
        ]
        for r in frame.iter_rows(named=True)
    ]
    return capped(Table([*keys, "n", "mean", "95 % CI", "std", "median"], rows))


def ci_methods(frame: pl.DataFrame) -> str:
    names = {"t": "Student t", "wilson": "Wilson score interval for 0/1 scores", "cluster-t": "cluster-robust t"}
    used = sorted(set(frame["ci_method"].drop_nulls().to_list())) if "ci_method" in frame.columns else []
    return ", ".join(names.get(m, m) for m in used) or "no interval"
