"""One commit of the warehouse: new files and removed rows over several Delta tables, live at once.

The protocol (hold the warehouse's write lock throughout):

1. ``Commit(wh, kind)`` leaves a marker ``.pending/<batch>``: a writer is at work.
2. Writers put new Parquet files into the tables' folders, named with the batch id (invisible:
   no Delta version lists them yet).
3. ``publish()`` rewrites the files holding rows to remove (runs of a changed source, old
   analyses) without them, then commits each changed table once (its new files added, the
   replaced ones removed), then publishes the warehouse version naming every table's new
   Delta version (engine/versions.py): the one step that makes the whole commit live.
4. Then the marker goes and the views file is rewritten (both can be redone by anyone).

A writer killed anywhere before 3's last step leaves a marker and, maybe, Delta commits no warehouse
version names. The next writer (:func:`recover`) restores every such table to the version the
warehouse names and deletes the dead batch's files, so the warehouse is exactly as before and a
re-run redoes the work; killed after it, the warehouse is as after, and recovery removes the marker.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from evalhouse import tables, versions
from evalhouse.errors import WarehouseError
from evalhouse.schema import TABLES

if TYPE_CHECKING:
    from evalhouse.warehouse import Warehouse

PENDING_DIR = ".pending"
# Tables that hold rows of runs: removing a run removes its rows from each. Children before runs,
# and the ledger last, so that each Delta table read alone between commits shows no run without rows.
RUN_TABLES = ("texts", "metrics", "scores", "runs")
COMMIT_ORDER = ("texts", "metrics", "scores", "runs", "files", "comparisons")


def new_batch_id() -> str:
    """A batch id that sorts by creation time.

    >>> new_batch_id()[:2], len(new_batch_id())
    ('b2', 29)
    """
    return f"b{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{secrets.token_hex(3)}"


def checkpoint(stage: str, table: str = "") -> None:
    """Announce a step of the commit to audit hooks (``sys.addaudithook``): the crash tests kill a
    writer at each one; otherwise this costs nothing."""
    sys.audit("evalhouse.commit", stage, table)


class Commit:
    """Files and removals gathered over one ingest, compare or upgrade, published together."""

    def __init__(self, wh: Warehouse, kind: str, batch_id: str | None = None) -> None:
        self.wh, self.kind = wh, kind
        self.batch_id = batch_id or new_batch_id()
        self.adds: dict[str, list[tuple[Path, int]]] = {}
        # table -> (column, values): rows to remove
        self.removals: dict[str, tuple[str, set[str]]] = {}
        # Files that carry rows over from a replaced file (not new rows), and whether it is live.
        self.rewrites: set[Path] = set()
        self.published = False
        self.marker = wh.root / PENDING_DIR / self.batch_id
        try:
            self.marker.parent.mkdir(exist_ok=True)
            self.marker.touch()
        except OSError as exc:
            raise WarehouseError(f"cannot write to the warehouse {wh.root}: {exc.strerror}") from None

    def path(self, table: str, part: str) -> Path:
        """Where a writer puts a new file of ``table`` (``part`` tells this commit's files apart)."""
        return tables.folder(self.wh.root, table) / tables.part_name(self.batch_id, part)

    def add(self, table: str, path: Path, rows: int) -> None:
        self.adds.setdefault(table, []).append((path, rows))

    def write(self, table: str, data: pa.Table, part: str = "00000") -> None:
        """Write ``data`` as a new file of ``table`` and add it."""
        path = self.path(table, part)
        self.add(table, path, tables.write_file(path, table, data))

    def remove(self, table: str, column: str, values: set[str]) -> None:
        """Remove the rows of ``table`` whose ``column`` is one of ``values``."""
        if values:
            _column, old = self.removals.setdefault(table, (column, set()))
            old |= values

    def remove_runs(self, run_ids: set[str]) -> None:
        for table in RUN_TABLES:
            self.remove(table, "run_id", run_ids)

    @property
    def empty(self) -> bool:
        return not any(self.adds.values()) and not self.removals

    def publish(self) -> versions.Version:
        """Commit every changed table, then publish the warehouse version (the commit point)."""
        from evalhouse.warehouse import fsync, update_views

        root = self.wh.root
        base = versions.current(root)
        if base is None:
            raise WarehouseError(f"{root}: the warehouse has no version to commit on", hint="run `evalhouse doctor`")
        delta = dict(base.tables)
        added: dict[str, int] = {}
        removed: dict[str, int] = {}
        try:
            actions: dict[str, list[Any]] = {}
            for table, (column, values) in self.removals.items():
                acts, gone = self._rewrite_without(table, base.tables[table], column, values)
                if acts:
                    actions.setdefault(table, []).extend(acts)
                    removed[table] = gone
            for table, files in self.adds.items():
                for path, rows in files:
                    fsync(path)
                    actions.setdefault(table, []).append(tables.add_action(path, rows))
                    if path not in self.rewrites:  # rows carried over into a rewritten file are not new
                        added[table] = added.get(table, 0) + rows
            for table in actions:
                fsync(tables.folder(root, table))
            for table in COMMIT_ORDER:
                if actions.get(table):
                    checkpoint("table", table)
                    delta[table] = tables.commit(root, table, actions[table], self.batch_id, self.kind)
            checkpoint("publish")
            version = versions.new(root, self.kind, self.batch_id, delta, added=added, removed=removed)
            versions.publish(root, version)
            self.published = True
        except BaseException:
            # Undo what can be undone now; what cannot (a kill), the next writer's recover() does.
            with contextlib.suppress(Exception):
                recover(self.wh)
            raise
        # Live from here on: nothing below may undo it (an interrupt here leaves a marker and stale
        # views, which the next command clears).
        checkpoint("published")
        with contextlib.suppress(OSError):
            self.marker.unlink(missing_ok=True)
        update_views(self.wh)
        return version

    def abort(self) -> None:
        """Give up: delete this commit's files, unless it was published (then it is live)."""
        if self.published:
            return
        _delete_batch_files(self.wh.root, self.batch_id)
        self.marker.unlink(missing_ok=True)

    def _rewrite_without(self, table: str, version: int, column: str, values: set[str]) -> tuple[list[Any], int]:
        """Actions replacing every live file of ``table`` holding rows to remove by a copy without
        them (none if no row is left); returns (actions, rows removed).

        Only files that can hold such rows are read: for runs, those their batches wrote, rewritten
        ones and files of no batch (compacted or migrated); the copy is streamed, so memory stays
        bounded.
        """

        from evalhouse.warehouse import file_literal

        files = tables.live_entries(self.wh.root, table, version)
        batches = self._batches_of(column, values)
        if batches is not None:
            # A rewritten file (part r...) carries rows of older batches than its name says.
            files = [f for f in files if tables.batch_of(f["path"]) in batches | {None} or _rewritten(f["path"])]
        if not files:
            return [], 0
        folder = tables.folder(self.wh.root, table)
        paths = [str(folder / f["path"]) for f in files]
        schema = TABLES[table].arrow_schema()
        con = _connect_with_gone(values)
        try:
            hits = con.execute(
                f"SELECT filename, count(*) FROM read_parquet([{', '.join(file_literal(p) for p in paths)}], "
                f'filename = true, union_by_name = true) WHERE "{column}" IN (SELECT v FROM gone) GROUP BY ALL'
            ).fetchall()
            actions: list[Any] = []
            now_ms = int(time.time() * 1000)
            by_path = {p: f for p, f in zip(paths, files, strict=True)}
            for i, (path, n_gone) in enumerate(sorted(hits)):
                entry = by_path[path]
                if n_gone < (entry["rows"] if entry["rows"] is not None else _rows(path)):
                    # A file written before a column was added lacks it: select it as NULL.
                    names = set(pq_names(path))
                    columns = ", ".join(f'"{f.name}"' if f.name in names else f'NULL AS "{f.name}"' for f in schema)
                    kept = con.sql(
                        f"SELECT {columns} FROM read_parquet({file_literal(path)}) "
                        f'WHERE "{column}" NOT IN (SELECT v FROM gone)'
                    ).to_arrow_reader(100_000)
                    target = self.path(table, f"r{i:05d}")
                    rows = tables.write_file(target, table, (b.cast(schema) for b in kept))
                    self.add(table, target, rows)
                    self.rewrites.add(target)
                actions.append(tables.remove_action(entry["path"], entry["size"], now_ms))
            return actions, sum(n for _p, n in hits)
        finally:
            con.close()

    def _batches_of(self, column: str, values: set[str]) -> set[str] | None:
        """The batches that wrote the runs to remove (None: unknown, read every file)."""
        if column != "run_id":
            return None
        from evalhouse.warehouse import table_source

        con = _connect_with_gone(values)
        try:
            rows = con.execute(
                f"SELECT DISTINCT batch_id FROM {table_source(self.wh, 'runs')} WHERE run_id IN (SELECT v FROM gone)"
            ).fetchall()
        finally:
            con.close()
        return {r[0] for r in rows if r[0]}


def _connect_with_gone(values: set[str]) -> Any:
    """A DuckDB connection holding ``values`` as table ``gone(v)`` (bound, however many there are)."""
    import duckdb

    con = duckdb.connect()
    con.execute("CREATE TEMP TABLE gone(v VARCHAR)")
    con.executemany("INSERT INTO gone VALUES (?)", [[v] for v in sorted(values)])
    return con


def _rewritten(name: str) -> bool:
    m = tables.PART_NAME.fullmatch(name)
    return bool(m and m.group("part").startswith("r"))


def _rows(path: str) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


def pq_names(path: str) -> list[str]:
    import pyarrow.parquet as pq

    return list(pq.ParquetFile(path).schema_arrow.names)


def pending(root: Path) -> list[str]:
    """Batch ids of commits begun and not finished (a writer at work, or one that died)."""
    try:
        return sorted(os.listdir(root / PENDING_DIR))
    except FileNotFoundError:
        return []


def needs_recovery(root: Path) -> bool:
    return bool(pending(root))


def recover(wh: Warehouse) -> list[str]:
    """Finish what a dead writer left (hold the write lock): returns what was done, for doctor.

    Every table committed past the version the warehouse names is restored to it, the dead
    batches' files are deleted, and the markers go.
    """
    root = wh.root
    done: list[str] = []
    current = versions.current(root)
    if current is not None:
        for table, version in current.tables.items():
            if table in TABLES and tables.latest_version(root, table) > version and _moved_on(root, table, version):
                tables.restore(root, table, version)
                done.append(f"{table}: commits after Delta version {version} undone (no warehouse version named them)")
    for tmp in versions.folder(root).glob(".*.tmp"):  # a publication killed half-way
        tmp.unlink(missing_ok=True)
    markers = pending(root)
    published = {v.batch_id for v in versions.history(root)} if markers and current is not None else set()
    for batch in markers:
        if batch not in published:
            n = _delete_batch_files(root, batch)
            if n:
                done.append(f"batch {batch}: {n} unpublished file(s) deleted")
        (root / PENDING_DIR / batch).unlink(missing_ok=True)
    return done


def _moved_on(root: Path, table: str, version: int) -> bool:
    """Whether ``table``'s newest Delta version holds other files than ``version`` (a restore, or
    vacuum's own log entries, make newer versions with the same files)."""
    latest = {e["path"] for e in tables.live_entries(root, table, tables.latest_version(root, table))}
    return latest != {e["path"] for e in tables.live_entries(root, table, version)}


def _delete_batch_files(root: Path, batch_id: str) -> int:
    n = 0
    for table in TABLES:
        for name in tables.data_files(root, table):
            if tables.batch_of(name) == batch_id:
                (tables.folder(root, table) / name).unlink(missing_ok=True)
                n += 1
    return n
