"""Corrections of p-values for multiple comparisons."""

from __future__ import annotations

import numpy as np

from evalhouse.settings import ADJUST_METHODS
from evalhouse.significance._common import Array, floats


def adjust(p: Array, method: str = "holm") -> Array:
    """p-values adjusted for multiple comparisons; NaN entries are left out of the family.

    ``holm``: Holm's step-down (controls the family-wise error rate); ``bh``: Benjamini-Hochberg
    (controls the false discovery rate; scipy ``false_discovery_control``); ``none``: unchanged.

    >>> adjust(np.array([0.01, 0.04, np.nan, 0.03]), "holm").round(4).tolist()
    [0.03, 0.06, nan, 0.06]
    """
    p = floats(p)
    if method not in ADJUST_METHODS:
        raise ValueError(f"unknown adjustment {method!r}")
    out = p.copy()
    ok = ~np.isnan(p)
    if method == "none" or not ok.any():
        return out
    q = p[ok]
    if method == "bh":
        from scipy import stats

        out[ok] = stats.false_discovery_control(q, method="bh")
        return out
    order = np.argsort(q, kind="stable")
    m = q.size
    stepped = np.maximum.accumulate((m - np.arange(m)) * q[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    out[ok] = adjusted
    return out
