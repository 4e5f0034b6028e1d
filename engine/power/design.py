"""Solving a design: the power of the test ``evalhouse.compare`` would run, the items it needs for a
difference, or the difference some items detect, from the variance components of ``evalhouse.power``.

The exact McNemar test for 0/1 scores with one answer per item (power summed over the binomial
number of discordant items), the paired t-test otherwise (noncentral t, as statsmodels'
``TTestPower``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import special

from evalhouse.errors import AnalysisError
from evalhouse.significance import POWER, t_mde
from evalhouse.significance.mcnemar import _power as _binomial_power
from evalhouse.significance.mcnemar import _rejection_bound

# Largest design searched: beyond it a difference is out of reach of any benchmark.
MAX_ITEMS = 10**8


@dataclass(frozen=True)
class Variance:
    """What one pair's per-item differences are made of (Miller 2024; NaN: unknown).

    ``discordant`` (0/1 scores only) is the share of items on which one answer of each model
    disagrees; ``binary`` says the scores are 0/1, so one answer per item gives McNemar's design.
    """

    between: float
    within_b: float = 0.0
    within_c: float = 0.0
    binary: bool = False
    discordant: float = float("nan")

    def per_item(self, epochs: int) -> float:
        """Var(d_i) with ``epochs`` answers per item and model.

        >>> Variance(between=0.04, within_b=0.2, within_c=0.2).per_item(4)
        0.14
        """
        within = np.nansum([self.within_b, self.within_c])
        return float(self.between + within / epochs)


@dataclass(frozen=True)
class Plan:
    """A design to plan: give ``delta`` for the items needed, ``items`` for the smallest difference
    detected, both for the power."""

    delta: float | None = None
    items: int | None = None
    epochs: int = 1
    alpha: float = 0.05
    power: float = POWER


@dataclass(frozen=True)
class Result:
    """A solved design: the test it plans for, the difference, the items and the power."""

    test: str
    sd_diff: float
    delta: float
    items: int
    power: float


# ---------------------------------------------------------------------------------------------
# The paired t-test
# ---------------------------------------------------------------------------------------------


def t_power(n: float, delta: float, var: float, alpha: float) -> float:
    """Power of the two-sided paired t-test at ``alpha`` on ``n`` items with per-item variance ``var``.

    >>> round(t_power(100, 0.1, 0.25, 0.05), 4)  # statsmodels TTestPower().power(0.2, 100, 0.05)
    0.5083
    """
    if n < 2 or var <= 0:
        return float("nan")
    df = n - 1
    crit = special.stdtrit(df, 1 - alpha / 2)
    nc = abs(delta) * np.sqrt(n / var)
    lower = special.nctdtr(df, nc, -crit)
    return float((0.0 if np.isnan(lower) else lower) + 1 - special.nctdtr(df, nc, crit))


def _smallest_n(powered: object, start: float) -> int:
    """The smallest n >= 2 with ``powered(n)`` true (monotone in n), searching out from ``start``."""
    test = powered  # a callable int -> bool
    lo, hi = 1, max(2, int(np.ceil(start)))
    while not test(hi):  # type: ignore[operator]
        lo, hi = hi, hi * 2
        if hi > MAX_ITEMS:
            raise AnalysisError(f"more than {MAX_ITEMS:,} items would be needed", hint="plan for a larger difference")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if test(mid) else (mid, hi)  # type: ignore[operator]
    return hi


def t_items(delta: float, var: float, alpha: float, power: float = POWER) -> int:
    """Items the paired t-test needs to detect ``delta`` with ``power`` (statsmodels TTestPower, rounded up).

    >>> t_items(0.1, 0.25, 0.05)
    199
    """
    z = special.ndtri(1 - alpha / 2) + special.ndtri(power)
    start = (z * z * var / (delta * delta)) * 0.9
    return _smallest_n(lambda n: t_power(n, delta, var, alpha) >= power, start)


# ---------------------------------------------------------------------------------------------
# The exact McNemar test (0/1 scores, one answer per item)
# ---------------------------------------------------------------------------------------------


def mcnemar_power(n: int, discordant: float, delta: float, alpha: float) -> float:
    """Power of the exact two-sided McNemar test on ``n`` paired 0/1 items.

    The discordant count is ``Bin(n, discordant)``; given ``m`` of them, those the candidate wins
    are ``Bin(m, (discordant + delta) / (2 discordant))``, and the test rejects as
    ``evalhouse.significance.mcnemar_exact`` does. ``discordant`` is at least ``|delta|``.

    >>> round(mcnemar_power(200, 0.2, 0.1, 0.05), 4)
    0.8753
    """
    psi = max(discordant, abs(delta))
    if n < 1 or psi <= 0:
        return float("nan")
    sd = np.sqrt(n * psi * (1 - psi))
    m = np.arange(max(0, int(n * psi - 10 * sd) - 1), min(n, int(n * psi + 10 * sd) + 2) + 1, dtype=np.float64)
    weight = np.exp(_log_binom(n, m, psi))
    r = _rejection_bound(m, np.full(m.shape, alpha))
    pi = (psi + abs(delta)) / (2 * psi)
    with np.errstate(invalid="ignore", divide="ignore"):
        given_m = np.where(r >= 0, _binomial_power(m, np.maximum(r, 0), np.full(m.shape, pi)), 0.0)
    return float(np.sum(weight * np.nan_to_num(given_m)))


def _log_binom(n: int, k: np.ndarray, p: float) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return (special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)
                + k * np.log(p) + (n - k) * np.log1p(-p))  # fmt: skip


def mcnemar_items(discordant: float, delta: float, alpha: float, power: float = POWER) -> int:
    """Paired 0/1 items the exact McNemar test needs to detect ``delta`` with ``power``.

    The power of an exact test is not quite monotone in n (the binomial's discreteness); the search
    returns an n where it is reached and not at half of that (the sawtooth is within a percent).

    >>> mcnemar_items(0.2, 0.1, 0.05)
    168
    """
    psi = max(discordant, abs(delta))
    z_a, z_b = special.ndtri(1 - alpha / 2), special.ndtri(power)
    # Connor (1987)'s normal approximation as the place to start.
    start = (z_a * np.sqrt(psi) + z_b * np.sqrt(psi - delta * delta)) ** 2 / (delta * delta)
    return _smallest_n(lambda n: mcnemar_power(n, psi, delta, alpha) >= power, start * 0.9)


# ---------------------------------------------------------------------------------------------
# Solving a design
# ---------------------------------------------------------------------------------------------


def _power_at(v: Variance, mcnemar: bool, n: int, delta: float, alpha: float) -> float:
    if mcnemar:
        return mcnemar_power(n, v.discordant, delta, alpha)
    return t_power(n, delta, v.per_item(1), alpha)


def _mcnemar_mde(n: int, discordant: float, alpha: float, power: float) -> float:
    """The smallest difference the exact McNemar test on ``n`` items detects (bisection on delta)."""
    if not discordant > 0:
        raise AnalysisError("the two models never disagree on an item: no difference to plan from", hint="give --sd")
    if mcnemar_power(n, discordant, discordant, alpha) < power:
        raise AnalysisError(f"{n} items cannot detect any difference with this discordance ({discordant:.3f})")
    lo, hi = 0.0, discordant
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mcnemar_power(n, discordant, mid, alpha) < power else (lo, mid)
    return hi


def solve(v: Variance, plan: Plan) -> Result:
    """The items a difference needs, the difference some items detect, or the power of both.

    Args:
        v: the variance components (observed, or assumed).
        plan: the design; ``delta`` and/or ``items``.

    Returns:
        The test planned for (``mcnemar`` or ``paired``), the per-item standard deviation of the
        difference at ``plan.epochs`` (for McNemar's design ``sqrt(discordant - delta^2)``), and
        the solved design.

    >>> r = solve(Variance(between=0.2, binary=True, discordant=0.2), Plan(delta=0.1))
    >>> r.test, r.items
    ('mcnemar', 168)
    >>> round(solve(Variance(between=0.09), Plan(items=285)).delta, 4)
    0.05
    """
    if plan.delta is None and plan.items is None:
        raise AnalysisError("nothing to plan", hint="give --delta D (items needed) or --n N (smallest difference)")
    if plan.delta == 0:
        raise AnalysisError("a difference of 0 cannot be detected", hint="--delta is the difference to detect")
    if plan.items is not None and plan.items < 2:
        raise AnalysisError("--n must be at least 2 items")
    mcnemar = v.binary and plan.epochs == 1 and np.isfinite(v.discordant)
    test = "mcnemar" if mcnemar else "paired"
    var = v.per_item(plan.epochs)
    if not mcnemar and not var > 0:
        raise AnalysisError("the per-item differences have no variance: any difference is detected by one item")
    # The design's variance as one number (what the power functions read).
    at = replace(v, between=var, within_b=0.0, within_c=0.0)
    if plan.items is None:
        delta = float(plan.delta or 0)
        if mcnemar:
            n = mcnemar_items(v.discordant, delta, plan.alpha, plan.power)
        else:
            n = t_items(delta, var, plan.alpha, plan.power)
    else:
        n = plan.items
        if plan.delta is not None:
            delta = plan.delta
        elif mcnemar:
            delta = _mcnemar_mde(n, v.discordant, plan.alpha, plan.power)
        else:
            delta = float(t_mde(np.array([np.sqrt(var / n)]), np.array([n - 1.0]), plan.alpha)[0])
    sd = float(np.sqrt(max(v.discordant, abs(delta)) - delta**2)) if mcnemar else float(np.sqrt(var))
    return Result(test, sd, delta, n, _power_at(at, mcnemar, n, delta, plan.alpha))
