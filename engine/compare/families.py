"""Choosing and running a test family for every comparison row; families, adjustment, verdicts."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from evalhouse import permutation as perm
from evalhouse import significance as sig
from evalhouse.compare.arrays import LARGE_N, PAIRED_TESTS, RESAMPLED_TESTS, flag, num, text
from evalhouse.compare.notes import notes
from evalhouse.compare.stability import flip_columns, items_to_decide, noise_columns
from evalhouse.errors import AnalysisError
from evalhouse.settings import SCOPES, Settings
from evalhouse.verdict import items_needed, verdicts

# Variance below this share of the squared scale is rounding dust (0.1 - 0.2 + 0.1), not spread.
_DUST = 1e-12

# Fetches per-unit values for rows: (rows to fetch, paired?) -> {row: values}.
Fetch = Callable[[pl.DataFrame, bool], dict[int, np.ndarray]]
# Values of the rows being tested: {"d": differences} (paired) or {"b": ..., "c": ...}.
Values = Callable[[np.ndarray, bool], dict[str, list[np.ndarray]]]
Arrays = dict[str, np.ndarray]


def _spread(var: np.ndarray, mean: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return var > _DUST * np.maximum(1.0, mean * mean)


def _choose(test: str, a: Arrays, *, unpaired_only: bool = False) -> np.ndarray:
    """The test family of every row under ``test`` (``""``: not tested)."""
    h = a["n_b"].shape[0]
    spread = _spread(a["var_b"], a["mean_b"]) & _spread(a["var_c"], a["mean_c"])
    unpaired = np.select(
        [a["binary"], (np.minimum(a["n_b"], a["n_c"]) >= LARGE_N) & spread], ["score", "welch"], "permutation"
    )
    if unpaired_only:
        return unpaired.astype(object)
    if test == "auto":
        chosen = np.select(
            [
                ~a["comparable"], a["reported"], (a["n_p"] > 0) & a["p_binary"],
                (a["n_p"] >= LARGE_N) & _spread(a["d_var"], a["d_mean"]), a["n_p"] > 0,
            ],
            ["", "z", "mcnemar", "paired", "sign-flip"],
            unpaired,
        )  # fmt: skip
    else:
        # A test named explicitly runs even where the models share nothing (the row keeps the flag).
        chosen = np.where(a["reported"], "z", np.full(h, test, dtype=object))
    return chosen.astype(object)


def _usable(chosen: np.ndarray, a: Arrays) -> np.ndarray:
    """Rows whose chosen family can serve them (others get no result and a note)."""
    paired = np.isin(chosen, PAIRED_TESTS)
    return ~(
        (paired & (a["n_p"] == 0))
        | ((chosen == "mcnemar") & ~a["p_binary"])
        | (np.isin(chosen, ["score", "fisher"]) & ~a["binary"])
        | (chosen == "")
    )


def _family(name: str, idx: np.ndarray, a: Arrays, alpha: np.ndarray, values: Values) -> sig.Outcome:
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
    with np.errstate(divide="ignore", invalid="ignore"):
        if name == "sign-flip":
            r = perm.sign_flip(values(idx, True)["d"], al, limits=limits)
            # The permutation tests report no MDE of their own: the paired t's at the same n and spread.
            return r._replace(mde=sig.t_mde(np.sqrt(g["d_var"] / g["n_p"]), g["n_p"] - 1, al))
        if name == "permutation":
            v = values(idx, False)
            r = perm.two_sample(v["b"], v["c"], al, limits=limits)
            welch = sig.welch_t(g["n_b"], g["mean_b"], g["var_b"], g["n_c"], g["mean_c"], g["var_c"], al)
            return r._replace(mde=welch.mde)
    raise AssertionError(name)


def _run(chosen: np.ndarray, usable: np.ndarray, a: Arrays, alpha: np.ndarray, values: Values) -> Arrays:
    """Every row's results from its chosen family (NaN where none), each family run once on its rows."""
    h = chosen.shape[0]
    out = {f: np.full(h, np.nan) for f in sig.Outcome._fields}
    for name in sorted({c for c in chosen[usable].tolist() if c}):
        idx = np.flatnonzero((chosen == name) & usable)
        result = _family(name, idx, a, alpha, values)
        if name in ("student", "welch", "paired"):
            # No spread: SciPy's limit is p = 0 with a zero-width interval, a verdict from nothing.
            # Only a forced t-test gets here (auto sends such rows to the permutation tests).
            degenerate = ~np.isfinite(result.statistic)
            result = sig.Outcome(*(np.where(degenerate, np.nan, v) for v in result))
        for field, col in zip(sig.Outcome._fields, result, strict=True):
            out[field][idx] = col
    # Differences of [0, 1] scores lie in [-1, 1]: an interval never reaches past that.
    for end in ("ci_low", "ci_high"):
        out[end] = np.where(a["bounded"], np.clip(out[end], -1, 1), out[end])
    # A permutation interval from data without spread has width 0: it claims what a constant sample
    # cannot show. No interval then (the p-value stays, with its note).
    flat = np.isin(chosen, RESAMPLED_TESTS) & (
        np.where(chosen == "sign-flip", ~_spread(a["d_var"], a["d_mean"]),
                 ~_spread(a["var_b"], a["mean_b"]) & ~_spread(a["var_c"], a["mean_c"]))
    )  # fmt: skip
    for end in ("ci_low", "ci_high"):
        out[end] = np.where(flat, np.nan, out[end])
    return out


def _arrays(rows: pl.DataFrame) -> Arrays:
    a: Arrays = {c: num(rows, c) for c in (
        "n_b", "n_c", "n_items_b", "n_items_c", "mean_b", "mean_c", "var_b", "var_c", "successes_b", "successes_c",
        "n_paired", "n_paired_items", "pmean_b", "pmean_c", "d_mean", "d_var", "n10", "n01", "se_b", "se_c",
        "n_ans_b", "n_ans_c", "mean_ans_b", "mean_ans_c", "var_ans_b", "var_ans_c", "n_answers_b", "n_answers_c",
        "parts", "n_changed", "flips_down", "flips_up", "noise_var", "noise_runs")}  # fmt: skip
    a["n_p"] = a["n_paired"]
    a["binary"] = flag(rows, "binary_b") & flag(rows, "binary_c")
    a["p_binary"] = flag(rows, "p_binary")
    a["flips_binary"] = flag(rows, "flips_binary")
    a["comparable"] = flag(rows, "comparable")
    a["reported"] = np.array(text(rows, "source"), dtype=object) == "metrics"
    a["bounded"] = flag(rows, "unit_range_b") & flag(rows, "unit_range_c")
    # A reported standard error of 0 (or none) supports no test: it is a missing one, not certainty.
    for side in ("b", "c"):
        a[f"se_{side}"] = np.where(flag(rows, f"has_se_{side}") & (a[f"se_{side}"] > 0), a[f"se_{side}"], np.nan)
    return a


def _repeats(rows: pl.DataFrame, usable: np.ndarray, primary: np.ndarray, family: list[str]) -> np.ndarray:
    """For each row, the row with the same items it repeats (-1: none); primary rows come first."""
    signature = text(rows, "signature")
    first: dict[tuple[str, str], int] = {}
    dup_of = np.full(rows.height, -1)
    for i in np.argsort(~primary, kind="stable"):
        sig_i = signature[i]
        if sig_i is None or not usable[i]:
            continue
        key = (family[i], sig_i)
        if key in first:
            dup_of[i] = first[key]
        else:
            first[key] = int(i)
    return dup_of


def run_tests(rows: pl.DataFrame, settings: Settings, fetch_values: Fetch) -> pl.DataFrame:
    """Choose and run a test for every row of ``assemble``, adjust within families, decide verdicts."""
    s = settings
    # In the output's order, whatever order the engine's aggregation gave: which of two rows with
    # the same items is tested, and which says it repeats it, must not depend on that.
    scope_rank = pl.col("scope").replace_strict({x: i for i, x in enumerate(SCOPES)}, return_dtype=pl.Int8)
    rows = rows.sort(["pair_id", "metric", scope_rank, "bench", "key"], nulls_last=True, maintain_order=True)
    a = _arrays(rows)
    primary = flag(rows, "primary")
    why_untested = text(rows, "why_untested")
    chosen = _choose(s.test, a)
    untested = np.array([w is not None for w in why_untested], dtype=bool) | (a["reported"] & (a["parts"] > 1))
    chosen = np.where(untested, "", chosen).astype(object)
    usable = _usable(chosen, a)

    # Families: a secondary row's pair and metric; repeats of the same items are not tested again.
    family = [f"{p}\x00{m}" for p, m in zip(rows["pair_id"].to_list(), text(rows, "metric"), strict=True)]
    dup_of = _repeats(rows, usable, primary, family)
    tested_secondary = usable & ~primary & (dup_of < 0)
    family_size = {f: 0 for f in family}
    for i in np.flatnonzero(tested_secondary):
        family_size[family[i]] += 1
    m = np.array([max(family_size[f], 1) for f in family], dtype=np.float64)
    # Secondary rows' intervals and gate bounds: Bonferroni over their family (none: not adjusted).
    alpha_row = np.where(primary | (s.adjust == "none"), s.alpha, s.alpha / m)

    def values(idx: np.ndarray, paired: bool) -> dict[str, list[np.ndarray]]:
        return _fetch(rows, idx, paired, fetch_values)

    run_mask = usable & (dup_of < 0)
    res = _run(chosen, run_mask, a, alpha_row, values)
    one_sided = _run(chosen, run_mask, a, 2 * alpha_row, values)
    res["bound_low"], res["bound_high"] = one_sided["ci_low"], one_sided["ci_high"]

    # Overlap counts items (whatever the unit). Partial: the unpaired result on all items beside.
    with np.errstate(divide="ignore", invalid="ignore"):
        coverage = np.where(a["reported"], np.nan, a["n_paired_items"] / np.maximum(a["n_items_b"], a["n_items_c"]))
    partial = ~a["reported"] & ~(coverage >= s.overlap)
    beside_chosen = np.where(
        partial & (a["n_p"] > 0) & np.isin(chosen, PAIRED_TESTS), _choose(s.test, a, unpaired_only=True), ""
    ).astype(object)
    beside = _run(beside_chosen, _usable(beside_chosen, a) & (dup_of < 0), a, alpha_row, values)

    for i in np.flatnonzero(dup_of >= 0):  # repeats take the results of the row they repeat
        j = dup_of[i]
        chosen[i], beside_chosen[i] = chosen[j], beside_chosen[j]
        for d in (res, beside):
            for k in d:
                d[k][i] = d[k][j]

    p_adjusted = _adjust(res["p_value"], primary, tested_secondary, dup_of, family, s.adjust)
    uses_pairs = np.isin(chosen, PAIRED_TESTS) & (a["n_p"] > 0)
    student = chosen == "student"
    mean_b = np.select([uses_pairs, student], [a["pmean_b"], a["mean_ans_b"]], a["mean_b"])
    mean_c = np.select([uses_pairs, student], [a["pmean_c"], a["mean_ans_c"]], a["mean_c"])
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = mean_c - mean_b
        # Two means of the same values summed in another order differ in their last bits (engines,
        # threads): a difference within that rounding is none, not a tiny degradation.
        diff = np.where(np.abs(diff) <= _DUST * np.maximum(1.0, np.maximum(np.abs(mean_b), np.abs(mean_c))), 0.0, diff)
        rel = np.where(mean_b != 0, diff / mean_b * 100, np.nan)
        sd_unit = np.where(uses_pairs, np.sqrt(a["d_var"]), np.sqrt(a["var_b"] + a["var_c"]))

    hib = _directions(rows, s)
    better = np.where(hib, diff, -diff)
    direction = np.select([better > 0, better < 0, better == 0], ["improved", "degraded", "no change"], "")
    _check_margin(s, a)
    # The gate decides only from tests that hold at their n: not from the permutation families (few
    # items or no spread), not from Student's test (every answer as independent), never on a
    # partial overlap.
    undecidable = np.isin(chosen, [*RESAMPLED_TESTS, "student"])
    margin_abs, verdict = verdicts(
        s.margin, mean_b, res["bound_low"], res["bound_high"], hib,
        tested=~np.isnan(res["p_value"]) & ~undecidable, partial=partial,
    )  # fmt: skip
    verdict = [None if w == "aggregates" else v for v, w in zip(verdict, why_untested, strict=True)]
    extra = flip_columns(a, alpha_row) | noise_columns(a, diff, alpha_row)
    # A drop no larger than the baseline's own run-to-run noise is not a regression: repeating the
    # baseline moves its mean that much.
    verdict = ["inconclusive" if v == "regressed" and w == 1 else v
               for v, w in zip(verdict, extra["within_noise"], strict=True)]  # fmt: skip
    needed = items_needed(diff, hib, margin_abs, sd_unit, alpha_row, verdict)
    if s.margin is None:  # no gate: a row the test left undecided says what would decide it
        with np.errstate(invalid="ignore"):
            needed = items_to_decide(diff, sd_unit, alpha_row, ~(p_adjusted < s.alpha))
    needed = np.where(~np.isnan(res["p_value"]) & ~partial, needed, np.nan)
    needed = np.where(np.isin(chosen, RESAMPLED_TESTS), np.maximum(needed, LARGE_N), needed)

    out = pl.DataFrame(
        {
            "pair_id": rows["pair_id"], "baseline": rows["baseline"], "candidate": rows["candidate"],
            "metric": rows["metric"], "scope": rows["scope"], "key": rows["key"], "bench": rows["bench"],
            "n_baseline": np.where(student, a["n_ans_b"], a["n_b"]),
            "n_candidate": np.where(student, a["n_ans_c"], a["n_c"]), "n_paired": a["n_p"],
            "n_changed": a["n_changed"],
            "n_answers_baseline": a["n_answers_b"], "n_answers_candidate": a["n_answers_c"], "coverage": coverage,
            "mean_baseline": mean_b, "mean_candidate": mean_c, "diff": diff, "rel_change_pct": rel,
            "direction": [d or None for d in direction.tolist()], "higher_is_better": hib,
            "test": [c or None for c in chosen.tolist()],
            **{f: res[f] for f in ("statistic", "p_value", "ci_low", "ci_high", "bound_low", "bound_high",
                                   "effect_size", "mde")},
            "p_adjusted": p_adjusted,
            "adjusted_over": _adjusted_over(primary, family, family_size, dup_of, s.adjust, ~np.isnan(p_adjusted)),
            "margin": margin_abs, "verdict": verdict, "items_needed": needed,
            "unpaired_test": [c or None for c in beside_chosen.tolist()],
            "unpaired_diff": np.where(beside_chosen != "", a["mean_c"] - a["mean_b"], np.nan),
            "unpaired_p_value": beside["p_value"], "unpaired_ci_low": beside["ci_low"],
            "unpaired_ci_high": beside["ci_high"], "comparable": a["comparable"],
            **extra,
            "note": notes(rows, a, chosen, usable, res, coverage, partial, dup_of, mean_b, s,
                          extra | {"needed": needed}),
        },
        strict=False,
    )  # fmt: skip
    floats = [c for c, t in out.schema.items() if t == pl.Float64]
    out = out.with_columns(
        [pl.when(pl.col(c).is_finite()).then(pl.col(c)).otherwise(None).alias(c) for c in floats]
    ).with_columns(
        pl.when(pl.col("scope") == "category").then(pl.col("key")).otherwise(None).alias("category"),
        pl.when(pl.col("scope") != "overall").then(pl.col("bench")).otherwise(None).alias("benchmark"),
        pl.when(pl.col("p_adjusted").is_not_null()).then(pl.col("p_adjusted") < s.alpha).alias("significant"),
        *[pl.col(c).cast(pl.Int64, strict=False) for c in ("n_baseline", "n_candidate", "n_paired", "n_changed",
                                                           "n_answers_baseline", "n_answers_candidate",
                                                           "items_needed", "flips_down", "flips_up", "noise_runs")],
        pl.col("within_noise").cast(pl.Boolean),
    )  # fmt: skip
    scope_rank = pl.col("scope").replace_strict({x: i for i, x in enumerate(SCOPES)}, return_dtype=pl.Int8)
    return out.sort(["pair_id", "metric", scope_rank, "bench", "key"], nulls_last=True)


def _check_margin(s: Settings, a: Arrays) -> None:
    """Refuse an absolute margin as wide as the whole range of [0, 1] scores: surely a percentage meant."""
    if s.margin is not None and not s.margin.relative and s.margin.value >= 1 and a["bounded"].any():
        raise AnalysisError(
            f"margin {s.margin} is in score units, as wide as the whole 0..1 range of these scores",
            hint=f"write {s.margin.value:g}% for a share of the baseline mean",
        )


def _fetch(rows: pl.DataFrame, idx: np.ndarray, paired: bool, fetch_values: Fetch) -> dict[str, list[np.ndarray]]:
    """The per-unit values of the rows ``idx``: differences (paired) or both sides' unit means."""
    base = (
        rows[idx.tolist()]
        .select("pair_id", "metric", "scope", "key", "bench")
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


def _adjusted_over(primary: np.ndarray, family: list[str], size: dict[str, int], dup_of: np.ndarray, method: str,
                   has_p: np.ndarray) -> list[str | None]:  # fmt: skip
    out: list[str | None] = []
    for i, f in enumerate(family):
        j = dup_of[i] if dup_of[i] >= 0 else i
        if not has_p[i]:
            out.append(None)
        elif primary[j]:
            out.append("primary")
        elif method == "none":
            out.append("not adjusted")
        else:
            out.append(f"{size[f]} row(s) of this pair and metric ({method})")
    return out


def _directions(rows: pl.DataFrame, s: Settings) -> np.ndarray:
    """Each row's metric direction: evalhouse.toml's [metrics] (the user's word) over what was stored."""
    stored = (
        rows["hib_b"].fill_null(True).to_numpy().astype(bool) if "hib_b" in rows.columns else np.ones(rows.height, bool)
    )
    if not s.directions:
        return stored
    named = [s.directions.get(m or "", s.directions.get((m or "").split(",")[0])) for m in text(rows, "metric")]
    return np.array([stored[i] if d is None else d for i, d in enumerate(named)], dtype=bool)
