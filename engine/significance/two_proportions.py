"""Tests of two independent proportions: the Miettinen-Nurminen score test and Fisher's exact test."""

from __future__ import annotations

import numpy as np
from scipy import special

from evalhouse.significance._common import Z_POWER, Array, Outcome, bisect, floats, z_critical
from evalhouse.significance.proportions import cohens_h, wilson

# SciPy's relative tolerance when deciding which tables are "as extreme" in Fisher's exact test.
_FISHER_GAMMA = 1 + 1e-14


def _restricted_baseline(k1: Array, n1: Array, k2: Array, n2: Array, delta: Array) -> Array:
    """Maximum-likelihood baseline proportion under ``candidate - baseline = delta``.

    The root of Miettinen and Nurminen's (1985) cubic ``N x^3 + a x^2 + b x + c = 0`` in their
    trigonometric form. statsmodels 0.14-0.15 has ``k1`` where ``n1`` belongs in ``b`` (issue
    #10269), so its restricted estimate, and the score interval built on it, are off for
    ``delta != 0``; this is the correct coefficient (the likelihood equation multiplied out).
    """
    big_n, k = n1 + n2, k1 + k2
    a = ((n2 + 2 * n1) * delta - big_n - k) / big_n
    b = ((n1 * delta - big_n - 2 * k1) * delta + k) / big_n
    c = k1 * delta * (1 - delta) / big_n
    v = (a / 3) ** 3 - a * b / 6 + c / 2
    u = np.sign(v) * np.sqrt(np.maximum((a / 3) ** 2 - b / 3, 0))
    # Rounding can push v / u^3 just past +-1; at u = 0 (v = 0) the cosine term vanishes anyway.
    ratio = np.clip(np.where(u != 0, v / np.where(u != 0, u, 1) ** 3, 0), -1, 1)
    root = 2 * u * np.cos((np.pi + np.arccos(ratio)) / 3) - a / 3
    # The root lies where both proportions are in [0, 1]; clip the rounding dust back in.
    return np.clip(root, np.maximum(0, -delta), np.minimum(1, 1 - delta))


def _score_z(k1: Array, n1: Array, k2: Array, n2: Array, delta: Array) -> Array:
    """Miettinen-Nurminen score statistic of ``candidate - baseline = delta``, decreasing in delta.

    ``(p2 - p1 - delta) / sd`` with the variance at the restricted estimates times ``N / (N - 1)``
    (statsmodels ``correction=True``). At delta = 0 the restricted estimate is the pooled one
    (as in statsmodels, and exactly so). 0 / 0 (the observed difference itself at a variance of 0:
    all 0s or all 1s) is 0, a difference of no evidence.
    """
    big_n = n1 + n2
    pooled = (k1 + k2) / big_n
    base = np.where(delta == 0, pooled, _restricted_baseline(k1, n1, k2, n2, delta))
    cand = np.clip(base + delta, 0, 1)
    var = (cand * (1 - cand) / n2 + base * (1 - base) / n1) * big_n / (big_n - 1)
    gap = k2 / n2 - k1 / n1 - delta
    return np.where(gap == 0, 0.0, gap / np.sqrt(var))


def score_diff(k1: Array, n1: Array, k2: Array, n2: Array, alpha: Array | float = 0.05) -> Outcome:
    """Miettinen-Nurminen score test of two independent proportions, with its score interval.

    The interval is the set of differences the same score test does not reject at ``alpha``, so it
    leaves out 0 exactly when p < alpha, and stays in [-1, 1]. Its ends are found by bisection on
    all rows at once. The p-value equals statsmodels
    ``test_proportions_2indep(k2, n2, k1, n1, method='score', correction=True)``; the interval is
    the one of ``confint_proportions_2indep(..., method='score')`` computed with the correct
    restricted estimate (statsmodels' own is off, see ``_restricted_baseline``).

    When both groups are all 0 or all 1 statsmodels returns NaN (0 / 0 at a variance of 0) and
    cannot find an interval; here the observed difference 0 is no evidence (statistic 0, p = 1) and
    the interval is still the set of differences not rejected: it has positive width (large
    differences would have shown), since the variance is positive away from 0.

    Args:
        k1, n1: the baseline's successes and trials; k2, n2: the candidate's.
        alpha: significance level, one or one per row.

    Returns:
        The score z, the two-sided p-value, the score interval of ``k2/n2 - k1/n1``, Cohen's h, and
        the normal-approximation MDE ``(z_{1-alpha/2} + z_POWER) * se0`` with ``se0`` the test's
        standard error under no difference (pooled, times ``N / (N - 1)``); NaN where either n is 0
        (and the MDE where the pooled proportion is 0 or 1).

    >>> r = score_diff(np.array([3, 0]), np.array([12, 12]), np.array([5, 0]), np.array([10, 10]))
    >>> r.p_value.round(4).tolist(), r.ci_low.round(4).tolist(), r.ci_high.round(4).tolist()
    ([0.2357, 1.0], [-0.1584, -0.2511], [0.5944, 0.287])
    """
    k1, n1, k2, n2, alpha = np.broadcast_arrays(*map(floats, (k1, n1, k2, n2, alpha)))
    valid = (n1 > 0) & (n2 > 0)
    crit = z_critical(alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = _score_z(k1, n1, k2, n2, np.zeros(k1.shape))
        p = 2 * special.ndtr(-np.abs(z))
        observed = np.where(valid, k2 / n2 - k1 / n1, 0.0)
        # z decreases in delta: below the lower end it exceeds crit, above the upper end it is below
        # -crit. Each bisection keeps a not-rejected point on the observed side and returns it,
        # so an end lies beyond 0 only if 0 itself is rejected.
        _, low = bisect(lambda d: _score_z(k1, n1, k2, n2, d) > crit, np.full(k1.shape, -1.0), observed)
        _, high = bisect(lambda d: _score_z(k1, n1, k2, n2, d) < -crit, np.ones(k1.shape), observed)
        big_n = n1 + n2
        pooled = (k1 + k2) / big_n
        se0 = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2) * big_n / (big_n - 1))
        mde = np.where(se0 > 0, (crit + Z_POWER) * se0, np.nan)
        effect = cohens_h(k1 / n1, k2 / n2)
    nan = np.nan
    return Outcome(
        np.where(valid, z, nan),
        np.where(valid, p, nan),
        np.where(valid, low, nan),
        np.where(valid, high, nan),
        np.where(valid, effect, nan),
        np.where(valid, mde, nan),
    )


def fisher_exact(k1: Array, n1: Array, k2: Array, n2: Array, alpha: Array | float = 0.05) -> Outcome:
    """Fisher's exact test of two proportions ``k1/n1`` (baseline) and ``k2/n2`` (candidate).

    The two-sided p-value follows scipy ``fisher_exact([[k2, n2 - k2], [k1, n1 - k1]])`` step for
    step (same mode, same tolerance, same search for the other tail), with the search run on all
    comparisons at once. The interval is Newcombe's hybrid score interval of the difference, built
    from two Wilson intervals: it is *not* the inversion of Fisher's test, so at the margin it may
    contain 0 while p < alpha or leave 0 out while p >= alpha. Use :func:`score_diff` when the
    interval must agree with the p-value.

    Args:
        k1, n1: the baseline's successes and trials; k2, n2: the candidate's (integer counts).
        alpha: significance level, one or one per row; the interval is at ``1 - alpha``.

    Returns:
        The sample odds ratio (candidate vs baseline), Fisher's p, Newcombe's interval, Cohen's h
        and the normal-approximation MDE on the pooled standard error.

    >>> r = fisher_exact(np.array([56]), np.array([70]), np.array([48]), np.array([80]))
    >>> round(float(r.p_value[0]), 4), round(float(r.ci_low[0]), 4), round(float(r.ci_high[0]), 4)
    (0.0125, -0.3339, -0.0524)
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
        level = 1 - floats(alpha)
        l1, u1 = wilson(k1, n1, level)
        l2, u2 = wilson(k2, n2, level)
        ci_low = diff - np.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
        ci_high = diff + np.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
        pbar = (k1 + k2) / (n1 + n2).astype(np.float64)
        se = np.sqrt(pbar * (1 - pbar) * (1 / n1 + 1 / n2))
        mde = np.where(se > 0, (z_critical(alpha) + Z_POWER) * se, np.nan)
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
