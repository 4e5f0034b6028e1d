"""How a report writes numbers: fixed decimals, intervals, p-values, counted nouns."""

from __future__ import annotations

import math
from typing import Any


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` with its noun, singular or plural, thousands separated.

    >>> count(1, "run"), count(10000, "run"), count(2, "category", "categories")
    ('1 run', '10,000 runs', '2 categories')
    """
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def fmt(v: float | None, *, sign: bool = False) -> str:
    """A score to 3 decimals ("" for none).

    >>> fmt(0.5), fmt(-0.0123, sign=True), fmt(None)
    ('0.500', '-0.012', '')
    """
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return f"{v:+.3f}" if sign else f"{v:.3f}"


def ci(r: dict[str, Any]) -> str:
    if r.get("ci_low") is None or r.get("ci_high") is None:
        return ""
    return f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]"


def p(value: float | None) -> str:
    if value is None:
        return ""
    return "< 0.0001" if value < 1e-4 else f"{value:.4f}"


def p_text(value: float | None) -> str:
    """``p = 0.0123`` or ``p < 0.0001``."""
    if value is None:
        return "no p"
    return "p < 0.0001" if value < 1e-4 else f"p = {value:.4f}"
