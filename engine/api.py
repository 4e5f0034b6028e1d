"""The Python API for notebooks and scripts: open a warehouse, then ask it what the CLI asks.

Every function returns a Polars DataFrame (or, for ``report``, the paths written) and raises the
typed errors of ``evalhouse.errors`` where the CLI prints ``Error: ...``.

>>> import tempfile
>>> import evalhouse.api as eh
>>> wh = eh.open_warehouse(tempfile.mkdtemp() + "/wh", create=True)
>>> eh.sql(wh, "SELECT count(*) AS n FROM scores").item()
0
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from evalhouse.warehouse import Warehouse, connect, open_warehouse

__all__ = ["compare", "flips", "ingest", "open_warehouse", "report", "sql", "summary"]

if TYPE_CHECKING:
    from evalhouse.ingest import IngestReport
    from evalhouse.report import ReportResult


def ingest(wh: Warehouse, paths: Sequence[str | os.PathLike[str]], **options: Any) -> IngestReport:
    """Ingest files and folders (see ``evalhouse.ingest.ingest`` for the options)."""
    from evalhouse.commit import retrying
    from evalhouse.ingest import ingest as run

    return retrying(wh, lambda wh: run(wh, paths, **options))  # on S3: redone if another writer won


def sql(wh: Warehouse, query: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pl.DataFrame:
    """A query over the warehouse's views, with bound parameters."""
    con = connect(wh)
    try:
        return con.sql(query, params=params).pl()
    finally:
        con.close()


def summary(wh: Warehouse, by: Sequence[str] = ("model",), **options: Any) -> pl.DataFrame:
    """Score statistics per group and metric, items as the unit (``evalhouse summary``; options of
    ``evalhouse.stats.describe``: level, method, cluster, per_answer, where)."""
    from evalhouse.stats import describe

    con = connect(wh)
    try:
        return describe(con, list(by), **options)
    finally:
        con.close()


def compare(wh: Warehouse, **options: Any) -> pl.DataFrame:
    """Pairs compared overall and per category (``evalhouse compare``; options as ``Settings``
    fields: baseline, candidate, by, test, adjust, alpha, margin, overlap, cluster, exclude_sources).
    Nothing is stored."""
    from evalhouse.compare import compare as run

    con = connect(wh)
    try:
        return run(con, **options)
    finally:
        con.close()


def flips(wh: Warehouse, baseline: Sequence[str], candidate: Sequence[str], **filters: Any) -> pl.DataFrame:
    """The shared items whose score changed (``evalhouse flips``; filters: metric, benchmark,
    category, limit)."""
    from evalhouse.flips import FlipQuery
    from evalhouse.flips import flips as run

    con = connect(wh)
    try:
        return run(con, FlipQuery(tuple(baseline), tuple(candidate), **filters))
    finally:
        con.close()


def report(wh: Warehouse, out: str | os.PathLike[str], **options: Any) -> ReportResult:
    """Write the report into ``out`` (``evalhouse report``; options: outputs, metric, and comparison
    settings as for :func:`compare`)."""
    from evalhouse.report import build_report
    from evalhouse.settings import Settings, merge

    settings_fields = {k: options.pop(k) for k in list(options) if k in Settings.__dataclass_fields__}
    settings = merge(Settings(), **settings_fields) if settings_fields else None
    return build_report(wh, out, settings=settings, **options)
