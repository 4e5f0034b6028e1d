"""The gate's rule: a non-inferiority test with three outcomes, per comparison row.

With the one-sided (1 - alpha) bounds of candidate - baseline, turned so that positive is better
(lower-is-better metrics flipped), and the margin ``M`` in score units:

- **pass** when the lower bound lies above ``-M``: the candidate is at worst ``M`` worse;
- **regressed** when the upper bound lies below ``-M``: it is worse by more than ``M`` (below 0
  when ``M`` is 0);
- **inconclusive** otherwise, and whenever the row could not be tested or its shared items cover
  too little of either side (partial overlap): such a row is never a pass. A drop within the
  baseline's run-to-run noise floor (engine/compare/stability.py) is inconclusive, not regressed.

>>> import numpy as np
>>> from evalhouse.settings import Margin
>>> m, v = verdicts(Margin(0.02, False), np.array([0.8, 0.8, 0.8]), np.array([-0.01, -0.2, -0.1]),
...                 np.array([0.02, -0.05, 0.05]), np.array([True] * 3), tested=np.array([True] * 3),
...                 partial=np.array([False] * 3))
>>> v
['pass', 'regressed', 'inconclusive']
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import special

from evalhouse.settings import Margin, Settings
from evalhouse.significance import POWER

VERDICTS = ("pass", "regressed", "inconclusive")


def verdicts(
    margin: Margin | None,
    mean_baseline: np.ndarray,
    bound_low: np.ndarray,
    bound_high: np.ndarray,
    higher_is_better: np.ndarray,
    *,
    tested: np.ndarray,
    partial: np.ndarray,
) -> tuple[np.ndarray, list[str | None]]:
    """The margin in score units and the verdict of every row (None everywhere without a margin).

    Args:
        margin: the gate's margin; None: no verdicts.
        mean_baseline: the baseline mean the relative margin is taken of.
        bound_low, bound_high: one-sided (1 - alpha) bounds of candidate - baseline (NaN: none).
        higher_is_better: each row's metric direction.
        tested: rows with a test result.
        partial: rows whose shared items cover too little (never a pass).
    """
    h = mean_baseline.shape[0]
    if margin is None:
        return np.full(h, np.nan), [None] * h
    m = np.abs(mean_baseline) * margin.value if margin.relative else np.full(h, margin.value)
    # Bounds of the gain (positive = better), whatever the metric's direction.
    gain_low = np.where(higher_is_better, bound_low, -bound_high)
    gain_high = np.where(higher_is_better, bound_high, -bound_low)
    with np.errstate(invalid="ignore"):
        ok = tested & ~np.isnan(gain_low) & ~np.isnan(gain_high) & ~np.isnan(m)
        passed = ok & (gain_low > -m) & ~partial
        regressed = ok & (gain_high < -m)
    out = np.select([regressed, passed], ["regressed", "pass"], "inconclusive")
    return m, out.tolist()


def items_needed(
    diff: np.ndarray,
    higher_is_better: np.ndarray,
    margin: np.ndarray,
    sd: np.ndarray,
    alpha: np.ndarray,
    verdict: list[str | None],
) -> np.ndarray:
    """Items per model that would decide each inconclusive row, if its difference and spread held.

    The n at which a one-sided test at ``alpha`` has 80 % power to put the bound on the observed
    side of ``-margin``: ``((z(1 - alpha) + z(0.8)) * sd / |gain + margin|)^2``, with ``sd`` the
    per-item standard deviation of the differences (paired) or ``sqrt(var_b + var_c)`` (unpaired).
    NaN for decided rows, without spread, or when the difference sits on the margin.

    >>> int(items_needed(np.array([-0.01]), np.array([True]), np.array([0.02]), np.array([0.3]),
    ...                  np.array([0.05]), ["inconclusive"])[0])
    5565
    """
    gain = np.where(higher_is_better, diff, -diff)
    z = special.ndtri(1 - np.asarray(alpha, dtype=np.float64)) + special.ndtri(POWER)
    with np.errstate(divide="ignore", invalid="ignore"):
        n = np.ceil((z * sd / np.abs(gain + margin)) ** 2)
    undecided = np.array([v == "inconclusive" for v in verdict], dtype=bool)
    return np.where(undecided & np.isfinite(n) & (n > 0) & (sd > 0), n, np.nan)


def gate_lines(frame: pl.DataFrame, settings: Settings) -> list[str]:
    """One line per row (verdict, where, means, the deciding bound against the margin, n), then a tally."""
    from evalhouse.tabular import _cell

    lines = []
    for r in frame.iter_rows(named=True):
        where = r["scope"] if r["scope"] == "overall" else f"{r['scope']} {_cell(r['category'] or r['benchmark'])}"
        verdict = (r["verdict"] or "inconclusive").upper()
        head = f"{verdict:<12}  {_cell(r['baseline'])} -> {_cell(r['candidate'])}  {where}"
        if r["metric"] is not None:
            head += f"  {_cell(r['metric'])}"
        parts = []
        if r["mean_baseline"] is not None and r["mean_candidate"] is not None:
            rel = "" if r["rel_change_pct"] is None else f" ({r['rel_change_pct']:+.1f} %)"
            parts.append(f"{r['mean_baseline']:.4f} -> {r['mean_candidate']:.4f}{rel}")
        lo, hi, m = r["bound_low"], r["bound_high"], r["margin"]
        if lo is not None and hi is not None and m is not None:
            flip = r["higher_is_better"] is False
            g_lo, g_hi = (-hi, -lo) if flip else (lo, hi)
            turned = " (lower is better: bounds of baseline - candidate)" if flip else ""
            if r["verdict"] == "pass":
                parts.append(f"lower bound {g_lo:+.4f} > -margin {-m:+.4f}{turned}")
            elif r["verdict"] == "regressed":
                parts.append(f"upper bound {g_hi:+.4f} < -margin {-m:+.4f}{turned}")
            else:
                parts.append(f"bounds [{g_lo:+.4f}, {g_hi:+.4f}] around -margin {-m:+.4f}{turned}")
        n = r["n_paired"] if r["n_paired"] else min(r["n_baseline"] or 0, r["n_candidate"] or 0)
        if r["test"] is not None:
            parts.append(f"n {n} items ({r['test']})")
        if r["verdict"] == "inconclusive":
            if r["mde"] is not None:
                parts.append(f"MDE {r['mde']:.4f}")
            if r["items_needed"] is not None:
                parts.append(f"about {r['items_needed']:,} items would decide")
            if r["note"] and (r["test"] is None or "partial overlap" in r["note"] or r["p_value"] is None):
                parts.append(_cell(r["note"]))
        lines.append(head + ": " + "; ".join(parts) if parts else head)
    counts = {v: sum(1 for x in frame["verdict"].to_list() if x == v) for v in VERDICTS}
    lines.append(
        f"gate: {counts['pass']} pass, {counts['regressed']} regressed, {counts['inconclusive']} inconclusive "
        f"(margin {settings.margin}, one-sided bounds at 1 - {settings.alpha:g}; category/benchmark rows "
        f"Bonferroni within their pair and metric)"
    )
    return lines
