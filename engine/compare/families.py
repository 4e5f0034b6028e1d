"""Choosing and running a test family for every comparison row; families, adjustment, verdicts."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from engine import permutation as perm
from engine import significance as sig
from engine.compare.arrays import PAIRED_TESTS as _PAIRED
from engine.compare.arrays import flag as _flag
from engine.compare.arrays import num as _num
from engine.compare.arrays import text as _text
from engine.compare.notes import notes as _notes
from engine.settings import SCOPES, Settings
from engine.verdict import items_needed, verdicts

# Below this many items (or without spread) a t-test's p-value rests on its normal approximation
# more than on the data: exact permutation tests are used instead.
LARGE_N = 30

Fetch = Callable[[pl.DataFrame, bool], dict[int, np.ndarray]]


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
        if name in ("student", "welch", "paired"):
            # No spread: SciPy's limit is p = 0 with a zero-width interval, a verdict from nothing.
            # Only a forced t-test gets here (auto sends such rows to the exact tests).
            degenerate = ~np.isfinite(result.statistic)
            result = sig.Outcome(*(np.where(degenerate, np.nan, v) for v in result))
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
    return out.sort(["pair_id", "metric", scope_rank, "key"], nulls_last=True)


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
        groups.setdefault(family[i], []).append(int(i))
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
