"""The warehouse on disk: Parquet batches, the DuckDB file of views, the lock.

Layout (see warehouse/README.md)::

    warehouse/
      evalhouse.json          schema version and what the views were built for
      evalhouse.duckdb        the views of sql/, for the DuckDB shell and BI tools
      data/<batch_id>/<table>[-<part>].parquet, manifest.json
      data/.staging-<batch_id>/   a batch being written; invisible until renamed
      .lock                   held by the one ingest allowed at a time

A batch is written into a staging folder and becomes visible with one ``rename`` of that folder,
so readers see all of a batch or none of it, and a crash leaves only a staging folder behind,
which the next writer removes. Each batch holds ``manifest.json``: its files with their row counts.

Views name the exact list of committed files (never a glob, so no character of the warehouse's
path is special), so every commit rewrites evalhouse.duckdb, and so does any command that finds
it was written for another folder (a moved or copied warehouse) or another list of files.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
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
META_TMP_GLOB = ".evalhouse.json.*.tmp"
# Committed batch folders (see new_batch_id; INIT_BATCH; "-schema-" batches of upgrades).
BATCH_NAME = re.compile(r"b\d{8}T\d{12}-[0-9a-z][0-9a-z-]*")
# The files writers put in a batch: <table>.parquet, or <table>-<part>.parquet from ingest's jobs.
TABLE_FILE = re.compile(r"(?P<table>[a-z_]+)(?:-\d{5,})?\.parquet")
# In every batch committed since it existed: {"files": {name: {"table", "rows", "bytes"}}}.
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Warehouse:
    """Paths of one warehouse folder; with ``as_of``, the warehouse as it was after that batch."""

    root: Path
    # The newest batch read (a read-only view of the past: see ``resolve_version``); None: now.
    as_of: str | None = None

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
        """Deprecated: a Parquet glob of a table, which reads unknown files and misreads a path with
        ``[ ] * ?`` in it. Read a table with :func:`table_source` instead."""
        return str(self.data / "b*" / f"{table}*.parquet")

    def batch_dirs(self) -> list[Path]:
        """The committed batch folders, oldest first (not staging folders or anything else in data/)."""
        if not self.data.is_dir():
            return []
        dirs = sorted(p for p in self.data.iterdir() if BATCH_NAME.fullmatch(p.name) and p.is_dir())
        return [d for d in dirs if d.name <= self.as_of] if self.as_of else dirs

    def table_files(self, table: str) -> list[str]:
        """Every committed Parquet file of a table, oldest batch first: what its view reads."""
        return [str(f) for d in self.batch_dirs() for f in committed_files(d) if table_of(f.name) == table]


def table_of(name: str) -> str | None:
    """The table a file of this name belongs to, if a writer could have written it; else None.

    >>> table_of("scores-00001.parquet"), table_of("scores-00000 (1).parquet"), table_of("scores.parquet")
    ('scores', None, 'scores')
    """
    m = TABLE_FILE.fullmatch(name)
    return m.group("table") if m and m.group("table") in TABLES else None


def read_manifest(batch: Path) -> dict[str, dict[str, Any]] | None:
    """The files a batch was committed with (name -> table, rows, bytes); None for a batch without
    a manifest (committed before evalhouse wrote them). Raises WarehouseError if it is unreadable."""
    path = batch / MANIFEST
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise WarehouseError(f"{path}: unreadable ({exc})", hint="run `evalhouse doctor`") from None
    files = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(files, dict) or not all(isinstance(v, dict) for v in files.values()):
        raise WarehouseError(f"{path}: not a batch manifest", hint="run `evalhouse doctor`")
    return files


def committed_files(batch: Path) -> list[Path]:
    """The table files of a committed batch that views read, by name.

    Those its manifest lists (a file put there later is not read); for a batch without one, every
    file named as a writer names them. A listed file that is missing is left out (doctor reports it).
    """
    try:
        manifest = read_manifest(batch)
    except WarehouseError:
        manifest = None  # doctor reports it; read what the writers' names say meanwhile
    names = manifest.keys() if manifest is not None else [p.name for p in batch.iterdir()]
    return [batch / n for n in sorted(names) if table_of(n) and (batch / n).is_file()]


def open_warehouse(root: str | os.PathLike[str], *, create: bool = False, as_of: str | None = None) -> Warehouse:
    """Open the warehouse at ``root``, creating it if asked; check its schema version.

    ``as_of`` (a version number, a batch id or an ISO time; see :func:`resolve_version`) opens the
    warehouse as it was then: every view reads only the batches committed up to it.

    >>> import tempfile; d = tempfile.mkdtemp()
    >>> open_warehouse(d + "/wh", create=True).db_path.name
    'evalhouse.duckdb'
    """
    wh = Warehouse(Path(root).resolve())
    if not wh.meta_path.exists():
        if create:
            _initialise(wh)
        else:
            _finish_creation(wh)
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
        # Moved, copied, or changed outside a commit. A read-only warehouse can still be read: the
        # CLI builds its views in memory.
        refresh_views(wh)
    if as_of is not None:
        return Warehouse(wh.root, resolve_version(wh, as_of))
    return wh


def history(wh: Warehouse) -> list[dict[str, Any]]:
    """Every commit of the warehouse, oldest first: version, batch id, time, kind and rows per table.

    A commit is a batch: an ingest, a comparison, a schema upgrade, or the empty tables of creation.
    """
    out = []
    for version, batch in enumerate(wh.batch_dirs()):
        files = committed_files(batch)
        tables = sorted({t for f in files if (t := table_of(f.name))})
        manifest = None
        with contextlib.suppress(WarehouseError):
            manifest = read_manifest(batch)
        rows = {t: sum(v.get("rows", 0) for v in (manifest or {}).values() if v.get("table") == t) for t in tables}
        kind = (
            "create" if batch.name == INIT_BATCH else "schema" if "-schema-" in batch.name
            else "compare" if tables == ["comparisons"] else "ingest"
        )  # fmt: skip
        out.append({"version": version, "batch_id": batch.name, "time": batch_time(batch.name), "kind": kind,
                    "rows": rows if manifest is not None else None})  # fmt: skip
    return out


def batch_time(batch_id: str) -> datetime | None:
    """When a batch was committed, from its id (UTC); None for the creation batch.

    >>> batch_time("b20261129T223738550707-8bc16a")
    datetime.datetime(2026, 11, 29, 22, 37, 38, 550707, tzinfo=datetime.timezone.utc)
    """
    if batch_id == INIT_BATCH:
        return None
    return datetime.strptime(batch_id[1:22], "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC)


def resolve_version(wh: Warehouse, as_of: str) -> str:
    """The batch id a ``--as-of`` names: a version number (0 = creation), a batch id, or a time.

    A time (ISO 8601; UTC when it names no zone) selects the last batch committed at or before it.
    """
    batches = [b.name for b in Warehouse(wh.root).batch_dirs()]
    text = as_of.strip()
    if text.isdigit():
        if int(text) >= len(batches):
            raise WarehouseError(f"no version {text}: the warehouse has versions 0 to {len(batches) - 1}",
                                 hint="`evalhouse history` lists them")  # fmt: skip
        return batches[int(text)]
    if text in batches:
        return text
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise WarehouseError(f"--as-of {as_of!r} is not a version number, a batch id or an ISO time",
                             hint="`evalhouse history` lists them") from None  # fmt: skip
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    earlier = [b for b in batches if (t := batch_time(b)) is None or t <= when]
    return earlier[-1]


def missing_tables(wh: Warehouse) -> list[str]:
    """Stored tables with no Parquet file yet (declared by a newer schema than the warehouse)."""
    present = {table_of(f.name) for d in wh.batch_dirs() for f in committed_files(d)}
    return [name for name in TABLES if name not in present]


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
        meta = read_meta(wh)  # as the commits above left it: they recorded the views they wrote
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
    # A name of its own: two processes writing at once must not write into one temporary file.
    tmp = wh.root / f".evalhouse.json.{secrets.token_hex(4)}.tmp"
    try:
        tmp.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, wh.meta_path)
    finally:
        tmp.unlink(missing_ok=True)


def _initialise(wh: Warehouse, *, wait: bool = True) -> None:
    """Create the warehouse, or finish a creation that a killed or failed ingest left half done.

    Creating is atomic: evalhouse.json, written last, is what makes the folder a warehouse. Before
    it exists the folder holds at most ``.lock``, ``data/`` with the empty first batch (committed
    whole, by rename) and its staging folder; this removes the staging folder and redoes what is
    missing, so a kill at any point leaves no warehouse or one the next command finishes. The views
    file comes after evalhouse.json; any command rewrites it if it is missing.
    """
    import pyarrow.parquet as pq

    try:
        wh.root.mkdir(parents=True, exist_ok=True)
        with lock(wh, wait=wait):
            if wh.meta_path.exists():  # another process got here first
                return
            if [d for d in wh.batch_dirs() if d.name != INIT_BATCH]:
                raise WarehouseError(
                    f"{wh.data} holds batches but {wh.meta_path} is missing; not creating a warehouse over them",
                    hint="restore evalhouse.json from a backup, or run `evalhouse doctor`",
                )
            wh.data.mkdir(exist_ok=True)
            remove_stale_staging(wh)
            for tmp in [*wh.root.glob(META_TMP_GLOB), *wh.root.glob(VIEW_TMP_GLOB)]:
                tmp.unlink(missing_ok=True)
            if not (wh.data / INIT_BATCH).is_dir():
                batch = Batch(wh, batch_id=INIT_BATCH)
                try:
                    for table in TABLES.values():
                        pq.write_table(table.arrow_schema().empty_table(), batch.staging / f"{table.name}.parquet")
                except BaseException:
                    batch.abort()
                    raise
                batch.commit()
            _write_meta(wh, {"schema_version": SCHEMA_VERSION, "created_at": _now_iso(), "tables": sorted(TABLES)})
            update_views(wh)
    except OSError as exc:
        hint = "free some disk space and run it again" if is_disk_full(exc) else None
        raise WarehouseError(f"cannot create a warehouse at {wh.root}: {os_reason(exc)}", hint) from None


def unfinished_creation(wh: Warehouse) -> bool:
    """Whether ``wh`` is what an ingest killed while creating it leaves: no evalhouse.json, and
    ``.lock`` beside a ``data/`` folder holding nothing but the first batch (or its staging folder).

    >>> import tempfile; wh = Warehouse(Path(tempfile.mkdtemp()))
    >>> unfinished_creation(wh)
    False
    >>> (wh.root / ".lock").touch(); (wh.data / f".staging-{INIT_BATCH}").mkdir(parents=True)
    >>> unfinished_creation(wh)
    True
    """
    if wh.meta_path.exists() or not (wh.root / ".lock").is_file() or not wh.data.is_dir():
        return False
    return all(p.name in (INIT_BATCH, f".staging-{INIT_BATCH}") for p in wh.data.iterdir())


def _finish_creation(wh: Warehouse) -> None:
    """For commands that do not create: finish an interrupted creation, else say there is no warehouse."""
    hint = "run `evalhouse ingest PATH` to create one, or pass --warehouse DIR"
    if not unfinished_creation(wh):
        raise WarehouseError(f"no warehouse at {wh.root}", hint=hint)
    try:
        _initialise(wh, wait=False)  # the lock is held only by an ingest creating it: do not wait
    except WarehouseError as exc:
        raise WarehouseError(
            f"no warehouse at {wh.root} yet: an ingest began creating it, and it cannot be finished now ({exc})",
            hint="any evalhouse command finishes it once the folder can be written and no ingest is writing",
        ) from None


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


def file_literal(path: str) -> str:
    """An exact file path as a SQL literal for ``read_parquet``, which would glob ``* ? [``.

    Each of those becomes a one-character class (``[[]``), which matches only itself. DuckDB splits
    a globbed path at ``\\`` as well as ``/``, so a path with both cannot be named and is refused.

    >>> file_literal("/w/it's [x]*/data/b1/scores.parquet")
    "'/w/it''s [[]x][*]/data/b1/scores.parquet'"
    """
    if not any(c in path for c in "*?["):
        return sql_literal(path)
    if "\\" in path:
        raise WarehouseError(
            f"{path}: DuckDB cannot read a file whose path has both a backslash and one of * ? [",
            hint="move the warehouse to a folder without them",
        )
    return sql_literal("".join(f"[{c}]" if c in "*?[" else c for c in path))


# DuckDB's names for the Arrow types of engine/schema.py (for a table that has no file).
_SQL_TYPES = {
    "string": "VARCHAR", "int32": "INTEGER", "int64": "BIGINT", "double": "DOUBLE", "bool": "BOOLEAN",
    "timestamp[us]": "TIMESTAMP", "timestamp[us, tz=UTC]": "TIMESTAMPTZ",
}  # fmt: skip


def table_source(wh: Warehouse, table: str) -> str:
    """SQL that reads a stored table: ``read_parquet`` over the exact list of its committed files.

    A table with no file reads as no rows with the declared columns, so its views still work.
    """
    files = wh.table_files(table)
    if files:
        return f"read_parquet([{', '.join(file_literal(f) for f in files)}], union_by_name = true)"
    schema = TABLES[table].arrow_schema()
    columns = ", ".join(f'CAST(NULL AS {_SQL_TYPES[str(f.type)]}) AS "{f.name}"' for f in schema)
    return f"(SELECT {columns} LIMIT 0)"


def fill_tables(wh: Warehouse, sql: str) -> str:
    """``sql`` with every ``{{parquet:TABLE}}`` replaced by that table's :func:`table_source`."""
    for table in TABLES:
        marker = "{{parquet:" + table + "}}"
        if marker in sql:
            sql = sql.replace(marker, table_source(wh, table))
    return sql


def view_sql(wh: Warehouse) -> list[tuple[str, str]]:
    """(view name, statement) for every file in sql/, in order, with the tables' files filled in.

    View files name a stored table as ``{{parquet:TABLE}}``; file paths cannot be bound
    parameters in a view, so they are written as quoted literals of the warehouse's own files.
    """
    return [
        (path.stem.split("_", 1)[1], fill_tables(wh, path.read_text(encoding="utf-8")))
        for path in sorted(SQL_DIR.glob("*.sql"))
    ]


def apply_views(con: duckdb.DuckDBPyConnection, wh: Warehouse, statements: list[tuple[str, str]] | None = None) -> None:
    for _name, statement in statements or view_sql(wh):
        con.execute(statement)


def _views_fingerprint(wh: Warehouse, statements: list[tuple[str, str]] | None = None) -> str:
    """What the views are built for: the warehouse's folder and every view's text (its files)."""
    digest = hashlib.sha256(str(wh.root).encode())
    for _name, statement in statements or view_sql(wh):
        digest.update(statement.encode())
    return digest.hexdigest()


def views_are_current(wh: Warehouse) -> bool:
    """Whether evalhouse.json says evalhouse.duckdb was written for this folder and its files now."""
    try:
        return read_meta(wh).get("views") == _views_fingerprint(wh)
    except WarehouseError:
        return False


def write_views_db(wh: Warehouse) -> None:
    """(Re)write evalhouse.duckdb with the views, replacing it in one rename (hold the lock)."""
    import duckdb

    statements = view_sql(wh)
    tmp = wh.root / f".evalhouse.duckdb.{secrets.token_hex(4)}.tmp"
    # DuckDB reads a "?" in a database's path as the start of options and cannot write there (its
    # .wal goes astray); reading is fine. Build the file in a temporary folder then, and copy it.
    build = Path(tempfile.mkdtemp(prefix="evalhouse-views-")) / "views.duckdb" if "?" in str(tmp) else tmp
    con = duckdb.connect()
    try:
        try:
            con.execute(f"ATTACH {sql_literal(str(build))} AS evalhouse (STORAGE_VERSION '{STORAGE_VERSION}')")
            con.execute("USE evalhouse")
            apply_views(con, wh, statements)
            con.execute("USE memory")
            con.execute("DETACH evalhouse")
        except duckdb.Error as exc:
            build.unlink(missing_ok=True)
            raise WarehouseError(f"cannot write the views file {wh.db_path}: {exc}") from None
        finally:
            con.close()
        if build != tmp:
            shutil.copyfile(build, tmp)
        os.replace(tmp, wh.db_path)
    finally:
        if build != tmp:
            shutil.rmtree(build.parent, ignore_errors=True)
        tmp.unlink(missing_ok=True)
    meta = read_meta(wh)
    meta["views"] = _views_fingerprint(wh, statements)
    _write_meta(wh, meta)


def refresh_views(wh: Warehouse) -> None:
    """Rewrite evalhouse.duckdb if it is not current, when the write lock is free.

    For readers: a warehouse that cannot be written (read-only) is left as it is, and so is one
    whose lock a writer holds (its commit rewrites the views).
    """
    if wh.as_of is not None:  # a view of the past never replaces the present's views file
        return
    with contextlib.suppress(OSError, WarehouseError), lock(wh, wait=False):
        if not views_are_current(wh):
            write_views_db(wh)


def update_views(wh: Warehouse) -> None:
    """Rewrite evalhouse.duckdb after the committed files changed (hold the lock).

    The data is committed already, so a views file that cannot be written stays stale rather than
    failing the commit: the next command, or ``evalhouse doctor --fix``, rewrites it.
    """
    if not wh.meta_path.exists():  # a warehouse being created writes its views once it is whole
        return
    with contextlib.suppress(OSError, WarehouseError):
        write_views_db(wh)


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
    """Hold the warehouse's write lock: one writer at a time, others wait (or fail if not wait).

    The lock belongs to the open file, so any process holding a copy of the descriptor holds it:
    it is close-on-exec, and a holder must not ``fork`` (ingest's workers come from a fork server),
    or a child outliving a killed writer would keep every later one waiting.
    """
    try:
        fd = os.open(wh.root / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
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
        """Write the manifest, flush every file to disk, then rename the folder into place (the
        commit point); then rewrite the views file, which names every committed file."""
        import pyarrow as pa

        try:
            self._write_manifest()
            for f in self.staging.iterdir():
                fsync(f)
            fsync(self.staging)
            os.rename(self.staging, self.wh.data / self.batch_id)
            fsync(self.wh.data)
        except (OSError, pa.ArrowException) as exc:
            self.abort()
            if not isinstance(exc, OSError):
                raise WarehouseError(f"could not commit batch {self.batch_id}: {exc}") from None
            hint = "free some disk space and run the ingest again" if is_disk_full(exc) else None
            raise WarehouseError(f"could not commit batch {self.batch_id}: {os_reason(exc)}", hint) from None
        update_views(self.wh)

    def _write_manifest(self) -> None:
        """Record the batch's table files with their rows and bytes, for the views and doctor."""
        import pyarrow.parquet as pq

        files = {
            f.name: {"table": table_of(f.name), "rows": pq.read_metadata(f).num_rows, "bytes": f.stat().st_size}
            for f in sorted(self.staging.iterdir())
            if table_of(f.name)
        }
        doc = {"batch_id": self.batch_id, "files": files}
        (self.staging / MANIFEST).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")

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


def fsync(path: Path) -> None:
    """Flush a file or a folder (its entries) to disk: a rename is durable only once its folder is."""
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
