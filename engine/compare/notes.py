"""A comparison row's note: how it was computed, in words, where it matters to read it right."""

from __future__ import annotations

import numpy as np
import polars as pl

from evalhouse.compare.arrays import LARGE_N, PAIRED_TESTS, RESAMPLED_TESTS, flag, num, text
from evalhouse.settings import Settings


def notes(rows: pl.DataFrame, a: dict[str, np.ndarray], chosen: np.ndarray, usable: np.ndarray,
          res: dict[str, np.ndarray], coverage: np.ndarray, partial: np.ndarray, dup_of: np.ndarray,
          mean_b: np.ndarray, s: Settings, extra: dict[str, np.ndarray]) -> list[str | None]:  # fmt: skip
    """Why each row was computed as it was, in words (what matters to read it right), and what the
    test alone does not say: answers that flipped, a difference inside the baseline's run-to-run
    noise, the items that would decide a row that is not significant (``extra``: the columns of
    ``evalhouse.compare.stability``, and ``needed``)."""
    scope, key, bench, parts = text(rows, "scope"), text(rows, "key"), text(rows, "bench"), num(rows, "parts")
    why_untested = text(rows, "why_untested")
    repeated = flag(rows, "repeated")
    unit = "item" if s.cluster in (None, "item_id") else f"{s.cluster} cluster"
    out: list[str | None] = []
    for i in range(rows.height):
        t, n_p = chosen[i], int(a["n_p"][i])
        why = why_untested[i]
        say: list[str] = []
        if why == "aggregates":
            say.append("aggregates only (no per-item scores): each benchmark's own aggregate is a primary row")
        elif why:
            say.append(why)
        elif a["reported"][i] and parts[i] > 1:
            say.append(f"no aggregate of its own stored, only its {int(parts[i])} tasks: not averaged, not tested")
        elif not a["comparable"][i]:
            say.append("not comparable: no item, category or benchmark in common")
        if dup_of[i] >= 0:
            j = dup_of[i]
            other = "the overall row" if scope[j] == "overall" else f"{scope[j]} {key[j]}"
            if scope[j] == "category" and bench[j] != "unknown":
                other += f" of {bench[j]}"
            say.append(f"same items as {other}: not tested again")
        if t in PAIRED_TESTS and n_p == 0:
            say.append("no items in common to pair")
        if t == "mcnemar" and n_p > 0 and not a["p_binary"][i]:
            say.append("McNemar needs 0/1 scores on every paired item")
        if t in ("score", "fisher") and not a["binary"][i]:
            say.append("needs 0/1 scores")
        if t in PAIRED_TESTS and n_p > 0:
            say.append(f"paired on the {n_p} {unit}(s) both answered; means are over those")
        if a["n_changed"][i] > 0:
            say.append(
                f"{int(a['n_changed'][i])} item(s) with the same id changed content between the runs "
                "(item_hash differs): not paired"
            )
        if repeated[i] or (a["n_answers_b"][i] > a["n_items_b"][i]) or (a["n_answers_c"][i] > a["n_items_c"][i]):
            say.append("repeated answers averaged per item first")
        if partial[i] and not a["reported"][i] and t:
            say.append(
                f"partial overlap: {int(a['n_paired_items'][i])} shared of {int(a['n_items_b'][i])} and "
                f"{int(a['n_items_c'][i])} items ({coverage[i]:.0%} < {s.overlap:.0%}); the gate cannot pass it"
                + ("; unpaired result on all items beside" if n_p > 0 and t in PAIRED_TESTS else "")
            )
        if t == "sign-flip":
            how = "exact" if n_p <= 16 else "Monte Carlo, 9,999 draws"
            say.append(f"sign-flip test ({how}; assumes differences symmetric about their mean)")
        if t == "permutation":
            say.append("two-group permutation test (few items or no spread)")
        if t in RESAMPLED_TESTS:
            say.append(f"no gate verdict below {LARGE_N} {unit}s with spread")
            if np.isnan(res["ci_low"][i]) and not np.isnan(res["p_value"][i]):
                say.append("no spread: no interval")
        if t == "student":
            say.append("the original scripts' unpaired t-test: every answer counted as independent; no gate verdict")
        if t == "z" and not np.isnan(res["statistic"][i]):
            say.append("unpaired z-test on reported aggregates (value, stderr)")
        if t == "z" and np.isnan(res["p_value"][i]):
            say.append("no test: a reported standard error is missing or 0")
        if t in ("paired", "welch", "student") and usable[i] and np.isnan(res["statistic"][i]):
            say.append("zero variance: the t-test is undefined")
        elif usable[i] and t not in ("", "z") and np.isnan(res["p_value"][i]) and dup_of[i] < 0:
            say.append("no p-value: too few items, or no variance and no difference")
        if mean_b[i] == 0 and a["comparable"][i]:
            say.append("relative change undefined: baseline mean is 0")
        down, up = extra["flips_down"][i], extra["flips_up"][i]
        if down + up > 0:
            say.append(f"{int(down + up)} of {int(a['n_paired_items'][i])} paired items flipped "
                       f"({extra['flip_rate'][i]:.1%}: {int(down)} down, {int(up)} up)")  # fmt: skip
        if extra["within_noise"][i] == 1:
            say.append(f"difference within the baseline's run-to-run noise (floor {extra['noise_floor'][i]:.4f}, "
                       f"from {int(extra['noise_runs'][i])} runs)")  # fmt: skip
        if s.margin is None and np.isfinite(extra["needed"][i]) and dup_of[i] < 0:
            say.append(f"not significant: about {int(extra['needed'][i]):,} items would detect a difference "
                       "this size (80 % power)")  # fmt: skip
        out.append("; ".join(dict.fromkeys(say)) or None)
    return out
