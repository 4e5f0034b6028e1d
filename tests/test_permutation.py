"""evalhouse.permutation against SciPy's permutation_test, brute force over shifts and hand-checked cases."""

from __future__ import annotations

import math
from fractions import Fraction
from itertools import combinations

import numpy as np
import pytest
from scipy import stats

from evalhouse import permutation as perm
from evalhouse import significance as sig

RNG = np.random.default_rng(20250611)
UNIT = (np.array(-1.0), np.array(1.0))  # limits of a difference of [0, 1] scores


def _scipy_paired(d: np.ndarray) -> float:
    x, y = d, np.zeros_like(d)  # x - y = d
    res = stats.permutation_test(
        (x, y), lambda x, y: np.mean(x - y), permutation_type="samples", n_resamples=np.inf, alternative="two-sided"
    )
    return float(res.pvalue)


def _scipy_unpaired(baseline: np.ndarray, candidate: np.ndarray) -> float:
    res = stats.permutation_test(
        (candidate, baseline),
        lambda x, y: np.mean(x) - np.mean(y),
        permutation_type="independent",
        n_resamples=np.inf,
        alternative="two-sided",
    )
    return float(res.pvalue)


def _paired_rows(count: int, top: int = 40) -> list[np.ndarray]:
    """Rows of every kind: continuous, 0/1, dyadic with ties, constant, all zero; n from 1 to top."""
    rows = []
    for i in range(count):
        n = int(RNG.integers(1, top + 1))
        kind = i % 6
        if kind == 0:
            rows.append(RNG.normal(0.3 * RNG.normal(), 1.0, n))
        elif kind == 1:
            rows.append(RNG.integers(0, 2, n) - RNG.integers(0, 2, n).astype(float))
        elif kind == 2:
            rows.append(RNG.integers(-4, 5, n) / 8.0)
        elif kind == 3:
            rows.append(np.full(n, float(RNG.choice([-0.5, 0.25, 1.0]))))
        elif kind == 4:
            rows.append(np.zeros(n))
        else:
            rows.append(RNG.uniform(0, 1, n) - RNG.uniform(0, 1, n))
    return rows


# --- agreement with SciPy (exact mode) ---------------------------------------------------------------


def test_sign_flip_exact_matches_scipy() -> None:
    rows = [r for r in _paired_rows(90, top=11) if r.size >= 2]  # SciPy needs two observations
    rows += [np.array([-0.25, -0.25]), np.array([0.1, 0.2, 0.3]), np.array([1.0, -1.0, 1.0, -1.0])]
    res = perm.sign_flip(rows)
    for i, d in enumerate(rows):
        assert res.p_value[i] == pytest.approx(_scipy_paired(d), abs=1e-12), d
        assert res.statistic[i] == np.mean(d)


def test_two_sample_exact_matches_scipy() -> None:
    pairs = []
    for i in range(60):
        n1, n2 = (int(v) for v in RNG.integers(2, 8, 2))
        kind = i % 4
        if kind == 0:
            pairs.append((RNG.normal(0, 1, n1), RNG.normal(0.8, 1, n2)))
        elif kind == 1:
            pairs.append((RNG.integers(0, 2, n1).astype(float), RNG.integers(0, 2, n2).astype(float)))
        elif kind == 2:
            pairs.append((RNG.integers(0, 5, n1) / 4.0, RNG.integers(0, 5, n2) / 4.0))
        else:
            pairs.append((np.full(n1, 0.5), np.full(n2, 0.5 if i % 8 == 3 else 1.0)))
    res = perm.two_sample([b for b, _ in pairs], [c for _, c in pairs])
    for i, (b, c) in enumerate(pairs):
        assert res.p_value[i] == pytest.approx(_scipy_unpaired(b, c), abs=1e-12), (b, c)
        assert res.statistic[i] == pytest.approx(np.mean(c) - np.mean(b), abs=1e-15)


def _rational_paired(d: np.ndarray) -> float:
    """Exact p-value with the differences read as the fractions they stand for (0.1 as 1/10)."""
    q = [Fraction(float(v)).limit_denominator(1000) for v in d]
    null = [sum(-v if code >> i & 1 else v for i, v in enumerate(q)) for code in range(2 ** len(q))]
    tails = min(sum(s <= sum(q) for s in null), sum(s >= sum(q) for s in null))
    return min(1.0, 2 * tails / len(null))


def test_ties_on_paper_count_as_ties() -> None:
    """Where SciPy's answer hinges on rounding, ours is the one for the fractions meant.

    The differences below sum to 0 on paper, but np.mean gives 9e-18; SciPy's tolerance (relative to
    that) misses the tie and reports 0.96875. A sum within its own rounding error of 0 is a tie here.
    """
    d = np.array([0.2, -0.1, -0.3, 0.2, 0.1, -0.1])
    assert _scipy_paired(d) == 0.96875
    assert perm.sign_flip([d]).p_value[0] == 1.0 == _rational_paired(d)
    rows = [RNG.integers(-3, 4, int(RNG.integers(2, 10))) / 10 for _ in range(60)]
    rows += [RNG.integers(-2, 3, int(RNG.integers(2, 10))) / 3 for _ in range(60)]
    res = perm.sign_flip(rows)
    assert res.p_value.tolist() == [_rational_paired(d) for d in rows]


# --- the interval is the inverted test ---------------------------------------------------------------


def _check_inverted(res: sig.Outcome, alphas: np.ndarray) -> None:
    """The exact rule: 0 lies in [ci_low, ci_high] exactly when p > alpha (the test does not reject)."""
    ok = ~np.isnan(res.p_value)
    inside = (res.ci_low <= 0) & (res.ci_high >= 0)
    np.testing.assert_array_equal(inside[ok], (res.p_value > alphas)[ok])
    assert np.all(res.ci_low[ok] <= res.ci_high[ok])


@pytest.mark.parametrize("exact_max", [16, 0])
@pytest.mark.parametrize("limits", [None, UNIT])
def test_sign_flip_interval_excludes_zero_exactly_when_rejected(exact_max: int, limits: tuple | None) -> None:
    rows = _paired_rows(240)
    base = perm.sign_flip(rows, exact_max=exact_max, resamples=999)
    # Alphas at the discrete p-values themselves (p == alpha: rejected) and beside them.
    for alphas in (
        np.full(len(rows), 0.05),
        np.full(len(rows), 0.2),
        np.clip(base.p_value, 1e-3, 0.99),
        np.clip(base.p_value * (1 + 1e-9), 1e-3, 0.99),
        RNG.uniform(0.01, 0.5, len(rows)),
    ):
        res = perm.sign_flip(rows, alphas, limits=limits, exact_max=exact_max, resamples=999)
        np.testing.assert_array_equal(res.p_value, base.p_value)
        _check_inverted(res, alphas)
        if limits is not None:
            ok = ~np.isnan(res.p_value)
            assert np.all(res.ci_low[ok] >= -1) and np.all(res.ci_high[ok] <= 1)


@pytest.mark.parametrize("exact_max", [20_000, 0])
def test_two_sample_interval_excludes_zero_exactly_when_rejected(exact_max: int) -> None:
    baseline, candidate = [], []
    for i in range(120):
        n1, n2 = (int(v) for v in RNG.integers(1, 12, 2))
        if i % 3 == 0:
            baseline.append(RNG.normal(0, 1, n1))
            candidate.append(RNG.normal(RNG.normal(), 1, n2))
        elif i % 3 == 1:
            baseline.append(RNG.integers(0, 2, n1).astype(float))
            candidate.append(RNG.integers(0, 2, n2).astype(float))
        else:
            baseline.append(np.full(n1, 0.25))
            candidate.append(np.full(n2, 0.25 + 0.25 * (i % 2)))
    base = perm.two_sample(baseline, candidate, exact_max=exact_max, resamples=999)
    for alphas in (np.full(120, 0.05), np.clip(base.p_value, 1e-3, 0.99), RNG.uniform(0.01, 0.5, 120)):
        res = perm.two_sample(baseline, candidate, alphas, exact_max=exact_max, resamples=999, limits=UNIT)
        _check_inverted(res, alphas)


def _brute_paired(d: np.ndarray, delta: float) -> float:
    """p(delta) straight from the definition: all sign patterns of d - delta, SciPy's comparisons."""
    x = d - delta
    signs = 1 - 2 * ((np.arange(2**x.size)[:, None] >> np.arange(x.size)) & 1)
    null, t = (signs * x).mean(1), x.mean()
    gamma = 100 * np.finfo(float).eps * abs(t)
    return min(1.0, 2 * min(np.mean(null <= t + gamma), np.mean(null >= t - gamma)))


def _brute_unpaired(b: np.ndarray, c: np.ndarray, delta: float) -> float:
    pooled = np.concatenate([c - delta, b])
    t = np.mean(c - delta) - np.mean(b)
    null = []
    for chosen in combinations(range(pooled.size), c.size):
        mask = np.zeros(pooled.size, bool)
        mask[list(chosen)] = True
        null.append(pooled[mask].mean() - pooled[~mask].mean())
    null_ = np.array(null)
    gamma = 100 * np.finfo(float).eps * abs(t)
    return min(1.0, 2 * min(np.mean(null_ <= t + gamma), np.mean(null_ >= t - gamma)))


def _assert_grid(p_at: object, lo: float, hi: float, alpha: float, grid: np.ndarray) -> None:
    """On a fine grid of shifts away from the ends, p(delta) > alpha exactly inside [lo, hi]."""
    for delta in grid:
        if min(abs(delta - lo), abs(delta - hi)) < 1e-9:
            continue
        assert (p_at(delta) > alpha) == (lo <= delta <= hi), delta  # type: ignore[operator]
    # The ends are tight: just outside a finite end the test rejects, just inside it does not.
    for end, outward in ((lo, -1), (hi, 1)):
        if np.isfinite(end):
            assert p_at(end + outward * 1e-7) <= alpha  # type: ignore[operator]
            inside = end - outward * 1e-7 if hi - lo > 2e-7 else (lo + hi) / 2  # a single point: itself
            assert p_at(inside) > alpha  # type: ignore[operator]


@pytest.mark.parametrize(
    ("d", "alpha"),
    [
        (np.array([0.9, 0.4, 1.3, 0.2, 0.7, -0.1, 0.5]), 0.05),
        (np.array([1.0, 1.0, 0.0, 1.0, -1.0, 1.0, 1.0, 0.0]), 0.1),
        (np.array([-0.3, 0.25, -0.8, -0.6, -0.4, -0.9]), 0.05),
        (np.array([0.5, 0.5, 0.5, 0.5, 0.5, 0.5]), 0.05),
    ],
)
def test_sign_flip_interval_matches_brute_force_grid(d: np.ndarray, alpha: float) -> None:
    res = perm.sign_flip([d], alpha)
    lo, hi = float(res.ci_low[0]), float(res.ci_high[0])
    assert lo <= np.mean(d) <= hi
    # The same test on shifted data through the public function and from the definition.
    _assert_grid(lambda delta: _brute_paired(d, delta), lo, hi, alpha, np.linspace(-2, 2, 801))
    _assert_grid(lambda delta: perm.sign_flip([d - delta], alpha).p_value[0], lo, hi, alpha, np.linspace(-2, 2, 401))


def test_sign_flip_monte_carlo_interval_matches_grid() -> None:
    """Monte Carlo: the interval inverts the test run on the same random patterns (same seed and n)."""
    d = RNG.normal(0.4, 1.0, 25)
    res = perm.sign_flip([d], 0.05, seed=7)
    lo, hi = float(res.ci_low[0]), float(res.ci_high[0])
    assert lo < np.mean(d) < hi
    _assert_grid(
        lambda delta: perm.sign_flip([d - delta], 0.05, seed=7).p_value[0],
        lo,
        hi,
        0.05,
        np.linspace(lo - 0.5, hi + 0.5, 301),
    )


@pytest.mark.parametrize(
    ("b", "c"),
    [
        (np.array([0.2, 0.5, 0.1, 0.4]), np.array([0.9, 0.6, 0.8, 1.0, 0.7])),
        (np.array([0.0, 1.0, 0.0, 0.0, 1.0]), np.array([1.0, 1.0, 0.0, 1.0, 1.0, 1.0])),
    ],
)
def test_two_sample_interval_matches_brute_force_grid(b: np.ndarray, c: np.ndarray) -> None:
    res = perm.two_sample([b], [c], 0.1)
    lo, hi = float(res.ci_low[0]), float(res.ci_high[0])
    _assert_grid(lambda delta: _brute_unpaired(b, c, delta), lo, hi, 0.1, np.linspace(-1.5, 2, 351))
    assert res.p_value[0] == pytest.approx(_brute_unpaired(b, c, 0.0), abs=1e-12)


def test_two_sample_monte_carlo_interval_matches_grid() -> None:
    b, c = RNG.normal(0.0, 1.0, 15), RNG.normal(0.8, 1.0, 12)  # C(27, 12) > exact_max
    res = perm.two_sample([b], [c], 0.1, seed=2, resamples=1_999)
    lo, hi = float(res.ci_low[0]), float(res.ci_high[0])
    assert lo < np.mean(c) - np.mean(b) < hi
    _assert_grid(
        lambda delta: perm.two_sample([b], [c - delta], 0.1, seed=2, resamples=1_999).p_value[0],
        lo,
        hi,
        0.1,
        np.linspace(lo - 0.5, hi + 0.5, 201),
    )


# --- hand-checked edge cases -------------------------------------------------------------------------


def test_two_items_never_give_p_zero() -> None:
    """2 items: 4 sign patterns, the observed one and its mirror are the extremes: p = 2 * 1/4."""
    res = perm.sign_flip([np.array([-0.25, -0.25])], 0.05, limits=UNIT)
    assert res.p_value[0] == 0.5
    assert (res.ci_low[0], res.ci_high[0]) == (-1.0, 1.0)  # never rejects: the whole range
    unbounded = perm.sign_flip([np.array([-0.25, -0.25])])
    assert (unbounded.ci_low[0], unbounded.ci_high[0]) == (-np.inf, np.inf)
    assert np.isnan(res.effect_size[0])  # sd 0
    assert np.isnan(res.mde[0])


def test_five_and_six_identical_differences() -> None:
    five, six = np.full(5, -0.25), np.full(6, -0.25)
    res = perm.sign_flip([five, six], 0.05, limits=UNIT)
    assert res.p_value.tolist() == [2 / 32, 2 / 64]
    # n = 5: the smallest possible p is 0.0625 > 0.05, nothing is rejected.
    assert (res.ci_low[0], res.ci_high[0]) == (-1.0, 1.0)
    # n = 6: every shift but -0.25 leaves six identical nonzero differences, p = 1/32: rejected.
    assert (res.ci_low[1], res.ci_high[1]) == (-0.25, -0.25)
    # p == alpha is a rejection, in the p-value and in the interval alike.
    at = perm.sign_flip([five], 2 / 32, limits=UNIT)
    assert at.p_value[0] == 2 / 32 and (at.ci_low[0], at.ci_high[0]) == (-0.25, -0.25)


def test_all_zero_and_single_differences() -> None:
    res = perm.sign_flip([np.zeros(3), np.zeros(12), np.array([0.7])], limits=UNIT)
    assert res.p_value.tolist() == [1.0, 1.0, 1.0]
    assert res.ci_low[0] <= 0 <= res.ci_high[0]
    assert (res.ci_low[1], res.ci_high[1]) == (0.0, 0.0)
    assert (res.ci_low[2], res.ci_high[2]) == (-1.0, 1.0)  # one item: both signs tie, p = 1
    assert np.isnan(res.effect_size).all()


def test_empty_and_non_finite_rows_are_nan() -> None:
    res = perm.sign_flip([np.array([]), np.array([0.5, np.nan]), np.array([1.0, 2.0])])
    for field in res[:5]:
        assert np.isnan(field[:2]).all()
    assert res.p_value[2] == 0.5
    two = perm.two_sample(
        [np.array([]), np.array([1.0]), np.full(2, np.inf)], [np.ones(1), np.array([np.inf]), np.ones(3)]
    )
    assert all(np.isnan(field).all() for field in two)
    assert perm.sign_flip([]).p_value.shape == (0,)


def test_two_sample_small_groups() -> None:
    # One item each: two assignments, p = 1; the C(7, 3) = 35 assignments give p >= 2/35 > 0.05.
    res = perm.two_sample([np.array([0.0]), np.array([0.0, 0.0, 0.0])], [np.array([1.0]), np.ones(4)], limits=UNIT)
    assert res.p_value[0] == 1.0 and res.p_value[1] == pytest.approx(2 / 35)
    assert (res.ci_low.tolist(), res.ci_high.tolist()) == ([-1.0, -1.0], [1.0, 1.0])
    assert np.isnan(res.effect_size).all()  # no variance within the groups


def test_effect_sizes_by_hand() -> None:
    d = np.array([0.5, -0.25, 1.0, 0.75])
    assert perm.sign_flip([d]).effect_size[0] == pytest.approx(d.mean() / d.std(ddof=1))
    b, c = np.array([1.0, 2.0, 3.0]), np.array([2.0, 3.0, 4.0, 5.0])
    ref = sig.student_t(
        *([np.array([v])] for v in (3, 2.0, 1.0)), *([np.array([v])] for v in (4, 3.5, np.var(c, ddof=1)))
    )
    assert perm.two_sample([b], [c]).effect_size[0] == pytest.approx(ref.effect_size[0])


def test_per_row_alpha_equals_separate_calls() -> None:
    rows = [RNG.normal(0.5, 1, 9), RNG.normal(0.5, 1, 9), RNG.normal(-0.2, 1, 30)]
    alphas = np.array([0.05, 0.1, 0.2])  # 0.1 = a one-sided 5 % bound
    res = perm.sign_flip(rows, alphas)
    for i, (row, a) in enumerate(zip(rows, alphas, strict=True)):
        one = perm.sign_flip([row], float(a))
        assert (res.p_value[i], res.ci_low[i], res.ci_high[i]) == (one.p_value[0], one.ci_low[0], one.ci_high[0])
    # A wider level gives a narrower interval.
    assert res.ci_low[0] <= perm.sign_flip([rows[0]], 0.1).ci_low[0]


# --- Monte Carlo mode --------------------------------------------------------------------------------


def _exact_integer_p(d: np.ndarray) -> float:
    """Exact sign-flip p-value for integer differences by counting the sums' distribution."""
    d = d.astype(np.int64)
    offset = int(np.abs(d).sum())
    counts = np.zeros(2 * offset + 1, dtype=np.float64)
    counts[offset] = 1
    for v in np.abs(d):
        counts = (np.roll(counts, v) + np.roll(counts, -v)) if v else 2 * counts
    t = int(d.sum()) + offset
    return min(1.0, 2 * min(counts[: t + 1].sum(), counts[t:].sum()) / counts.sum())


def test_monte_carlo_reproducible_and_close_to_exact() -> None:
    d = RNG.integers(-1, 3, 30).astype(float)  # n = 30 > exact_max: 9,999 random patterns
    first = perm.sign_flip([d], seed=3)
    again = perm.sign_flip([RNG.normal(size=17), d, np.ones(40)], seed=3)
    assert (first.p_value[0], first.ci_low[0], first.ci_high[0]) == (
        again.p_value[1],
        again.ci_low[1],
        again.ci_high[1],
    )
    exact = _exact_integer_p(d)
    se = math.sqrt(exact * (1 - exact) / 9_999) * 2
    assert abs(first.p_value[0] - exact) < 5 * se + 2 / 10_000
    other = perm.sign_flip([d], seed=4).p_value[0]
    assert abs(other - exact) < 5 * se + 2 / 10_000


def test_monte_carlo_never_zero() -> None:
    res = perm.sign_flip([np.full(30, -1.0), np.full(200, 0.5)], resamples=999)
    # Only the observed pattern is as extreme: (1 + 0) / (1 + 999) per tail.
    assert res.p_value.tolist() == [2 / 1000, 2 / 1000]
    two = perm.two_sample([np.zeros(20)], [np.ones(20)], resamples=999)  # C(40, 20) > exact_max
    assert two.p_value[0] == 2 / 1000


def test_monte_carlo_agrees_with_exact_enumeration() -> None:
    d = RNG.normal(0.35, 1, 14)
    exact = perm.sign_flip([d]).p_value[0]
    mc = perm.sign_flip([d], exact_max=0, resamples=20_000).p_value[0]
    assert abs(mc - exact) < 5 * math.sqrt(exact * (1 - exact) / 20_000) * 2 + 1e-3
    b, c = RNG.normal(0, 1, 8), RNG.normal(0.9, 1, 8)
    exact = perm.two_sample([b], [c]).p_value[0]  # C(16, 8) = 12,870 assignments
    mc = perm.two_sample([b], [c], exact_max=100, resamples=20_000).p_value[0]
    assert abs(mc - exact) < 5 * math.sqrt(exact * (1 - exact) / 20_000) * 2 + 1e-3


def test_blocks_do_not_change_results(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows, subsets and swaps split into small blocks (bounded memory) give the same answers."""
    rows = _paired_rows(30, top=12)
    b, c = [RNG.normal(0, 1, 6) for _ in range(5)], [RNG.normal(0.5, 1, 7) for _ in range(5)]
    whole, whole2 = perm.sign_flip(rows, limits=UNIT), perm.two_sample(b, c)
    monkeypatch.setattr(perm, "_BLOCK", 64)
    for got, want in ((perm.sign_flip(rows, limits=UNIT), whole), (perm.two_sample(b, c), whole2)):
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)


def test_a_row_gets_the_same_result_alone_or_in_a_batch() -> None:
    rows = _paired_rows(24, top=30)
    batch = perm.sign_flip(rows, limits=UNIT, resamples=999)
    for i, row in enumerate(rows):
        alone = perm.sign_flip([row], limits=UNIT, resamples=999)
        assert [f[i] for f in batch[:5]] == pytest.approx([f[0] for f in alone[:5]], abs=0, nan_ok=True)
    b, c = [RNG.normal(0, 1, 9) for _ in range(4)], [RNG.normal(0.5, 1, 10) for _ in range(4)]
    pairs = perm.two_sample(b, c, exact_max=100, resamples=999)
    for i in range(4):
        alone = perm.two_sample([b[i]], [c[i]], exact_max=100, resamples=999)
        assert [f[i] for f in pairs[:5]] == [f[0] for f in alone[:5]]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="alpha"):
        perm.sign_flip([np.ones(3)], 0.0)
    with pytest.raises(ValueError, match="alpha"):
        perm.sign_flip([np.ones(3), np.ones(3)], np.array([0.05, 1.0]))
    with pytest.raises(ValueError, match="1-D"):
        perm.sign_flip([np.ones((2, 2))])
    with pytest.raises(ValueError, match="rows"):
        perm.two_sample([np.ones(2)], [])
    with pytest.raises(ValueError, match="resamples"):
        perm.sign_flip([np.ones(3)], resamples=0)
