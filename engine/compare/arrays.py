"""Columns of a rows frame as NumPy arrays, and the names of the paired test families."""

from __future__ import annotations

import numpy as np
import polars as pl

# Test families that run on the items both models answered.
PAIRED_TESTS = ("paired", "sign-flip", "mcnemar")
# Below this many units (or without spread) a t-test's p-value rests on its normal approximation
# more than on the data: the sign-flip and permutation tests are used instead. Those are exact only
# under their own null (differences symmetric about 0; exchangeable groups), and their intervals
# assume a shift; with skewed score differences on few items they cover poorly, so the gate never
# decides from them.
LARGE_N = 20
# Test families whose null distribution comes from permuting the data.
RESAMPLED_TESTS = ("sign-flip", "permutation")


def num(frame: pl.DataFrame, col: str) -> np.ndarray:
    if col not in frame.columns:
        return np.full(frame.height, np.nan)
    return frame[col].cast(pl.Float64).fill_null(np.nan).to_numpy().copy()


def flag(frame: pl.DataFrame, col: str) -> np.ndarray:
    if col not in frame.columns:
        return np.zeros(frame.height, dtype=bool)
    return frame[col].fill_null(False).to_numpy().astype(bool)


def text(frame: pl.DataFrame, col: str) -> list[str | None]:
    return frame[col].to_list() if col in frame.columns else [None] * frame.height
