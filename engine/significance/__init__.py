"""Two-sample tests, intervals of a difference, effect sizes and p-value corrections, on whole arrays.

Every function takes NumPy arrays (one element per comparison) and returns arrays of the same
length, so thousands of comparisons cost one SciPy call per test family rather than a Python loop.
Group 1 is the baseline and group 2 the candidate: differences are ``candidate - baseline``.
``alpha`` is one level or one per row (callers pass adjusted alphas, or ``2 alpha`` to read the
ends of a two-sided ``1 - 2 alpha`` interval as one-sided ``1 - alpha`` bounds).

Every interval of a difference comes from the same test as its p-value, so it leaves out 0
exactly when p < alpha (Fisher's test, on request only, is the exception: see
:func:`fisher_exact`); intervals of 0/1 metrics stay in [-1, 1]; degenerate samples (no
discordant pair, all 0s) give intervals of positive width, not a point.

Undefined results (n too small, zero variance with no difference) are NaN, never an exception;
the caller turns NaN into NULL.

Modules: ``means`` (t-tests, z-test), ``mcnemar`` (paired 0/1), ``two_proportions`` (score test,
Fisher), ``proportions`` (intervals of one proportion, Cohen's h), ``adjust``.

>>> import numpy as np
>>> r = student_t(np.array([3]), np.array([1.0]), np.array([1.0]), np.array([3]), np.array([2.0]), np.array([1.0]))
>>> round(float(r.statistic[0]), 4), round(float(r.p_value[0]), 4)
(1.2247, 0.2879)
"""

from evalhouse.significance._common import POWER, Outcome
from evalhouse.significance.adjust import ADJUST_METHODS, adjust
from evalhouse.significance.mcnemar import mcnemar_exact, mcnemar_mde
from evalhouse.significance.means import paired_t, student_t, t_mde, welch_t, z_test
from evalhouse.significance.proportions import clopper_pearson, cohens_h, wilson
from evalhouse.significance.two_proportions import fisher_exact, score_diff

__all__ = [
    "ADJUST_METHODS",
    "POWER",
    "Outcome",
    "adjust",
    "clopper_pearson",
    "cohens_h",
    "fisher_exact",
    "mcnemar_exact",
    "mcnemar_mde",
    "paired_t",
    "score_diff",
    "student_t",
    "t_mde",
    "welch_t",
    "wilson",
    "z_test",
]
