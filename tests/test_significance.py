"""Every test, interval and correction of engine.significance against SciPy or hand-computed values."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from engine import significance as sig

RNG = np.random.default_rng(20250301)


def _moments(x: np.ndarray) -> tuple[int, float, float]:
    return len(x), float(np.mean(x)), float(np.var(x, ddof=1)) if len(x) > 1 else float("nan")


def _scipy(fn, *args, **kwargs):
    """Call SciPy silencing its warnings for degenerate samples (we compare values, not warnings)."""
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
    ref = [_scipy(stats.ttest_ind, c, b, equal_var=equal_var) for b, c in SAMPLES]
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


def test_mde_by_hand() -> None:
    """80 % power: (t_{1-a/2} + t_{0.8}) * se, on the test's degrees of freedom."""
    res = sig.student_t(
        np.array([10]), np.array([0.0]), np.array([1.0]), np.array([10]), np.array([0.0]), np.array([1.0])
    )
    se = np.sqrt(1.0 * (1 / 10 + 1 / 10))
    assert res.mde[0] == pytest.approx((stats.t.ppf(0.975, 18) + stats.t.ppf(0.8, 18)) * se)


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
        ref = _scipy(stats.ttest_rel, c, b)
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
    # Wald interval of the paired difference, by hand.
    diff = (n01 - n10) / n
    se = np.sqrt(n10 + n01 - (n01 - n10) ** 2 / n) / n
    assert res.ci_low[0] == pytest.approx(diff - stats.norm.ppf(0.975) * se)


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
