"""The report's first screen: per pair, the verdict, the overall difference, and where it got worse.

The verdict is the gate's rule (engine/verdict.py) at the report's margin: pass, regressed or
inconclusive. "Where" lists the category and benchmark rows that got significantly worse (after the
family adjustment), largest drop first, with their intervals, adjusted p and items; notes that
qualify a row (partial overlap, zero variance, no shared metric) sit in the row.
"""

from __future__ import annotations

import re
from typing import Any

import polars as pl

from evalhouse.report.blocks import Block, Bullets, Cell, Code, Heading, Inline, Para, Table
from evalhouse.report.numbers import ci, count, fmt, p_text
from evalhouse.settings import Settings

# Categories and benchmarks named in the verdict table's "worse in" cell (all are listed below it).
MAX_WORSE_NAMED = 3
_ORDER = {"regressed": 0, "inconclusive": 1, "pass": 2}


def verdict_blocks(comparison: pl.DataFrame | None, why_none: str, settings: Settings) -> list[Block]:
    """The verdict table and the "where it got worse" lists."""
    blocks: list[Block] = [Heading("Verdict", 2, anchor="verdict")]
    if comparison is None or comparison.height == 0:
        return [*blocks, Para([f"No comparison: {why_none or 'no pairs'}."])]
    overall = comparison.filter(pl.col("scope") == "overall")
    comparable = overall.filter(pl.col("comparable").fill_null(True) & pl.col("metric").is_not_null())
    worse = _worse(comparison)
    flips = "flips_down" in comparison.columns
    rows: list[list[Cell]] = []
    kinds: list[str] = []
    ordered = sorted(
        comparable.iter_rows(named=True),
        key=lambda r: (_ORDER.get(r["verdict"] or "inconclusive", 1), _gain(r["diff"], r["higher_is_better"])),
    )
    for r in ordered:
        verdict = r["verdict"] or "inconclusive"
        here = worse.get((r["baseline"], r["candidate"], r["metric"]), [])
        worse_cell: list[Inline] = []
        for i, w in enumerate(here[:MAX_WORSE_NAMED]):
            worse_cell += [", " if i else "", Code(w["where"]), f" {fmt(w['diff'], sign=True)}"]
        if len(here) > MAX_WORSE_NAMED:
            worse_cell.append(f" (+{len(here) - MAX_WORSE_NAMED} more)")
        n = r["n_paired"] if r["n_paired"] else min(r["n_baseline"] or 0, r["n_candidate"] or 0)
        row: list[Cell] = [
            verdict,
            [Code(r["candidate"]), " vs ", Code(r["baseline"])],
            Code(r["metric"]),
            f"{fmt(r['diff'], sign=True)} {ci(r)}".strip(),
            f"{fmt(r['mean_baseline'])} → {fmt(r['mean_candidate'])}",
            f"{n:,}" if r["n_paired"] else f"{n:,} (no shared items: unpaired)",
            worse_cell or "—",
        ]
        if flips:
            row.append(_flips(r))
        row.append(_row_note(r))
        rows.append(row)
        kinds.append(verdict)
    columns = ["verdict", "pair", "metric", "difference [CI]", "mean b → c", "items", "worse in"]
    columns += ["flips ↓/↑"] if flips else []
    columns += ["notes"]
    tally = {v: kinds.count(v) for v in _ORDER}
    blocks.append(
        Para(
            [
                f"{count(len(rows), 'comparison')}: {tally['regressed']} regressed, {tally['inconclusive']} "
                f"inconclusive, {tally['pass']} pass — the gate's rule at a margin of {settings.margin} "
                f"(one-sided bounds at 1 − {settings.alpha:g}): pass when the candidate is at worst the margin "
                "worse, regressed when it is surely worse by more. Difference = candidate − baseline over the "
                "items both answered (repeated answers averaged per item first); a row marked unpaired compares "
                "different items."
            ]
        )
    )
    blocks.append(Table(columns, rows, row_kinds=kinds, id="verdict-table"))
    not_comparable = overall.filter(~pl.col("comparable").fill_null(True) | pl.col("metric").is_null())
    if not_comparable.height:
        blocks.append(
            Para(
                [
                    "Not comparable (no item, category, benchmark or metric in common; no verdict): ",
                    *_join(
                        [
                            [Code(r["candidate"]), " vs ", Code(r["baseline"])]
                            for r in not_comparable.iter_rows(named=True)
                        ]
                    ),
                    ".",
                ],
                kind="note",
            )
        )
    blocks += _where(comparison, worse, settings)
    return blocks


def _worse(comparison: pl.DataFrame) -> dict[tuple[Any, Any, Any], list[dict[str, Any]]]:
    """Per (baseline, candidate, metric): the category and benchmark rows significantly worse, largest
    drop first (direction-aware: ``direction`` is already turned for lower-is-better metrics)."""
    rows = comparison.filter(
        (pl.col("scope") != "overall") & (pl.col("direction") == "degraded") & pl.col("significant").fill_null(False)
    ).sort(_worse_first(pl.col("rel_change_pct")))
    out: dict[tuple[Any, Any, Any], list[dict[str, Any]]] = {}
    for r in rows.iter_rows(named=True):
        where = r["category"] if r["scope"] == "category" else r["benchmark"]
        out.setdefault((r["baseline"], r["candidate"], r["metric"]), []).append({**r, "where": where or "unknown"})
    return out


def _where(
    comparison: pl.DataFrame, worse: dict[tuple[Any, Any, Any], list[dict[str, Any]]], settings: Settings
) -> list[Block]:
    blocks: list[Block] = [Heading("Where it got worse", 3, anchor="where")]
    if not worse:
        return [
            *blocks,
            Para(
                [
                    f"No category or benchmark is significantly worse ({settings.adjust_name} within each pair "
                    "and metric)."
                ]
            ),
        ]
    blocks.append(
        Para(
            [
                "Categories and benchmarks significantly worse, largest relative change for the worse first; "
                f"p {settings.adjust_name} "
                "within each pair and metric, intervals Bonferroni-adjusted to match. ",
                "The items that changed: ",
                Code("evalhouse flips -b BASELINE -c CANDIDATE --category NAME"),
                ".",
            ]
        )
    )
    for (baseline, candidate, metric), rows in worse.items():
        blocks.append(Para([Code(candidate), " vs ", Code(baseline), " (", Code(metric), "):"]))
        items: list[list[Inline]] = []
        for r in rows:
            n = r["n_paired"] if r["n_paired"] else min(r["n_baseline"] or 0, r["n_candidate"] or 0)
            rel = "" if r["rel_change_pct"] is None else f" ({r['rel_change_pct']:+.1f} %)"
            item: list[Inline] = [
                f"{r['scope']} ",
                Code(r["where"]),
                f": {fmt(r['mean_baseline'])} → {fmt(r['mean_candidate'])}, {fmt(r['diff'], sign=True)} {ci(r)}{rel}, "
                f"adjusted {p_text(r['p_adjusted'])}, {count(n, 'item')}",
            ]
            if "flips_down" in r and r.get("flips_down") is not None:
                item.append(f", {r['flips_down']} answers flipped to wrong, {r.get('flips_up') or 0} to right")
            if r["note"]:
                item.append(f" — {r['note']}")
            items.append(item)
        blocks.append(Bullets(items))
    return blocks


def _worse_first(change: pl.Expr) -> pl.Expr:
    """A sort key putting the largest change for the worse first, whatever the metric's direction."""
    return (change * pl.when(pl.col("higher_is_better").fill_null(True)).then(1.0).otherwise(-1.0)).fill_null(0.0)


def _gain(diff: float | None, higher_is_better: bool | None) -> float:
    return 0.0 if diff is None else (diff if higher_is_better is not False else -diff)


def _flips(r: dict[str, Any]) -> str:
    down, up = r.get("flips_down"), r.get("flips_up")
    return "" if down is None and up is None else f"{down or 0} / {up or 0}"


# Said by the table's own columns (items, means on the shared items): not repeated in the notes.
_SAID = re.compile(r"paired on the [\d,]+ item\(s\) both answered; means are over those(; )?")


def _row_note(r: dict[str, Any]) -> Cell:
    return _SAID.sub("", r["note"] or "")


def _join(groups: list[list[Inline]]) -> list[Inline]:
    out: list[Inline] = []
    for i, g in enumerate(groups):
        out += ([", "] if i else []) + g
    return out
