"""A comparison row's note: how it was computed, in words, where it matters to read it right."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.compare.arrays import PAIRED_TESTS as _PAIRED
from engine.compare.arrays import flag as _flag
from engine.compare.arrays import num as _num
from engine.compare.arrays import text as _text
from engine.settings import Settings


def notes(rows: pl.DataFrame, a: dict[str, np.ndarray], chosen: np.ndarray, usable: np.ndarray,
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
        if t in ("paired", "welch", "student") and usable[i] and np.isnan(res["statistic"][i]):
            parts_i.append("zero variance: the t-test is undefined")
        elif usable[i] and t not in ("", "z") and np.isnan(res["p_value"][i]) and dup_of[i] < 0:
            parts_i.append("no p-value: too few items, or no variance and no difference")
        if (a["mean_b"][i] == 0 or (t in _PAIRED and a["pmean_b"][i] == 0)) and a["comparable"][i]:
            parts_i.append("relative change undefined: baseline mean is 0")
        notes.append("; ".join(dict.fromkeys(parts_i)) or None)
    return notes
