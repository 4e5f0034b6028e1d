"""The run settings that decide whether two models' results are comparable, and where a pair differs.

Adapters keep each run's settings under ``"settings"`` in ``runs.metadata`` (harness and task
versions, few-shot count, generation arguments, chat template, dataset revision, ...). Two runs that
differ there measured different things, however alike their scores look: a comparison names every
such setting beside its rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import orjson
import polars as pl

if TYPE_CHECKING:
    import duckdb

# Settings named in one row before the rest is summarised as "and N more".
MAX_NAMED = 6


def flatten(settings: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(dotted key, JSON value) of every leaf of a settings object.

    >>> dict(flatten({"n_shot": {"mmlu": 5}, "version": "0.4.9"}))
    {'n_shot.mmlu': '5', 'version': '"0.4.9"'}
    """
    if isinstance(settings, dict) and settings:
        for key, value in settings.items():
            yield from flatten(value, f"{prefix}.{key}" if prefix else str(key))
    elif prefix:
        yield prefix, orjson.dumps(settings, option=orjson.OPT_SORT_KEYS).decode()


def _per_model(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, set[str]]]:
    """Per model (as the analysis spells it): each setting's values over its live, included runs."""
    rows = con.sql(
        """SELECT model, metadata FROM _eh_runs
           WHERE model IN (SELECT model FROM _eh_models) AND run_id NOT IN (SELECT run_id FROM _eh_excluded)
             AND metadata IS NOT NULL"""
    ).fetchall()
    out: dict[str, dict[str, set[str]]] = {}
    for model, metadata in rows:
        try:
            settings = orjson.loads(metadata).get("settings")
        except (orjson.JSONDecodeError, AttributeError):
            continue
        for key, value in flatten(settings):
            out.setdefault(model, {}).setdefault(key, set()).add(value)
    return out


def describe(baseline: dict[str, set[str]], candidate: dict[str, set[str]]) -> str | None:
    """``key: baseline value(s) vs candidate value(s)`` for every setting that differs, or None.

    >>> describe({"n_shot": {"5"}}, {"n_shot": {"0"}, "chat": {"true"}})
    'chat: (not recorded) vs true; n_shot: 5 vs 0'
    """
    parts = []
    for key in sorted(baseline.keys() | candidate.keys()):
        b, c = baseline.get(key, set()), candidate.get(key, set())
        if b != c:
            parts.append(
                f"{key}: {' | '.join(sorted(b)) or '(not recorded)'} vs {' | '.join(sorted(c)) or '(not recorded)'}"
            )
    if not parts:
        return None
    more = len(parts) - MAX_NAMED
    return "; ".join(parts[:MAX_NAMED]) + (f"; and {more} more" if more > 0 else "")


def _values(values: set[str]) -> str:
    return " | ".join(sorted(values)) or "(not recorded)"


def settings_differences(con: duckdb.DuckDBPyConnection, pair_frame: pl.DataFrame) -> pl.DataFrame:
    """Per pair: the run settings in which the two models' runs differ (NULL: none recorded differ)."""
    per_model = _per_model(con)
    return pl.DataFrame(
        {
            "pair_id": pair_frame["pair_id"],
            "settings_diff": [
                describe(per_model.get(b, {}), per_model.get(c, {}))
                for b, c in zip(pair_frame["baseline"], pair_frame["candidate"], strict=True)
            ],
        },
        schema={"pair_id": pl.Int64, "settings_diff": pl.String},
    )
