"""Every test, interval and correction of evalhouse.significance against SciPy, statsmodels or hand-computed values.

Besides the references, the principle of the module is checked on many random rows: an interval of a
difference leaves out 0 exactly when p < alpha (away from exact ties), and intervals of proportions
stay in [-1, 1] with positive width.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import optimize, stats
from statsmodels.stats import proportion as sm_proportion
from statsmodels.stats.power import TTestIndPower, TTestPower

from evalhouse import significance as sig

RNG = np.random.default_rng(20250301)


def _moments(x: np.ndarray) -> tuple[int, float, float]:
    return len(x), float(np.mean(x)), float(np.var(x, ddof=1)) if len(x) > 1 else float("nan")


def _quiet(fn, *args, **kwargs):
    """Call SciPy or statsmodels silencing warnings on degenerate samples (we compare values, not warnings)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


SAMPLES = [
    (RNG.normal(0.5, 0.2, 30), RNG.normal(0.4, 0.3, 25)),
    (RNG.normal(10, 3, 5), RNG.normal(12, 1, 8)),
    (RNG.integers(0, 2, 40).astype(float), RNG.integers(0, 2, 12).astype(float)),
    (np.array([0.0, 0.0, 0.0]), np.array([1.0, 1.0])),  # zero variance, a difference
    (np.array([0.3, 0.3]), np.array([0.3, 0.3, 0.3])),  # zero variance, no difference
    (np.array([0.7]), np.array([0.1, 0.5, 0.2])),  # a group of one
]


def _two_sample(equal_var: bool) -> tuple[sig.Outcome, list]:
    base = [_moments(b) for b, _ in SAMPLES]
    cand = [_moments(c) for _, c in SAMPLES]
    fn = sig.student_t if equal_var else sig.welch_t
    res = fn(*zip(*base, strict=True), *zip(*cand, strict=True), 0.05)
    ref = [_quiet(stats.ttest_ind, c, b, equal_var=equal_var) for b, c in SAMPLES]
    return res, ref


@pytest.mark.parametrize("equal_var", [True, False])
def test_two_sample_t_matches_scipy_ttest_ind(equal_var: bool) -> None:
    res, ref = _two_sample(equal_var)
    for i, r in enumerate(ref):
        if equal_var or i != 5:  # Welch with n = 1 is undefined in both
            np.testing.assert_allclose(res.statistic[i], r.statistic, rtol=1e-10)
            np.testing.assert_allclose(res.p_value[i], r.pvalue, rtol=1e-10)
        if np.isfinite(r.statistic):
            ci = r.confidence_interval(0.95)
            np.testing.assert_allclose([res.ci_low[i], res.ci_high[i]], [ci.low, ci.high], rtol=1e-10)
    if not equal_var:
        assert np.isnan(res.p_value[5])


def test_student_t_degenerate_groups() -> None:
    res, _ = _two_sample(True)
    assert res.statistic[3] == np.inf and res.p_value[3] == 0.0  # SciPy: +inf, p = 0
    assert np.isnan(res.statistic[4]) and np.isnan(res.p_value[4])  # 0 / 0
    assert np.isnan(res.mde[3])  # no variance: no power estimate
    n = np.array([1]), np.array([1.0]), np.array([np.nan])
    one_each = sig.student_t(*n, *n)  # df = 0
    assert np.isnan(one_each.p_value[0]) and np.isnan(one_each.ci_low[0])


def test_cohens_d_by_hand() -> None:
    b, c = np.array([1.0, 2.0, 3.0]), np.array([2.0, 3.0, 4.0, 5.0])
    res = sig.student_t(*[np.array([v]) for v in _moments(b)], *[np.array([v]) for v in _moments(c)])
    pooled = ((3 - 1) * 1.0 + (4 - 1) * np.var(c, ddof=1)) / 5
    assert res.effect_size[0] == pytest.approx((3.5 - 2.0) / np.sqrt(pooled))


def _solved(solver: object, power_of: object, **kwargs: float) -> float | None:
    """statsmodels' solve_power, or None where its root search stopped short (it returns its bound
    of 10 or a point whose own power is not 0.8, without a warning we could rely on)."""
    es = _quiet(solver, power=0.8, **kwargs)  # type: ignore[operator]
    return es if abs(power_of(es) - 0.8) < 1e-6 else None  # type: ignore[operator]


def test_student_mde_matches_statsmodels_ttestindpower() -> None:
    """statsmodels' power at the MDE (in pooled standard deviations) is 0.8, and its solver agrees."""
    n1 = np.array([2, 3, 10, 10, 25, 7, 200])
    n2 = np.array([2, 4, 10, 30, 25, 3, 150])
    var1 = RNG.uniform(0.5, 2, n1.size)
    var2 = RNG.uniform(0.5, 2, n1.size)
    solved = 0
    for alpha in (0.001, 0.01, 0.05, 0.2):
        res = sig.student_t(n1, np.zeros(n1.size), var1, n2, np.zeros(n1.size), var2, alpha)
        for i in range(n1.size):
            pooled = ((n1[i] - 1) * var1[i] + (n2[i] - 1) * var2[i]) / (n1[i] + n2[i] - 2)
            es = res.mde[i] / np.sqrt(pooled)
            ratio = n2[i] / n1[i]
            nc = res.mde[i] / np.sqrt(pooled * (1 / n1[i] + 1 / n2[i]))
            assert _t_power(n1[i] + n2[i] - 2, nc, alpha) == pytest.approx(0.8, abs=1e-9), (n1[i], n2[i], alpha)
            power = TTestIndPower().power(es, n1[i], alpha, ratio=ratio)
            # statsmodels' power is NaN where its lower tail underflows (df 2, alpha 0.001).
            assert np.isnan(power) or power == pytest.approx(0.8, abs=1e-9), (n1[i], n2[i], alpha)
            ref = _solved(
                TTestIndPower().solve_power,
                lambda e, i=i, ratio=ratio, alpha=alpha: TTestIndPower().power(e, n1[i], alpha, ratio=ratio),
                nobs1=n1[i], alpha=alpha, ratio=ratio,
            )  # fmt: skip
            if ref is not None:
                # statsmodels stops its root search at a power within ~1e-7 of 0.8.
                assert es == pytest.approx(ref, rel=1e-4), (n1[i], n2[i], alpha)
                solved += 1
    assert solved >= 20


PAIRED = [
    (RNG.normal(0.5, 0.2, 30), None),
    (np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.5, 2.1, 2.0, 4.5])),
    (np.array([0.25, 0.5]), np.array([0.125, 0.375])),  # constant difference: zero variance
    (np.array([0.2]), np.array([0.5])),  # one pair
]


def test_paired_t_matches_scipy_ttest_rel() -> None:
    pairs = [(b, b + RNG.normal(-0.05, 0.1, len(b)) if c is None else c) for b, c in PAIRED]
    d = [c - b for b, c in pairs]
    res = sig.paired_t(
        np.array([len(x) for x in d]),
        np.array([x.mean() for x in d]),
        np.array([x.var(ddof=1) if len(x) > 1 else np.nan for x in d]),
    )
    for i, (b, c) in enumerate(pairs):
        ref = _quiet(stats.ttest_rel, c, b)
        if np.isnan(ref.pvalue):
            assert np.isnan(res.p_value[i])
            continue
        np.testing.assert_allclose(res.statistic[i], ref.statistic, rtol=1e-10)
        np.testing.assert_allclose(res.p_value[i], ref.pvalue, rtol=1e-10)
        if np.isfinite(ref.statistic):
            ci = ref.confidence_interval(0.95)
            np.testing.assert_allclose([res.ci_low[i], res.ci_high[i]], [ci.low, ci.high], rtol=1e-10)
            assert res.effect_size[i] == pytest.approx(d[i].mean() / d[i].std(ddof=1))
    assert res.p_value[2] == 0.0  # zero-variance differences: SciPy's limit
    assert np.isnan(res.p_value[3])  # n = 1


@pytest.mark.parametrize("n10,n01", [(0, 0), (1, 0), (7, 1), (3, 3), (12, 30), (0, 9), (50, 61)])
def test_mcnemar_matches_binomtest(n10: int, n01: int) -> None:
    n = n10 + n01 + 5
    res = sig.mcnemar_exact(np.array([n10]), np.array([n01]), np.array([n]), np.array([0.5]), np.array([0.5]))
    expected = 1.0 if n10 + n01 == 0 else stats.binomtest(n01, n10 + n01, 0.5).pvalue
    assert res.p_value[0] == pytest.approx(expected, rel=1e-12)
    assert res.statistic[0] == min(n10, n01)
    assert -1 <= res.ci_low[0] < (n01 - n10) / n < res.ci_high[0] <= 1


def test_fisher_matches_scipy_on_every_small_table() -> None:
    tables = [
        (k1, n1, k2, n2)
        for n1 in (1, 2, 5, 9, 20)
        for n2 in (1, 3, 8, 21)
        for k1 in range(n1 + 1)
        for k2 in range(n2 + 1)
    ]
    t = np.array(tables)
    res = sig.fisher_exact(t[:, 0], t[:, 1], t[:, 2], t[:, 3])
    for i, (k1, n1, k2, n2) in enumerate(tables):
        ref = stats.fisher_exact([[k2, n2 - k2], [k1, n1 - k1]])
        assert res.p_value[i] == pytest.approx(ref.pvalue, rel=1e-12), tables[i]
        if np.isnan(ref.statistic):
            assert np.isnan(res.statistic[i])
        else:
            assert res.statistic[i] == pytest.approx(ref.statistic)


def test_fisher_large_counts_and_all_equal() -> None:
    res = sig.fisher_exact(
        np.array([300, 0, 40]), np.array([1000, 10, 40]), np.array([250, 0, 40]), np.array([900, 12, 40])
    )
    assert res.p_value[0] == pytest.approx(stats.fisher_exact([[250, 650], [300, 700]]).pvalue, rel=1e-10)
    assert res.p_value[1] == 1.0 and res.p_value[2] == 1.0  # all 0s, all 1s
    assert res.effect_size[1] == 0.0 and res.effect_size[2] == 0.0


def test_newcombe_interval_by_hand() -> None:
    """Newcombe's hybrid score interval (method 10) from the two Wilson intervals."""
    res = sig.fisher_exact(np.array([56]), np.array([70]), np.array([48]), np.array([80]))
    # Newcombe (1998), table II example 1: 56/70 vs 48/80, difference 0.2 -> (0.0524, 0.3339);
    # ours is candidate - baseline, so the signs flip.
    assert res.ci_low[0] == pytest.approx(-0.3339, abs=1e-4)
    assert res.ci_high[0] == pytest.approx(-0.0524, abs=1e-4)


def test_wilson_matches_scipy() -> None:
    k, n = np.array([0, 3, 10, 7, 1]), np.array([7, 10, 10, 50, 1])
    for level in (0.9, 0.95):
        lo, hi = sig.wilson(k, n, level)
        for i in range(len(k)):
            ci = stats.binomtest(int(k[i]), int(n[i])).proportion_ci(confidence_level=level, method="wilson")
            assert lo[i] == pytest.approx(ci.low, abs=1e-12)
            assert hi[i] == pytest.approx(ci.high, abs=1e-12)


def test_z_test_by_hand() -> None:
    res = sig.z_test(np.array([0.62]), np.array([0.02]), np.array([0.58]), np.array([0.015]))
    z = (0.58 - 0.62) / np.hypot(0.02, 0.015)
    assert res.statistic[0] == pytest.approx(z)
    assert res.p_value[0] == pytest.approx(2 * stats.norm.sf(abs(z)))
    assert np.isnan(res.effect_size[0])


def test_holm_by_hand() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.005, np.nan])
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 -> 0.02, 0.03, 0.06, 0.04 -> running max 0.06 for the last
    np.testing.assert_allclose(sig.adjust(p, "holm"), [0.03, 0.06, 0.06, 0.02, np.nan])


def test_bh_matches_scipy_false_discovery_control() -> None:
    p = RNG.uniform(0, 0.2, 50)
    np.testing.assert_allclose(sig.adjust(p, "bh"), stats.false_discovery_control(p, method="bh"))
    with_nan = np.append(p, np.nan)
    assert np.isnan(sig.adjust(with_nan, "bh")[-1])
    np.testing.assert_array_equal(sig.adjust(p, "none"), p)
    with pytest.raises(ValueError):
        sig.adjust(p, "bonferroni")


def test_cohens_h_by_hand() -> None:
    assert sig.cohens_h(np.array([0.0]), np.array([1.0]))[0] == pytest.approx(np.pi)


# --- alpha per row ------------------------------------------------------------------------------

ALPHAS = np.array([0.01, 0.05, 0.1, 0.2])


def _rows(*columns: list[float]) -> list[np.ndarray]:
    return [np.array(c, dtype=float) for c in columns]


PER_ROW_CALLS = {
    "student": (sig.student_t, _rows([5, 2, 30, 8], [0.1, 0.2, 0.3, 0.4], [1, 2, 0.5, 0.1],
                                     [6, 3, 20, 8], [0.5, 0.1, 0.2, 0.4], [1, 1, 0.7, 0.2])),
    "welch": (sig.welch_t, _rows([5, 2, 30, 8], [0.1, 0.2, 0.3, 0.4], [1, 2, 0.5, 0.1],
                                 [6, 3, 20, 8], [0.5, 0.1, 0.2, 0.4], [1, 1, 0.7, 0.2])),
    "paired": (sig.paired_t, _rows([2, 5, 40, 9], [0.1, -0.2, 0.05, 0.3], [0.01, 0.3, 0.2, 0.5])),
    "z": (sig.z_test, _rows([0.5, 0.6, 0.7, 0.1], [0.02, 0.03, 0.01, 0.05],
                            [0.55, 0.5, 0.71, 0.2], [0.02, 0.01, 0.02, 0.04])),
    "mcnemar": (sig.mcnemar_exact, _rows([0, 3, 10, 2], [5, 9, 10, 30], [100, 40, 50, 60], [0.5] * 4, [0.6] * 4)),
    "score": (sig.score_diff, _rows([0, 3, 10, 12], [12, 10, 50, 12], [0, 9, 20, 5], [10, 10, 40, 9])),
    "fisher": (sig.fisher_exact, _rows([0, 3, 10, 12], [12, 10, 50, 12], [0, 9, 20, 5], [10, 10, 40, 9])),
}  # fmt: skip


@pytest.mark.parametrize("family", list(PER_ROW_CALLS))
def test_alpha_per_row_matches_one_call_per_alpha(family: str) -> None:
    fn, args = PER_ROW_CALLS[family]
    res = fn(*args, ALPHAS)
    for i, alpha in enumerate(ALPHAS):
        one = fn(*[a[i : i + 1] for a in args], float(alpha))
        for field, values in zip(sig.Outcome._fields, one, strict=True):
            got = np.broadcast_to(getattr(res, field), ALPHAS.shape)[i]
            np.testing.assert_allclose(got, np.broadcast_to(values, (1,))[0], rtol=1e-12, err_msg=field)


def test_twice_alpha_gives_one_sided_bounds() -> None:
    """At 2 alpha the ends of the two-sided interval are SciPy's one-sided (1 - alpha) bounds."""
    b, c = SAMPLES[0]
    n1, m1, v1 = _moments(b)
    n2, m2, v2 = _moments(c)
    res = sig.welch_t(*_rows([n1], [m1], [v1], [n2], [m2], [v2]), np.array([0.1]))
    greater = stats.ttest_ind(c, b, equal_var=False, alternative="greater").confidence_interval(0.95)
    less = stats.ttest_ind(c, b, equal_var=False, alternative="less").confidence_interval(0.95)
    assert res.ci_low[0] == pytest.approx(greater.low, rel=1e-10)
    assert res.ci_high[0] == pytest.approx(less.high, rel=1e-10)


# --- t-tests: the MDE from the noncentral t -----------------------------------------------------


def _t_power(df: float, nc: float, alpha: float) -> float:
    """Two-sided power of the t-test, both tails from scipy.stats.nct (the lower by symmetry)."""
    crit = stats.t.isf(alpha / 2, df)
    return float(stats.nct.sf(crit, df, nc) + stats.nct.sf(crit, df, -nc))


@pytest.mark.parametrize("alpha", [0.001, 0.05, 0.1, 0.3])
def test_paired_mde_matches_statsmodels_ttestpower(alpha: float) -> None:
    n = np.array([2, 3, 4, 5, 10, 30, 100, 1000])
    sd = RNG.uniform(0.1, 3, n.size)
    res = sig.paired_t(n, np.zeros(n.size), sd**2, alpha)
    for i in range(n.size):
        es = res.mde[i] / sd[i]
        assert _t_power(n[i] - 1, es * np.sqrt(n[i]), alpha) == pytest.approx(0.8, abs=1e-9), n[i]
        power = TTestPower().power(es, n[i], alpha)
        # statsmodels' power is NaN where its lower tail underflows (df 1, alpha 0.001).
        assert np.isnan(power) or power == pytest.approx(0.8, abs=1e-9), n[i]
        ref = _solved(
            TTestPower().solve_power, lambda e, i=i: TTestPower().power(e, n[i], alpha), nobs=n[i], alpha=alpha
        )
        if ref is not None:
            assert es == pytest.approx(ref, rel=1e-4), n[i]


def test_paired_mde_on_two_pairs_is_large() -> None:
    """n = 2 (df = 1): the noncentral t needs a difference of 11.5 standard deviations.

    The normal-quantile MDE it replaces, (z_{0.975} + z_{0.8}) sd / sqrt(2), claimed 2.
    """
    res = sig.paired_t(np.array([2]), np.array([0.0]), np.array([1.0]))
    expected = _quiet(TTestPower().solve_power, nobs=2, alpha=0.05, power=0.8)
    assert res.mde[0] == pytest.approx(expected, rel=1e-5)
    assert res.mde[0] > 5 * (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) / np.sqrt(2)


def test_welch_mde_has_the_power_it_claims() -> None:
    """Welch's df is not an integer and statsmodels has no Welch power: check the power itself."""
    for (b, c), alpha in zip(SAMPLES[:3], (0.05, 0.01, 0.2), strict=True):
        res = sig.welch_t(*_rows(*[[v] for v in _moments(b)], *[[v] for v in _moments(c)]), alpha)
        ref = stats.ttest_ind(c, b, equal_var=False)
        se = (c.mean() - b.mean()) / ref.statistic
        assert _t_power(ref.df, res.mde[0] / se, alpha) == pytest.approx(0.8, abs=1e-9)


def test_t_mde_undefined_without_variance_or_degrees_of_freedom() -> None:
    res = sig.paired_t(np.array([1, 5, 5, 5]), np.array([0.1, 0.1, 0.1, 0.1]), np.array([np.nan, 0.0, np.nan, 0.2]))
    assert np.isnan(res.mde[:3]).all() and np.isfinite(res.mde[3])
    assert np.isnan(sig.t_mde(np.array([1.0]), np.array([0.5]), 0.05)).all()  # df < 1


# --- z-test ---------------------------------------------------------------------------------------


def test_z_test_interval_matches_scipy_norm() -> None:
    res = sig.z_test(np.array([0.62]), np.array([0.02]), np.array([0.58]), np.array([0.015]), 0.1)
    se = np.hypot(0.02, 0.015)
    lo, hi = stats.norm.interval(0.9, loc=-0.04, scale=se)
    assert [res.ci_low[0], res.ci_high[0]] == pytest.approx([lo, hi], rel=1e-12)
    assert res.mde[0] == pytest.approx((stats.norm.ppf(0.95) + stats.norm.ppf(0.8)) * se)


def test_z_test_without_standard_error_is_undefined() -> None:
    """A combined standard error of 0 or NaN gives NaN everywhere, not p = 0 and a point interval."""
    value1, se1, value2, se2 = _rows([0.5, 0.5, 0.5], [0.0, np.nan, 0.0], [0.4, 0.4, 0.5], [0.0, 0.0, np.nan])
    res = sig.z_test(value1, se1, value2, se2)
    for field in sig.Outcome._fields:
        assert np.isnan(getattr(res, field)).all(), field


# --- McNemar ----------------------------------------------------------------------------------------


def test_clopper_pearson_matches_scipy() -> None:
    cases = [(k, n) for n in (1, 2, 5, 17, 50, 333) for k in range(0, n + 1, max(1, n // 20))] + [(333, 333)]
    k, n = np.array(cases).T
    for level in (0.8, 0.95, 0.99):
        lo, hi = sig.clopper_pearson(k, n, level)
        for i, (ki, ni) in enumerate(cases):
            ci = stats.binomtest(int(ki), int(ni)).proportion_ci(confidence_level=level, method="exact")
            assert [lo[i], hi[i]] == pytest.approx([ci.low, ci.high], abs=1e-12), (ki, ni, level)
    lo, hi = sig.clopper_pearson(np.array([0, np.nan]), np.array([0, 5]))
    assert (lo[0], hi[0]) == (0.0, 1.0) and np.isnan([lo[1], hi[1]]).all()  # no trial: no information


def test_clopper_pearson_leaves_out_one_half_exactly_when_binomtest_rejects() -> None:
    """The claim the McNemar interval rests on: at 1/2 the central CP interval inverts the exact test."""
    checked = 0
    for m in range(1, 61):
        c = np.arange(m + 1)
        for alpha in (0.01, 0.05, 0.1, 0.2):
            lo, hi = sig.clopper_pearson(c, np.full(c.shape, m), 1 - alpha)
            for ci in c:
                p = stats.binomtest(int(ci), m, 0.5).pvalue
                if abs(p - alpha) > 1e-9:
                    assert ((lo[ci] > 0.5) | (hi[ci] < 0.5)) == (p < alpha), (ci, m, alpha)
                    checked += 1
    assert checked > 7000


def _mcnemar_reference(n10: int, n01: int, n: int, alpha: float) -> tuple[float, float]:
    """Range of (m/n)(2 pi - 1) over the corners of SciPy's two Clopper-Pearson intervals."""
    m = n10 + n01
    exact = {"confidence_level": 1 - alpha, "method": "exact"}
    pi = (0.0, 1.0)  # no discordant pair: nothing is known about the share
    if m:
        ci = stats.binomtest(n01, m).proportion_ci(**exact)
        pi = (ci.low, ci.high)
    dr = stats.binomtest(m, n).proportion_ci(**exact)
    corners = [d * (2 * q - 1) for d in (dr.low, dr.high) for q in pi]
    return min(corners), max(corners)


def _mcnemar_cases() -> list[tuple[int, int, int]]:
    edges = [(0, 0, 1), (0, 0, 50), (1, 0, 1), (0, 1, 7), (0, 5, 5), (5, 0, 5), (3, 4, 7), (0, 30, 200), (2, 2, 4)]
    draws = []
    for _ in range(80):
        n = int(RNG.integers(1, 300))
        m = int(RNG.integers(0, n + 1))
        n01 = int(RNG.integers(0, m + 1))
        draws.append((m - n01, n01, n))
    return edges + draws


def test_mcnemar_interval_is_the_range_over_both_clopper_pearson_intervals() -> None:
    cases = _mcnemar_cases()
    n10, n01, n = (np.array(c) for c in zip(*cases, strict=True))
    alpha = RNG.choice([0.01, 0.05, 0.1], len(cases))
    res = sig.mcnemar_exact(n10, n01, n, 0.5, 0.5, alpha)
    for i, case in enumerate(cases):
        lo, hi = _mcnemar_reference(*case, alpha[i])
        assert [res.ci_low[i], res.ci_high[i]] == pytest.approx([lo, hi], abs=1e-10), case
        m = case[0] + case[1]
        expected = 1.0 if m == 0 else stats.binomtest(case[1], m, 0.5).pvalue
        assert res.p_value[i] == pytest.approx(expected, rel=1e-12)


def test_mcnemar_interval_agrees_with_the_exact_p_value() -> None:
    rows = 5000
    n = RNG.integers(1, 400, rows)
    m = np.minimum(n, RNG.integers(0, 60, rows))
    n01 = RNG.binomial(m, RNG.uniform(0, 1, rows))
    alpha = RNG.uniform(0.001, 0.3, rows)
    res = sig.mcnemar_exact(m - n01, n01, n, 0.5, 0.5, alpha)
    away = np.abs(res.p_value - alpha) > 1e-9
    excludes = (res.ci_low > 0) | (res.ci_high < 0)
    np.testing.assert_array_equal(excludes[away], (res.p_value < alpha)[away])
    diff = (2 * n01 - m) / n
    assert ((res.ci_low >= -1) & (res.ci_low <= diff) & (diff <= res.ci_high) & (res.ci_high <= 1)).all()
    assert (res.ci_high > res.ci_low).all()


def test_mcnemar_zero_vs_five_discordant_of_100() -> None:
    """p = 0.0625 and the interval contains 0 (the Wald interval it replaces left 0 out)."""
    res = sig.mcnemar_exact(np.array([0]), np.array([5]), np.array([100]), 0.5, 0.5)
    assert res.p_value[0] == pytest.approx(stats.binomtest(5, 5, 0.5).pvalue, rel=1e-12)
    assert res.p_value[0] == 0.0625
    assert res.ci_low[0] < 0 < res.ci_high[0]
    wald_low = 0.05 - stats.norm.ppf(0.975) * np.sqrt(5 - 5**2 / 100) / 100
    assert wald_low > 0


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.1])
def test_mcnemar_no_discordant_pair(alpha: float) -> None:
    """p = 1 and [-u, u] with u the Clopper-Pearson upper bound of 0 of 50, 1 - (alpha/2)^(1/50)."""
    res = sig.mcnemar_exact(np.array([0]), np.array([0]), np.array([50]), 0.7, 0.7, alpha)
    u = 1 - (alpha / 2) ** (1 / 50)
    assert u == pytest.approx(stats.binomtest(0, 50).proportion_ci(1 - alpha, method="exact").high, rel=1e-12)
    assert res.p_value[0] == 1.0
    assert [res.ci_low[0], res.ci_high[0]] == pytest.approx([-u, u], rel=1e-12)
    assert np.isnan(res.mde[0])  # no discordant pair: the exact test can never reject


def _rejection_bound(m: int, alpha: float) -> int:
    """Largest k with binomtest(k, m) p < alpha, -1 if none: the test rejects for k <= r or k >= m - r."""
    r = -1
    while m > 0 and r + 1 <= m // 2 and stats.binomtest(r + 1, m, 0.5).pvalue < alpha:
        r += 1
    return r


def test_mcnemar_mde_matches_exact_binomial_power() -> None:
    cases = [(m, n, alpha) for m, n in [(0, 10), (1, 1), (5, 100), (6, 100), (7, 7), (10, 30), (25, 26), (60, 500),
                                       (200, 1000)] for alpha in (0.01, 0.05, 0.2)]  # fmt: skip
    m, n, alpha = (np.array(c) for c in zip(*cases, strict=True))
    mde = sig.mcnemar_mde(m, n, alpha)
    for i, (mi, ni, ai) in enumerate(cases):
        r = _rejection_bound(mi, ai)
        if r < 0:
            assert np.isnan(mde[i]), cases[i]
            continue
        pi = (1 + mde[i] * ni / mi) / 2

        def power(q: float, mi: int = mi, r: int = r) -> float:
            return float(stats.binom.cdf(r, mi, q) + stats.binom.sf(mi - r - 1, mi, q))

        assert power(pi) >= 0.8 - 1e-12 and power(pi - 1e-9) < 0.8, cases[i]
    assert np.isnan(mde[m <= 1]).all() and np.isfinite(mde[m >= 10]).all()  # m <= 1 can never reject


def test_mcnemar_without_pairs_is_undefined() -> None:
    res = sig.mcnemar_exact(np.array([0]), np.array([0]), np.array([0]), np.nan, np.nan)
    assert np.isnan([res.p_value[0], res.ci_low[0], res.ci_high[0], res.mde[0]]).all()


# --- Miettinen-Nurminen score test ------------------------------------------------------------------


def _mn_reference(k1: int, n1: int, k2: int, n2: int, alpha: float) -> tuple[float, float, float, float]:
    """Score z, p and interval of k2/n2 - k1/n1, from the likelihood with SciPy's root finder.

    The restricted estimate solves the likelihood equation numerically (no cubic), so it checks
    the closed form; the interval ends are where |z| meets the critical value.
    """
    big_n = n1 + n2

    def restricted(d: float) -> float:
        if d == 0:
            return (k1 + k2) / big_n
        lo, hi = max(0.0, -d), min(1.0, 1.0 - d)

        def score(x: float) -> float:
            return (
                (k1 / x if k1 else 0.0)
                - ((n1 - k1) / (1 - x) if n1 - k1 else 0.0)
                + (k2 / (x + d) if k2 else 0.0)
                - ((n2 - k2) / (1 - x - d) if n2 - k2 else 0.0)
            )

        a, b = lo + 1e-13, hi - 1e-13
        if score(a) <= 0:
            return lo
        if score(b) >= 0:
            return hi
        return optimize.brentq(score, a, b, xtol=1e-15)

    def z(d: float) -> float:
        x = restricted(d)
        y = min(max(x + d, 0.0), 1.0)
        var = np.float64((y * (1 - y) / n2 + x * (1 - x) / n1) * big_n / (big_n - 1))
        gap = k2 / n2 - k1 / n1 - d
        with np.errstate(divide="ignore"):
            return 0.0 if gap == 0 else float(gap / np.sqrt(var))

    crit = stats.norm.isf(alpha / 2)
    observed = k2 / n2 - k1 / n1
    edge = 1 - 1e-12
    low = -1.0 if z(-edge) <= crit else optimize.brentq(lambda d: z(d) - crit, -edge, observed, xtol=1e-14)
    high = 1.0 if z(edge) >= -crit else optimize.brentq(lambda d: z(d) + crit, observed, edge, xtol=1e-14)
    z0 = z(0.0)
    return z0, 2 * stats.norm.sf(abs(z0)), low, high


def _score_cases(draws: int) -> list[tuple[int, int, int, int]]:
    edges = [(0, 12, 0, 10), (12, 12, 10, 10), (0, 1, 0, 1), (1, 1, 1, 1), (0, 12, 10, 10), (12, 12, 0, 10),
             (1, 1, 0, 1), (0, 1, 1, 1), (0, 200, 1, 1), (3, 3, 0, 40), (0, 5, 2, 300), (7, 34, 1, 34)]  # fmt: skip
    out = []
    for _ in range(draws):
        n1, n2 = (int(v) for v in RNG.integers(1, 80, 2))
        out.append((int(RNG.integers(0, n1 + 1)), n1, int(RNG.integers(0, n2 + 1)), n2))
    return edges + out


def test_score_diff_matches_the_likelihood_reference() -> None:
    cases = _score_cases(60)
    k1, n1, k2, n2 = (np.array(c) for c in zip(*cases, strict=True))
    alpha = RNG.choice([0.01, 0.05, 0.1, 0.2], len(cases))
    res = sig.score_diff(k1, n1, k2, n2, alpha)
    for i, case in enumerate(cases):
        z, p, lo, hi = _mn_reference(*case, alpha[i])
        assert [res.statistic[i], res.p_value[i]] == pytest.approx([z, p], rel=1e-9, abs=1e-12), case
        assert [res.ci_low[i], res.ci_high[i]] == pytest.approx([lo, hi], abs=1e-7), case


def test_score_diff_p_matches_statsmodels() -> None:
    cases = [c for c in _score_cases(300) if c[0] + c[2] not in (0, c[1] + c[3])]  # statsmodels: NaN there
    k1, n1, k2, n2 = (np.array(c) for c in zip(*cases, strict=True))
    res = sig.score_diff(k1, n1, k2, n2)
    ref = _quiet(
        sm_proportion.test_proportions_2indep, k2, n2, k1, n1, value=0, method="score", compare="diff", correction=True
    )
    np.testing.assert_allclose(res.statistic, ref.statistic, rtol=1e-10)
    np.testing.assert_allclose(res.p_value, ref.pvalue, rtol=1e-10, atol=1e-300)
    # The MDE's standard error is the test's own under no difference (pooled, times N / (N - 1)).
    expected = (stats.norm.isf(0.025) + stats.norm.ppf(0.8)) * np.sqrt(ref.variance)
    np.testing.assert_allclose(res.mde, expected, rtol=1e-12)
    np.testing.assert_allclose(res.effect_size, sig.cohens_h(k1 / n1, k2 / n2), rtol=1e-12)


def test_score_diff_interval_matches_statsmodels_where_its_estimate_is_right() -> None:
    """statsmodels' cubic has k1 where n1 belongs (statsmodels issue #10269), a term times n1 - k1:
    with a baseline of all 1s it is right, and its interval must equal ours. (Elsewhere its ends
    are off by up to ~1e-2; _mn_reference checks ours there.)"""
    compared = 0
    grid = ((5, 10), (20, 40), (1, 7), (39, 40), (17, 60), (30, 31), (60, 80), (2, 3), (90, 100), (50, 60))
    for alpha in (0.05, 0.1, 0.2):
        for n1 in (3, 5, 12, 30, 100):
            for k2, n2 in grid:
                try:
                    ref = _quiet(sm_proportion.confint_proportions_2indep, k2, n2, n1, n1, method="score", alpha=alpha)
                except ValueError:  # its root bracket fails near the edges of [-1, 1]
                    continue
                res = sig.score_diff(np.array([n1]), np.array([n1]), np.array([k2]), np.array([n2]), alpha)
                assert [res.ci_low[0], res.ci_high[0]] == pytest.approx(list(ref), abs=1e-7), (n1, k2, n2, alpha)
                compared += 1
    assert compared >= 40


def test_score_diff_interval_agrees_with_p_value() -> None:
    rows = 4000
    n1, n2 = RNG.integers(1, 150, rows), RNG.integers(1, 150, rows)
    k1 = RNG.binomial(n1, RNG.uniform(0, 1, rows))
    k2 = RNG.binomial(n2, RNG.uniform(0, 1, rows))
    alpha = RNG.uniform(0.001, 0.3, rows)
    res = sig.score_diff(k1, n1, k2, n2, alpha)
    away = np.abs(res.p_value - alpha) > 1e-9
    excludes = (res.ci_low > 0) | (res.ci_high < 0)
    np.testing.assert_array_equal(excludes[away], (res.p_value < alpha)[away])
    diff = k2 / n2 - k1 / n1
    assert ((res.ci_low >= -1) & (res.ci_low <= diff) & (diff <= res.ci_high) & (res.ci_high <= 1)).all()
    assert (res.ci_high > res.ci_low).all()


@pytest.mark.parametrize("k1,n1,k2,n2", [(0, 12, 0, 10), (12, 12, 10, 10), (0, 1, 0, 1), (0, 200, 0, 3)])
def test_score_diff_all_zeros_or_all_ones(k1: int, n1: int, k2: int, n2: int) -> None:
    """No difference and no variance: p = 1 and an interval of positive width inside (-1, 1).

    statsmodels returns NaN here (0 / 0) and cannot find an interval; ours is still the set of
    differences the score test does not reject, as the likelihood reference confirms.
    """
    res = sig.score_diff(np.array([k1]), np.array([n1]), np.array([k2]), np.array([n2]))
    assert res.statistic[0] == 0.0 and res.p_value[0] == 1.0
    assert -1 < res.ci_low[0] < 0 < res.ci_high[0] < 1
    _, _, lo, hi = _mn_reference(k1, n1, k2, n2, 0.05)
    assert [res.ci_low[0], res.ci_high[0]] == pytest.approx([lo, hi], abs=1e-7)
    assert np.isnan(res.mde[0])  # pooled proportion 0 or 1: no normal-approximation power


def test_score_diff_without_trials_is_undefined() -> None:
    res = sig.score_diff(np.array([0, 3]), np.array([0, 5]), np.array([2, 0]), np.array([4, 0]))
    for field in sig.Outcome._fields:
        assert np.isnan(getattr(res, field)).all(), field


# --- Fisher: Newcombe's interval ------------------------------------------------------------------------


def test_fisher_interval_matches_statsmodels_newcombe() -> None:
    cases = [(0, 10, 0, 12), (10, 10, 12, 12), (3, 10, 7, 9), (56, 70, 48, 80), (1, 1, 0, 5)]
    k1, n1, k2, n2 = (np.array(c) for c in zip(*cases, strict=True))
    alpha = np.array([0.05, 0.1, 0.01, 0.05, 0.2])
    res = sig.fisher_exact(k1, n1, k2, n2, alpha)
    for i in range(len(cases)):
        ref = sm_proportion.confint_proportions_2indep(k2[i], n2[i], k1[i], n1[i], method="newcomb", alpha=alpha[i])
        assert [res.ci_low[i], res.ci_high[i]] == pytest.approx(list(ref), abs=1e-12), cases[i]
