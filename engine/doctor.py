"""Check a warehouse and repair what can be repaired: `evalhouse doctor [--fix]`.

``check`` only reads (it takes the write lock, when free, so that no writer changes what it looks
at). It checks evalhouse.json, the warehouse versions, every table's Delta log at the version the
newest warehouse version names and every live file against that log (present, its size, its rows),
files no Delta version lists, commits a dead writer left unfinished, and the views file.

``fix`` finishes or undoes unfinished commits (engine.commit.recover), moves files no Delta version
lists to ``quarantine/<table>/``, removes temporary leftovers, rewrites the views file, and repairs
lost files: a live file that is missing or damaged is dropped from its table in one commit (kind
``repair``) that also withdraws every run whose rows it may have held, from all run tables, and
records their source files in the ledger as ``rejected``, so that the next ``evalhouse ingest`` of
those files reads them again and restores exactly what was lost. Nothing is deleted but what
never was live (dead writers' files, temporary files) and the old layout an upgrade left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from engine import tables, versions
from engine.commit import COMMIT_ORDER, PENDING_DIR, RUN_TABLES, Commit, pending, recover
from engine.errors import WarehouseError
from engine.schema import FILES, SCHEMA_VERSION, TABLES
from engine.warehouse import (
    LAYOUT,
    META_TMP_GLOB,
    VIEW_TMP_GLOB,
    Warehouse,
    file_literal,
    fsync,
    lock,
    read_meta,
    views_are_current,
    write_views_db,
)

# Where `doctor --fix` moves files no Delta version lists: quarantine/<table>/<name>, outside the
# tables, so nothing reads them and nothing is lost.
QUARANTINE = "quarantine"
# Temporary files a killed publisher leaves in versions/ (see versions.publish).
VERSION_TMP_GLOB = ".*.tmp"
DELTA_LOG = "_delta_log"
_LOG_NAME = re.compile(r"(\d{20})\.json")


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


def check(root: str | os.PathLike[str]) -> list[Finding]:
    """Everything wrong with the warehouse at ``root`` (an empty list when it is healthy).

    >>> import tempfile; from engine.warehouse import open_warehouse
    >>> check(open_warehouse(tempfile.mkdtemp() + "/w", create=True).root)
    []
    """
    return examine(root).findings


def examine(root: str | os.PathLike[str]) -> Report:
    """:func:`check`'s findings, with informational notes (live rows per table and the like).

    >>> import tempfile; from engine.warehouse import open_warehouse
    >>> [str(n) for n in examine(open_warehouse(tempfile.mkdtemp() + "/w", create=True).root).notes][:1]
    ['info: runs: 0 live row(s) in 0 file(s)']
    """
    scan = _scan(Warehouse(Path(root).resolve()))
    return Report(scan.findings, scan.notes)


# ---------------------------------------------------------------------------------------------
# Checking
# ---------------------------------------------------------------------------------------------


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
    if not wh.meta_path.exists():
        what = "no evalhouse.json" + (", but it holds tables" if (wh.root / tables.TABLES_DIR).is_dir() else "")
        scan.error(f"{wh.root}: not a warehouse ({what})")
        return None
    try:
        meta = read_meta(wh)
    except WarehouseError as exc:
        scan.error(f"{exc}; restore it from a backup")
        return None
    schema = meta.get("schema_version")
    if schema != SCHEMA_VERSION:
        older = isinstance(schema, int) and 0 < schema < SCHEMA_VERSION
        hint = (
            "`evalhouse doctor --fix`, or any evalhouse command, upgrades it"
            if older
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
    from engine.migrate import LEFTOVERS

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


@dataclass(frozen=True)
class _DeltaCommit:
    kind: str | None
    batch: str | None
    added: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True)
class _TableLog:
    """Every commit of a table's Delta log, as its JSON commit files record them."""

    commits: dict[int, _DeltaCommit]

    @classmethod
    def read(cls, root: Path, table: str) -> _TableLog:
        log = tables.folder(root, table) / DELTA_LOG
        try:
            names = os.listdir(log)
        except OSError:
            return cls({})
        commits = {}
        for name in names:
            m = _LOG_NAME.fullmatch(name)
            if m is None:
                continue
            with contextlib.suppress(OSError, UnicodeDecodeError):
                commits[int(m.group(1))] = _parse_commit((log / name).read_text(encoding="utf-8"))
        return cls(dict(sorted(commits.items())))

    @cached_property
    def listed(self) -> set[str]:
        """Every file any commit added or removed."""
        return {p for c in self.commits.values() for p in (*c.added, *c.removed)}

    @cached_property
    def added_in(self) -> dict[str, int]:
        """The version that first added each file."""
        out: dict[str, int] = {}
        for version, c in self.commits.items():
            for p in c.added:
                out.setdefault(p, version)
        return out

    def origin(self, name: str) -> set[str] | None:
        """The batches whose runs may have rows in file ``name``; None: any run's.

        An ingest's own files hold rows of its batch's runs only. A file that replaced others in
        its commit (rows rewritten without withdrawn runs, a compaction) holds what they held; any
        other file (an upgrade's copies, a commit whose log is gone) may hold any run's rows.
        """
        out: set[str] = set()
        todo, seen = [name], set()
        while todo:  # not recursive: a file rewritten at every ingest has a long history
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            version = self.added_in.get(name)
            if version is None:
                return None
            c = self.commits[version]
            part = tables.PART_NAME.fullmatch(name)
            if c.kind == "ingest" and c.batch and part and not part.group("part").startswith("r"):
                out.add(c.batch)
                continue
            # No file replaced (or not one added before): it may hold any run's rows.
            if not c.removed or any(self.added_in.get(old, version) >= version for old in c.removed):
                return None
            todo += c.removed
        return out


def _parse_commit(text: str) -> _DeltaCommit:
    kind = batch = None
    added: list[str] = []
    removed: list[str] = []
    for line in text.splitlines():
        try:
            action = json.loads(line)
        except ValueError:
            continue
        if not isinstance(action, dict):
            continue
        for key, into in (("add", added), ("remove", removed)):
            if isinstance(action.get(key), dict) and isinstance(action[key].get("path"), str):
                into.append(unquote(action[key]["path"]))  # Delta logs percent-encode paths
        info = action.get("commitInfo")
        if isinstance(info, dict):
            kind, batch = info.get("evalhouse.kind"), info.get("evalhouse.batch")
    return _DeltaCommit(kind, batch, tuple(added), tuple(removed))


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# ---------------------------------------------------------------------------------------------
# Fixing
# ---------------------------------------------------------------------------------------------


def fix(root: str | os.PathLike[str]) -> list[str]:
    """Repair what :func:`check` finds that can be repaired; returns what was done, one line each.

    Waits for the write lock. A warehouse whose evalhouse.json, versions or Delta logs cannot be
    read is left as it is: this raises WarehouseError saying what (restore it from a backup).
    """
    wh = Warehouse(Path(root).resolve())
    if _needs_opening(wh):
        # An unfinished creation, an older schema: opening finishes or upgrades it, or says why not.
        from engine.warehouse import open_warehouse

        open_warehouse(wh.root)
    from engine.migrate import LEFTOVERS, remove_leftovers

    done: list[str] = []
    listed = [wh.root / name for name in read_meta(wh).get(LEFTOVERS) or []]
    if listed:
        remove_leftovers(wh)  # before taking the lock, which it takes itself
        done += [f"removed {p} (left over from the upgrade to Delta tables)" for p in listed if not p.exists()]
    with lock(wh):
        done += recover(wh)
        scan = _scan(wh, locked=True)
        if scan.version is None or scan.unreadable:
            first = next(f for f in scan.findings if f.level == "error")
            raise WarehouseError(first.what, hint="`evalhouse doctor --fix` cannot repair this")
        for tmp in scan.temp:
            tmp.unlink(missing_ok=True)
            done.append(f"removed {tmp}")
        for f, dest in scan.unknown.items():
            _move(f, dest)
            done.append(f"moved {f} to {dest}")
        if scan.lost:
            done += _repair(wh, scan.version, scan.lost)
        if not wh.db_path.exists() or not views_are_current(wh):
            write_views_db(wh)
            done.append(f"rewrote {wh.db_path}")
    return done


def _needs_opening(wh: Warehouse) -> bool:
    try:
        return read_meta(wh).get("schema_version") != SCHEMA_VERSION
    except WarehouseError:
        return not wh.meta_path.exists()


def _move(f: Path, dest: Path) -> None:
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(f, dest)
    except OSError as exc:
        raise WarehouseError(f"cannot move {f} to {dest}: {exc.strerror or exc}") from None


def _repair(wh: Warehouse, base: versions.Version, lost: list[LostFile]) -> list[str]:
    """Drop lost files from their tables, withdraw the runs whose rows they may have held and
    mark those runs' source files for re-ingest: one warehouse version, kind ``repair``.

    Which runs: an ingest's own file holds rows of its batch's runs only; a file of no known batch
    (an upgrade's copy, a compaction) may hold any run's, so every run is withdrawn. Withdrawing a
    run removes its rows from every run table, so that re-ingesting its file restores it whole.
    A lost ledger file is treated as the runs of its batch: without their ledger rows a re-ingest
    would store their runs a second time. A lost comparisons file is only dropped.
    """
    root = wh.root
    done: list[str] = []
    for f in lost:
        path = tables.folder(root, f.table) / f.name
        if f.problem != "missing":  # keep what is left of it
            dest = quarantine_path(wh, f.table, f.name)
            _move(path, dest)
            done.append(f"moved {path} (damaged: {f.problem}) to {dest}")
    skip = {(f.table, f.name) for f in lost}
    of_runs = [f for f in lost if f.table != "comparisons"]
    batches: set[str] | None = set()
    for f in of_runs:
        batches = None if batches is None or f.batches is None else batches | f.batches
    offers = _latest_offers(wh, base, skip) if of_runs else {}
    run_ids, paths = _affected(wh, base, batches, skip, offers) if of_runs else (set(), set())
    commit = Commit(wh, "repair")
    try:
        now = datetime.now(UTC)
        actions: dict[str, list[Any]] = {}
        removed: dict[str, int] = {}
        for f in lost:
            actions.setdefault(f.table, []).append(tables.remove_action(f.name, f.size, int(now.timestamp() * 1000)))
            removed[f.table] = removed.get(f.table, 0) + (f.rows or 0)
        for table in RUN_TABLES:
            acts, gone = _without_runs(commit, table, base.tables[table], run_ids, skip)
            actions.setdefault(table, []).extend(acts)
            removed[table] = removed.get(table, 0) + gone
        if paths:
            why = ", ".join(f"file {f.name} {f.state}" for f in of_runs)
            commit.write("files", _rejections(sorted(paths), offers, why, commit.batch_id, now), part="ledger")
        added: dict[str, int] = {}
        for table, files in commit.adds.items():
            for path, rows in files:
                fsync(path)
                actions.setdefault(table, []).append(tables.add_action(path, rows))
                added[table] = added.get(table, 0) + rows
            fsync(tables.folder(root, table))
        delta = dict(base.tables)
        for table in COMMIT_ORDER:
            if actions.get(table):
                delta[table] = tables.commit(root, table, actions[table], commit.batch_id, "repair")
        removed = {t: n for t, n in removed.items() if n}
        versions.publish(root, versions.new(root, "repair", commit.batch_id, delta, added=added, removed=removed))
    except BaseException:
        with contextlib.suppress(Exception):  # undo what can be: as Commit.publish does
            recover(wh)
        raise
    commit.marker.unlink(missing_ok=True)
    for f in lost:
        what = f"{f.rows} row(s)" if f.rows is not None else "its rows"
        done.append(f"dropped {tables.folder(root, f.table) / f.name} from table {f.table} ({what} lost)")
    if any(f.table == "comparisons" for f in lost):
        done.append("comparisons were lost: run `evalhouse compare` again")
    if of_runs:
        done.append(f"withdrew {len(run_ids)} run(s) whose rows the lost file(s) may have held, from every run table")
    if paths:
        done.append(
            f"marked {len(paths)} source file(s) for re-ingest; `evalhouse ingest` of them restores their runs:"
        )
        done += [f"  {p}" for p in sorted(paths)]
    return done


def _affected(
    wh: Warehouse,
    base: versions.Version,
    batches: set[str] | None,
    skip: set[tuple[str, str]],
    offers: dict[str, dict[str, Any]],
) -> tuple[set[str], set[str]]:
    """The runs to withdraw (of ``batches``; None: all) and the source files to read again."""
    from engine.ingest import content_key

    runs = _read_live(wh, base, "runs", ["run_id", "batch_id", "source_path", "source_sha256"], skip)
    hit = [batches is None or b in batches for b in runs["batch_id"]]
    run_ids = {r for r, h in zip(runs["run_id"], hit, strict=True) if h}
    keys = {k for k, h in zip(runs["source_sha256"], hit, strict=True) if h}
    paths = {p for p, h in zip(runs["source_path"], hit, strict=True) if h}
    if any(table == "runs" for table, _name in skip):
        # Runs whose rows in runs were lost: their ids live on only in their other rows.
        live = set(runs["run_id"])
        for table in ("texts", "metrics", "scores"):
            run_ids |= set(_read_live(wh, base, table, ["run_id"], skip)["run_id"]) - live
    for path, offer in offers.items():
        if offer["status"] == "ingested" and (batches is None or offer["batch_id"] in batches):
            paths.add(path)  # where a lost runs file's runs came from
        deps = json.loads(offer["depends_on"]) if offer["depends_on"] else None
        if offer["status"] == "duplicate" and content_key(offer["sha256"], deps) in keys:
            paths.add(path)  # a copy of withdrawn content: a re-ingest may read it from there
    # A path a run that stays came from would be read again as new, and stored twice.
    paths -= {p for p, h in zip(runs["source_path"], hit, strict=True) if not h}
    return run_ids, paths


def _read_live(
    wh: Warehouse, base: versions.Version, table: str, columns: list[str], skip: set[tuple[str, str]]
) -> dict[str, list[Any]]:
    """``columns`` of the live rows of ``table`` but those of the files in ``skip``."""
    schema = TABLES[table].arrow_schema()
    parts = []
    for entry in tables.live_entries(wh.root, table, base.tables[table]):
        if (table, entry["path"]) not in skip:
            path = tables.folder(wh.root, table) / entry["path"]
            present = [c for c in columns if c in pq.read_schema(path).names]
            parts.append(_conform(pq.read_table(path, columns=present), pa.schema([schema.field(c) for c in columns])))
    if not parts:
        return {c: [] for c in columns}
    return pa.concat_tables(parts).to_pydict()  # type: ignore[no-any-return]


def _conform(data: pa.Table, schema: pa.Schema) -> pa.Table:
    """``data`` with ``schema``'s columns: those a file written before they existed lacks as NULL."""
    for f in schema:
        if f.name not in data.column_names:
            data = data.append_column(f, pa.nulls(data.num_rows, f.type))
    return data.select(schema.names).cast(schema)


def _latest_offers(wh: Warehouse, base: versions.Version, skip: set[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """Each path's latest ledger row that read it (as engine.ingest.LedgerState decides).

    Delta lists live files in no particular order: rows are ordered by batch id, which sorts by time.
    """
    ledger = pa.Table.from_pydict(_read_live(wh, base, "files", FILES.names, skip))
    latest: dict[str, dict[str, Any]] = {}
    for row in sorted(ledger.to_pylist(), key=lambda r: r["batch_id"] or ""):
        if row["status"] != "unchanged":
            latest[row["path"]] = row
    return latest


def _rejections(
    paths: list[str], offers: dict[str, dict[str, Any]], why: str, batch_id: str, now: datetime
) -> pa.Table:
    """Ledger rows marking ``paths`` rejected (``why``): a re-ingest reads a rejected file again.

    What the ledger knew of each file (hash, size, time) is kept, for the record.
    """
    rows = []
    for path in paths:
        offer = offers.get(path, {})
        rows.append({
            **{c: offer.get(c) for c in ("sha256", "size", "mtime_ns", "format", "depends_on")},
            "path": path, "status": "rejected", "rows": 0, "batch_id": batch_id, "time": now,
            "reason": f"{path}: (warehouse): rows lost from the warehouse ({why}); re-ingest to restore",
        })  # fmt: skip
    return pa.Table.from_pylist(rows, schema=FILES.arrow_schema())


def _without_runs(
    commit: Commit, table: str, version: int, run_ids: set[str], skip: set[tuple[str, str]]
) -> tuple[list[Any], int]:
    """Actions replacing every live file of ``table`` holding rows of ``run_ids`` (but the files
    in ``skip``) by a copy without them; returns (actions, rows removed)."""
    if not run_ids:
        return [], 0
    root = commit.wh.root
    gone = pa.array(sorted(run_ids), pa.string())
    schema = TABLES[table].arrow_schema()
    actions: list[Any] = []
    removed = 0
    now_ms = int(time.time() * 1000)
    for i, entry in enumerate(tables.live_entries(root, table, version)):
        if (table, entry["path"]) in skip:
            continue
        path = tables.folder(root, table) / entry["path"]
        hit = pc.fill_null(pc.is_in(pq.read_table(path, columns=["run_id"]).column("run_id"), value_set=gone), False)
        n = pc.sum(hit).as_py() or 0
        if not n:
            continue
        kept = pq.read_table(path).filter(pc.invert(hit))
        if kept.num_rows:
            commit.write(table, _conform(kept, schema), part=f"r{i:05d}")
        actions.append(tables.remove_action(entry["path"], entry["size"], now_ms))
        removed += n
    return actions, removed
