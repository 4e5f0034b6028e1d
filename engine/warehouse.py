"""The warehouse on disk: Delta tables, warehouse versions, the DuckDB file of views, the lock.

Layout (see warehouse/README.md)::

    warehouse/
      evalhouse.json          schema version, creation time, what the views were built for
      evalhouse.duckdb        the views of sql/, for the DuckDB shell and BI tools
      tables/<table>/         one Delta Lake table per stored table (engine/tables.py)
      versions/<n>.json       warehouse versions: the Delta version of every table (engine/versions.py)
      .pending/<batch>        a commit under way (engine/commit.py)
      .lock                   held by the one writer allowed at a time

Readers read every table at the Delta versions the newest warehouse version names, so they see all
of a commit or none of it. Views name the exact live files of those versions (never a glob, so no
character of the warehouse's path is special), so every commit rewrites evalhouse.duckdb, and so
does any command that finds it was written for another folder (a moved or copied warehouse) or
another version.

An S3 warehouse (``--warehouse s3://bucket/prefix``, engine/store.py) has the same layout under its
prefix, without evalhouse.duckdb (the DuckDB shell cannot read S3 here) and ``.lock``: writers
serialise by conditional puts instead (engine/commit.py). ``Warehouse.root`` is then its local
working folder.
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
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalhouse import store, tables, versions
from evalhouse.errors import WarehouseError
from evalhouse.schema import SCHEMA_VERSION, TABLES

if TYPE_CHECKING:
    import duckdb

# The view files: beside the modules in an installed wheel (evalhouse/sql/), beside the engine/
# folder in the source tree.
SQL_DIR = next(
    (
        p
        for p in (Path(__file__).resolve().parent / "sql", Path(__file__).resolve().parent.parent / "sql")
        if p.is_dir()
    ),
    Path(__file__).resolve().parent / "sql",
)
# The DuckDB shell users install (duckdb-cli 1.5.x) cannot open files in DuckDB 2's default storage
# format; pinning the storage version keeps the views file readable by both.
STORAGE_VERSION = "v1.5.0"
# Where a views file is written before it replaces evalhouse.duckdb (with DuckDB's .wal beside it).
VIEW_TMP_GLOB = ".evalhouse.duckdb.*"
META_TMP_GLOB = ".evalhouse.json.*.tmp"
# What a warehouse folder holds (anything else in it is the user's, and left alone).
LAYOUT = ("evalhouse.json", "evalhouse.duckdb", tables.TABLES_DIR, versions.VERSIONS_DIR, ".pending", ".lock")


@dataclass(frozen=True)
class Warehouse:
    """Paths of one warehouse folder; with ``as_of``, the warehouse as it was at that version."""

    root: Path
    # The warehouse version read (a read-only view of the past: see versions.resolve); None: now.
    as_of: int | None = None
    # The present, held still: the version a long read (a report, an export) began with, so that
    # every query of it reads the same version even if a commit lands meanwhile (see pinned()).
    at: int | None = None
    # On S3, the version a writer began on, while it holds :func:`lock`: everything it reads, and
    # the commit it makes on top, are of that version (a list so that lock() can set it on a
    # frozen value; empty when no writer holds it).
    held: list[int] = field(default_factory=list, compare=False, repr=False)

    @property
    def remote(self) -> store.S3Location | None:
        """Where the warehouse lives on S3 (``root`` is then its local working folder); None: local."""
        return store.location(self.root)

    @property
    def name(self) -> str:
        """The warehouse as the user named it: its folder, or its ``s3://`` URL."""
        loc = self.remote
        return loc.url if loc else str(self.root)

    @property
    def db_path(self) -> Path:
        return self.root / "evalhouse.duckdb"

    @property
    def meta_path(self) -> Path:
        return self.root / "evalhouse.json"

    def version(self) -> versions.Version:
        """The warehouse version this reads: ``as_of``, else the newest (on S3, within :func:`lock`,
        the one the writer began on)."""
        if self.held:
            return versions.read(self.root, self.held[-1])
        if self.as_of is not None or self.at is not None:
            return versions.read(self.root, self.as_of if self.as_of is not None else self.at)  # type: ignore[arg-type]
        found = versions.current(self.root)
        if found is None:
            raise WarehouseError(f"{self.root}: no warehouse version", hint="run `evalhouse doctor`")
        return found

    def pinned(self) -> Warehouse:
        """This warehouse held at the version it reads now (the same one for every later query)."""
        return self if self.as_of is not None or self.at is not None else Warehouse(self.root, at=self.version().number)

    def table_files(self, table: str, version: versions.Version | None = None) -> list[str]:
        """The live Parquet files of a table at ``version`` (default: :meth:`version`)."""
        v = version or self.version()
        if table not in v.tables:
            return []
        try:
            files = tables.live_files(self.root, table, v.tables[table])
        except FileNotFoundError as exc:  # on S3: the object is gone from the store
            if self.as_of is None:
                raise WarehouseError(f"cannot read the warehouse's files: {self.name}/{exc} is missing") from None
            files = [str(exc)]
        if self.as_of is not None and not all(os.path.exists(f) for f in files):
            raise WarehouseError(
                f"version {v.number} of {self.name} can no longer be read: `evalhouse optimize` deleted its files",
                hint="`evalhouse history` lists the versions; optimize keeps those of its retention period",
            )
        return files


def open_warehouse(root: str | os.PathLike[str], *, create: bool = False, as_of: str | None = None) -> Warehouse:
    """Open the warehouse at ``root``, creating it if asked; check its schema version.

    ``as_of`` (a version number, a batch id or an ISO time; see :func:`versions.resolve`) opens the
    warehouse as it was then: every view reads the tables at that version.

    ``root`` may be ``s3://bucket/prefix`` (see :func:`_open_remote`).

    >>> import tempfile; d = tempfile.mkdtemp()
    >>> open_warehouse(d + "/wh", create=True).db_path.name
    'evalhouse.duckdb'
    """
    if store.is_url(root):
        return _open_remote(str(root), create=create, as_of=as_of)
    wh = Warehouse(Path(root).resolve())
    tables.check_path(wh.root)
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
        from evalhouse.migrate import upgrade

        upgrade(wh)
    elif meta.get("leftovers"):  # an upgrade killed while deleting the previous layout's folder
        from evalhouse.migrate import remove_leftovers

        remove_leftovers(wh)
    if _pending_work(wh):
        # A writer died: finish its clean-up now if no writer is at work (readers need not wait).
        with contextlib.suppress(OSError, WarehouseError), lock(wh, wait=False):
            from evalhouse.commit import recover

            recover(wh)
    if meta.get("views") != _views_fingerprint(wh):
        # Moved, copied, or changed outside a commit. A read-only warehouse can still be read: the
        # CLI builds its views in memory.
        refresh_views(wh)
    if as_of is not None:
        return Warehouse(wh.root, versions.resolve(wh, as_of))
    return wh


def _open_remote(url: str, *, create: bool, as_of: str | None) -> Warehouse:
    """Open an S3 warehouse (``as_of``: as it was then), creating it if asked."""
    loc = store.parse_url(url)
    store.check(loc)
    wh = Warehouse(store.working_folder(loc))
    if store.read(loc, "evalhouse.json") is None:
        if not create:
            raise WarehouseError(f"no warehouse at {loc.url}", hint="run `evalhouse ingest PATH` to create one")
        _initialise_remote(wh, loc)
    meta = read_meta(wh)
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        raise WarehouseError(
            f"{loc.url}/evalhouse.json: schema_version is {version!r}; this evalhouse reads {SCHEMA_VERSION} on S3",
            hint="upgrade evalhouse" if isinstance(version, int) and version > SCHEMA_VERSION else
            "upgrade a copy of it on a local disk with `evalhouse migrate`",
        )  # fmt: skip
    from evalhouse.commit import recover

    # Only what is safe with writers at work (see recover); a reader without write access skips it.
    with contextlib.suppress(WarehouseError):
        recover(wh)
    if as_of is not None:
        return Warehouse(wh.root, versions.resolve(wh, as_of))
    return wh


def _initialise_remote(wh: Warehouse, loc: store.S3Location) -> None:
    """Create an S3 warehouse: the empty tables, version 0, then evalhouse.json (what makes it one).

    Each step is safe to run twice and by two processes at once: a table that exists is kept,
    version 0 and evalhouse.json are put only if absent.
    """
    found = versions.numbers(wh.root)
    if len(found) > 1:  # as for a local folder: never adopt data whose evalhouse.json is gone
        raise WarehouseError(
            f"{loc.url} holds warehouse versions but no evalhouse.json; not creating a warehouse over it",
            hint="restore evalhouse.json from a backup",
        )
    if not found:
        created = create_tables(wh)
        with contextlib.suppress(WarehouseError):  # another process published version 0 first: keep it
            versions.publish(wh.root, versions.new(wh.root, "create", None, created))
    meta = {"schema_version": SCHEMA_VERSION, "created_at": _now_iso(), "tables": sorted(TABLES)}
    store.create(loc, "evalhouse.json", (json.dumps(meta, indent=2) + "\n").encode())


def _pending_work(wh: Warehouse) -> bool:
    from evalhouse.commit import pending

    return bool(pending(wh.root))


def history(wh: Warehouse) -> list[dict[str, Any]]:
    """Every commit of the warehouse, oldest first: version, batch id, time, kind, rows per table."""
    return [
        {"version": v.number, "batch_id": v.batch_id, "time": v.time, "kind": v.kind,
         "rows": v.added, "removed": v.removed}
        for v in versions.history(wh.root)
    ]  # fmt: skip


_DOCTOR = "run `evalhouse doctor`"


def read_meta(wh: Warehouse) -> dict[str, Any]:
    loc = wh.remote
    where, hint = (f"{loc.url}/evalhouse.json", "restore it from a backup") if loc else (wh.meta_path, _DOCTOR)
    try:
        if loc is not None:
            found = store.read(loc, "evalhouse.json")
            if found is None:
                raise FileNotFoundError("missing")
            meta = json.loads(found)
        else:
            meta = json.loads(wh.meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WarehouseError(f"{where}: unreadable ({exc})", hint=hint) from None
    if not isinstance(meta, dict):
        raise WarehouseError(f"{where}: not a JSON object", hint=hint)
    return meta


def write_meta(wh: Warehouse, meta: dict[str, Any]) -> None:
    loc = wh.remote
    if loc is not None:
        store.put(loc, "evalhouse.json", (json.dumps(meta, indent=2) + "\n").encode())
        return
    # A name of its own: two processes writing at once must not write into one temporary file.
    tmp = wh.root / f".evalhouse.json.{secrets.token_hex(4)}.tmp"
    try:
        tmp.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, wh.meta_path)
    finally:
        tmp.unlink(missing_ok=True)


def create_tables(wh: Warehouse) -> dict[str, int]:
    """Create every stored table that does not exist yet, empty; returns each one's Delta version."""
    from evalhouse.commit import checkpoint

    created = {}
    for name in TABLES:
        checkpoint("create", name)
        created[name] = tables.create(wh.root, name)
    return created


def _initialise(wh: Warehouse, *, wait: bool = True) -> None:
    """Create the warehouse, or finish a creation that a killed or failed ingest left half done.

    Creating is atomic: evalhouse.json, written last, is what makes the folder a warehouse. Before
    it exists the folder holds at most ``.lock``, the empty tables and version 0; this removes them
    and starts again, so a kill at any point leaves no warehouse or one the next command finishes.
    The views file comes after evalhouse.json; any command rewrites it if it is missing.
    """
    try:
        wh.root.mkdir(parents=True, exist_ok=True)
        with lock(wh, wait=wait):
            if wh.meta_path.exists():  # another process got here first
                return
            if (wh.root / "data").is_dir() or len(versions.numbers(wh.root)) > 1:
                raise WarehouseError(
                    f"{wh.root} holds warehouse data but {wh.meta_path} is missing; not creating a warehouse over it",
                    hint="restore evalhouse.json from a backup, or run `evalhouse doctor`",
                )
            for leftover in (tables.TABLES_DIR, versions.VERSIONS_DIR, ".pending"):
                shutil.rmtree(wh.root / leftover, ignore_errors=True)
            for tmp in [*wh.root.glob(META_TMP_GLOB), *wh.root.glob(VIEW_TMP_GLOB)]:
                tmp.unlink(missing_ok=True)
            versions.publish(wh.root, versions.new(wh.root, "create", None, create_tables(wh)))
            write_meta(wh, {"schema_version": SCHEMA_VERSION, "created_at": _now_iso(), "tables": sorted(TABLES)})
            update_views(wh)
    except OSError as exc:
        hint = "free some disk space and run it again" if is_disk_full(exc) else None
        raise WarehouseError(f"cannot create a warehouse at {wh.root}: {os_reason(exc)}", hint) from None


def unfinished_creation(wh: Warehouse) -> bool:
    """Whether ``wh`` is what an ingest killed while creating it leaves: no evalhouse.json, and
    ``.lock`` beside nothing but empty tables and at most the creation's version.

    >>> import tempfile; wh = Warehouse(Path(tempfile.mkdtemp()))
    >>> unfinished_creation(wh)
    False
    >>> (wh.root / ".lock").touch(); (wh.root / "tables" / "runs").mkdir(parents=True)
    >>> unfinished_creation(wh)
    True
    """
    if wh.meta_path.exists() or not (wh.root / ".lock").is_file() or (wh.root / "data").exists():
        return False
    names = {p.name for p in wh.root.iterdir()}
    leftovers = {n for n in names if n.startswith((".evalhouse.json.", ".evalhouse.duckdb."))}
    return names - leftovers <= set(LAYOUT) and len(versions.numbers(wh.root)) <= 1


def _finish_creation(wh: Warehouse) -> None:
    """For commands that do not create: finish an interrupted creation, else say there is no warehouse."""
    hint = "run `evalhouse ingest PATH` to create one, or pass --warehouse DIR"
    if not wh.root.is_dir() or not unfinished_creation(wh):
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


def table_source(wh: Warehouse, table: str, version: versions.Version | None = None) -> str:
    """SQL that reads a stored table: ``read_parquet`` over the exact list of its live files.

    A table with no file reads as no rows with the declared columns, so its views still work.
    """
    files = wh.table_files(table, version)
    if files:
        return f"read_parquet([{', '.join(file_literal(f) for f in files)}], union_by_name = true)"
    schema = TABLES[table].arrow_schema()
    columns = ", ".join(f'CAST(NULL AS {_SQL_TYPES[str(f.type)]}) AS "{f.name}"' for f in schema)
    return f"(SELECT {columns} LIMIT 0)"


def fill_tables(wh: Warehouse, sql: str, version: versions.Version | None = None) -> str:
    """``sql`` with every ``{{parquet:TABLE}}`` replaced by that table's :func:`table_source`."""
    version = version or wh.version()
    for table in TABLES:
        marker = "{{parquet:" + table + "}}"
        if marker in sql:
            sql = sql.replace(marker, table_source(wh, table, version))
    return sql


def view_sql(wh: Warehouse) -> list[tuple[str, str]]:
    """(view name, statement) for every file in sql/, in order, with the tables' files filled in.

    View files name a stored table as ``{{parquet:TABLE}}``; file paths cannot be bound
    parameters in a view, so they are written as quoted literals of the warehouse's own files.
    """
    version = wh.version()  # once: every view reads the same warehouse version
    return [
        (path.stem.split("_", 1)[1], fill_tables(wh, path.read_text(encoding="utf-8"), version))
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

    if wh.remote is not None:  # no views file on S3 (see the module's docstring)
        return
    statements = view_sql(wh)
    # Only a holder of the lock writes these: any found now were left by a process that died.
    for leftover in [*wh.root.glob(VIEW_TMP_GLOB), *wh.root.glob(META_TMP_GLOB)]:
        leftover.unlink(missing_ok=True)
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
    write_meta(wh, meta)


def refresh_views(wh: Warehouse) -> None:
    """Rewrite evalhouse.duckdb if it is not current, when the write lock is free.

    For readers: a warehouse that cannot be written (read-only) is left as it is, and so is one
    whose lock a writer holds (its commit rewrites the views).
    """
    if wh.as_of is not None or wh.remote is not None:  # the past's views, or S3's: no views file
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
# Writing: the lock
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def lock(wh: Warehouse, *, wait: bool = True, on_wait: Any = None) -> Iterator[None]:
    """Hold the warehouse's write lock: one writer at a time, others wait (or fail if not wait).

    The lock belongs to the open file, so any process holding a copy of the descriptor holds it:
    it is close-on-exec, and a holder must not ``fork`` (ingest's workers come from a fork server),
    or a child outliving a killed writer would keep every later one waiting.

    An S3 warehouse has no lock: writers on any machine work at once, and the commit protocol
    (engine/commit.py) lets one of them publish each version and makes the others redo their work.
    Here the warehouse is held at its newest version instead (``Warehouse.held``): what the writer
    reads and the commit it makes on top are of that version, and the commit fails with
    CommitConflict if another writer published a newer one meanwhile.
    """
    if wh.remote is not None:
        found = versions.current(wh.root)
        wh.held.append(found.number if found else 0)
        try:
            yield
        finally:
            wh.held.pop()
        return
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


def os_reason(exc: OSError) -> str:
    """The operating system's words for an I/O error (Arrow wraps them in longer text)."""
    code = exc.errno
    if code is None:
        import re

        # Arrow says "[errno 28]", delta-rs "(os error 28)".
        m = re.search(r"\[errno (\d+)\]|\(os error (\d+)\)", str(exc))
        code = int(m.group(1) or m.group(2)) if m else None
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
