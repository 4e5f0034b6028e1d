"""The checks that produce doctor's findings: one pass over the warehouse (``_scan``), which also
collects what ``fix`` acts on."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from evalhouse import tables, versions
from evalhouse.commit import PENDING_DIR, pending
from evalhouse.doctor.log import _TableLog
from evalhouse.doctor.meta import damaged
from evalhouse.errors import WarehouseError
from evalhouse.schema import SCHEMA_VERSION, TABLES
from evalhouse.warehouse import (
    LAYOUT,
    META_TMP_GLOB,
    VIEW_TMP_GLOB,
    Warehouse,
    file_literal,
    lock,
    read_meta,
    views_are_current,
)

# Where `doctor --fix` moves files no Delta version lists: quarantine/<table>/<name>, outside the
# tables, so nothing reads them and nothing is lost.
QUARANTINE = "quarantine"
# Temporary files a killed publisher leaves in versions/ (see versions.publish).
VERSION_TMP_GLOB = ".*.tmp"


@dataclass(frozen=True)
class Finding:
    """One thing doctor noticed: ``error`` (data lost or misread), ``warning`` (harmless, but
    `--fix` tidies it) or ``info`` (what the warehouse holds)."""

    level: str
    what: str

    def __str__(self) -> str:
        return f"{self.level}: {self.what}"


@dataclass(frozen=True)
class Report:
    """What :func:`examine` found: problems, and informational notes (rows per table, files of
    the user's in the warehouse folder)."""

    findings: list[Finding]
    notes: list[Finding]


@dataclass(frozen=True)
class LostFile:
    """A live file of a table that is missing or damaged."""

    table: str
    name: str
    # as the Delta log records them
    size: int
    rows: int | None
    # "missing", or what is wrong with it
    problem: str
    # batches whose runs may have rows in it; None: any run's
    batches: set[str] | None

    @property
    def state(self) -> str:
        return "missing" if self.problem == "missing" else "damaged"


@dataclass
class _Scan:
    """What a pass over the warehouse found, for findings and for fix to act on."""

    findings: list[Finding] = field(default_factory=list)
    notes: list[Finding] = field(default_factory=list)
    # files no Delta version lists -> where fix moves them
    unknown: dict[Path, Path] = field(default_factory=dict)
    lost: list[LostFile] = field(default_factory=list)
    temp: list[Path] = field(default_factory=list)
    # tables whose Delta log cannot be read
    unreadable: list[str] = field(default_factory=list)
    version: versions.Version | None = None

    def error(self, what: str) -> None:
        self.findings.append(Finding("error", what))

    def warning(self, what: str) -> None:
        self.findings.append(Finding("warning", what))

    def info(self, what: str) -> None:
        self.notes.append(Finding("info", what))


def _scan(wh: Warehouse, *, locked: bool = False) -> _Scan:
    """Look at everything; ``locked``: the caller holds the write lock (fix)."""
    scan = _Scan()
    meta = _check_meta(wh, scan)
    if meta is None:
        return scan
    # Hold the write lock while looking, if it is free: a writer at work would change what is seen.
    with contextlib.ExitStack() as stack:
        idle = locked
        if not locked:
            try:
                stack.enter_context(lock(wh, wait=False))
                idle = True
            except WarehouseError as exc:  # a writer at work, or a read-only folder
                scan.info(f"{exc.args[0]}; unfinished commits and new files were not checked")
        scan.version = _check_versions(wh, scan)
        if scan.version is not None:
            for table in TABLES:
                _check_table(wh, table, scan.version, scan, idle)
        if idle:
            _check_pending(wh, scan)
        _check_leftovers(wh, scan, meta)
        if scan.version is not None and not scan.unreadable:
            _check_views(wh, scan)
    return scan


def _check_meta(wh: Warehouse, scan: _Scan) -> dict[str, Any] | None:
    """evalhouse.json readable and of this schema version; returns it (None if not)."""
    rebuildable = damaged(wh) is not None
    rebuild = "`evalhouse doctor --fix` rebuilds it from the tables"
    if not wh.meta_path.exists():
        what = "no evalhouse.json" + (", but it holds tables" if (wh.root / tables.TABLES_DIR).is_dir() else "")
        scan.error(f"{wh.root}: not a warehouse ({what}{'; ' + rebuild if rebuildable else ''})")
        return None
    try:
        meta = read_meta(wh)
    except WarehouseError as exc:
        scan.error(f"{exc}; {rebuild}")
        return None
    schema = meta.get("schema_version")
    if schema != SCHEMA_VERSION:
        older = isinstance(schema, int) and 0 < schema < SCHEMA_VERSION
        hint = (
            "`evalhouse doctor --fix`, or any evalhouse command, upgrades it"
            if older
            else rebuild
            if rebuildable
            else "this evalhouse cannot read it"
        )
        scan.error(f"{wh.meta_path}: schema_version is {schema!r}; this evalhouse writes {SCHEMA_VERSION} ({hint})")
        return None
    return meta


def _check_versions(wh: Warehouse, scan: _Scan) -> versions.Version | None:
    """Every versions/<n>.json readable; returns the newest if it names every table."""
    folder = versions.folder(wh.root)
    found = versions.numbers(wh.root)
    if not found:
        what = "missing" if not folder.is_dir() else "holds no warehouse version"
        scan.error(f"{folder}: {what}; nothing of the warehouse can be read (restore it from a backup)")
        return None
    newest: versions.Version | None = None
    for n in found:
        try:
            v = versions.read(wh.root, n)
        except WarehouseError as exc:
            scan.error(f"{exc}; restore it from a backup (`evalhouse history` fails until then)")
            continue
        if n == found[-1]:
            newest = v
    if newest is None:
        return None
    lacking = [t for t in TABLES if t not in newest.tables]
    if lacking:
        scan.error(f"{versions.path_of(wh.root, newest.number)}: names no Delta version of table(s) "
                   f"{', '.join(lacking)}; restore it from a backup")  # fmt: skip
        return None
    return newest


def _check_table(wh: Warehouse, table: str, version: versions.Version, scan: _Scan, idle: bool) -> None:
    """The table's log at the version the warehouse names, its live files, and unknown files."""
    folder = tables.folder(wh.root, table)
    delta = version.tables[table]
    try:
        entries = tables.live_entries(wh.root, table, delta)
    except WarehouseError as exc:
        scan.unreadable.append(table)
        scan.error(f"{exc.args[0]}; restore the table's folder from a backup")
        return
    log = _TableLog.read(wh.root, table)
    rows = 0
    for entry in entries:
        problem = _damage(folder / entry["path"], table, entry)
        rows += entry["rows"] or 0
        if problem is None:
            continue
        lost = LostFile(table, entry["path"], entry["size"], entry["rows"], problem, log.origin(entry["path"]))
        scan.lost.append(lost)
        scan.error(_lost_text(folder / lost.name, lost))
    scan.info(f"{table}: {rows} live row(s) in {len(entries)} file(s)")
    try:
        latest = tables.latest_version(wh.root, table)
        newest = {e["path"] for e in tables.live_entries(wh.root, table, latest)}
    except WarehouseError as exc:
        scan.unreadable.append(table)
        scan.error(f"{exc.args[0]}; restore the table's folder from a backup")
        return
    listed = log.listed | newest
    # (recover restores such a table with a new Delta commit: later, but with the named files)
    if idle and latest > delta and newest != {e["path"] for e in entries}:
        scan.error(f"{folder}: Delta version {latest} was committed after version {delta}, which the warehouse "
                   "names (a writer died mid-commit); evalhouse ignores it but other Delta readers read it "
                   "(`evalhouse doctor --fix` undoes it)")  # fmt: skip
    dead = set(pending(wh.root))
    for name in tables.data_files(wh.root, table):
        if name in listed or tables.batch_of(name) in dead:  # a writer's new files: see _check_pending
            continue
        dest = quarantine_path(wh, table, name)
        scan.unknown[folder / name] = dest
        scan.warning(f"{folder / name}: no Delta version lists it, so nothing reads it "
                     f"(`evalhouse doctor --fix` moves it to {dest})")  # fmt: skip


def _damage(path: Path, table: str, entry: dict[str, Any]) -> str | None:
    """What is wrong with a live file (None if nothing): missing, size, rows, columns."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if size != entry["size"]:
        return f"{size} bytes, the Delta log records {entry['size']}"
    try:
        meta = pq.read_metadata(path)
        schema = meta.schema.to_arrow_schema()
    except (OSError, pa.ArrowException) as exc:
        return f"not readable Parquet: {_first_line(exc)}"
    if entry["rows"] is not None and meta.num_rows != entry["rows"]:
        return f"{meta.num_rows} row(s), the Delta log records {entry['rows']}"
    declared = TABLES[table].arrow_schema()
    for f in schema:
        if f.name not in declared.names:
            return f"column {f.name!r} is not in the {table} schema"
        if f.type != declared.field(f.name).type:
            return f"column {f.name!r} is {f.type}, declared {declared.field(f.name).type}"
    return None


def _lost_text(path: Path, lost: LostFile) -> str:
    what = "missing" if lost.problem == "missing" else f"damaged ({lost.problem})"
    rows = f"its {lost.rows} {lost.table} row(s)" if lost.rows is not None else f"its {lost.table} rows"
    if lost.table == "comparisons":
        return (f"{path}: {what}; {rows} are lost (`evalhouse doctor --fix` drops it from the table; "
                "run `evalhouse compare` again)")  # fmt: skip
    runs = "every run" if lost.batches is None else f"the runs of batch {', '.join(sorted(lost.batches))}"
    return (f"{path}: {what}; {rows} are lost (`evalhouse doctor --fix` drops it and withdraws {runs}; "
            "then `evalhouse ingest` of their files restores them)")  # fmt: skip


def _check_pending(wh: Warehouse, scan: _Scan) -> None:
    """Markers of commits no writer is finishing (called holding the write lock)."""
    published = {v.batch_id for v in _readable_history(wh.root)}
    for batch in pending(wh.root):
        marker = wh.root / PENDING_DIR / batch
        files = [
            tables.folder(wh.root, t) / n for t in TABLES for n in tables.data_files(wh.root, t)
            if tables.batch_of(n) == batch
        ]  # fmt: skip
        if batch in published:
            scan.warning(f"{marker}: the marker of a commit that was published; `evalhouse doctor --fix` removes it")
        else:
            scan.warning(f"{marker}: a commit whose writer died before publishing it; its {len(files)} file(s) "
                         "were never live (`evalhouse doctor --fix` deletes them and the marker)")  # fmt: skip


def _readable_history(root: Path) -> list[versions.Version]:
    out = []
    for n in versions.numbers(root):
        with contextlib.suppress(WarehouseError):
            out.append(versions.read(root, n))
    return out


def _check_leftovers(wh: Warehouse, scan: _Scan, meta: dict[str, Any]) -> None:
    """Temporary files of killed processes; what else the warehouse folder holds (the user's)."""
    scan.temp = sorted(
        [*wh.root.glob(VIEW_TMP_GLOB), *wh.root.glob(META_TMP_GLOB), *versions.folder(wh.root).glob(VERSION_TMP_GLOB)]
    )
    for tmp in scan.temp:
        scan.warning(f"{tmp}: a temporary file left by an interrupted process (`evalhouse doctor --fix` removes it)")
    from evalhouse.migrate import LEFTOVERS

    leftovers = set(meta.get(LEFTOVERS) or [])
    known = {*LAYOUT, QUARANTINE}
    for entry in sorted(wh.root.iterdir()):
        if entry.name in known or entry in scan.temp:
            continue
        if entry.name in leftovers:
            scan.warning(f"{entry}: left over from the upgrade to Delta tables (`evalhouse doctor --fix` deletes it)")
        else:
            scan.info(f"{entry}: not part of the warehouse; evalhouse leaves it alone")
    quarantined = [p for p in (wh.root / QUARANTINE).rglob("*") if p.is_file()]
    if quarantined:
        scan.info(f"{wh.root / QUARANTINE}: {len(quarantined)} file(s) set aside by `evalhouse doctor --fix`; "
                  "nothing reads them")  # fmt: skip
    for entry in sorted((wh.root / tables.TABLES_DIR).iterdir()) if (wh.root / tables.TABLES_DIR).is_dir() else []:
        if entry.name not in TABLES:
            scan.info(f"{entry}: not a table of this evalhouse; nothing reads it")


def _check_views(wh: Warehouse, scan: _Scan) -> None:
    hint = "any evalhouse command run on the warehouse, or `evalhouse doctor --fix`, rewrites it"
    if not wh.db_path.exists():
        scan.warning(f"{wh.db_path}: missing; {hint}")
    elif not views_are_current(wh):
        scan.error(f"{wh.db_path}: stale: its views read {_stale_reason(wh)}; {hint}")


def _stale_reason(wh: Warehouse) -> str:
    import duckdb

    try:
        con = duckdb.connect(str(wh.db_path), read_only=True)
        try:
            stored = [s for (s,) in con.execute("SELECT sql FROM duckdb_views() WHERE NOT internal").fetchall()]
        finally:
            con.close()
    except duckdb.Error:
        return "files other than this warehouse's current ones"
    here = file_literal(str(wh.root / tables.TABLES_DIR) + os.sep)[1:-1]
    if any(here in s for s in stored):
        return "a list of files that is not the current one"
    if any("read_parquet" in s for s in stored):
        return "another folder's files (the warehouse was moved or copied)"
    return "files other than this warehouse's current ones"


def quarantine_path(wh: Warehouse, table: str, name: str) -> Path:
    """Where ``fix`` moves an unknown file of ``table``: quarantine/<table>/<name> (numbered if taken)."""
    dest = wh.root / QUARANTINE / table / name
    n = 1
    while dest.exists():
        dest = dest.with_name(f"{name}.{n}")
        n += 1
    return dest


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
