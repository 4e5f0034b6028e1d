"""The result type and the helpers every test family of evalhouse.significance shares."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# scipy.special imports in a quarter of the time scipy.stats takes; the few functions that need
# scipy.stats import it when called, so `evalhouse summary` stays quick.
from scipy import special

Array = np.ndarray

# Power used for the minimum detectable difference.
POWER = 0.8
Z_POWER = float(special.ndtri(POWER))


class Outcome(NamedTuple):
    """Per-comparison results of one test family (arrays, NaN where undefined)."""

    statistic: Array
    p_value: Array
    ci_low: Array
    ci_high: Array
    effect_size: Array
    mde: Array


def floats(x: object) -> Array:
    """``x`` as a float64 array (scalars stay 0-d and broadcast against the rows)."""
    return np.asarray(x, dtype=np.float64)


def z_critical(alpha: Array | float) -> Array:
    """Two-sided normal critical value ``z_{1 - alpha/2}``, per row when ``alpha`` is an array."""
    return special.ndtri(1 - floats(alpha) / 2)


def bisect(rejects: object, lo: Array, hi: Array, steps: int = 60) -> tuple[Array, Array]:
    """Bisection on every row at once, for a predicate true at ``lo`` and false at ``hi``.

    ``rejects(x)`` is a boolean array; it must be monotone along each row (true up to some point,
    false beyond it, in the direction from ``lo`` to ``hi``; ``lo`` may exceed ``hi``). Returns the
    final ``(lo, hi)``: the predicate still holds at ``lo`` and fails at ``hi``, so callers that need
    an exact side of the boundary (an interval end that must agree with a test) take the right one.
    60 halvings of a range of at most 2 reach the spacing of doubles.
    """
    func = rejects  # a callable over float arrays
    lo, hi = np.array(lo, dtype=np.float64), np.array(hi, dtype=np.float64)
    for _ in range(steps):
        mid = lo + (hi - lo) / 2
        holds = func(mid)  # type: ignore[operator]
        lo, hi = np.where(holds, mid, lo), np.where(holds, hi, mid)
    return lo, hi
