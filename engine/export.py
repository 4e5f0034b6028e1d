"""Write the warehouse's live runs in another tool's format: ``evalhouse export --format eee|parquet OUT``.

``WRITERS`` maps each ``--format`` to a function ``(ExportJob) -> ExportReport``; ``export``
selects the runs (``-m`` patterns) and calls one. ``parquet`` (the live tables as Parquet folders
with a data dictionary, for BI tools) lives in ``evalhouse.export_parquet``, ``eee`` (Every Eval
Ever) in ``evalhouse.export_eee``; each is imported only when it is used, so ``--help`` stays instant.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from evalhouse.errors import ExportError

if TYPE_CHECKING:
    import duckdb

    from evalhouse.warehouse import Warehouse


# The tables `--format parquet` writes, in order (declared in evalhouse.export_parquet; named here
# so that the CLI's help needs no data library).
PARQUET_TABLES = ("runs", "scores", "texts", "metrics", "files", "comparisons")


@dataclass
class ExportReport:
    """What an export wrote."""

    out: Path
    runs: int = 0
    skipped: int = 0  # runs with neither scores nor metrics
    files: list[Path] = field(default_factory=list)
    lines: int = 0  # instance lines over all samples files
    tables: dict[str, int] = field(default_factory=dict)  # parquet: rows per table


@dataclass(frozen=True)
class ExportJob:
    """What a writer is asked to write: the chosen live runs of a warehouse, into ``out``."""

    con: duckdb.DuckDBPyConnection
    wh: Warehouse
    out: Path
    run_ids: list[str]
    models: tuple[str, ...] = ()  # the -m patterns; empty: every model
    tables: tuple[str, ...] | None = None  # parquet's --tables; None: all


def export(
    wh: Warehouse,
    out: str | os.PathLike[str],
    *,
    fmt: str = "eee",
    models: Sequence[str] = (),
    tables: Sequence[str] | None = None,
) -> ExportReport:
    """Write the live runs (of the models matching ``models``, else all) to ``out`` in format ``fmt``.

    Args:
        wh: the warehouse to read.
        out: the folder to write into (eee: created if missing, files rewritten in place;
            parquet: written beside and renamed into place, replacing only an earlier export).
        fmt: a key of ``WRITERS``.
        models: glob patterns matched case-insensitively against model names; each must match.
        tables: parquet only: the tables to write (names of ``PARQUET_TABLES``); None for all.

    Returns:
        An ExportReport. Raises ExportError when nothing matches, a table is unknown or a file
        cannot be written.
    """
    from evalhouse.pairs import match_patterns
    from evalhouse.warehouse import connect

    if fmt not in WRITERS:
        raise ExportError(f"unknown export format {fmt!r}; choose from {', '.join(WRITERS)}")
    if tables is not None and fmt != "parquet":
        raise ExportError(f"--tables applies to --format parquet, not {fmt}")
    wh = wh.pinned()  # one version for every query of the export
    con = connect(wh)
    try:
        names = [r[0] for r in con.execute("SELECT DISTINCT model FROM runs ORDER BY model").fetchall()]
        chosen = names
        if models:
            for pattern in models:
                if not match_patterns(names, [pattern]):
                    raise ExportError(f"no model matches {pattern!r}", hint="`evalhouse models` lists them")
            chosen = match_patterns(names, models)
        if not chosen:
            raise ExportError(f"no runs to export in {wh.name}", hint="run `evalhouse ingest PATH` first")
        found = con.execute("SELECT run_id FROM runs WHERE list_contains($m, model) ORDER BY run_id", {"m": chosen})
        run_ids = [r[0] for r in found.fetchall()]
        job = ExportJob(con, wh, Path(out), run_ids, tuple(models), None if tables is None else tuple(tables))
        return WRITERS[fmt](job)
    finally:
        con.close()


def _eee(job: ExportJob) -> ExportReport:
    from evalhouse.export_eee import write_eee

    return write_eee(job.con, job.out, job.run_ids)


def _parquet(job: ExportJob) -> ExportReport:
    from evalhouse.export_parquet import write_parquet

    return write_parquet(job)


WRITERS: dict[str, Callable[[ExportJob], ExportReport]] = {"eee": _eee, "parquet": _parquet}
