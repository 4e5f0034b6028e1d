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

On S3 there is no lock and no marker; writers on any machine work at once, each on the version
that was newest when it began (its *base*, n, held by ``lock()``). Its new files are staged in the
local working folder.
``publish()`` then:

1. claims version n+1: creates ``claims/<n+1>.json`` (its batch id and the time) with a
   conditional put, which fails if another writer claimed it (CommitConflict);
2. checks that n+1 is not published yet, and restores every table committed past the version n
   names (a dead writer's leftovers) so that each table's newest Delta version reads as n (each
   restore made exactly on the Delta version it compared with n's);
3. uploads its files, commits each changed table exactly on the Delta version of step 2 (a
   conditional commit: if another writer's commit took that place, it fails rather than land on
   top of it), and publishes ``versions/<n+1>.json`` (put-if-absent), the commit point;
4. deletes its claim.

A writer that fails in 1-3 undoes what it did (restores its tables, each only right on its own
Delta commit, deletes its uploaded files and its claim) and raises CommitConflict. If the put of
step 3 failed with no answer, it may have landed, so the writer settles that first: it reads the
version, and puts it as an unchanged copy of n if absent, so that a put still under way cannot
land after the undo (a live commit is kept; one S3 cannot tell about is left to recovery).
:func:`retrying` then reopens the warehouse at the new version and runs the whole command again
(an ingest re-reads the ledger and parses again), a few times, before it fails with a clear
message. A claim whose writer died is recovered by any later
command (:func:`recover`): after ``CLAIM_TIMEOUT`` with no version n+1, version n+1 is published
as an unchanged copy of n (kind ``repair``), so the dead writer can never publish; then the dead
batch's uploaded files are deleted and its claim goes. No version can name another writer's Delta
commit: every commit names the Delta version it builds on, and only the claim holder commits.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import secrets
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa

from evalhouse import store, tables, versions
from evalhouse.errors import CommitConflict, WarehouseError
from evalhouse.schema import TABLES

if TYPE_CHECKING:
    from evalhouse.warehouse import Warehouse

PENDING_DIR = ".pending"
# Tables that hold rows of runs: removing a run removes its rows from each. Children before runs,
# and the ledger last, so that each Delta table read alone between commits shows no run without rows.
RUN_TABLES = ("texts", "metrics", "scores", "runs")
COMMIT_ORDER = ("texts", "metrics", "scores", "runs", "files", "comparisons")
# S3: claims of the next version (see the module's docstring).
CLAIMS_DIR = "claims"
CLAIM_NAME = re.compile(r"(\d{20})\.json")
# A claim this old whose version is unpublished belongs to a writer that died. A commit holds its
# claim only while it uploads its files and commits the tables (parsing comes before), so this is
# far beyond any live commit's time.
CLAIM_TIMEOUT = timedelta(minutes=30)
# How many times a command that lost the race to commit is run again before it gives up.
ATTEMPTS = 6
T = TypeVar("T")
Counts = dict[str, int]


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
        # On S3: whether a failed publication may have landed (neither undone nor to be undone by
        # abort(); recovery settles it from the claim).
        self.unsettled = False
        self.marker = wh.root / PENDING_DIR / self.batch_id
        try:
            if wh.remote is not None:  # no marker on S3 (the claim is one); new files are staged here
                for table in TABLES:
                    tables.folder(wh.root, table).mkdir(parents=True, exist_ok=True)
                return
            self.marker.parent.mkdir(exist_ok=True)
            self.marker.touch()
        except OSError as exc:
            raise WarehouseError(f"cannot write to the warehouse {wh.name}: {exc.strerror}") from None

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

        if self.wh.remote is not None:
            return self._publish_remote(self.wh.remote)
        root = self.wh.root
        base = versions.current(root)
        if base is None:
            raise WarehouseError(f"{root}: the warehouse has no version to commit on", hint="run `evalhouse doctor`")
        delta = dict(base.tables)
        try:
            actions, added, removed = self._actions(base, sync=True)
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
        except BaseException as exc:
            # Undo what can be undone now; what cannot (a kill), the next writer's recover() does.
            with contextlib.suppress(Exception):
                recover(self.wh)
            # A failure after the version was linked (flushing its folder, an interrupt) leaves it
            # live: its files must stay (abort() deletes an unpublished commit's files).
            if self._landed(base.number + 1) is not True:
                raise
            self.published = True
            if not isinstance(exc, Exception):
                raise
            version = versions.read(root, base.number + 1)
        # Live from here on: nothing below may undo it (an interrupt here leaves a marker and stale
        # views, which the next command clears).
        checkpoint("published")
        with contextlib.suppress(OSError):
            self.marker.unlink(missing_ok=True)
        update_views(self.wh)
        return version

    def _actions(self, base: versions.Version, *, sync: bool) -> tuple[dict[str, list[Any]], Counts, Counts]:
        """The Delta actions per table (rewriting the files that hold rows to remove), and the rows
        added and removed per table; ``sync``: flush the new files to disk first."""
        from evalhouse.warehouse import fsync

        added: dict[str, int] = {}
        removed: dict[str, int] = {}
        actions: dict[str, list[Any]] = {}
        for table, (column, values) in self.removals.items():
            acts, gone = self._rewrite_without(table, base.tables[table], column, values)
            if acts:
                actions.setdefault(table, []).extend(acts)
                removed[table] = gone
        for table, files in self.adds.items():
            for path, rows in files:
                if sync:
                    fsync(path)
                actions.setdefault(table, []).append(tables.add_action(path, rows))
                if path not in self.rewrites:  # rows carried over into a rewritten file are not new
                    added[table] = added.get(table, 0) + rows
        return actions, added, removed

    def _publish_remote(self, loc: store.S3Location) -> versions.Version:
        """The commit on S3 (see the module's docstring); raises CommitConflict when another writer
        committed first, with nothing of this commit left behind."""
        root = self.wh.root
        base = self.wh.version()  # what this commit's reads were made on (held by lock())
        actions, added, removed = self._actions(base, sync=False)
        number = base.number + 1
        checkpoint("claim")
        claim(self.wh, number, self.batch_id)
        committed: dict[str, int] = {}  # table -> the Delta version this commit made
        on: dict[str, int] = {}
        sent = False
        try:
            on = restore_moved(root, base)
            for table, files in self.adds.items():
                for path, _rows in files:
                    checkpoint("upload", table)
                    store.upload(loc, path, f"{tables.TABLES_DIR}/{table}/{path.name}")
            delta = dict(base.tables)
            for table in COMMIT_ORDER:
                if actions.get(table):
                    checkpoint("table", table)
                    delta[table] = committed[table] = tables.commit(
                        root, table, actions[table], self.batch_id, self.kind, on=on[table]
                    )
            checkpoint("publish")
            version = versions.Version(number, self.kind, self.batch_id, datetime.now(UTC), delta, added, removed)
            sent = True
            try:
                versions.publish(root, version)
            except CommitConflict:
                # A lost reply to a put that did land reads as "taken": it is ours if it names us.
                if versions.read(root, number).batch_id != self.batch_id:
                    raise
            self.published = True
        except BaseException as exc:
            # A put that failed without an answer (a timeout, an interrupt) may have landed, and
            # then this commit is live: settle which before undoing anything.
            live = self._settle(number, base) if sent else False
            if live is None:  # unknown: the claim stays, and recovery settles it once S3 answers
                self.unsettled = True
                raise
            if live:
                self.published = True
                with contextlib.suppress(WarehouseError):
                    release(self.wh, number)
                if not isinstance(exc, Exception):
                    raise
                return version
            # Each step on its own: one that fails must not keep the others from being done. A
            # restore lands only right on this commit's own Delta commit, never on another
            # writer's (one that went on after this writer's claim was recovered).
            for table, made in committed.items():
                with contextlib.suppress(Exception):
                    tables.restore(root, table, on[table], on=made)
            with contextlib.suppress(Exception):
                _delete_batch_files(root, self.batch_id)
            with contextlib.suppress(Exception):
                release(self.wh, number)
            raise
        checkpoint("published")
        with contextlib.suppress(WarehouseError):  # a claim left behind is cleared by the next recover()
            release(self.wh, number)
        return version

    def _landed(self, number: int) -> bool | None:
        """Whether version ``number`` is published and is this commit (None: cannot tell)."""
        try:
            return number in versions.numbers(self.wh.root) and versions.read(self.wh.root, number).batch_id == (
                self.batch_id
            )
        except (WarehouseError, OSError):
            return None

    def _settle(self, number: int, base: versions.Version) -> bool | None:
        """After a publication of version ``number`` on S3 that failed without a clear answer:
        whether it is live (True) or never will be (False); None if S3 cannot tell now.

        If no version ``number`` is found, an unchanged copy of ``base`` is put in its place first
        (kind ``repair``, as recovery does), so that this commit's put cannot land later.
        """
        landed = self._landed(number)
        if landed is False and number not in _numbers_or_empty(self.wh.root):
            with contextlib.suppress(WarehouseError):  # CommitConflict: another put landed first
                versions.publish(
                    self.wh.root, versions.Version(number, "repair", None, datetime.now(UTC), dict(base.tables))
                )
            landed = self._landed(number)
        return landed

    def abort(self) -> None:
        """Give up: delete this commit's files, unless it was published (then it is live) or may
        have been."""
        if self.published or self.unsettled:
            return
        _delete_batch_files(self.wh.root, self.batch_id)
        with contextlib.suppress(OSError):
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
        loc = self.wh.remote
        if loc is not None:  # DuckDB reads them from the working folder
            for f, path in zip(files, paths, strict=True):
                store.fetch(loc, f"{tables.TABLES_DIR}/{table}/{f['path']}", Path(path), f["size"])
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


def claim(wh: Warehouse, number: int, batch_id: str) -> None:
    """Claim version ``number`` of an S3 warehouse for ``batch_id``; CommitConflict if another
    writer holds the claim or has published that version (its claim is deleted once it has)."""
    loc = wh.remote
    assert loc is not None
    key = f"{CLAIMS_DIR}/{number:020d}.json"
    doc = {"batch_id": batch_id, "time": datetime.now(UTC).isoformat()}
    if not store.create(loc, key, json.dumps(doc).encode()) and not _holds(loc, key, batch_id):
        try:
            since = f" since {json.loads(store.read(loc, key) or b'')['time']}"
        except (ValueError, KeyError, TypeError):
            since = ""
        raise CommitConflict(
            f"{loc.url}: another writer is committing version {number}{since}; nothing of this commit is live",
            hint=f"run the command again; a claim whose writer died is cleared after {CLAIM_TIMEOUT}",
        )
    if number in versions.numbers(wh.root):
        release(wh, number)
        raise CommitConflict(
            f"{loc.url}: another writer published version {number} first; nothing of this commit is live",
            hint="run the command again",
        )


def _holds(loc: store.S3Location, key: str, batch_id: str) -> bool:
    """Whether the claim at ``key`` is ``batch_id``'s: a lost reply to a put that did land reads
    as "taken" (a retry finds the object), and that claim must not be left to block every writer."""
    try:
        return bool(json.loads(store.read(loc, key) or b"")["batch_id"] == batch_id)
    except (ValueError, KeyError, TypeError):
        return False


def _numbers_or_empty(root: Path) -> list[int]:
    try:
        return versions.numbers(root)
    except WarehouseError:
        return []


def release(wh: Warehouse, number: int) -> None:
    """Delete the claim of version ``number`` (its version is published, or never will be by it)."""
    if wh.remote is not None:
        store.delete(wh.remote, [f"{CLAIMS_DIR}/{number:020d}.json"])


def restore_moved(root: Path, base: versions.Version) -> dict[str, int]:
    """Restore every table committed past the Delta version ``base`` names; returns each table's
    newest Delta version, which now reads as ``base`` (what the next commit builds on).

    Each returned version is one whose files were compared with ``base``'s, or the restore this
    committed exactly on the newest version it compared (else CommitConflict): the newest version
    read again afterwards could be another writer's commit that landed meanwhile (a writer whose
    claim was recovered while it was still at work), which this commit would then publish.
    """
    newest = {}
    for table, version in base.tables.items():
        latest = tables.latest_version(root, table)
        if latest > version and live_paths(root, table, latest) != live_paths(root, table, version):
            latest = tables.restore(root, table, version, on=latest)
        newest[table] = latest
    return newest


def retrying(wh: Warehouse, work: Callable[[Warehouse], T], attempts: int = ATTEMPTS) -> T:
    """``work(wh)``; on S3, run again on the new state when another writer committed first.

    A local warehouse's writers take turns (the lock), so ``work`` runs once. On S3 a commit that
    lost the race raised CommitConflict with nothing of it left; the warehouse is reopened at its
    new version and ``work`` redone, after a growing random pause, up to ``attempts`` times.
    """
    from evalhouse.warehouse import Warehouse

    last: CommitConflict | None = None
    for attempt in range(attempts):
        try:
            return work(wh)
        except CommitConflict as exc:
            last = exc
            if attempt + 1 < attempts:
                time.sleep(random.uniform(0.1, 0.5) * 2**attempt)
                wh = Warehouse(wh.root)  # the present, whatever version a caller held
    raise WarehouseError(
        f"{wh.name}: gave up after {attempts} attempt(s), other writers committing first each time; nothing "
        f"of this command's commit is live (last: {last})",
        hint="run the command again when fewer writers are at work",
    )


def needs_recovery(root: Path) -> bool:
    return bool(pending(root))


def recover(wh: Warehouse) -> list[str]:
    """Finish what a dead writer left (hold the write lock): returns what was done, for doctor.

    Every table committed past the version the warehouse names is restored to it, the dead
    batches' files are deleted, and the markers go.

    On S3 (no lock: writers may be at work) only claims are looked at: see :func:`_recover_claims`.
    """
    if wh.remote is not None:
        return _recover_claims(wh, wh.remote)
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


def _recover_claims(wh: Warehouse, loc: store.S3Location) -> list[str]:
    """Clear the claims of an S3 warehouse whose writers are done or dead.

    A claim whose version is published is done: its claim goes, and if the version is another
    batch's, the claimant's uploaded files go too (it can never publish). A claim older than
    ``CLAIM_TIMEOUT`` with no version is a dead writer's: the version is published as an unchanged
    copy of the one before (put-if-absent, so the writer cannot publish it any more), then cleared
    the same way. Tables committed past the published version are restored by the next commit.
    """
    root = wh.root
    done: list[str] = []
    for name in store.names(loc, CLAIMS_DIR):
        m = CLAIM_NAME.fullmatch(name)
        raw = store.read(loc, f"{CLAIMS_DIR}/{name}") if m else None
        if m is None or raw is None:
            continue
        number = int(m.group(1))
        try:
            doc = json.loads(raw)
            batch, since = str(doc["batch_id"]), datetime.fromisoformat(doc["time"])
        except (ValueError, KeyError, TypeError):
            batch, since = "", datetime.min.replace(tzinfo=UTC)
        if number not in versions.numbers(root):
            if datetime.now(UTC) - since < CLAIM_TIMEOUT:
                continue  # a writer at work
            before = versions.read(root, number - 1)
            with contextlib.suppress(CommitConflict):  # its writer published it after all: cleared below
                versions.publish(root, versions.Version(number, "repair", None, datetime.now(UTC), dict(before.tables)))
                done.append(f"version {number}: claimed by batch {batch}, whose writer died; published unchanged")
        if batch and versions.read(root, number).batch_id != batch:
            n = _delete_batch_files(root, batch)
            if n:
                done.append(f"batch {batch}: {n} unpublished file(s) deleted")
        store.delete(loc, [f"{CLAIMS_DIR}/{name}"])
    return done


def _moved_on(root: Path, table: str, version: int) -> bool:
    """Whether ``table``'s newest Delta version holds other files than ``version`` (a restore, or
    vacuum's own log entries, make newer versions with the same files)."""
    return live_paths(root, table, tables.latest_version(root, table)) != live_paths(root, table, version)


def live_paths(root: Path, table: str, version: int) -> set[str]:
    return {e["path"] for e in tables.live_entries(root, table, version)}


def _delete_batch_files(root: Path, batch_id: str) -> int:
    """Delete a batch's files (on S3: in the store, and staged in the working folder)."""
    n = 0
    loc = store.location(root)
    for table in TABLES:
        for name in tables.local_files(root, table):
            if tables.batch_of(name) == batch_id:
                (tables.folder(root, table) / name).unlink(missing_ok=True)
                n += loc is None
        if loc is not None:
            gone = [f"{tables.TABLES_DIR}/{table}/{name}" for name in tables.data_files(root, table)
                    if tables.batch_of(name) == batch_id]  # fmt: skip
            store.delete(loc, gone)
            n += len(gone)
    return n
