"""Check a warehouse and repair what can be repaired: `evalhouse doctor [--fix]`.

``check`` only reads (it takes the write lock, when free, so that no writer changes what it looks
at). It checks evalhouse.json, the warehouse versions, every table's Delta log at the version the
newest warehouse version names and every live file against that log (present, its size, its rows),
files no Delta version lists, commits a dead writer left unfinished, and the views file.

``fix`` finishes or undoes unfinished commits (evalhouse.commit.recover), moves files no Delta version
lists to ``quarantine/<table>/``, removes temporary leftovers, rewrites the views file, and repairs
lost files: a live file that is missing or damaged is dropped from its table in one commit (kind
``repair``) that also withdraws every run whose rows it may have held, from all run tables, and
records their source files in the ledger as ``rejected``, so that the next ``evalhouse ingest`` of
those files reads them again and restores exactly what was lost. Nothing is deleted but what
never was live (dead writers' files, temporary files) and the old layout an upgrade left behind.

Both work on local warehouses only: on S3 every command recovers what a dead writer left by itself
(engine/commit.py), and the local folder of an S3 warehouse holds copies, not the warehouse.
"""

from __future__ import annotations

import os
from pathlib import Path

from evalhouse.doctor import repair
from evalhouse.doctor.checks import QUARANTINE, VERSION_TMP_GLOB, Finding, LostFile, Report, _scan, quarantine_path
from evalhouse.doctor.log import DELTA_LOG
from evalhouse.errors import WarehouseError
from evalhouse.warehouse import Warehouse

__all__ = [
    "DELTA_LOG",
    "QUARANTINE",
    "VERSION_TMP_GLOB",
    "Finding",
    "LostFile",
    "Report",
    "check",
    "examine",
    "fix",
    "quarantine_path",
]


def check(root: str | os.PathLike[str]) -> list[Finding]:
    """Everything wrong with the warehouse at ``root`` (an empty list when it is healthy).

    >>> import tempfile; from evalhouse.warehouse import open_warehouse
    >>> check(open_warehouse(tempfile.mkdtemp() + "/w", create=True).root)
    []
    """
    return examine(root).findings


def examine(root: str | os.PathLike[str]) -> Report:
    """:func:`check`'s findings, with informational notes (live rows per table and the like).

    >>> import tempfile; from evalhouse.warehouse import open_warehouse
    >>> [str(n) for n in examine(open_warehouse(tempfile.mkdtemp() + "/w", create=True).root).notes][:1]
    ['info: runs: 0 live row(s) in 0 file(s)']
    """
    _local_only(root)
    scan = _scan(Warehouse(Path(root).resolve()))
    return Report(scan.findings, scan.notes)


def fix(root: str | os.PathLike[str]) -> list[str]:
    """Repair what :func:`check` finds (see the module's docstring); returns what was done."""
    _local_only(root)
    return repair.fix(root)


def _local_only(root: str | os.PathLike[str]) -> None:
    """Refuse an S3 warehouse (``s3://...``, or the local working folder of one)."""
    from evalhouse import store

    if store.is_url(root) or store.location(Path(root).resolve()) is not None:
        raise WarehouseError(
            f"`evalhouse doctor` does not work on an S3 warehouse ({root}): it checks and repairs local files",
            hint="every command finishes or undoes a dead writer's commit on S3 by itself; `evalhouse history` "
            "lists the versions, and `evalhouse export --format parquet OUT` copies the live tables out",
        )
