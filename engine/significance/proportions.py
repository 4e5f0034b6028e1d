"""Intervals of one proportion and the effect size of two."""

from __future__ import annotations

import numpy as np
from scipy import special

from evalhouse.significance._common import Array, floats


def cohens_h(p1: Array, p2: Array) -> Array:
    """Cohen's h for two proportions, ``2 asin(sqrt(p2)) - 2 asin(sqrt(p1))``.

    >>> round(float(cohens_h(np.array([0.5]), np.array([0.25]))[0]), 4)
    -0.5236
    """
    return 2 * np.arcsin(np.sqrt(floats(p2))) - 2 * np.arcsin(np.sqrt(floats(p1)))


def wilson(k: Array, n: Array, level: Array | float = 0.95) -> tuple[Array, Array]:
    """Wilson score interval of a proportion ``k / n`` (scipy ``binomtest(k, n).proportion_ci('wilson')``).

    Args:
        k, n: successes and trials; level: confidence level, one or one per row.

    Returns:
        The lower and upper bounds.

    >>> lo, hi = wilson(np.array([3]), np.array([10]))
    >>> round(float(lo[0]), 4), round(float(hi[0]), 4)
    (0.1078, 0.6032)
    """
    k, n = floats(k), floats(n)
    z = special.ndtri(1 - (1 - floats(level)) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    # At k = 0 or k = n the bound is exactly 0 or 1; the formula leaves rounding dust there.
    return np.where(k == 0, 0.0, np.clip(centre - half, 0, 1)), np.where(k == n, 1.0, np.clip(centre + half, 0, 1))


def clopper_pearson(k: Array, n: Array, level: Array | float = 0.95) -> tuple[Array, Array]:
    """Clopper-Pearson (exact, central) interval of ``k / n`` (scipy ``binomtest(k, n).proportion_ci('exact')``).

    Each bound is where one binomial tail equals ``(1 - level) / 2``, so the interval leaves out a
    proportion ``p0`` exactly when the two-sided exact test of ``p0`` with doubled smaller tail has
    a p-value below ``1 - level``. With ``n = 0`` there is no information: ``[0, 1]``.

    Args:
        k, n: successes and trials; level: confidence level, one or one per row.

    Returns:
        The lower and upper bounds (NaN where ``k`` or ``n`` is NaN).

    >>> lo, hi = clopper_pearson(np.array([3, 0]), np.array([10, 50]))
    >>> lo.round(4).tolist(), hi.round(4).tolist()
    ([0.0667, 0.0], [0.6525, 0.0711])
    """
    k, n = floats(k), floats(n)
    tail = (1 - floats(level)) / 2
    # Beta quantiles of the binomial tails; the masked branches (k = 0, k = n) are never used.
    low = np.where(k > 0, special.betaincinv(np.maximum(k, 1), n - k + 1, tail), 0.0)
    high = np.where(k < n, special.betaincinv(k + 1, np.maximum(n - k, 1), 1 - tail), 1.0)
    unknown = np.isnan(k) | np.isnan(n)
    return np.where(unknown, np.nan, low), np.where(unknown, np.nan, high)
