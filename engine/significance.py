"""Two-sample tests, intervals of a difference, effect sizes and p-value corrections, on whole arrays.

Every function takes NumPy arrays (one element per comparison) and returns arrays of the same
length, so thousands of comparisons cost one SciPy call per test family rather than a Python loop.
Group 1 is the baseline and group 2 the candidate: differences are ``candidate - baseline``.

Undefined results (n too small, zero variance with no difference) are NaN, never an exception;
the caller turns NaN into NULL.

>>> import numpy as np
>>> r = student_t(np.array([3]), np.array([1.0]), np.array([1.0]), np.array([3]), np.array([2.0]), np.array([1.0]))
>>> round(float(r.statistic[0]), 4), round(float(r.p_value[0]), 4)
(1.2247, 0.2879)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# scipy.special imports in a quarter of the time scipy.stats takes; the few functions that need
# scipy.stats import it when called, so `evalhouse summary` stays quick.
from scipy import special

# Power used for the minimum detectable difference.
POWER = 0.8
# SciPy's relative tolerance when deciding which tables are "as extreme" in Fisher's exact test.
_FISHER_GAMMA = 1 + 1e-14

Array = np.ndarray


class Outcome(NamedTuple):
    """Per-comparison results of one test family (arrays, NaN where undefined)."""

    statistic: Array
    p_value: Array
    ci_low: Array
    ci_high: Array
    effect_size: Array
    mde: Array


def _f(x: object) -> Array:
    return np.asarray(x, dtype=np.float64)


def _t_quantiles(df: Array, alpha: float) -> tuple[Array, Array]:
    """Two-sided critical t and the t quantile for 80 % power, NaN where df < 1."""
    df = np.where(df >= 1, df, np.nan)
    return special.stdtrit(df, 1 - alpha / 2), special.stdtrit(df, POWER)


def _z_quantiles(alpha: float) -> tuple[float, float]:
    return float(special.ndtri(1 - alpha / 2)), float(special.ndtri(POWER))


def _t_result(diff: Array, se: Array, df: Array, effect: Array, alpha: float) -> Outcome:
    with np.errstate(divide="ignore", invalid="ignore"):
        t = diff / se
        p = 2 * special.stdtr(np.where(df >= 1, df, np.nan), -np.abs(t))
        q, qp = _t_quantiles(df, alpha)
        # A zero standard error gives no usable power estimate (and an interval of width 0).
        mde = np.where(se > 0, (q + qp) * se, np.nan)
        return Outcome(t, p, diff - q * se, diff + q * se, effect, mde)


def student_t(
    n1: Array, mean1: Array, var1: Array, n2: Array, mean2: Array, var2: Array, alpha: float = 0.05
) -> Outcome:
    """Two-sample t-test with pooled variance (scipy ``ttest_ind(candidate, baseline)``).

    Effect size: Cohen's d with the pooled standard deviation.
    """
    n1, n2, m1, m2, v1, v2 = map(_f, (n1, n2, mean1, mean2, var1, var2))
    df = n1 + n2 - 2
    with np.errstate(divide="ignore", invalid="ignore"):
        # A group of one has no variance of its own but still counts in the pooled estimate.
        pooled = (np.where(n1 > 1, (n1 - 1) * v1, 0) + np.where(n2 > 1, (n2 - 1) * v2, 0)) / df
        se = np.sqrt(pooled * (1 / n1 + 1 / n2))
        effect = (m2 - m1) / np.sqrt(pooled)
    return _t_result(m2 - m1, se, df, effect, alpha)


def welch_t(n1: Array, mean1: Array, var1: Array, n2: Array, mean2: Array, var2: Array, alpha: float = 0.05) -> Outcome:
    """Welch's unequal-variance t-test (scipy ``ttest_ind(..., equal_var=False)``).

    Effect size: Cohen's d with the pooled standard deviation, as for Student's test.
    """
    n1, n2, m1, m2, v1, v2 = map(_f, (n1, n2, mean1, mean2, var1, var2))
    with np.errstate(divide="ignore", invalid="ignore"):
        a, b = v1 / n1, v2 / n2
        se = np.sqrt(a + b)
        df = (a + b) ** 2 / (a**2 / (n1 - 1) + b**2 / (n2 - 1))
        # SciPy's convention when both variances are 0 (df is 0/0): one degree of freedom.
        df = np.where(np.isnan(df), 1.0, df)
        pooled = ((n1 - 1) * v1 + (n2 - 1) * v2) / (n1 + n2 - 2)
        effect = (m2 - m1) / np.sqrt(pooled)
    return _t_result(m2 - m1, se, df, effect, alpha)


def paired_t(n: Array, mean_diff: Array, var_diff: Array, alpha: float = 0.05) -> Outcome:
    """Paired t-test on per-item differences (scipy ``ttest_rel(candidate, baseline)``).

    Effect size: Cohen's d_z, the mean difference over the standard deviation of the differences.
    """
    n, md, vd = map(_f, (n, mean_diff, var_diff))
    with np.errstate(divide="ignore", invalid="ignore"):
        sd = np.sqrt(vd)
        se = sd / np.sqrt(n)
        effect = md / sd
    return _t_result(md, se, n - 1, effect, alpha)


def cohens_h(p1: Array, p2: Array) -> Array:
    """Cohen's h for two proportions, ``2 asin(sqrt(p2)) - 2 asin(sqrt(p1))``.

    >>> round(float(cohens_h(np.array([0.5]), np.array([0.25]))[0]), 4)
    -0.5236
    """
    return 2 * np.arcsin(np.sqrt(_f(p2))) - 2 * np.arcsin(np.sqrt(_f(p1)))


def mcnemar_exact(n10: Array, n01: Array, n: Array, p1: Array, p2: Array, alpha: float = 0.05) -> Outcome:
    """Exact McNemar test on paired 0/1 scores: a binomial test of the discordant pairs.

    ``n10`` items the baseline got right and the candidate wrong, ``n01`` the reverse, ``n`` all
    paired items, ``p1`` and ``p2`` the baseline's and candidate's proportion right on them. The
    p-value equals scipy ``binomtest(n01, n10 + n01, 0.5)``; with no discordant pair it is 1.
    Statistic: the smaller discordant count. Interval: Wald interval of the paired difference in
    proportions. Effect size: Cohen's h of ``p1`` and ``p2``.

    >>> r = mcnemar_exact(np.array([7]), np.array([1]), np.array([20]), np.array([0.6]), np.array([0.3]))
    >>> float(r.statistic[0]), round(float(r.p_value[0]), 4)
    (1.0, 0.0703)
    """
    b, c, n = map(_f, (n10, n01, n))
    m = b + c
    with np.errstate(divide="ignore", invalid="ignore"):
        # The binomial with p = 1/2 is symmetric: both tails are twice the smaller one.
        # Binomial cdf(k; m, 1/2) as the regularised incomplete beta I_{1/2}(m - k, k + 1), which takes
        # float counts (k <= m / 2 < m whenever m > 0).
        k = np.minimum(b, c)
        p = np.where(m > 0, np.minimum(1.0, 2 * special.betainc(m - k, k + 1, 0.5)), 1.0)
        p = np.where(n > 0, p, np.nan)
        diff = (c - b) / n
        se = np.sqrt(m - (c - b) ** 2 / n) / n
        z, zp = _z_quantiles(alpha)
        mde = np.where(se > 0, (z + zp) * se, np.nan)
        return Outcome(np.minimum(b, c), p, diff - z * se, diff + z * se, cohens_h(p1, p2), mde)


def wilson(k: Array, n: Array, level: float = 0.95) -> tuple[Array, Array]:
    """Wilson score interval of a proportion ``k / n`` (scipy ``binomtest(k, n).proportion_ci('wilson')``).

    >>> lo, hi = wilson(np.array([3]), np.array([10]))
    >>> round(float(lo[0]), 4), round(float(hi[0]), 4)
    (0.1078, 0.6032)
    """
    k, n = _f(k), _f(n)
    z = float(special.ndtri(1 - (1 - level) / 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    # At k = 0 or k = n the bound is exactly 0 or 1; the formula leaves rounding dust there.
    return np.where(k == 0, 0.0, np.clip(centre - half, 0, 1)), np.where(k == n, 1.0, np.clip(centre + half, 0, 1))


def fisher_exact(k1: Array, n1: Array, k2: Array, n2: Array, alpha: float = 0.05) -> Outcome:
    """Fisher's exact test of two proportions ``k1/n1`` (baseline) and ``k2/n2`` (candidate).

    The two-sided p-value follows scipy ``fisher_exact([[k2, n2 - k2], [k1, n1 - k1]])`` step for
    step (same mode, same tolerance, same search for the other tail), with the search run on all
    comparisons at once. Statistic: the sample odds ratio (candidate vs baseline). Interval:
    Newcombe's hybrid score interval of the difference. Effect size: Cohen's h.
    """
    from scipy import stats

    k1, n1, k2, n2 = (np.asarray(x, dtype=np.int64) for x in (k1, n1, k2, n2))
    # SciPy's table c = [[k2, n2 - k2], [k1, n1 - k1]]; row 1 is the candidate.
    a, b, c, d = k2, n2 - k2, k1, n1 - k1
    big_n, rows1, cols1 = a + b + c + d, a + b, a + c
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = np.where((c > 0) & (b > 0), (a * d) / (c * b).astype(np.float64), np.inf)
        degenerate = (rows1 == 0) | (c + d == 0) | (cols1 == 0) | (b + d == 0)
        odds = np.where(degenerate, np.nan, odds)

        def pmf(x: Array) -> Array:
            return stats.hypergeom.pmf(x, big_n, rows1, cols1)

        mode = ((cols1 + 1) * (rows1 + 1)) // (big_n + 2)
        pexact, pmode = pmf(a), pmf(mode)
        at_mode = np.abs(pexact - pmode) / np.maximum(pexact, pmode) <= 1e-14
        lower = a < mode
        p = np.full(a.shape, np.nan)
        # Below the mode: the lower tail up to a, plus the upper tail beyond the last value whose
        # probability still exceeds pexact.
        plower = stats.hypergeom.cdf(a, big_n, rows1, cols1)
        guess_hi = _search(lambda x: -pmf(x), -pexact * _FISHER_GAMMA, mode, cols1)
        p_low_side = np.where(pmf(cols1) > pexact * _FISHER_GAMMA, plower,
                              plower + stats.hypergeom.sf(guess_hi, big_n, rows1, cols1))  # fmt: skip
        pupper = stats.hypergeom.sf(a - 1, big_n, rows1, cols1)
        guess_lo = _search(pmf, pexact * _FISHER_GAMMA, np.zeros_like(mode), mode)
        p_high_side = np.where(pmf(np.zeros_like(a)) > pexact * _FISHER_GAMMA, pupper,
                               pupper + stats.hypergeom.cdf(guess_lo, big_n, rows1, cols1))  # fmt: skip
        p = np.where(lower, p_low_side, p_high_side)
        p = np.where(at_mode, 1.0, np.minimum(p, 1.0))
        p = np.where(degenerate, 1.0, p)
        p = np.where((n1 > 0) & (n2 > 0), p, np.nan)

        p1, p2 = k1 / n1.astype(np.float64), k2 / n2.astype(np.float64)
        diff = p2 - p1
        level = 1 - alpha
        l1, u1 = wilson(k1, n1, level)
        l2, u2 = wilson(k2, n2, level)
        ci_low = diff - np.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
        ci_high = diff + np.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
        pbar = (k1 + k2) / (n1 + n2).astype(np.float64)
        se = np.sqrt(pbar * (1 - pbar) * (1 / n1 + 1 / n2))
        z, zp = _z_quantiles(alpha)
        mde = np.where(se > 0, (z + zp) * se, np.nan)
        return Outcome(odds, p, ci_low, ci_high, cohens_h(p1, p2), mde)


def _search(fn: object, target: Array, lo: Array, hi: Array) -> Array:
    """SciPy's integer binary search (``_binary_search_for_binom_tst``) run on all rows at once.

    Returns for each row the index ``i`` in ``[lo, hi]`` with ``fn(i) <= target < fn(i + 1)``, for
    a function ascending on that range.
    """
    func = fn  # a callable over integer arrays
    lo, hi = np.array(lo, dtype=np.int64), np.array(hi, dtype=np.int64)
    found = np.full(lo.shape, -1, dtype=np.int64)
    done = np.zeros(lo.shape, dtype=bool)
    active = lo < hi
    while active.any():
        mid = lo + (hi - lo) // 2
        val = func(mid)  # type: ignore[operator]
        less, more = active & (val < target), active & (val > target)
        equal = active & ~less & ~more
        found = np.where(equal, mid, found)
        done |= equal
        lo = np.where(less, mid + 1, lo)
        hi = np.where(more, mid - 1, hi)
        active = ~done & (lo < hi)
    last = np.where(func(lo) <= target, lo, lo - 1)  # type: ignore[operator]
    return np.where(done, found, last)


def z_test(value1: Array, se1: Array, value2: Array, se2: Array, alpha: float = 0.05) -> Outcome:
    """Unpaired z-test of two reported aggregates (value and standard error each).

    >>> r = z_test(np.array([0.5]), np.array([0.03]), np.array([0.4]), np.array([0.04]))
    >>> round(float(r.statistic[0]), 4), round(float(r.p_value[0]), 4)
    (-2.0, 0.0455)
    """
    v1, s1, v2, s2 = map(_f, (value1, se1, value2, se2))
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(s1**2 + s2**2)
        diff = v2 - v1
        z = diff / se
        p = 2 * special.ndtr(-np.abs(z))
        q, qp = _z_quantiles(alpha)
        mde = np.where(se > 0, (q + qp) * se, np.nan)
        return Outcome(z, p, diff - q * se, diff + q * se, np.full(z.shape, np.nan), mde)


ADJUST_METHODS = ("holm", "bh", "none")


def adjust(p: Array, method: str = "holm") -> Array:
    """p-values adjusted for multiple comparisons; NaN entries are left out of the family.

    ``holm``: Holm's step-down (controls the family-wise error rate); ``bh``: Benjamini-Hochberg
    (controls the false discovery rate; scipy ``false_discovery_control``); ``none``: unchanged.

    >>> adjust(np.array([0.01, 0.04, np.nan, 0.03]), "holm").round(4).tolist()
    [0.03, 0.06, nan, 0.06]
    """
    p = _f(p)
    if method not in ADJUST_METHODS:
        raise ValueError(f"unknown adjustment {method!r}")
    out = p.copy()
    ok = ~np.isnan(p)
    if method == "none" or not ok.any():
        return out
    q = p[ok]
    if method == "bh":
        from scipy import stats

        out[ok] = stats.false_discovery_control(q, method="bh")
        return out
    order = np.argsort(q, kind="stable")
    m = q.size
    stepped = np.maximum.accumulate((m - np.arange(m)) * q[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    out[ok] = adjusted
    return out
