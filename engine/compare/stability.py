"""What a comparison row says beyond its test: answers that flipped, the baseline's run-to-run noise,
and the items that would decide a row the test could not.

- **Flips** (0/1 scores on every paired item): ``flips_down`` items went from 1 to 0 (baseline
  right, candidate wrong), ``flips_up`` from 0 to 1, counted item by item whatever the unit of the
  test; ``flip_rate`` is their share of the paired items, with its Wilson interval at the row's
  level. "Accuracy unchanged, 12 % of answers flipped" shows here.
- **Noise floor**: ``noise_sd`` is the baseline's run-to-run standard deviation of the mean in the
  row's scope (``evalhouse.noise``), where it ran the items more than once. Each side's mean averages
  ``k`` answers per item, so the difference two such analyses of the *baseline against itself*
  stay within with probability ``1 - alpha`` is ``noise_floor = z(1 - alpha/2) * noise_sd *
  sqrt(1/k_baseline + 1/k_candidate)``; ``within_noise`` flags differences no larger.
- **Items to decide** a row with no margin that is not significant: the items per model at which
  the observed difference and spread would be significant with 80 % power,
  ``((z(1 - alpha/2) + z(0.8)) * sd / |diff|)^2`` (at least ``LARGE_N`` for the permutation
  families).

>>> a = {"flips_binary": np.array([True]), "n_paired_items": np.array([100.0]), "flips_down": np.array([7.0]),
...      "flips_up": np.array([5.0])}
>>> out = flip_columns(a, np.array([0.05]))
>>> float(out["flip_rate"][0]), round(float(out["flip_rate_low"][0]), 4)
(0.12, 0.07)
"""

from __future__ import annotations

import numpy as np
from scipy import special

from evalhouse.significance import POWER, wilson

Arrays = dict[str, np.ndarray]


def flip_columns(a: Arrays, alpha: np.ndarray) -> Arrays:
    """``flips_down``, ``flips_up``, ``flip_rate`` and its interval (NaN where not all paired items are 0/1)."""
    n = a["n_paired_items"]
    ok = a["flips_binary"] & (n > 0)
    down = np.where(ok, a["flips_down"], np.nan)
    up = np.where(ok, a["flips_up"], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        low, high = wilson(down + up, n, 1 - alpha)
        return {
            "flips_down": down, "flips_up": up, "flip_rate": (down + up) / n,
            "flip_rate_low": np.where(ok, low, np.nan), "flip_rate_high": np.where(ok, high, np.nan),
        }  # fmt: skip


def noise_columns(a: Arrays, diff: np.ndarray, alpha: np.ndarray) -> Arrays:
    """``noise_sd``, ``noise_runs``, ``noise_floor`` and ``within_noise`` (1.0/0.0; NaN where unknown).

    >>> a = {"noise_var": np.array([0.0004, np.nan]), "noise_runs": np.array([5.0, np.nan]),
    ...      "n_answers_b": np.array([100.0, 10.0]), "n_items_b": np.array([100.0, 10.0]),
    ...      "n_answers_c": np.array([100.0, 10.0]), "n_items_c": np.array([100.0, 10.0])}
    >>> out = noise_columns(a, np.array([-0.03, 0.1]), np.array([0.05, 0.05]))
    >>> round(float(out["noise_floor"][0]), 4), out["within_noise"].tolist()
    (0.0554, [1.0, nan])
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        # As evalhouse.noise: a variance of rounding dust (identical runs) is none.
        sd = np.where(
            a["noise_var"] > 1e-12, np.sqrt(np.maximum(a["noise_var"], 0)), np.where(a["noise_var"] >= 0, 0, np.nan)
        )
        k_b = np.maximum(a["n_answers_b"] / a["n_items_b"], 1)
        k_c = np.maximum(a["n_answers_c"] / a["n_items_c"], 1)
        floor = special.ndtri(1 - alpha / 2) * sd * np.sqrt(1 / k_b + 1 / k_c)
        known = np.isfinite(floor) & np.isfinite(diff)
        within = np.where(known, (np.abs(diff) <= floor).astype(np.float64), np.nan)
    return {"noise_sd": sd, "noise_runs": a["noise_runs"], "noise_floor": floor, "within_noise": within}


def items_to_decide(diff: np.ndarray, sd: np.ndarray, alpha: np.ndarray, undecided: np.ndarray) -> np.ndarray:
    """Items per model at which ``diff`` with per-item spread ``sd`` is significant with 80 % power.

    >>> int(items_to_decide(np.array([0.02]), np.array([0.3]), np.array([0.05]), np.array([True]))[0])
    1766
    """
    z = special.ndtri(1 - alpha / 2) + special.ndtri(POWER)
    with np.errstate(divide="ignore", invalid="ignore"):
        n = np.ceil((z * sd / np.abs(diff)) ** 2)
    return np.where(undecided & np.isfinite(n) & (n > 0) & (sd > 0), n, np.nan)
