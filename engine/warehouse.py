"""The warehouse on disk: Parquet batches, the DuckDB file of views, the lock.

Layout (see warehouse/README.md)::

    warehouse/
      evalhouse.json          schema version and what the views were built for
      evalhouse.duckdb        the views of sql/, for the DuckDB shell and BI tools
      data/<batch_id>/<table>[-<part>].parquet
      data/.staging-<batch_id>/   a batch being written; invisible until renamed
      .lock                   held by the one ingest allowed at a time

A batch is written into a staging folder and becomes visible with one ``rename`` of that folder,
so readers see all of a batch or none of it, and a crash leaves only a staging folder behind,
which the next writer removes. Views read ``data/b*/<table>*.parquet``, so a new batch needs no
change to them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import WarehouseError
from engine.schema import SCHEMA_VERSION, TABLES

if TYPE_CHECKING:
    import duckdb

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
INIT_BATCH = "b00000000T000000000000-init"
# The DuckDB shell users install (duckdb-cli 1.5.x) cannot open files in DuckDB 2's default storage
# format; pinning the storage version keeps the views file readable by both.
STORAGE_VERSION = "v1.5.0"
# Where a views file is written before it replaces evalhouse.duckdb (with DuckDB's .wal beside it).
VIEW_TMP_GLOB = ".evalhouse.duckdb.*"


@dataclass(frozen=True)
class Warehouse:
    """Paths of one warehouse folder."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def db_path(self) -> Path:
        return self.root / "evalhouse.duckdb"

    @property
    def meta_path(self) -> Path:
        return self.root / "evalhouse.json"

    def glob(self, table: str) -> str:
        """The Parquet glob of a stored table, as the views read it."""
        return str(self.data / "b*" / f"{table}*.parquet")

    def batch_dirs(self) -> list[Path]:
        if not self.data.is_dir():
            return []
        return sorted(p for p in self.data.iterdir() if p.name.startswith("b") and p.is_dir())

    def table_files(self, table: str) -> list[str]:
        """Every committed Parquet file of a table, oldest batch first."""
        return [str(f) for d in self.batch_dirs() for f in sorted(d.glob(f"{table}*.parquet"))]


def open_warehouse(root: str | os.PathLike[str], *, create: bool = False) -> Warehouse:
    """Open the warehouse at ``root``, creating it if asked; check its schema version.

    >>> import tempfile; d = tempfile.mkdtemp()
    >>> open_warehouse(d + "/wh", create=True).db_path.name
    'evalhouse.duckdb'
    """
    wh = Warehouse(Path(root).resolve())
    if not wh.meta_path.exists():
        if not create:
            raise WarehouseError(
                f"no warehouse at {wh.root}",
                hint="run `evalhouse ingest PATH` to create one, or pass --warehouse DIR",
            )
        _initialise(wh)
    meta = read_meta(wh)
    version = meta.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise WarehouseError(
            f"{wh.meta_path}: schema_version is {version!r}, newer than this evalhouse reads ({SCHEMA_VERSION})"
            if isinstance(version, int)
            else f"{wh.meta_path}: schema_version is {version!r}, not a version number",
            hint="upgrade evalhouse, or run `evalhouse doctor` on the warehouse",
        )
    if version < SCHEMA_VERSION:
        upgrade(wh)
    elif meta.get("tables") != sorted(TABLES):
        # Only tables were added: a warehouse we cannot write to is still readable for the rest.
        with contextlib.suppress(WarehouseError):
            upgrade(wh)
    if meta.get("views") != _views_fingerprint(wh):
        # A read-only warehouse can still be read: the CLI builds its views in memory.
        with contextlib.suppress(OSError, WarehouseError):
            write_views_db(wh)
    return wh


def missing_tables(wh: Warehouse) -> list[str]:
    """Stored tables with no Parquet file yet (declared by a newer schema than the warehouse)."""
    dirs = wh.batch_dirs()
    return [name for name in TABLES if not any(next(d.glob(f"{name}*.parquet"), None) for d in dirs)]


def _add_columns(*tables: str) -> Any:
    """A migration step for columns added to ``tables``: an empty file of each with the new schema.

    The views read every file of a table with ``union_by_name``, so the empty file brings the new
    columns in, and older files read NULL for them.
    """

    def step(wh: Warehouse) -> None:
        import pyarrow.parquet as pq

        batch = Batch(wh, batch_id=new_batch_id().replace("-", "-schema-", 1))
        for name in tables:
            pq.write_table(TABLES[name].arrow_schema().empty_table(), batch.staging / f"{name}.parquet")
        batch.commit()

    return step


# Upgrades from an older schema version, each to the next; a missing step refuses to open.
MIGRATIONS: dict[int, Any] = {
    1: _add_columns("scores", "files"),  # 2: scores.item_hash, files.depends_on
}


def upgrade(wh: Warehouse) -> None:
    """Bring an older warehouse to this schema: run the migrations, add empty new tables.

    Tables added by a newer schema get an empty file in a batch of their own, so every view
    works; columns added to an existing table read as NULL from older files (views read with
    ``union_by_name``). Anything else needs a migration step, and without one the warehouse is
    refused rather than misread.
    """
    import pyarrow.parquet as pq

    with lock(wh):
        meta = read_meta(wh)
        version = meta["schema_version"]
        while version < SCHEMA_VERSION:
            step = MIGRATIONS.get(version)
            if step is None:
                raise WarehouseError(
                    f"{wh.meta_path}: schema_version {version} has no upgrade path to {SCHEMA_VERSION}",
                    hint="export what you need with an older evalhouse and ingest again",
                )
            step(wh)
            version += 1
        missing = missing_tables(wh)
        if missing:
            batch = Batch(wh, batch_id=new_batch_id().replace("-", "-schema-", 1))
            for name in missing:
                pq.write_table(TABLES[name].arrow_schema().empty_table(), batch.staging / f"{name}.parquet")
            batch.commit()
        meta["schema_version"] = SCHEMA_VERSION
        meta["tables"] = sorted(TABLES)
        _write_meta(wh, meta)


def read_meta(wh: Warehouse) -> dict[str, Any]:
    try:
        meta = json.loads(wh.meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WarehouseError(f"{wh.meta_path}: unreadable ({exc})", hint="run `evalhouse doctor`") from None
    if not isinstance(meta, dict):
        raise WarehouseError(f"{wh.meta_path}: not a JSON object", hint="run `evalhouse doctor`")
    return meta


def _write_meta(wh: Warehouse, meta: dict[str, Any]) -> None:
    tmp = wh.meta_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, wh.meta_path)


def _initialise(wh: Warehouse) -> None:
    """Create the folders, an empty first batch (so every glob matches), and the views file."""
    import pyarrow.parquet as pq

    try:
        wh.data.mkdir(parents=True, exist_ok=True)
        with lock(wh):
            if wh.meta_path.exists():  # another process got here first
                return
            batch = Batch(wh, batch_id=INIT_BATCH)
            for table in TABLES.values():
                pq.write_table(table.arrow_schema().empty_table(), batch.staging / f"{table.name}.parquet")
            batch.commit()
            _write_meta(wh, {"schema_version": SCHEMA_VERSION, "created_at": _now_iso(), "tables": sorted(TABLES)})
            write_views_db(wh)
    except OSError as exc:
        raise WarehouseError(f"cannot create a warehouse at {wh.root}: {exc.strerror or exc}") from None


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------------------
# Views
# ---------------------------------------------------------------------------------------------


def sql_literal(text: str) -> str:
    """``text`` as a SQL string literal (for the Parquet paths views must embed).

    >>> sql_literal("/w/it's")
    "'/w/it''s'"
    """
    return "'" + text.replace("'", "''") + "'"


def view_sql(wh: Warehouse) -> list[tuple[str, str]]:
    """(view name, statement) for every file in sql/, in order, with Parquet paths filled in.

    View files name a stored table as ``{{parquet:TABLE}}``; Parquet paths cannot be bound
    parameters in a view, so they are written as quoted literals of the warehouse's own paths.
    """
    out = []
    for path in sorted(SQL_DIR.glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        for table in TABLES:
            text = text.replace(
                "{{parquet:" + table + "}}",
                f"read_parquet({sql_literal(wh.glob(table))}, union_by_name = true)",
            )
        out.append((path.stem.split("_", 1)[1], text))
    return out


def apply_views(con: duckdb.DuckDBPyConnection, wh: Warehouse) -> None:
    for _name, statement in view_sql(wh):
        con.execute(statement)


def _views_fingerprint(wh: Warehouse) -> str:
    digest = hashlib.sha256(str(wh.root).encode())
    for _name, statement in view_sql(wh):
        digest.update(statement.encode())
    return digest.hexdigest()


def write_views_db(wh: Warehouse) -> None:
    """(Re)write evalhouse.duckdb with the views, replacing it in one rename."""
    import duckdb

    tmp = wh.root / f".evalhouse.duckdb.{secrets.token_hex(4)}.tmp"
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH {sql_literal(str(tmp))} AS evalhouse (STORAGE_VERSION '{STORAGE_VERSION}')")
        con.execute("USE evalhouse")
        apply_views(con, wh)
        con.execute("USE memory")
        con.execute("DETACH evalhouse")
    except duckdb.Error as exc:
        tmp.unlink(missing_ok=True)
        raise WarehouseError(f"cannot write the views file {wh.db_path}: {exc}") from None
    finally:
        con.close()
    os.replace(tmp, wh.db_path)
    meta = read_meta(wh)
    meta["views"] = _views_fingerprint(wh)
    _write_meta(wh, meta)


def connect(wh: Warehouse) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the views of sql/ over this warehouse.

    The CLI reads through this rather than the views file so that readers never take the file's
    lock (a user may have it open in the shell while an ingest runs).
    """
    import duckdb

    con = duckdb.connect()
    # DuckDB draws a progress bar on stdout for long queries, which would corrupt CSV/JSON output.
    con.execute("SET enable_progress_bar = false")
    apply_views(con, wh)
    return con


# ---------------------------------------------------------------------------------------------
# Writing: the lock and batches
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def lock(wh: Warehouse, *, wait: bool = True, on_wait: Any = None) -> Iterator[None]:
    """Hold the warehouse's write lock: one writer at a time, others wait (or fail if not wait)."""
    try:
        fd = os.open(wh.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise WarehouseError(f"cannot write to the warehouse {wh.root}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise WarehouseError(
                    f"another ingest is writing to {wh.root}",
                    hint="wait for it to finish, or run without --no-wait to queue behind it",
                ) from None
            if on_wait:
                on_wait()
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def remove_stale_staging(wh: Warehouse) -> list[str]:
    """Delete staging folders left by a writer that died (call while holding the lock)."""
    removed = []
    for p in wh.data.glob(".staging-*"):
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p.name)
    return removed


def new_batch_id() -> str:
    """A batch id that sorts by creation time."""
    return f"b{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{secrets.token_hex(3)}"


class Batch:
    """A staging folder that becomes a batch, all at once, on commit."""

    def __init__(self, wh: Warehouse, batch_id: str | None = None) -> None:
        self.wh = wh
        self.batch_id = batch_id or new_batch_id()
        self.staging = wh.data / f".staging-{self.batch_id}"
        try:
            self.staging.mkdir(parents=True)
        except OSError as exc:
            raise WarehouseError(f"cannot write to the warehouse {wh.root}: {exc.strerror}") from None

    def commit(self) -> None:
        """Flush every file to disk, then rename the folder into place (the commit point)."""
        try:
            for f in self.staging.iterdir():
                _fsync(f)
            _fsync(self.staging)
            os.rename(self.staging, self.wh.data / self.batch_id)
            _fsync(self.wh.data)
        except OSError as exc:
            self.abort()
            hint = "free some disk space and run the ingest again" if is_disk_full(exc) else None
            raise WarehouseError(f"could not commit batch {self.batch_id}: {os_reason(exc)}", hint) from None

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def os_reason(exc: OSError) -> str:
    """The operating system's words for an I/O error (Arrow wraps them in longer text)."""
    code = exc.errno
    if code is None:
        import re

        m = re.search(r"\[errno (\d+)\]", str(exc))
        code = int(m.group(1)) if m else None
    return os.strerror(code) if code else str(exc)


def is_disk_full(exc: OSError) -> bool:
    return os_reason(exc) == os.strerror(errno.ENOSPC)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def frame(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> Any:
    """Run a query with bound parameters and return a Polars DataFrame.

    >>> import duckdb; frame(duckdb.connect(), "SELECT ? AS x", [1]).to_dicts()
    [{'x': 1}]
    """
    return con.sql(sql, params=params).pl()
