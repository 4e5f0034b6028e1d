"""Maintenance: compact each table's small files, then delete files no kept version needs.

Every ingest adds a few files per table, and queries pay per file, so ``optimize`` rewrites each
table's files into few large ones (delta-rs's compaction: one Delta commit per table, the same
rows), publishes that as one warehouse version, then vacuums: deletes the files that neither the
current version nor any warehouse version younger than the retention period reads. Older versions
stay listed by ``evalhouse history`` but can no longer be read with ``--as-of``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from evalhouse import tables, versions
from evalhouse.commit import checkpoint, recover
from evalhouse.errors import EvalhouseError
from evalhouse.schema import TABLES, TEXTS

if TYPE_CHECKING:
    from evalhouse.warehouse import Warehouse

# How long a replaced file is kept for time travel by default (Delta Lake's own default).
RETENTION = timedelta(days=7)
# Compacted files aim at this size: large enough that a query opens few, small enough to stream.
TARGET_FILE_BYTES = 256 * 2**20


def parse_duration(text: str) -> timedelta:
    """``7d``, ``12h``, ``30m`` or ``0`` as a duration.

    >>> parse_duration("7d"), parse_duration("0")
    (datetime.timedelta(days=7), datetime.timedelta(0))
    """
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([dhm]?)\s*", text)
    if not m or (not m.group(2) and float(m.group(1)) != 0):
        raise EvalhouseError(f"--retention {text!r} is not a duration such as 7d, 12h, 30m or 0")
    unit = {"d": "days", "h": "hours", "m": "minutes", "": "seconds"}[m.group(2)]
    return timedelta(**{unit: float(m.group(1))})


@dataclass
class OptimizeReport:
    """What one optimize did."""

    version: int | None = None
    # table -> (files before, files after)
    compacted: dict[str, tuple[int, int]] = field(default_factory=dict)
    vacuumed: dict[str, int] = field(default_factory=dict)
    # Oldest warehouse version still readable with --as-of.
    oldest_readable: int | None = None


def optimize(wh: Warehouse, *, retention: timedelta = RETENTION, compact: bool = True) -> OptimizeReport:
    """Compact every table and vacuum what no version within ``retention`` reads (takes the lock)."""
    from deltalake import WriterProperties
    from deltalake.transaction import CommitProperties

    from evalhouse.warehouse import lock, update_views

    report = OptimizeReport()
    root = wh.root
    with lock(wh):
        recover(wh)
        base = versions.current(root)
        assert base is not None  # an open warehouse has its creation version
        named = dict(base.tables)
        if compact:
            for table in TABLES:
                before = len(tables.live_files(root, table, named[table]))
                if before < 2:
                    continue
                dt = tables.open_table(root, table)
                checkpoint("table", table)
                with tables.io_errors():
                    dt.optimize.compact(
                        target_size=TARGET_FILE_BYTES,
                        writer_properties=WriterProperties(
                            compression="ZSTD", compression_level=1 if table == TEXTS.name else 3
                        ),
                        commit_properties=CommitProperties(custom_metadata={"evalhouse.kind": "optimize"}),
                    )
                named[table] = tables.latest_version(root, table)
                report.compacted[table] = (before, len(tables.live_files(root, table, named[table])))
        # Publish the compaction first: a vacuum must never delete what the published version reads.
        checkpoint("publish")
        version = versions.new(root, "optimize", None, named)
        versions.publish(root, version)
        report.version = version.number
        update_views(wh)
        cutoff = datetime.now(UTC) - retention
        kept = [v for v in versions.history(root) if v.time >= cutoff or v.number == version.number]
        report.oldest_readable = kept[0].number
        for table in TABLES:
            keep = sorted({v.tables[table] for v in kept if table in v.tables})
            checkpoint("vacuum", table)
            with tables.io_errors():
                gone = tables.open_table(root, table).vacuum(
                    retention_hours=0, enforce_retention_duration=False, dry_run=False, full=True, keep_versions=keep
                )
            report.vacuumed[table] = len(gone)
    return report
