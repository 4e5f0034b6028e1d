"""Tests of a difference in means: Student's, Welch's and the paired t-test, and the z-test of two
reported aggregates."""

from __future__ import annotations

import numpy as np
from scipy import special

from evalhouse.significance._common import POWER, Array, Outcome, floats, z_critical

# Newton steps for the noncentrality of the power: the start is within ~1e-7 of the root (in power)
# and one step brings it to rounding, so the loop ends after one or two; the bound is a safeguard.
_NEWTON_STEPS = 8


def _t_power(df: Array, nc: Array, crit: Array) -> Array:
    """Probability that a t with noncentrality ``nc`` falls outside ``[-crit, crit]`` (two-sided power)."""
    lower = special.nctdtr(df, nc, -crit)
    # The lower tail underflows to NaN far from the centre (df = 1, nc = 16): it is 0 there.
    lower = np.where(np.isnan(lower) & np.isfinite(nc), 0.0, lower)
    return lower + (1 - special.nctdtr(df, nc, crit))


def _noncentrality(df: Array, alpha: Array) -> Array:
    """Noncentrality at which the two-sided t-test at ``alpha`` rejects with probability ``POWER``."""
    crit = special.stdtrit(df, 1 - alpha / 2)
    # The upper tail alone reaches POWER a little later than both tails together: start there.
    nc = special.nctdtrinc(df, 1 - POWER, crit)
    todo = np.flatnonzero(np.isfinite(nc))
    with np.errstate(divide="ignore", invalid="ignore"):
        for _ in range(_NEWTON_STEPS):
            # Only rows whose power is not yet POWER to rounding take another (costly) step.
            gap = _t_power(df[todo], nc[todo], crit[todo]) - POWER
            todo, gap = todo[np.abs(gap) > 1e-13], gap[np.abs(gap) > 1e-13]
            if todo.size == 0:
                break
            h = 1e-7 * nc[todo]
            slope = (_t_power(df[todo], nc[todo] + h, crit[todo]) - POWER - gap) / h
            nc[todo] -= gap / slope
    return nc


def t_mde(se: Array, df: Array, alpha: Array | float) -> Array:
    """Smallest true difference that the two-sided t-test detects with probability ``POWER``.

    The noncentral t of the test's own degrees of freedom at the ``alpha`` passed, both tails
    counted: ``D = nc * se`` with ``nc`` solving ``P(|T(df, nc)| > t_{1-alpha/2, df}) = POWER``.
    (The normal-quantile shortcut ``(t_{1-alpha/2} + t_POWER) * se`` is far too small at few
    degrees of freedom: 14.1 instead of 16.3 standard errors at df = 1.)

    Args:
        se: standard error of the difference; df: the test's degrees of freedom (Welch's need not
            be integers); alpha: significance level, one or one per row.

    Returns:
        The MDE in the unit of the difference; NaN where ``se`` is 0 or undefined or ``df < 1``.

    >>> round(float(t_mde(np.array([1.0]), np.array([1.0]), 0.05)[0]), 3)
    16.334
    """
    se, df, alpha = np.broadcast_arrays(floats(se), floats(df), floats(alpha))
    ok = (se > 0) & (df >= 1) & np.isfinite(se) & (alpha > 0) & (alpha < 1)
    nc = np.full(se.shape, np.nan)
    if ok.any():
        # The noncentrality depends on (df, alpha) only; rows share few of them (integer df of
        # equal-sized groups, one alpha), so solve each pair once.
        keys, inverse = np.unique(np.stack([df[ok], alpha[ok]]), axis=1, return_inverse=True)
        nc[ok] = _noncentrality(keys[0], keys[1])[inverse.ravel()]
    return nc * se


def _t_result(diff: Array, se: Array, df: Array, effect: Array, alpha: Array | float) -> Outcome:
    with np.errstate(divide="ignore", invalid="ignore"):
        df = np.where(df >= 1, df, np.nan)
        t = diff / se
        p = 2 * special.stdtr(df, -np.abs(t))
        q = special.stdtrit(df, 1 - floats(alpha) / 2)
        return Outcome(t, p, diff - q * se, diff + q * se, effect, t_mde(se, df, alpha))


def student_t(
    n1: Array, mean1: Array, var1: Array, n2: Array, mean2: Array, var2: Array, alpha: Array | float = 0.05
) -> Outcome:
    """Two-sample t-test with pooled variance (scipy ``ttest_ind(candidate, baseline)``).

    Args:
        n1, mean1, var1: size, mean and variance (ddof 1) of the baseline groups.
        n2, mean2, var2: the same for the candidate groups.
        alpha: significance level, one or one per row; the interval is at ``1 - alpha``.

    Returns:
        t, p-value, interval of the difference, Cohen's d with the pooled standard deviation, and
        the MDE of :func:`t_mde` on ``n1 + n2 - 2`` degrees of freedom.

    >>> r = student_t(np.array([3]), np.array([1.0]), np.array([1.0]), np.array([3]), np.array([2.0]), np.array([1.0]))
    >>> round(float(r.statistic[0]), 4), round(float(r.p_value[0]), 4)
    (1.2247, 0.2879)
    """
    n1, n2, m1, m2, v1, v2 = map(floats, (n1, n2, mean1, mean2, var1, var2))
    df = n1 + n2 - 2
    with np.errstate(divide="ignore", invalid="ignore"):
        # A group of one has no variance of its own but still counts in the pooled estimate.
        pooled = (np.where(n1 > 1, (n1 - 1) * v1, 0) + np.where(n2 > 1, (n2 - 1) * v2, 0)) / df
        se = np.sqrt(pooled * (1 / n1 + 1 / n2))
        effect = (m2 - m1) / np.sqrt(pooled)
    return _t_result(m2 - m1, se, df, effect, alpha)


def welch_t(
    n1: Array, mean1: Array, var1: Array, n2: Array, mean2: Array, var2: Array, alpha: Array | float = 0.05
) -> Outcome:
    """Welch's unequal-variance t-test (scipy ``ttest_ind(..., equal_var=False)``).

    Args and Returns as :func:`student_t`; the degrees of freedom (of the p-value, the interval and
    the MDE) are Welch-Satterthwaite's. Effect size: Cohen's d with the pooled standard deviation.

    >>> r = welch_t(np.array([3]), np.array([1.0]), np.array([1.0]), np.array([3]), np.array([2.0]), np.array([1.0]))
    >>> round(float(r.p_value[0]), 4)
    0.2879
    """
    n1, n2, m1, m2, v1, v2 = map(floats, (n1, n2, mean1, mean2, var1, var2))
    with np.errstate(divide="ignore", invalid="ignore"):
        a, b = v1 / n1, v2 / n2
        se = np.sqrt(a + b)
        df = (a + b) ** 2 / (a**2 / (n1 - 1) + b**2 / (n2 - 1))
        # SciPy's convention when both variances are 0 (df is 0/0): one degree of freedom.
        df = np.where(np.isnan(df), 1.0, df)
        pooled = ((n1 - 1) * v1 + (n2 - 1) * v2) / (n1 + n2 - 2)
        effect = (m2 - m1) / np.sqrt(pooled)
    return _t_result(m2 - m1, se, df, effect, alpha)


def paired_t(n: Array, mean_diff: Array, var_diff: Array, alpha: Array | float = 0.05) -> Outcome:
    """Paired t-test on per-item differences (scipy ``ttest_rel(candidate, baseline)``).

    Args:
        n: number of pairs; mean_diff, var_diff: mean and variance (ddof 1) of candidate - baseline.
        alpha: significance level, one or one per row.

    Returns:
        t, p-value, interval, Cohen's d_z (mean difference over the standard deviation of the
        differences) and the MDE of :func:`t_mde` on ``n - 1`` degrees of freedom.

    >>> r = paired_t(np.array([2]), np.array([0.1]), np.array([0.01]))
    >>> round(float(r.p_value[0]), 4), round(float(r.mde[0]), 4)
    (0.3918, 1.155)
    """
    n, md, vd = map(floats, (n, mean_diff, var_diff))
    with np.errstate(divide="ignore", invalid="ignore"):
        sd = np.sqrt(vd)
        se = sd / np.sqrt(n)
        effect = md / sd
    return _t_result(md, se, n - 1, effect, alpha)


def z_test(value1: Array, se1: Array, value2: Array, se2: Array, alpha: Array | float = 0.05) -> Outcome:
    """Unpaired z-test of two reported aggregates (value and standard error each).

    Args:
        value1, se1: the baseline's reported value and standard error; value2, se2: the candidate's.
        alpha: significance level, one or one per row.

    Returns:
        z, p-value, the normal interval of the difference, NaN effect size (no unit to scale by) and
        the normal-approximation MDE ``(z_{1-alpha/2} + z_POWER) * se``. Every field is NaN where the
        combined standard error is 0 or missing: nothing is known about the noise, and a p of 0
        with an interval of width 0 would claim certainty.

    >>> r = z_test(np.array([0.5, 0.5]), np.array([0.03, 0.0]), np.array([0.4, 0.4]), np.array([0.04, 0.0]))
    >>> r.statistic.round(4).tolist(), r.p_value.round(4).tolist()
    ([-2.0, nan], [0.0455, nan])
    """
    v1, s1, v2, s2 = map(floats, (value1, se1, value2, se2))
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(s1**2 + s2**2)
        se = np.where(se > 0, se, np.nan)
        diff = v2 - v1
        z = diff / se
        p = 2 * special.ndtr(-np.abs(z))
        q = z_critical(alpha)
        mde = (q + special.ndtri(POWER)) * se
        return Outcome(z, p, diff - q * se, diff + q * se, np.full(z.shape, np.nan), mde)
