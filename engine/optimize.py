"""Maintenance: compact each table's small files, then delete files no kept version needs.

Every ingest adds a few files per table, and queries pay per file, so ``optimize`` rewrites each
table's files into few large ones (delta-rs's compaction: one Delta commit per table, the same
rows), publishes that as one warehouse version, then vacuums: deletes the files that neither the
current version nor any warehouse version younger than the retention period reads. Older versions
stay listed by ``evalhouse history`` but can no longer be read with ``--as-of``.

On S3 (no lock) the compaction is a commit like any other (engine/commit.py): it claims the next
version and commits each table on the Delta version it read, so it fails with CommitConflict
rather than interleave with another writer. Its vacuum deletes only files the Delta logs removed
(not "full"): a file no log names yet may be another writer's upload about to be committed; the
files of writers that died are deleted by recovery instead.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from evalhouse import tables, versions
from evalhouse.commit import checkpoint, claim, live_paths, new_batch_id, recover, release, restore_moved, retrying
from evalhouse.errors import CommitConflict, EvalhouseError
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


@contextlib.contextmanager
def _conflicts(dt: Any, remote: bool) -> Iterator[None]:
    """On S3, a compaction that another writer's commit beat is a CommitConflict (run it again)."""
    from deltalake.exceptions import CommitFailedError

    try:
        yield
    except CommitFailedError as exc:
        if not remote:
            raise
        raise CommitConflict(
            f"{dt.table_uri}: another writer committed first ({exc}); nothing of this optimize is live",
            hint="run it again",
        ) from None


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
    """Compact every table and vacuum what no version within ``retention`` reads (takes the lock;
    on S3, runs again if another writer committed first)."""
    return retrying(wh, lambda wh: _optimize(wh, retention, compact))


def _optimize(wh: Warehouse, retention: timedelta, compact: bool) -> OptimizeReport:
    from deltalake import WriterProperties
    from deltalake.transaction import CommitProperties

    from evalhouse.warehouse import lock, update_views

    report = OptimizeReport()
    root = wh.root
    remote = wh.remote is not None
    with lock(wh):
        recover(wh)
        base = wh.version() if remote else versions.current(root)
        assert base is not None  # an open warehouse has its creation version
        named = dict(base.tables)
        number = base.number + 1
        if remote:
            # A claim of its own: one naming the version alone would be taken by a second optimize
            # on the same version as its own (see commit.claim).
            claim(wh, number, f"optimize-{new_batch_id()}")
        try:
            on = restore_moved(root, base) if remote else {}
            if compact:
                for table in TABLES:
                    before = len(tables.live_entries(root, table, named[table]))
                    if before < 2:
                        continue
                    dt = tables.open_table(root, table, on.get(table))
                    checkpoint("table", table)
                    with tables.io_errors(), _conflicts(dt, remote):
                        dt.optimize.compact(
                            target_size=TARGET_FILE_BYTES,
                            writer_properties=WriterProperties(
                                compression="ZSTD", compression_level=1 if table == TEXTS.name else 3
                            ),
                            commit_properties=CommitProperties(
                                custom_metadata={"evalhouse.kind": "optimize"},
                                # On S3: exactly on the version read, or fail (see the docstring).
                                max_commit_retries=0 if remote else None,
                            ),
                        )
                    named[table] = dt.version() if remote else tables.latest_version(root, table)
                    report.compacted[table] = (before, len(tables.live_entries(root, table, named[table])))
            # Publish the compaction first: a vacuum must never delete what the published version reads.
            checkpoint("publish")
            version = versions.Version(number, "optimize", None, datetime.now(UTC), named)
            versions.publish(root, version)
        finally:
            if remote:
                release(wh, number)
        report.version = version.number
        update_views(wh)
        cutoff = datetime.now(UTC) - retention
        # On S3 other writers may have published since this version (no lock): every one of those
        # is kept too, whatever the retention, or the newest version could lose files that a later,
        # unpublished commit removed.
        kept = [v for v in versions.history(root) if v.time >= cutoff or v.number >= version.number]
        report.oldest_readable = kept[0].number
        for table in TABLES:
            keep = sorted({v.tables[table] for v in kept if table in v.tables})
            checkpoint("vacuum", table)
            with tables.io_errors():
                gone = tables.open_table(root, table).vacuum(
                    retention_hours=0, enforce_retention_duration=False, dry_run=remote, full=not remote,
                    keep_versions=keep,
                )  # fmt: skip
            if remote:
                gone = _delete_remote(wh, table, gone, keep, version.number)
            report.vacuumed[table] = len(gone)
    return report


def _delete_remote(wh: Warehouse, table: str, candidates: list[str], keep: list[int], since: int) -> list[str]:
    """Delete the files vacuum found for an S3 warehouse's ``table`` (``candidates``, found with the
    Delta versions ``keep``) but those a version published since version ``since`` reads; returns
    the names deleted. With no lock, other writers publish meanwhile: a file one of them added, and
    a later commit removed, is found too, yet that version reads it.

    Deleted here rather than by delta-rs's vacuum, which commits two entries to the table's log (on
    no version a writer read, so a writer's commit at that moment would fail).
    """
    from evalhouse import store

    root, loc = wh.root, wh.remote
    assert loc is not None
    later = {v.tables[table] for v in versions.history(root) if v.number >= since and table in v.tables}
    read: set[str] = set()
    for delta in later - set(keep):
        read |= live_paths(root, table, delta)
    gone = [name for name in candidates if name not in read]
    store.delete(loc, [f"{tables.TABLES_DIR}/{table}/{name}" for name in gone])
    for name in gone:  # their fetched copies in the working folder go too
        (tables.folder(root, table) / name.rsplit("/", 1)[-1]).unlink(missing_ok=True)
    return gone
