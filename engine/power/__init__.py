"""Power planning: the items a difference needs, or the smallest difference a number of items detects.

The variance of a paired difference per item follows Miller (2024), "Adding Error Bars to Evals"
(arXiv:2411.00640, section 5): with ``x`` an item's conditional mean score (its mean over endless
answers) and ``K`` answers per item and model,

    Var(d_i) = omega^2 + (sigma_b^2 + sigma_c^2) / K,   omega^2 = Var(x_c - x_b)
             = omega_b^2 + omega_c^2 - 2 rho omega_b omega_c,

``omega^2`` the between-item variance of the difference of conditional means, ``sigma^2`` each
model's within-item variance (of one answer around its item's conditional mean) and ``rho`` the
correlation of the two models' conditional means: the more two models agree item by item, the
fewer items a difference needs; more answers per item shrink only the within-item part.

Modules: ``design`` (the power of the tests ``evalhouse.compare`` runs, and solving a design from
variance components), ``observed`` (the components a warehouse shows for a pair, or assumed; the
``evalhouse power`` rows).

>>> r = solve(Variance(between=0.09), Plan(delta=0.05))
>>> r.test, r.items, round(r.power, 3)
('paired', 285, 0.801)
"""

from evalhouse.power.design import (
    MAX_ITEMS,
    Plan,
    Result,
    Variance,
    mcnemar_items,
    mcnemar_power,
    solve,
    t_items,
    t_power,
)
from evalhouse.power.observed import COLUMNS, Observed, PowerQuery, assume, observe, plan_rows, power

__all__ = [
    "COLUMNS", "MAX_ITEMS", "Observed", "Plan", "PowerQuery", "Result", "Variance", "assume", "mcnemar_items",
    "mcnemar_power", "observe", "plan_rows", "power", "solve", "t_items", "t_power",
]  # fmt: skip
