"""Exact and Monte Carlo permutation tests of a difference, with intervals from inverting the same test.

For small or degenerate samples a t-test can claim p = 0 on two items; a permutation test cannot:
its smallest p-value is two over the number of permutations. The interval of the difference is the
set of shifts ``delta`` the same test does not reject (``p(delta) > alpha``), so it excludes 0
exactly when ``p <= alpha`` (as long as ``limits`` contain 0).

The interval needs no search. Shifting the data by ``delta`` moves the observed statistic and each
permuted one linearly, and a permutation's statistic crosses the observed one at a single shift, its
*critical value*: the mean of the flipped differences (sign flips), or the mean of the candidate
items moved out minus the mean of the baseline items moved in (two groups). A permutation counts in
the upper tail exactly when ``delta`` is at or above its critical value and in the lower tail when
at or below, so ``p(delta)`` is a step function and the interval's ends are order statistics of the
critical values, exact rather than bisected.

Ties: a permuted statistic equal to the observed one counts in both tails. Equal means within
SciPy's tolerance (100 machine epsilons of the observed statistic) or, beyond SciPy, a difference of
sums within its own rounding error of 0, so that values equal on paper (0.1 + 0.2 - 0.3) tie even
when the observed statistic is near 0 and SciPy's tolerance with it. The p-values therefore equal
SciPy's except where SciPy's answer hinges on rounding; there they are those of the fractions the
data stand for.

Every function returns an :class:`evalhouse.significance.Outcome` of float arrays, one element per
row; rows with no data (or non-finite values) are NaN throughout. Rows of the same size share their
permutations, and sums are added in an order fixed by the row alone, so a row gets the same result
alone or in a batch. Memory is bounded by blocks of about a million elements, except that an exact
sign-flip row needs ``2**n`` values at once (``exact_max`` 16: half a megabyte).

>>> r = sign_flip([np.array([-0.25, -0.25])], limits=(np.array([-1.0]), np.array([1.0])))
>>> float(r.p_value[0]), float(r.ci_low[0]), float(r.ci_high[0])
(0.5, -1.0, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from itertools import chain, combinations

import numpy as np

from evalhouse.significance import Outcome

Array = np.ndarray
# Yields, for a block of rows, the permutations' data sums (rows x permutations) and how many items
# each permutation moves (0: the data unchanged, a tie with the observed statistic at every shift).
Sums = Callable[[Array], Iterator[tuple[Array, Array]]]
Limits = tuple[Array | float, Array | float]

# SciPy permutation_test's relative tolerance: a permuted statistic within 100 machine epsilons of
# the observed one counts as equal to it (in both tails).
_GAMMA = 100 * float(np.finfo(np.float64).eps)
# Elements in one work array (rows x permutations, or permutations x items): 8 MB of float64. A
# call holds a handful of them at once, whatever the number of rows.
_BLOCK = 1 << 20


def sign_flip(
    diffs: Sequence[Array],
    alpha: float | Array = 0.05,
    *,
    limits: Limits | None = None,
    exact_max: int = 16,
    resamples: int = 9_999,
    seed: int = 0,
) -> Outcome:
    """Paired sign-flip permutation test of the mean difference, one row per array of differences.

    Exact over all ``2**n`` sign patterns when ``n <= exact_max`` (the p-value equals scipy
    ``permutation_test((d, 0 * d), lambda x, y: np.mean(x - y), permutation_type='samples')``
    up to the handling of ties on paper, see the module's docstring);
    otherwise ``resamples`` random patterns, the observed one counted as in SciPy,
    ``(1 + count) / (1 + resamples)`` per tail. Random patterns depend only on ``seed`` and ``n``,
    so a row gets the same result alone or in a batch. Two-sided: ``min(1, 2 * smaller tail)``.

    Args:
        diffs: per-item differences ``candidate - baseline``, one 1-D array per row.
        alpha: level of the interval, a scalar or one per row (pass ``2 * alpha`` for one-sided bounds).
        limits: ``(low, high)`` bounding the difference (scalars or per row), e.g. ``(-1, 1)`` for
            scores in [0, 1]; an end the test never reaches inside them is the limit (without
            limits: -inf or inf).
        exact_max: largest ``n`` enumerated exactly (memory grows as ``2**n`` per row).
        resamples: random sign patterns per row beyond ``exact_max``.
        seed: seed of ``np.random.default_rng`` for the random patterns.

    Returns:
        Outcome: mean difference, p-value, the ``1 - alpha`` interval, Cohen's d_z (mean over the
        standard deviation; NaN when that is 0 or ``n < 2``) and ``mde`` NaN (the caller's).

    >>> r = sign_flip([np.array([-0.5, -0.25, -0.5, -0.75, -0.25, -0.5])])
    >>> float(r.statistic[0]), float(r.p_value[0]), float(r.ci_low[0]), float(r.ci_high[0])
    (-0.4583333333333333, 0.03125, -0.75, -0.25)
    """
    rows = [_row(d) for d in diffs]
    alpha_, low, high = _settings(alpha, limits, len(rows), resamples)
    n = np.array([r.size for r in rows], dtype=np.int64)
    ok = np.array([r.size > 0 and bool(np.isfinite(r).all()) for r in rows], dtype=bool)
    mean = np.array([r.mean() if good else np.nan for r, good in zip(rows, ok, strict=True)])
    sd = np.array([_sd(r) if good and r.size > 1 else np.nan for r, good in zip(rows, ok, strict=True)])
    with np.errstate(divide="ignore", invalid="ignore"):
        effect = np.where(sd > 0, mean / sd, np.nan)

    def plan(key: tuple[int, ...]) -> tuple[int, int, float, Sums]:
        (k,) = key
        if k <= exact_max:
            return 2**k, 0, 2 / k, lambda z: _all_flips(z)
        return resamples, 1, 2 / k, lambda z: _random_flips(z, resamples, seed)

    keys = [(int(k),) if good else None for k, good in zip(n, ok, strict=True)]
    p, lo, hi = _invert_groups(rows, keys, mean, plan, alpha_, low, high)
    return Outcome(mean, p, lo, hi, effect, np.full(len(rows), np.nan))


def two_sample(
    baseline: Sequence[Array],
    candidate: Sequence[Array],
    alpha: float | Array = 0.05,
    *,
    limits: Limits | None = None,
    exact_max: int = 20_000,
    resamples: int = 9_999,
    seed: int = 0,
) -> Outcome:
    """Unpaired permutation test of ``mean(candidate) - mean(baseline)``, one row per pair of arrays.

    Exact over all ``comb(n1 + n2, n1)`` assignments of the pooled items to the two groups when there
    are at most ``exact_max`` of them (the p-value equals scipy ``permutation_test((candidate,
    baseline), lambda x, y: np.mean(x) - np.mean(y), permutation_type='independent')``, ties as
    for :func:`sign_flip`); otherwise
    ``resamples`` random assignments, counted as in :func:`sign_flip`.

    Args:
        baseline: the baseline's scores, one 1-D array per row.
        candidate: the candidate's scores, one 1-D array per row.
        alpha: level of the interval, a scalar or one per row.
        limits: ``(low, high)`` bounding the difference, as for :func:`sign_flip`.
        exact_max: most assignments enumerated exactly.
        resamples: random assignments per row beyond ``exact_max``.
        seed: seed of ``np.random.default_rng``; the draws depend only on it and the group sizes.

    Returns:
        Outcome: difference of means, p-value, the ``1 - alpha`` interval (shifting the candidate's
        scores), Cohen's d with the pooled standard deviation (NaN when that is 0 or undefined) and
        ``mde`` NaN. A row with an empty group is NaN.

    >>> r = two_sample([np.array([0.0, 0.0, 1.0])], [np.array([1.0, 1.0, 1.0, 1.0])])
    >>> float(r.statistic[0]), round(float(r.p_value[0]), 4)
    (0.6666666666666667, 0.2857)
    """
    if len(baseline) != len(candidate):
        raise ValueError(f"{len(baseline)} baseline rows but {len(candidate)} candidate rows")
    xs, ys = [_row(b) for b in baseline], [_row(c) for c in candidate]
    alpha_, low, high = _settings(alpha, limits, len(xs), resamples)
    ok = np.array(
        [
            x.size > 0 and y.size > 0 and bool(np.isfinite(x).all() and np.isfinite(y).all())
            for x, y in zip(xs, ys, strict=True)
        ],
        dtype=bool,
    )
    n1 = np.array([x.size for x in xs], dtype=np.float64)
    n2 = np.array([y.size for y in ys], dtype=np.float64)
    diff = np.array([y.mean() - x.mean() if good else np.nan for x, y, good in zip(xs, ys, ok, strict=True)])
    # A group of one has no variance of its own but still counts in the pooled estimate.
    ss = np.array([(x.size - 1) * _sd(x) ** 2 + (y.size - 1) * _sd(y) ** 2 if good else np.nan
                   for x, y, good in zip(xs, ys, ok, strict=True)])  # fmt: skip
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = np.sqrt(ss / (n1 + n2 - 2))
        effect = np.where(ok & (pooled > 0), diff / pooled, np.nan)

    def plan(key: tuple[int, ...]) -> tuple[int, int, float, Sums]:
        k1, k2 = key
        scale = 1 / k1 + 1 / k2
        count = math.comb(k1 + k2, k1)
        if count <= exact_max:
            return count, 0, scale, lambda z: _all_swaps(z, k1, k2)
        return resamples, 1, scale, lambda z: _random_swaps(z, k1, k2, resamples, seed)

    # Pooled as in SciPy, candidate first: shifting the candidate shifts the first k2 columns.
    rows = [np.concatenate([y, x]) for x, y in zip(xs, ys, strict=True)]
    keys = [(x.size, y.size) if good else None for x, y, good in zip(xs, ys, ok, strict=True)]
    p, lo, hi = _invert_groups(rows, keys, diff, plan, alpha_, low, high)
    return Outcome(diff, p, lo, hi, effect, np.full(len(xs), np.nan))


def _row(values: object) -> Array:
    row = np.asarray(values, dtype=np.float64)
    if row.ndim != 1:
        raise ValueError(f"each row must be a 1-D array, got shape {row.shape}")
    return row


def _sd(x: Array) -> float:
    # Identical values have sd 0 exactly; np.std leaves rounding dust (and a huge effect size) there.
    if x.size < 2 or np.ptp(x) == 0:
        return 0.0
    return float(np.std(x, ddof=1))


def _settings(alpha: float | Array, limits: Limits | None, size: int, resamples: int) -> tuple[Array, Array, Array]:
    alpha_ = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (size,))
    if not np.all((alpha_ > 0) & (alpha_ < 1)):
        raise ValueError("alpha must lie strictly between 0 and 1")
    if resamples < 1:
        raise ValueError("resamples must be at least 1")
    low, high = (-np.inf, np.inf) if limits is None else limits
    return (
        alpha_,
        np.broadcast_to(np.asarray(low, dtype=np.float64), (size,)),
        np.broadcast_to(np.asarray(high, dtype=np.float64), (size,)),
    )


def _invert_groups(
    rows: list[Array],
    keys: Sequence[tuple[int, ...] | None],
    observed: Array,
    plan: Callable[[tuple[int, ...]], tuple[int, int, float, Sums]],
    alpha: Array,
    low: Array,
    high: Array,
) -> tuple[Array, Array, Array]:
    """p-values and interval ends of all rows; rows with the same key share one set of permutations."""
    p, lo, hi = (np.full(len(rows), np.nan) for _ in range(3))
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, key in enumerate(keys):
        if key is not None:
            groups.setdefault(key, []).append(i)
    for key, members in groups.items():
        count, adjustment, scale, sums = plan(key)
        step = max(1, _BLOCK // count)
        for start in range(0, len(members), step):
            idx = np.array(members[start : start + step])
            data = np.stack([rows[i] for i in idx])
            crit, trivial = _critical(data, observed[idx], sums, scale)
            p[idx], lo[idx], hi[idx] = _invert(crit, adjustment + trivial, count + adjustment, alpha[idx])
    return p, np.clip(lo, low, high), np.clip(hi, low, high)


def _critical(data: Array, observed: Array, sums: Sums, scale: float) -> tuple[Array, int]:
    """Critical shifts (rows x moving permutations) and the number of permutations that move nothing.

    A permutation moving ``k`` items with data sum ``s`` changes the statistic by ``-s * scale``; it
    ties with the observed statistic at the shift ``s / k``, at every shift when ``k = 0``.
    """
    # Ties at shift 0, where the p-value is reported, get critical value 0 exactly, so that "0 in the
    # interval" and "p > alpha" are one decision. A tie is SciPy's (a statistic within gamma of the
    # observed one) or a sum within its own rounding error of 0: values equal on paper, such as
    # 0.1 + 0.2 - 0.3, which SciPy's gamma misses when the observed statistic is near 0.
    rounding = data.shape[1] * np.finfo(np.float64).eps * np.abs(data).sum(1)
    tol = np.maximum(_GAMMA * np.abs(observed) / scale, rounding)[:, None]
    parts, trivial = [], 0
    for s, k in sums(data):
        moving = k > 0
        trivial += int(k.size - moving.sum())
        s = s[:, moving]
        parts.append(np.where(np.abs(s) <= tol, 0.0, s / k[moving]))
    return np.concatenate(parts, axis=1), trivial


def _p_of(count: Array, total: int) -> Array:
    """Two-sided p-value from the smaller tail's count, SciPy's ``min(1, 2 * count / total)``."""
    return np.minimum(1.0, 2.0 * (count / total))


def _invert(crit: Array, base: int, total: int, alpha: Array) -> tuple[Array, Array, Array]:
    """p-value at shift 0 and the ends of ``{delta: p(delta) > alpha}`` from the critical shifts.

    At shift ``delta`` the upper tail holds ``base`` permutations plus those with a critical value
    ``<= delta``, the lower tail ``base`` plus those ``>= delta``.
    """
    rows, width = crit.shape
    p = _p_of(base + np.minimum((crit <= 0).sum(1), (crit >= 0).sum(1)), total)
    # Both tails need `need` members for p > alpha: `need` more critical values than `base` on each side.
    need = _needed(alpha, total) - base
    lo, hi = np.full(rows, -np.inf), np.full(rows, np.inf)
    bounded = need >= 1
    if bounded.any():
        kth = np.unique(np.concatenate([need[bounded] - 1, width - need[bounded]]))
        part = np.partition(crit, kth, axis=1)
        at = np.arange(rows)
        lo = np.where(bounded, part[at, np.clip(need - 1, 0, width - 1)], -np.inf)
        hi = np.where(bounded, part[at, np.clip(width - need, 0, width - 1)], np.inf)
    return p, lo, hi


def _needed(alpha: Array, total: int) -> Array:
    """Smallest tail count whose p-value exceeds ``alpha``.

    Decided by the same floating-point expression that computes the p-value, so that ties such as
    ``p == alpha`` fall on the same side for the p-value and for the interval.
    """
    need = np.floor(alpha * total / 2).astype(np.int64)
    while True:
        up = _p_of(need, total) <= alpha
        down = ~up & (_p_of(need - 1, total) > alpha)
        if not (up.any() or down.any()):
            return need
        need = need + up - down


def _all_flips(data: Array) -> Iterator[tuple[Array, Array]]:
    """Sums of every subset of each row's items (a subset = the items whose sign flips).

    Built by doubling (subsets without item i, then with it) rather than a matrix product: each
    sum is then added up in item order, whatever the batch, so a row's result does not depend on
    which other rows share the call (BLAS may round differently for different shapes).
    """
    sums, sizes = np.zeros((data.shape[0], 1)), np.zeros(1, dtype=np.int64)
    for i in range(data.shape[1]):
        sums = np.concatenate([sums, sums + data[:, i : i + 1]], axis=1)
        sizes = np.concatenate([sizes, sizes + 1])
    yield sums, sizes


def _random_flips(data: Array, resamples: int, seed: int) -> Iterator[tuple[Array, Array]]:
    """Sums of ``resamples`` random subsets of each row's items; the same subsets for every row of size n."""
    n = data.shape[1]
    rng = np.random.default_rng(seed)
    step = max(1, _BLOCK // n)
    for start in range(0, resamples, step):
        # One random byte gives eight fair signs: an eighth of the draws of one integer per sign.
        raw = rng.integers(0, 256, size=(min(step, resamples - start), (n + 7) // 8), dtype=np.uint8)
        flips = np.unpackbits(raw, axis=1, count=n).astype(bool)
        yield _row_sums(data, flips), flips.sum(1)


def _row_sums(data: Array, chosen: Array) -> Array:
    """Sum of each row's chosen items for each pattern (rows x patterns).

    Row by row rather than one matrix product, for the batch independence explained in
    :func:`_all_flips`.
    """
    # One matrix-vector product per row: BLAS speed, and a row's sums depend on that row alone.
    weights = chosen.astype(np.float64)
    return np.stack([weights @ row for row in data])


def _combos(n: int, t: int) -> Array:
    """All size-t subsets of range(n) as rows of indices."""
    count = math.comb(n, t)
    flat = np.fromiter(chain.from_iterable(combinations(range(n), t)), dtype=np.intp, count=count * t)
    return flat.reshape(count, t)


def _all_swaps(data: Array, n1: int, n2: int) -> Iterator[tuple[Array, Array]]:
    """Every reassignment of the pooled items, as t candidate items swapped with t baseline items.

    Each reassignment is one pair of equal-size subsets (Vandermonde: the pairs number
    ``comb(n1 + n2, n2)``); its sum is the candidates' subset sum minus the baselines'.
    """
    rows = data.shape[0]
    cand, base = data[:, :n2], data[:, n2:]
    for t in range(min(n1, n2) + 1):
        out, into = _combos(n2, t), _combos(n1, t)
        sum_in = base[:, into].sum(-1)
        step = max(1, _BLOCK // (rows * len(into)))
        for start in range(0, len(out), step):
            sum_out = cand[:, out[start : start + step]].sum(-1)
            s = (sum_out[:, :, None] - sum_in[:, None, :]).reshape(rows, -1)
            yield s, np.full(s.shape[1], t)


def _random_swaps(data: Array, n1: int, n2: int, resamples: int, seed: int) -> Iterator[tuple[Array, Array]]:
    """``resamples`` random reassignments: the first n2 positions of a random permutation are the candidate's."""
    total = n1 + n2
    rng = np.random.default_rng(seed)
    step = max(1, _BLOCK // total)
    for start in range(0, resamples, step):
        size = min(step, resamples - start)
        order = rng.permuted(np.tile(np.arange(total), (size, 1)), axis=1)
        chosen = np.zeros((size, total), dtype=bool)
        np.put_along_axis(chosen, order[:, :n2], True, axis=1)
        moved_out = ~chosen[:, :n2]  # candidate items now in the baseline
        moved_in = chosen[:, n2:]  # baseline items now in the candidate
        yield _row_sums(data[:, :n2], moved_out) - _row_sums(data[:, n2:], moved_in), moved_out.sum(1)
