"""Upgrading a warehouse of an older schema: the previous layout (schema 1 and 2) to Delta tables
(schema 3), and columns added to the Delta tables since (schema 4: the comparisons' flips and noise
floor; see :func:`_add_columns`).

The previous layout kept each ingest as a folder ``data/<batch>/`` of Parquet files and withdrew
runs by listing them in a ``retired`` table that every view left out. Delta tables remove rows
instead, so the upgrade copies each table's live rows once, through one ordinary commit (kind
``migrate``), and the ``retired`` table goes. The ledger and the comparisons are copied whole.

Crash safety: nothing of ``data/`` is touched until the new tables are published and
evalhouse.json says schema 3, the upgrade's commit point (one atomic rename). Killed before it,
the warehouse is the old one, and the next open deletes the half-built tables and starts over;
killed after it, evalhouse.json lists ``data`` as a leftover, which :func:`remove_leftovers`
deletes. Only a folder evalhouse.json lists is deleted: anything else in the warehouse folder is
the user's (see ``LAYOUT`` in engine/warehouse.py).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pyarrow as pa

from evalhouse import tables, versions
from evalhouse.commit import PENDING_DIR, RUN_TABLES, Commit
from evalhouse.errors import WarehouseError
from evalhouse.schema import SCHEMA_VERSION, TABLES
from evalhouse.warehouse import (
    Warehouse,
    create_tables,
    file_literal,
    is_disk_full,
    lock,
    os_reason,
    read_meta,
    update_views,
    write_meta,
)

# The previous layout, as its writers named things (engine/warehouse.py before schema 3).
OLD_DATA = "data"
BATCH_NAME = re.compile(r"b\d{8}T\d{12}-[0-9a-z][0-9a-z-]*")
TABLE_FILE = re.compile(r"(?P<table>[a-z_]+)(?:-\d{5,})?\.parquet")
MANIFEST = "manifest.json"
RETIRED = "retired"
OLD_TABLES = (*TABLES, RETIRED)
# The schema versions this converts from (1 lacks scores.item_hash and files.depends_on).
OLDEST = 1
# The first schema of Delta tables: later versions only add columns, in place.
DELTA_SCHEMA = 3
# Per table, the column whose values name every row (to replace a table's files by conformed copies).
ROW_KEY = {"comparisons": "analysis_id"}
# evalhouse.json's list of old folders still to delete after the commit point; only these names.
LEFTOVERS = "leftovers"
OLD_FOLDERS = (OLD_DATA,)
# Rows per file written, and per batch read: files as large as one of ingest's row groups allows
# queries to skip, batches as small as ingest's buffers so memory stays bounded for long texts.
FILE_ROWS = tables.ROW_GROUP_ROWS
BATCH_ROWS = 100_000

ProgressFn = Callable[[str, int, int], None]


def upgrade(wh: Warehouse, *, progress: ProgressFn | None = None) -> None:
    """Convert a warehouse of the previous layout (schema 1 or 2) to Delta tables, in place.

    Waits for the write lock; does nothing more than :func:`remove_leftovers` if another process
    upgraded it meanwhile. Raises WarehouseError (the warehouse left as it was) if it cannot.

    Args:
        wh: the warehouse, whose evalhouse.json says schema 1 or 2.
        progress: called as ``progress("migrate", rows done, rows in all)`` (rows in all counts
            the rows of withdrawn runs, which are not copied, so it ends with one call at the total).
    """
    try:
        with lock(wh):
            version = read_meta(wh).get("schema_version")
            if isinstance(version, int) and version >= SCHEMA_VERSION:  # upgraded while this one waited
                with contextlib.suppress(OSError):
                    _remove_leftovers(wh)
                return
            if not isinstance(version, int) or version < OLDEST:
                raise WarehouseError(
                    f"{wh.meta_path}: schema_version {version!r} has no upgrade path to {SCHEMA_VERSION}",
                    hint="export what you need with an older evalhouse and ingest again",
                )
            if version >= DELTA_SCHEMA:
                _add_columns(wh)
                write_meta(wh, read_meta(wh) | {"schema_version": SCHEMA_VERSION})
                update_views(wh)
                return
            try:
                _convert(wh, progress)
            except Exception:
                # A failure, not a kill: leave the folder exactly as it was, not only as the next
                # open could redo it.
                with contextlib.suppress(OSError):
                    _clear_partial(wh)
                raise
            # Re-read: the commit's views rewrite recorded the views it wrote.
            meta = read_meta(wh) | {
                "schema_version": SCHEMA_VERSION,
                "tables": sorted(TABLES),
                LEFTOVERS: list(OLD_FOLDERS),
            }
            write_meta(wh, meta)  # the commit point of the upgrade
            # Done: what is left is tidying, which the next open finishes if it fails here.
            with contextlib.suppress(OSError):
                _remove_leftovers(wh)
            update_views(wh)
    except (OSError, pa.ArrowException, duckdb.Error) as exc:
        reason = os_reason(exc) if isinstance(exc, OSError) else str(exc).strip().splitlines()[0]
        full = isinstance(exc, OSError) and is_disk_full(exc)
        raise WarehouseError(
            f"cannot upgrade the warehouse at {wh.root} to schema {SCHEMA_VERSION}: {reason}",
            hint="free some disk space and run it again" if full else "it is unchanged; run `evalhouse doctor`",
        ) from None


def remove_leftovers(wh: Warehouse) -> None:
    """Delete the old layout's folders an upgrade killed after its commit point left behind.

    For every open of a schema-3 warehouse: cheap when there is nothing to do, and it never waits
    for the write lock or fails (a busy or read-only warehouse is left for a later command).
    """
    with contextlib.suppress(OSError, WarehouseError):
        if read_meta(wh).get(LEFTOVERS):
            with lock(wh, wait=False):
                _remove_leftovers(wh)


def old_files(root: Path) -> dict[str, list[str]]:
    """The files each table of the previous layout read, oldest batch first (as its views did).

    >>> import tempfile; old_files(Path(tempfile.mkdtemp()))
    {}
    """
    data = root / OLD_DATA
    found: dict[str, list[str]] = {}
    if not data.is_dir():
        return found
    # Only committed batches: a `.staging-*` folder is a writer that never finished.
    for batch in sorted(p for p in data.iterdir() if BATCH_NAME.fullmatch(p.name) and p.is_dir()):
        for table, path in _committed_files(batch):
            found.setdefault(table, []).append(str(path))
    return found


def _convert(wh: Warehouse, progress: ProgressFn | None) -> None:
    """Publish the creation version and one ``migrate`` commit of every table's live rows."""
    _clear_partial(wh)  # what an attempt killed before the commit point built
    files = old_files(wh.root)
    versions.publish(wh.root, versions.new(wh.root, "create", None, create_tables(wh)))
    commit = Commit(wh, "migrate")
    con = duckdb.connect()
    try:
        con.execute("CREATE TEMP TABLE gone (run_id VARCHAR)")
        if files.get(RETIRED):
            con.execute(
                f"INSERT INTO gone SELECT DISTINCT run_id FROM {_source(files[RETIRED])} WHERE run_id IS NOT NULL"
            )
        sources = {name: _source(files[name]) for name in TABLES if files.get(name)}
        total = sum(_count(con, source) for source in sources.values())
        done = 0
        for name, source in sources.items():
            for rows in _copy(con, commit, name, source):
                done += rows
                if progress:
                    progress("migrate", done, total)
        if progress:
            progress("migrate", total, total)
    finally:
        con.close()
    commit.publish()


def _add_columns(wh: Warehouse) -> None:
    """Add the columns engine/schema.py declares and a Delta table lacks, as one ``migrate`` version.

    Each such table's Delta schema gets the columns (``alter.add_columns``: they are declared last,
    where it appends them), and its live files that lack them are replaced by copies with the new
    columns NULL, so that the views (which read the files) show them too. One published version
    names the new Delta versions; killed before it, the next open finds the Delta schema altered or
    not (a kill may leave it either way) and the files not yet replaced, and finishes. Hold the lock.
    """
    import pyarrow.parquet as pq
    from deltalake import Field

    from evalhouse.commit import recover
    from evalhouse.warehouse import table_source

    recover(wh)
    base = versions.current(wh.root)
    if base is None:
        raise WarehouseError(f"{wh.root}: no warehouse version to upgrade", hint="run `evalhouse doctor`")
    commit = Commit(wh, "migrate")
    latest: dict[str, int] = {}
    try:
        for name, declared in TABLES.items():
            if name not in base.tables:
                continue
            names = declared.arrow_schema().names
            have = pa.schema(tables.open_table(wh.root, name).schema().to_arrow()).names
            if have != names[: len(have)]:
                raise WarehouseError(f"{name}: new columns must be declared last in engine/schema.py")
            if len(have) < len(names):
                with tables.io_errors():
                    tables.open_table(wh.root, name).alter.add_columns(
                        [Field.from_arrow(f) for f in declared.arrow_schema() if f.name not in have]
                    )
            latest[name] = tables.latest_version(wh.root, name)
            files = wh.table_files(name, base)
            if all(set(names) <= set(pq.read_schema(f).names) for f in files):
                continue
            con = duckdb.connect()
            try:
                source = table_source(wh, name, base)
                keys = {k for (k,) in con.sql(f'SELECT DISTINCT "{ROW_KEY[name]}" FROM {source}').fetchall()}
                sum(_copy(con, commit, name, source))  # each file written is added to the commit
            finally:
                con.close()
            commit.remove(name, ROW_KEY[name], keys)
        if not commit.empty:
            commit.publish()
            return
        commit.abort()
        if any(v != base.tables[t] for t, v in latest.items()):
            # Only schemas changed (no row to copy): publish the altered Delta versions themselves.
            versions.publish(wh.root, versions.new(wh.root, "migrate", None, base.tables | latest))
    except BaseException:
        commit.abort()
        raise


def _copy(con: duckdb.DuckDBPyConnection, commit: Commit, table: str, source: str) -> Iterator[int]:
    """Write ``table``'s live rows as new files of ``commit``; yields the rows of each file."""
    schema = TABLES[table].arrow_schema()
    present = set(con.sql(f"SELECT * FROM {source}").columns)
    columns = ", ".join(f'"{f.name}"' for f in schema if f.name in present)
    # A run withdrawn by any batch is left out of every batch, as the old views' NOT IN left it out.
    where = " WHERE run_id NOT IN (SELECT run_id FROM gone)" if table in RUN_TABLES else ""
    reader = con.sql(f"SELECT {columns} FROM {source}{where}").to_arrow_reader(BATCH_ROWS)
    batches = (_conform(b, schema) for b in reader if b.num_rows)
    for part in itertools.count():
        first = next(batches, None)
        if first is None:
            return
        path = commit.path(table, f"{part:05d}")
        rows = tables.write_file(
            path, table, itertools.chain([first], itertools.islice(batches, max(FILE_ROWS // BATCH_ROWS, 1) - 1))
        )
        commit.add(table, path, rows)
        yield rows


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` in the declared ``schema``: columns cast, those older files lack all NULL.

    DuckDB labels timestamps with its session's zone, and a column no old file has (schema 1's
    ``item_hash`` in a warehouse never upgraded to 2) cannot even be named in the query.
    """
    names = set(batch.schema.names)
    arrays = [
        batch.column(f.name).cast(f.type) if f.name in names else pa.nulls(batch.num_rows, f.type) for f in schema
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _source(paths: list[str]) -> str:
    return f"read_parquet([{', '.join(file_literal(p) for p in paths)}], union_by_name = true)"


def _count(con: duckdb.DuckDBPyConnection, source: str) -> int:
    ((rows,),) = con.sql(f"SELECT count(*) FROM {source}").fetchall()  # from the files' footers
    return int(rows)


def _committed_files(batch: Path) -> list[tuple[str, Path]]:
    """The table files of a committed batch: those its manifest lists, else those named as writers
    name them; a file put there later (a copy, ``scores-00000 (1).parquet``) is not one."""
    names: list[str] | None = None
    with contextlib.suppress(OSError, ValueError):
        doc = json.loads((batch / MANIFEST).read_text(encoding="utf-8"))
        files = doc.get("files") if isinstance(doc, dict) else None
        names = list(files) if isinstance(files, dict) else None
    # An unreadable manifest: by the writers' names, as the old views and doctor read the batch.
    if names is None:
        names = [p.name for p in batch.iterdir()]
    return [(table, batch / n) for n in sorted(names) if (table := _table_of(n)) and (batch / n).is_file()]


def _table_of(name: str) -> str | None:
    """The old table a file of this name belongs to, if a writer could have written it.

    >>> _table_of("scores-00001.parquet"), _table_of("scores-00000 (1).parquet"), _table_of("retired.parquet")
    ('scores', None, 'retired')
    """
    m = TABLE_FILE.fullmatch(name)
    return m.group("table") if m and m.group("table") in OLD_TABLES else None


def _clear_partial(wh: Warehouse) -> None:
    """Delete the new layout's folders (hold the lock; only while evalhouse.json says schema < 3,
    when all they can hold is a half-done upgrade)."""
    for name in (tables.TABLES_DIR, versions.VERSIONS_DIR, PENDING_DIR):
        path = wh.root / name
        if path.exists():
            shutil.rmtree(path)


def _remove_leftovers(wh: Warehouse) -> None:
    """Delete the old folders evalhouse.json lists, then the list (hold the lock)."""
    meta = read_meta(wh)
    listed = meta.get(LEFTOVERS)
    if not listed:
        return
    for name in OLD_FOLDERS:
        if name in listed and (wh.root / name).exists():
            shutil.rmtree(wh.root / name)
    del meta[LEFTOVERS]
    write_meta(wh, meta)
