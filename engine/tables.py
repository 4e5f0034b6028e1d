"""The stored tables: one Delta Lake table per table of engine/schema.py, under ``tables/<name>/``.

Written with delta-rs (the ``deltalake`` package): every table is plain Parquet files plus a
``_delta_log`` saying which of them are live in each version, so Delta-aware readers (Spark, Polars
``scan_delta``, ``deltalake.DeltaTable``) read exactly the live rows in place, and DuckDB reads
the live file list evalhouse names in its views. Every Parquet file evalhouse writes goes through
:func:`parquet_writer`, so compression and row groups are decided here once.

New files are written into the table's folder under a name carrying their batch id
(``part-<batch>-<part>.parquet``): invisible to every reader until a commit adds them, and
recognisable as a dead writer's leftovers if none ever does (see engine/commit.py).

On S3 (engine/store.py) the tables live under the warehouse's prefix and ``root`` is its local
working folder: delta-rs is given the ``s3://`` URI, live files are fetched into the working
folder's ``tables/<table>/`` for DuckDB, and commits name the Delta version they build on, so that
one that lost a race fails (CommitConflict) instead of landing on top of another writer's commit.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from evalhouse import store
from evalhouse.errors import CommitConflict, WarehouseError
from evalhouse.schema import TABLES, TEXTS

if TYPE_CHECKING:
    from deltalake import DeltaTable

TABLES_DIR = "tables"
# Files a writer names: part-<batch id>-<part>.parquet (the batch id as engine/commit.py makes them).
PART_NAME = re.compile(r"part-(?P<batch>b\d{8}T\d{12}-[0-9a-z]+)-(?P<part>[0-9a-z]+)\.parquet")
# Rows per row group: large enough for fast scans, bounded so a writer's memory is too.
ROW_GROUP_ROWS = 1_000_000


# Characters delta-rs cannot take in a local path: it panics on some, reads `\\` as a separator,
# and percent-decodes `%41` (another folder's tables).
_DELTA_UNSAFE = set("[]^|%\\\t\n\r")


def folder(root: Path, table: str) -> Path:
    return root / TABLES_DIR / table


def uri(root: Path, table: str) -> str:
    """The path delta-rs is given for a table (see :func:`check_path`); ``s3://...`` on S3."""
    loc = store.location(root)
    return f"{loc.url}/{TABLES_DIR}/{table}" if loc else str(folder(root, table))


def _options(root: Path) -> dict[str, str] | None:
    return store.delta_options() if store.location(root) else None


def check_path(root: Path) -> None:
    """Refuse a warehouse path delta-rs cannot open, before anything is written there.

    delta-rs resolves the path and parses it as a URL: it panics on ``[ ] ^ |`` (delta-rs issue
    #1806 is the same limit for ``~``) and decodes ``%XX``; a link does not help, it is resolved
    first. ``* ?``, spaces and quotes are fine.
    """
    bad = sorted(_DELTA_UNSAFE & set(str(root)))
    if bad:
        shown = " ".join("a backslash" if c == "\\" else repr(c) if c.isspace() else c for c in bad)
        raise WarehouseError(
            f"{root}: the warehouse's path has {shown} in it, which delta-rs (the Delta Lake library) cannot open",
            hint="use a folder whose path has none of [ ] ^ | % or a backslash",
        )


def part_name(batch_id: str, part: str) -> str:
    """The name of a new file of a batch.

    >>> part_name("b20261130T010203000000-ab12cd", "00003")
    'part-b20261130T010203000000-ab12cd-00003.parquet'
    """
    return f"part-{batch_id}-{part}.parquet"


def batch_of(name: str) -> str | None:
    """The batch that wrote a file of this name (None for other names, e.g. compacted files)."""
    m = PART_NAME.fullmatch(name)
    return m.group("batch") if m else None


def parquet_writer(path: Path | str, table: str) -> pq.ParquetWriter:
    """A Parquet writer for a file of ``table``: the one place file settings are decided.

    Text compresses well but costs the most to write: a light zstd level keeps ingest fast; the
    narrow tables get zstd's default level.
    """
    return pq.ParquetWriter(
        path, TABLES[table].arrow_schema(), compression="zstd", compression_level=1 if table == TEXTS.name else None
    )


def write_file(path: Path | str, table: str, data: pa.Table | Iterable[pa.RecordBatch]) -> int:
    """Write ``data`` (in ``table``'s schema) as one Parquet file; returns its rows."""
    rows = 0
    with parquet_writer(path, table) as writer:
        batches = data.to_batches() if isinstance(data, pa.Table) else data
        for batch in batches:
            writer.write_batch(batch, row_group_size=ROW_GROUP_ROWS)
            rows += batch.num_rows
    return rows


def open_table(root: Path, table: str, version: int | None = None) -> DeltaTable:
    from deltalake import DeltaTable
    from deltalake.exceptions import DeltaError

    try:
        return DeltaTable(uri(root, table), version=version, storage_options=_options(root))
    except (DeltaError, OSError, ValueError) as exc:
        at = f" at Delta version {version}" if version is not None else ""
        # On S3, named by its s3:// URI (the working folder holds copies; doctor is for local folders).
        remote = store.location(root) is not None
        where, hint = (uri(root, table), store.HINT) if remote else (str(folder(root, table)), "run `evalhouse doctor`")
        raise WarehouseError(f"{where}: cannot read the Delta table{at} ({_first_line(exc)})", hint=hint) from None


def live_files(root: Path, table: str, version: int) -> list[str]:
    """Absolute paths of the files of ``table`` live at Delta ``version`` (in no meaningful order:
    rows carry what orders them, e.g. the ledger's ``batch_id``)."""
    loc = store.location(root)
    if loc is not None:  # fetched into the working folder, where DuckDB and pyarrow read them
        paths = []
        for entry in live_entries(root, table, version):
            path = folder(root, table) / entry["path"]
            store.fetch(loc, f"{TABLES_DIR}/{table}/{entry['path']}", path, entry["size"])
            paths.append(str(path))
        return paths
    # file_uris is the cheap call (no Arrow table); the names are evalhouse's or delta-rs's own
    # (no partitions), so the name alone places each file in the table's real folder.
    return [str(folder(root, table) / Path(u).name) for u in open_table(root, table, version).file_uris()]


def live_entries(root: Path, table: str, version: int) -> list[dict[str, Any]]:
    """The add actions live at ``version``: path (relative), size, rows (None if unrecorded)."""
    actions = pa.table(open_table(root, table, version).get_add_actions(flatten=True))
    rows = actions.column("num_records").to_pylist() if "num_records" in actions.column_names else None
    return [
        {"path": p, "size": s, "rows": rows[i] if rows else None}
        for i, (p, s) in enumerate(zip(actions.column("path").to_pylist(), actions.column("size_bytes").to_pylist(),
                                       strict=True))
    ]  # fmt: skip


def create(root: Path, table: str) -> int:
    """Create ``table`` empty (or leave it as it is if it exists); returns its Delta version."""
    from deltalake import DeltaTable
    from deltalake.exceptions import CommitFailedError

    with io_errors():
        # Keep every log entry: --as-of reads any version whose files optimize has kept, and delta-rs
        # would otherwise delete entries older than 30 days at its checkpoints.
        try:
            return DeltaTable.create(
                uri(root, table),
                TABLES[table].arrow_schema(),
                mode="ignore",
                configuration={"delta.enableExpiredLogCleanup": "false"},
                storage_options=_options(root),
            ).version()
        except CommitFailedError:
            if store.location(root) is None:
                raise
            # On S3 (no lock), another process created it at the same moment: an empty table all the same.
            return open_table(root, table).version()


def add_action(path: Path, rows: int) -> Any:
    """The Delta add action of a new file in its table's folder."""
    from deltalake.transaction import AddAction

    st = path.stat()
    return AddAction(path.name, st.st_size, {}, st.st_mtime_ns // 1_000_000, True, json.dumps({"numRecords": rows}))


def remove_action(name: str, size: int, when_ms: int) -> Any:
    from deltalake._internal import RemoveAction

    return RemoveAction(name, True, when_ms, size)


def commit(root: Path, table: str, actions: list[Any], batch_id: str | None, kind: str, on: int | None = None) -> int:
    """Commit add and remove actions to ``table`` as one Delta commit; returns its new version.

    With ``on``, the commit must be the one right after Delta version ``on``: if another writer
    committed that version first, nothing is committed and CommitConflict is raised (delta-rs
    would otherwise retry an append on top of the other commit).
    """
    from deltalake.transaction import CommitProperties

    dt = open_table(root, table, on)
    meta = {"evalhouse.kind": kind} | ({"evalhouse.batch": batch_id} if batch_id else {})
    props = CommitProperties(custom_metadata=meta, max_commit_retries=0 if on is not None else None)
    with io_errors(), _exactly_on(root, table, on):
        dt.create_write_transaction(actions, "append", TABLES[table].arrow_schema(), commit_properties=props)
    if on is not None:
        return on + 1
    return open_table(root, table).version()


def latest_version(root: Path, table: str) -> int:
    return open_table(root, table).version()


def restore(root: Path, table: str, version: int, on: int | None = None) -> int:
    """Make ``table``'s newest Delta version equal to ``version`` again (undo later commits);
    returns the Delta version that does.

    With ``on``, the restore undoes exactly what Delta version ``on`` holds and must be the commit
    right after it: if another writer committed that version first, nothing is committed and
    CommitConflict is raised (delta-rs would otherwise retry it on top of the other commit).
    """
    dt = open_table(root, table, on)
    with io_errors(), _exactly_on(root, table, on):
        dt.restore(version, commit_properties=_props("restore", retries=0 if on is not None else None))
    return on + 1 if on is not None else dt.version()


@contextlib.contextmanager
def _exactly_on(root: Path, table: str, on: int | None) -> Iterator[None]:
    """A commit meant to land right after Delta version ``on``: another writer's commit there first
    is CommitConflict (with ``on`` None, delta-rs's own retries stand and its error passes)."""
    from deltalake.exceptions import CommitFailedError

    try:
        yield
    except CommitFailedError as exc:
        if on is None:
            raise
        raise CommitConflict(
            f"{uri(root, table)}: another writer committed Delta version {on + 1} first ({_first_line(exc)})",
            hint="run the command again",
        ) from None


def _props(kind: str, retries: int | None = None) -> Any:
    from deltalake.transaction import CommitProperties

    return CommitProperties(custom_metadata={"evalhouse.kind": kind}, max_commit_retries=retries)


@contextlib.contextmanager
def io_errors() -> Iterator[None]:
    """delta-rs reports a failed write (a full disk) as its own error with the OS's error code in
    the text: raise it as the OSError it is, so callers handle it as any other failed write."""
    from deltalake.exceptions import DeltaError

    try:
        yield
    except DeltaError as exc:
        m = re.search(r"\(os error (\d+)\)", str(exc))
        if m:
            code = int(m.group(1))
            raise OSError(code, os.strerror(code)) from exc
        raise


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def data_files(root: Path, table: str) -> list[str]:
    """Names of the Parquet files in a table's folder (live, of older versions, or unknown); on S3,
    in the store."""
    loc = store.location(root)
    if loc is not None:
        return [n for n in store.names(loc, f"{TABLES_DIR}/{table}") if n.endswith(".parquet")]
    return local_files(root, table)


def local_files(root: Path, table: str) -> list[str]:
    """Names of the Parquet files in a table's local folder (on S3: fetched and staged ones)."""
    try:
        return sorted(n for n in os.listdir(folder(root, table)) if n.endswith(".parquet") and not n.startswith("."))
    except FileNotFoundError:
        return []
