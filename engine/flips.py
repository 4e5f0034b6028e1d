"""The items whose score changed between a baseline and a candidate, largest change first.

The list is the ``flips`` view (``sql/22_flips.sql``): every ordered pair of models and every item
both answered, paired as ``evalhouse.compare`` pairs them (the item key of ``evalhouse.schema.ITEM_KEY``
within a metric, repeated answers averaged per item, items whose content hash changed left out), with
the question, the expected answer and both responses where the sources have them. For 0/1 scores
its rows are exactly the discordant items whose counts a comparison row carries (``flips_down`` +
``flips_up``). Model names are the stored ones (``[models.aliases]`` of evalhouse.toml does not
apply).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from evalhouse.errors import AnalysisError
from evalhouse.pairs import Rule, pairs_from_rules
from evalhouse.schema import VIEWS

if TYPE_CHECKING:
    import duckdb

COLUMNS = tuple(VIEWS["flips"].names)


@dataclass(frozen=True)
class FlipQuery:
    """Which flips to list: model patterns (globs, case-insensitive) and optional filters.

    >>> FlipQuery(("base",), ("base-q4*",), limit=10).limit
    10
    """

    baseline: tuple[str, ...]
    candidate: tuple[str, ...]
    metric: str | None = None
    benchmark: str | None = None
    category: str | None = None
    # Rows per pair of models, largest change first (None: all).
    limit: int | None = None


def model_pairs(
    con: duckdb.DuckDBPyConnection, baseline: Sequence[str], candidate: Sequence[str]
) -> list[tuple[str, str]]:
    """Every (baseline, candidate) the patterns name, as ``compare -b/-c`` pairs them.

    Raises AnalysisError when no pair matches.
    """
    names = [m for (m,) in con.sql("SELECT model FROM models ORDER BY model").fetchall()]
    pairs = pairs_from_rules(names, [Rule(tuple(baseline), tuple(candidate))])
    if not pairs:
        raise AnalysisError(
            f"no pair of models matches --baseline {' '.join(baseline)} --candidate {' '.join(candidate)}",
            hint="`evalhouse models` lists the names",
        )
    return pairs


def flips(con: duckdb.DuckDBPyConnection, query: FlipQuery) -> pl.DataFrame:
    """The flipped items of every pair ``query`` names, largest change first within each pair.

    Args:
        con: a connection with the warehouse's views (``evalhouse.warehouse.connect``).
        query: the model patterns and filters.

    Returns:
        A frame with the columns of the ``flips`` view (:data:`COLUMNS`), pairs in pattern order.
    """
    parts = []
    for baseline, candidate in model_pairs(con, query.baseline, query.candidate):
        sql = f"""
        SELECT {", ".join(f'"{c}"' for c in COLUMNS)} FROM flips
        WHERE baseline = $baseline AND candidate = $candidate
          AND ($metric IS NULL OR metric = $metric) AND ($benchmark IS NULL OR benchmark = $benchmark)
          AND ($category IS NULL OR category = $category)
        ORDER BY abs(change) DESC, metric, benchmark, category, task NULLS FIRST, item_id
        LIMIT $limit
        """
        params = {
            "baseline": baseline, "candidate": candidate, "metric": query.metric, "benchmark": query.benchmark,
            "category": query.category, "limit": query.limit,
        }  # fmt: skip
        parts.append(con.sql(sql, params=params).pl())
    return pl.concat(parts, how="vertical_relaxed")
