"""Columns of a rows frame as NumPy arrays, and the names of the paired test families."""

from __future__ import annotations

import numpy as np
import polars as pl

# Test families that run on the items both models answered.
PAIRED_TESTS = ("paired", "sign-flip", "mcnemar")


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
