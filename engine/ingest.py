"""Ingest: files -> adapters -> canonical Arrow tables -> one commit of the warehouse's Delta tables.

One call of :func:`ingest` is one batch, published as one warehouse version at the end (see
engine/commit.py), so an interrupted ingest leaves the warehouse exactly as it was and a second
run finishes the job.

The work is in three passes so that content deduplication is decided before anything is parsed:

1. walk the paths and ``stat`` every file; a file whose path, size and mtime match the ledger is
   ``unchanged`` without being read (this keeps re-ingesting a large corpus under a second);
2. hash the remaining files (in worker processes when there are many);
3. parse the files whose content is new and write their rows, each worker into its own Parquet
   files in the tables' folders, flushing in bounded row groups so memory stays flat (the workers'
   side is engine/ingest_worker.py).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import itertools
import operator
import os
import stat
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import compress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from evalhouse import versions
from evalhouse.commit import Commit, recover
from evalhouse.errors import EvalhouseError, StrictModeRejection, WarehouseError
from evalhouse.ingest_worker import _storable, _utf8, content_key, parse_chunk
from evalhouse.ingest_worker import read_source as read_source  # callers import it from here
from evalhouse.limits import DEFAULT, Limits
from evalhouse.schema import FILES, TABLES
from evalhouse.tabular import terminal_text
from evalhouse.warehouse import Warehouse, is_disk_full, lock, os_reason

# multiprocessing and concurrent.futures are imported where workers start: a re-ingest of unchanged
# files starts none.
if TYPE_CHECKING:
    import multiprocessing.context
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing.connection import Connection

# Extensions read when walking a folder (a file named on the command line is always offered).
RESULT_SUFFIXES = (".json", ".jsonl", ".csv", ".eval", ".parquet")
# Below this many files to parse, worker processes cost more than they save.
PARALLEL_MIN_FILES = 64
# Input bytes per parse job. Each job writes its own Parquet files, and queries pay per file
# (10M rows in 1,570 files of 6,400 rows took 2.6x longer to aggregate than in 10 files), so jobs
# are sized by bytes, not files; but there are at least CHUNKS_PER_WORKER jobs per worker so the
# workers finish together, and at most CHUNK_MAX_FILES files per job so progress keeps moving.
CHUNK_BYTES = 64 * 2**20
CHUNKS_PER_WORKER = 4
CHUNK_MAX_FILES = 4096

ProgressFn = Callable[[str, int, int], None]
_status = operator.attrgetter("status")
_mode, _size, _mtime_ns = (operator.attrgetter(f"st_{a}") for a in ("mode", "size", "mtime_ns"))
_DOCTOR_FIX = "run `evalhouse doctor --fix`: it drops a damaged file, and the next ingest restores its rows"


@dataclass(slots=True)
class Offer:
    """A file offered to ingest and what became of it (one row of the ledger)."""

    path: str
    size: int | None = None
    mtime_ns: int | None = None
    sha256: str | None = None
    format: str | None = None
    status: str = ""
    reason: str | None = None
    rows: int = 0
    # Other files read to interpret this one: [{path, sha256, size, mtime_ns}].
    depends_on: list[dict[str, Any]] | None = None
    # Unchanged by stat alone: the ledger already says all there is to say about it.
    seen_before: bool = False
    # The content key its runs were stored under, where it is not the plain one (see parse_chunk).
    key: str | None = None

    @property
    def content(self) -> str | None:
        """What identifies the content read: the file's hash, with its dependencies' if it has any."""
        return self.key or content_key(self.sha256, self.depends_on)


@dataclass
class IngestReport:
    """What one ingest did."""

    batch_id: str
    offers: list[Offer]
    skipped: list[str] = field(default_factory=list)
    retired_runs: int = 0
    # False when nothing was new (every file unchanged): no batch was committed.
    committed: bool = True
    # The warehouse version the ingest published.
    version: int | None = None
    rows: int = 0

    def count(self, status: str) -> int:
        return list(map(_status, self.offers)).count(status)  # (in C: 100,000 offers are counted often)

    @property
    def rejected(self) -> list[Offer]:
        return [o for o in self.offers if o.status == "rejected"]


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the duration (back as it was after).

    For the ingest's own bookkeeping (the walk, the ledger, the decisions by stat): it builds
    several objects per file, none of them in reference cycles, and the collector's passes over
    them took a fifth of a re-ingest of 100,000 unchanged files. Not for parsing: a file an adapter
    refuses leaves a cycle (the error, its frames) holding the file's bytes.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def ingest(
    wh: Warehouse,
    paths: Iterable[str | os.PathLike[str]],
    *,
    strict: bool = False,
    workers: int | None = None,
    wait: bool = True,
    on_wait: Callable[[], None] | None = None,
    progress: ProgressFn | None = None,
    limits: Limits = DEFAULT,
) -> IngestReport:
    """Ingest files and folders into the warehouse as one batch.

    Args:
        wh: the warehouse (see ``open_warehouse``).
        paths: files and folders; folders are walked for result files.
        strict: if any file is rejected, write nothing and raise ``StrictModeRejection``.
        workers: processes for hashing and parsing (default: one per core, when worth it). They
            start as multiprocessing's ``forkserver`` starts processes, which imports the main
            module: a script calling ``ingest`` needs the ``if __name__ == "__main__":`` guard.
        wait: wait for another ingest's lock rather than fail.
        progress: called as ``progress(phase, done, total)``.
        limits: what one file may cost (engine/limits.py); a file past a bound is rejected.

    Returns:
        An ``IngestReport`` with one ``Offer`` per file.
    """
    with _gc_paused():
        offers, skipped = walk(paths, limits)
    first = len(versions.numbers(wh.root)) <= 1
    if (workers or os.cpu_count() or 1) > 1 and len(offers) >= PARALLEL_MIN_FILES and first:
        # A first ingest will need workers: the server imports while the ledger loads. A later
        # one starts it only if files changed (a re-ingest of unchanged files needs none).
        _fork_server()
    with lock(wh, wait=wait, on_wait=on_wait):
        recover(wh)  # what a writer killed before us left
        with _gc_paused():
            state = LedgerState.load(wh)
        batch = Commit(wh, "ingest")
        try:
            report = _ingest_locked(wh, batch, offers, state, workers, progress, limits)
            report.skipped = skipped
            if strict and report.rejected:
                raise StrictModeRejection(
                    f"{len(report.rejected)} file(s) rejected, nothing written (--strict):\n"
                    + "\n".join(f"  {terminal_text(o.reason or '')}" for o in report.rejected)
                )
            if any(not o.seen_before for o in report.offers) or report.retired_runs:
                report.version = batch.publish().number
            else:  # nothing new: no commit, no new version, the views stay as they are
                batch.abort()
                report.committed = False
        except BaseException as exc:
            batch.abort()
            from concurrent.futures.process import BrokenProcessPool

            if isinstance(exc, BrokenProcessPool):
                raise WarehouseError(
                    "a worker process died while reading files (out of memory?); nothing was written",
                    hint="retry with --workers 1, or ingest the largest files on their own",
                ) from None
            if isinstance(exc, OSError):
                hint = "free some disk space and run the ingest again" if is_disk_full(exc) else None
                raise WarehouseError(
                    f"could not write to the warehouse {wh.root}: {os_reason(exc)}; nothing was written", hint
                ) from None
            raise
    return report


def walk(paths: Iterable[str | os.PathLike[str]], limits: Limits = DEFAULT) -> tuple[list[Offer], list[str]]:
    """Every file under ``paths``, stat'ed; returns (offers, skipped with the reason why).

    Symlinked folders are not followed (no loops; noted in ``skipped``). Anything that is not a
    regular file (a FIFO would block a reader forever), cannot be stat'ed, is over
    ``limits.file_bytes`` or has a name that is not UTF-8 (no table can store it) is offered and
    rejected, and so is a folder that cannot be listed, so that it is recorded rather than silently
    dropped.
    """
    offers: list[Offer] = []
    skipped: list[str] = []
    seen: set[str] = set()
    max_bytes = limits.file_bytes

    def offer(path: str, st: os.stat_result | None = None) -> None:
        """Offer ``path`` (absolute), with its ``st`` when already stat'ed."""
        o = Offer(path)
        try:
            st = st or os.stat(path)
            o.size, o.mtime_ns = st.st_size, st.st_mtime_ns
            if not path.isascii() and not _utf8(path):
                o.status, o.reason = "rejected", f"{path}: (file name): not valid UTF-8; rename the file"
            elif not stat.S_ISREG(st.st_mode):
                o.status, o.reason = "rejected", f"{path}: (file): not a regular file"
            elif st.st_size > max_bytes:
                o.status = "rejected"
                o.reason = str(limits.over(path, "(file)", "file_bytes", f"{st.st_size:,} bytes"))
        except OSError as exc:
            o.status, o.reason = "rejected", f"{path}: (file): cannot read: {exc.strerror or exc}"
        offers.append(o)

    def offer_folder(full: list[str]) -> None:
        """Offer a folder's files: in bulk (a loop in C, no call per file of Python's) when all are
        what a folder mostly holds, regular files within the limit with ASCII names, else each."""
        try:
            stats = list(map(os.stat, full))
        except OSError:
            stats = []
        if stats and all(map(str.isascii, full)) and all(map(stat.S_ISREG, map(_mode, stats))):
            sizes = list(map(_size, stats))
            if max(sizes) <= max_bytes:
                offers.extend(map(Offer, full, sizes, map(_mtime_ns, stats)))
                return
        for f, st in itertools.zip_longest(full, stats):
            offer(f, st)

    def unreadable(exc: OSError) -> None:
        path = os.path.abspath(exc.filename)
        if path not in seen:
            seen.add(path)
            reason = f"{path}: (folder): cannot read: {exc.strerror or exc}"
            offers.append(Offer(path, status="rejected", reason=reason))

    paths = list(paths)
    # One folder's walk meets each of its files once: only several paths can name one twice.
    several = len(paths) > 1
    for raw in paths:
        p = os.fspath(raw)
        if os.path.isdir(p):
            # Walked from its absolute path, every path found is absolute and normalised already.
            for dirpath, dirnames, filenames in os.walk(os.path.abspath(p), onerror=unreadable):
                for d in dirnames:
                    if os.path.islink(os.path.join(dirpath, d)):
                        skipped.append(f"{os.path.join(dirpath, d)}: symlinked folder not followed")
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                prefix = os.path.join(dirpath, "")
                names = [name for name in sorted(filenames) if not name.startswith(".")]
                wanted = [name for name in names if name.lower().endswith(RESULT_SUFFIXES)]
                if len(wanted) < len(names):
                    skipped += [f"{prefix}{name}: not a result file by its extension" for name in names
                                if not name.lower().endswith(RESULT_SUFFIXES)]  # fmt: skip
                full = [prefix + name for name in wanted]
                if several:
                    full = [f for f in full if f not in seen]
                    seen.update(full)
                offer_folder(full)
        elif os.path.lexists(p):
            path = os.path.abspath(p)  # (abspath asks the OS for the cwd every time)
            if path not in seen:
                seen.add(path)
                offer(path)
        else:
            raise EvalhouseError(f"no such file or folder: {p}")
    return offers, skipped


class LedgerState:
    """What the warehouse already holds, as the ingest decisions need it.

    Loaded in two steps: what deciding that a file is unchanged by stat alone needs, built from
    the ledger's columns at load; the runs and what follows from them (which content is live, the
    keys of salted copies) when first asked, which a re-ingest of unchanged files never does.
    """

    def __init__(
        self,
        wh: Warehouse,
        last_seen: dict[str, tuple[int, int]],
        read: dict[str, tuple[str | None, str, str | None, list[dict[str, Any]]]],
    ) -> None:
        self.wh = wh
        # path -> (size, mtime_ns) of its latest offer
        self.last_seen = last_seen
        # path -> (content key, status, own sha256, dependencies) of the latest offer that was read
        # (not `unchanged`), as the ledger has it: one dict, all that deciding by stat asks
        self.read = read

    @functools.cached_property
    def runs(self) -> tuple[list[str], list[str], list[str], list[str]]:
        """(run_id, source_sha256, model, source_path) of the live runs, a column each."""
        columns = _read(self.wh, "runs", ["run_id", "source_sha256", "model", "source_path"])
        return columns["run_id"], columns["source_sha256"], columns["model"], columns["source_path"]

    @functools.cached_property
    def read_with(self) -> dict[str, tuple[str | None, list[dict[str, Any]]]]:
        """path -> (own sha256, dependencies) of the latest offer that was read."""
        return {path: (own, deps) for path, (_key, _status, own, deps) in self.read.items()}

    @functools.cached_property
    def content(self) -> dict[str, tuple[str | None, str]]:
        """path -> (content key, status) of the latest offer that was read (not `unchanged`).

        A copy whose models come from its path stored its runs under a salted key (the ledger has
        its bytes' hash): it holds that key, so that its runs go when it changes, and it does not
        hold the original's content. (A path whose run carries its key is no such copy: only the
        others need their runs' keys worked out.)
        """
        content = {path: (key, status) for path, (key, status, _own, _deps) in self.read.items()}
        _run_ids, run_shas, _models, sources = self.runs
        key_of_run = dict(zip(sources, run_shas, strict=True))
        salted = [p for p, (key, status) in content.items() if status == "ingested" and key_of_run.get(p) != key]
        if salted:
            keys_by_path: dict[str, set[str]] = {}
            for source, sha in zip(sources, run_shas, strict=True):
                keys_by_path.setdefault(source, set()).add(sha)
            for path in salted:
                key, status = content[path]
                own = keys_by_path.get(path, set())
                if len(own) == 1 and key not in own:
                    content[path] = (next(iter(own)), status)
        return content

    @functools.cached_property
    def live(self) -> dict[str, str]:
        """sha256 of content that is live in the warehouse -> the path it came from."""
        with_runs = set(self.runs[1])
        live = {
            sha: path
            for path, (sha, status) in self.content.items()
            if sha and status in ("ingested", "not-results") and (status == "not-results" or sha in with_runs)
        }
        # A copy keeps content live when the path it was read from has changed since.
        for path, (sha, status) in self.content.items():
            if sha and status == "duplicate" and sha in with_runs:
                live.setdefault(sha, path)
        return live

    @functools.cached_property
    def runs_by_sha(self) -> dict[str, list[str]]:
        """sha256 -> run_ids of live runs."""
        out: dict[str, list[str]] = {}
        for run_id, sha in zip(self.runs[0], self.runs[1], strict=True):
            out.setdefault(sha, []).append(run_id)
        return out

    @functools.cached_property
    def models_by_sha(self) -> dict[str, set[str]]:
        """sha256 -> the models of its live runs (what a second copy of the same bytes must match)."""
        out: dict[str, set[str]] = {}
        for sha, model in set(zip(self.runs[1], self.runs[2], strict=True)):
            out.setdefault(sha, set()).add(model)
        return out

    @classmethod
    def load(cls, wh: Warehouse) -> LedgerState:
        # Built a column at a time (dict(zip(...)) runs in C): a loop per ledger row took most of a
        # re-ingest of 100,000 unchanged files. Oldest offer first (files hold no order a compaction
        # keeps), so the latest offer of a path is the one its dict keeps.
        columns = ["path", "sha256", "size", "mtime_ns", "status", "depends_on"]
        paths, shas, sizes, mtimes, statuses, deps_json = _read(wh, "files", columns, order="batch_id").values()
        if None in sizes or None in mtimes:
            last_seen = {
                p: (n, t) for p, n, t in zip(paths, sizes, mtimes, strict=True) if n is not None and t is not None
            }
        else:
            last_seen = dict(zip(paths, zip(sizes, mtimes, strict=True), strict=True))
        if "unchanged" in statuses:
            read = [status != "unchanged" for status in statuses]
            paths, shas, statuses, deps_json = (list(compress(c, read)) for c in (paths, shas, statuses, deps_json))
        none: list[dict[str, Any]] = []  # (shared: never changed by a reader)
        if any(deps_json):
            deps = [orjson.loads(d) if d else none for d in deps_json]
            keys = [content_key(sha, d) for sha, d in zip(shas, deps, strict=True)]
        else:
            deps, keys = [none] * len(shas), shas
        return cls(wh, last_seen, dict(zip(paths, zip(keys, statuses, shas, deps, strict=True), strict=True)))


def _read(wh: Warehouse, table: str, columns: list[str], order: str | None = None) -> dict[str, list[Any]]:
    files = wh.table_files(table)
    if not files:
        return {c: [] for c in columns}
    if order:
        data = _read(wh, table, [*columns, order])
        key = data[order]
        if key == sorted(key):  # the usual case: the files were listed in batch order
            return {c: data[c] for c in columns}
        index = sorted(range(len(key)), key=key.__getitem__)
        return {c: list(map(data[c].__getitem__, index)) for c in columns}
    # Files written before a column was added lack it: read what each has, the rest as NULL.
    schema = pa.schema([TABLES[table].arrow_schema().field(c) for c in columns])
    # ParquetFile, not read_table: read_table goes through pyarrow.dataset, whose import (pandas)
    # costs more than a re-ingest of unchanged files takes otherwise.
    parts = []
    for f in files:
        try:
            pf = pq.ParquetFile(f)
            parts.append(pf.read(columns=[c for c in columns if c in pf.schema_arrow.names]))
        except (pa.ArrowException, OSError) as exc:  # pyarrow's errors subclass both
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise WarehouseError(f"{f}: cannot read this file of the warehouse ({first})", _DOCTOR_FIX) from None
    # (Cast only where a file's types differ: the cast imports pyarrow.compute, 30 ms.)
    parts = [_as(t, pa.schema([schema.field(c) for c in t.column_names])) for t in parts]
    read = parts[0] if len(parts) == 1 else pa.concat_tables(parts, promote_options="default")
    return read.select(columns).to_pydict()  # type: ignore[no-any-return]


def _as(table: pa.Table, schema: pa.Schema) -> pa.Table:
    return table if table.schema.equals(schema) else table.cast(schema)


@_gc_paused()
def _unchanged_by_stat(offers: list[Offer], state: LedgerState) -> list[Offer]:
    """Pass 1: mark the offers the ledger shows unchanged by stat alone; returns the others to hash."""
    to_hash: list[Offer] = []
    read, last_seen = state.read, state.last_seen
    for o in offers:
        if o.status:
            continue
        path = o.path
        known = read.get(path)
        if known is None or known[1] == "rejected" or last_seen.get(path) != (o.size, o.mtime_ns):
            to_hash.append(o)
            continue
        _key, _status, own, deps = known
        if deps and not all(_stat_of(d["path"]) == (d["size"], d["mtime_ns"]) for d in deps):
            to_hash.append(o)
            continue
        o.sha256, o.depends_on, o.status, o.seen_before = own, deps or None, "unchanged", True
    return to_hash


def _ingest_locked(
    wh: Warehouse,
    batch: Commit,
    offers: list[Offer],
    state: LedgerState,
    workers: int | None,
    progress: ProgressFn | None,
    limits: Limits,
) -> IngestReport:
    to_hash = _unchanged_by_stat(offers, state)
    n_workers = workers or os.cpu_count() or 1
    parallel = n_workers > 1 and len(to_hash) >= PARALLEL_MIN_FILES
    with _worker_pool(n_workers if parallel else 1) as pool:
        # Pass 2: hash what may have changed, or may repeat other content. A new path of a size no
        # other file offered and no file seen before has cannot be either: the parse is the one read
        # of its bytes (it hashes what it parses).
        sizes = Counter(o.size for o in to_hash if not o.status)
        if sizes:  # (a re-ingest of unchanged files has no use for the ledger's sizes)
            sizes.update(size for size, _mtime in state.last_seen.values())
        read_once = {o.path for o in to_hash if not o.status and o.path not in state.read and sizes[o.size] == 1}
        hashed = [o for o in to_hash if o.path not in read_once]
        for o, (sha, err) in zip(hashed, _map(pool, _hash_file, [o.path for o in hashed], progress, "hash"),
                                 strict=True):  # fmt: skip
            if err:
                o.status, o.reason = "rejected", err
            else:
                o.sha256 = sha

        # Decide: unchanged content, the bytes of content already held (a copy), or new content.
        to_parse: list[Offer] = []
        copies: list[tuple[Offer, str]] = []  # (offer, path of the content it repeats)
        claimed = dict(state.live) if to_hash else {}
        for o in to_hash:
            if o.status:
                continue
            if o.path in read_once:
                to_parse.append(o)
                continue
            previous = state.content.get(o.path)
            own, deps = state.read_with.get(o.path, (None, []))
            if (
                previous
                and own == o.sha256
                and previous[1] != "rejected"
                and all(_hash_file(d["path"])[0] == d["sha256"] for d in deps)
            ):
                o.status, o.depends_on = "unchanged", deps or None
            elif o.sha256 in claimed and claimed[o.sha256] != o.path:
                copies.append((o, claimed[o.sha256]))
            else:
                claimed[o.sha256 or ""] = o.path
                to_parse.append(o)

        # Pass 3: parse and write. A copy is parsed too: where its model comes from its path (a task
        # array named `b_q8_0_results.json`) it holds other runs and is stored; where it reads as the
        # same models, it is a duplicate and nothing of it is written. Copies of content read in
        # this ingest wait for it (second round), so the models to match are known.
        del claimed, read_once
        by_path = {o.path: o for o in to_parse}
        first = [(o, None, None) for o in to_parse] + [
            (o, orig, sorted(state.models_by_sha.get(o.sha256 or "", set())))
            for o, orig in copies if orig not in by_path
        ]  # fmt: skip
        jobs = _Jobs(pool, batch, n_workers if parallel else 1, progress, limits)
        originals = {orig for _o, orig in copies if orig in by_path}
        models = _parse_all(jobs, first, start=0, models_of=originals)
        # A copy of content rejected in this ingest is read as a file of its own (rejected for the
        # same reason when the reason is in its bytes), never a duplicate of nothing.
        second = [(o, orig, None if by_path[orig].status == "rejected" else models[orig])
                  for o, orig in copies if orig in by_path]  # fmt: skip
        _parse_all(jobs, second, start=len(first), models_of=set())

    rows = sum(o.rows for o, *_ in first + second)

    retired = _retire_replaced(offers, state, batch)
    _write_ledger(offers, batch)
    return IngestReport(batch.batch_id, offers, retired_runs=retired, rows=rows)


@dataclass
class _Jobs:
    """Where and how parse jobs run: the pool (None: here), the batch they write for, the limits."""

    pool: ProcessPoolExecutor | None
    batch: Commit
    workers: int
    progress: ProgressFn | None
    limits: Limits


def _parse_all(
    jobs: _Jobs, offers: Sequence[tuple[Offer, str | None, list[str] | None]], start: int, models_of: set[str]
) -> dict[str, list[str]]:
    """Parse ``(offer, path it copies, models it must match)`` in jobs, each offer given its result
    as its job's results come; returns the models read from the paths in ``models_of``.

    The models are None for a copy whose original was rejected: it is read as a file of its own.
    Nothing else of a result is kept: the ingest's memory stays flat in the number of files.
    """
    if not offers:
        return {}
    batch = jobs.batch
    index = {o.path: (orig, models) for o, orig, models in offers}
    groups = _chunks([o for o, _orig, _m in offers], jobs.workers)
    chunks = [
        (str(batch.wh.root), f"{start + i:05d}",
         [(o.path, o.sha256, o.size, *index[o.path]) for o in chunk], batch.batch_id, jobs.limits)
        for i, chunk in enumerate(groups)
    ]  # fmt: skip
    del index
    wanted: dict[str, list[str]] = {}
    weights = [len(j[2]) for j in chunks]
    results = _map(jobs.pool, parse_chunk, chunks, jobs.progress, "parse", weights=weights)
    for group, (chunk_result, written) in zip(groups, results, strict=True):
        for o in group:
            o.format, o.status, o.reason, o.rows, o.depends_on, models, sha, key, size = chunk_result[o.path]
            if size is not None and size != o.size:
                # Rewritten since it was stat'ed: the ledger has the size of the bytes it holds the
                # hash of, which tells a later ingest that a file of that size may be their copy.
                o.size = size
            # The strings the offer holds already where they are equal (one copy per file, not three).
            if sha is not None and sha != o.sha256:
                o.sha256 = sha
            o.key = o.sha256 if key is not None and key == o.sha256 else key
            if o.path in models_of:
                wanted[o.path] = models
        for table, path, rows in written:
            batch.add(table, Path(path), rows)
    return wanted


@contextlib.contextmanager
def _worker_pool(n_workers: int) -> Iterator[ProcessPoolExecutor | None]:
    """Worker processes for hashing and parsing (None when ``n_workers`` is 1), shut down on exit.

    The workers must never keep the warehouse locked. A ``flock`` belongs to the open file, and a
    forked child shares the ingest's: workers outliving an ingest killed on its own (as the OOM
    killer does) would hold ``.lock`` for ever. So they are forked from a fork server, a fresh
    interpreter with none of the ingest's descriptors and this module imported once, so each
    worker starts in milliseconds. And each worker exits when its end of a pipe whose only write
    end the ingest holds sees EOF: when the ingest dies, whatever the signal, or gives up.
    """
    if n_workers <= 1:
        yield None
        return
    from concurrent.futures import ProcessPoolExecutor

    ctx = _fork_server()
    lifeline, keep_alive = ctx.Pipe(duplex=False)
    pool = ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=_watch_lifeline, initargs=(lifeline,))
    try:
        yield pool
    except BaseException:
        keep_alive.close()  # the workers stop now rather than finish chunks nobody will commit
        raise
    finally:
        pool.shutdown(cancel_futures=True)
        keep_alive.close()
        lifeline.close()


def _fork_server() -> multiprocessing.context.ForkServerContext:
    """The context workers start in, its server running (one per process) with this module imported.

    It starts in the background; a worker forked from it starts in milliseconds. The adapters
    (which this module does not import) and pandas, which pyarrow imports, when installed, the
    first time it builds a table (0.15 s), are imported there too.
    """
    import multiprocessing.forkserver

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__, "evalhouse.adapters", "pandas"])
    multiprocessing.forkserver.ensure_running()
    return ctx


def _watch_lifeline(lifeline: Connection) -> None:
    """Worker initializer: exit the moment the ingest's end of ``lifeline`` closes."""

    def watch() -> None:
        with contextlib.suppress(EOFError, OSError):
            lifeline.recv_bytes()
        os._exit(1)

    threading.Thread(target=watch, name="evalhouse-lifeline", daemon=True).start()


def _chunks(offers: list[Offer], workers: int) -> list[list[Offer]]:
    """Split the files to parse into jobs of about CHUNK_BYTES (fewer, larger Parquet files).

    >>> [len(c) for c in _chunks([Offer("a", size=2**20) for _ in range(10)], workers=1)]
    [3, 3, 3, 1]
    """
    total = sum(o.size or 0 for o in offers)
    target = max(1, min(CHUNK_BYTES, total // (workers * CHUNKS_PER_WORKER)))
    chunks: list[list[Offer]] = []
    current: list[Offer] = []
    size = 0
    for o in offers:
        current.append(o)
        size += o.size or 0
        if size >= target or len(current) >= CHUNK_MAX_FILES:
            chunks.append(current)
            current, size = [], 0
    if current:
        chunks.append(current)
    return chunks


def _map(
    pool: ProcessPoolExecutor | None,
    fn: Callable[[Any], Any],
    items: list[Any],
    progress: ProgressFn | None,
    phase: str,
    weights: list[int] | None = None,
) -> Iterator[Any]:
    """``map`` in order, in the pool if there is one, reporting progress."""
    total = sum(weights) if weights else len(items)
    done = 0
    results = pool.map(fn, items, chunksize=1 if weights else 256) if pool else map(fn, items)
    for i, r in enumerate(results):
        done += weights[i] if weights else 1
        if progress:
            progress(phase, done, total)
        yield r


def _stat_of(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _hash_file(path: str) -> tuple[str | None, str | None]:
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest(), None
    except OSError as exc:
        return None, f"{path}: (file): cannot read: {exc.strerror or exc}"


def _retire_replaced(offers: list[Offer], state: LedgerState, batch: Commit) -> int:
    """Withdraw the runs of content no path holds any more (a file changed, and no copy has it).

    A path whose content equals another's stays attached to it: when the path that was read first
    changes, the copy keeps the content's runs live.
    """
    held = {"ingested", "duplicate", "not-results"}
    # Only a path read before, now holding other content, can leave content unheld: when there is
    # none (a first ingest, a re-ingest of unchanged files), the holders need not be worked out.
    if not any(o.status in held and o.path in state.read for o in offers):
        return 0
    holds = {path: key for path, (key, status) in state.content.items() if status in held}
    for o in offers:
        if o.status in held:
            holds[o.path] = o.content
    holders: dict[str | None, set[str]] = {}
    for path, key in holds.items():
        holders.setdefault(key, set()).add(path)
    run_ids: set[str] = set()
    for o in offers:
        if o.status not in held:
            continue
        previous = state.content.get(o.path)
        if not previous or previous[0] == o.content or previous[1] not in ("ingested", "duplicate"):
            continue
        if holders.get(previous[0], set()) - {o.path}:
            continue  # a copy elsewhere still holds that content
        run_ids.update(state.runs_by_sha.get(previous[0] or "", []))
    batch.remove_runs(run_ids)  # their rows go in the same commit as the new ones come
    return len(run_ids)


def _write_ledger(offers: list[Offer], batch: Commit) -> None:
    """Record the offers that tell something new: the last state per path plus its real changes.

    A file unchanged by stat alone adds no row, so re-ingesting a corpus does not grow the ledger.
    """
    offers = [o for o in offers if not o.seen_before]
    if not offers:
        return  # (and pa.table imports pandas, which a re-ingest of unchanged files never needs)
    from evalhouse.adapters.base import dumps  # (see engine/ingest_worker.py: not for a re-ingest)

    now = datetime.now(UTC)
    table = pa.table(
        {
            "path": [_storable(o.path) for o in offers],
            "sha256": [o.sha256 for o in offers],
            "size": [o.size for o in offers],
            "mtime_ns": [o.mtime_ns for o in offers],
            "format": [o.format for o in offers],
            "status": [o.status for o in offers],
            "reason": [_storable(o.reason) for o in offers],
            "rows": [o.rows for o in offers],
            "depends_on": [dumps(o.depends_on) if o.depends_on else None for o in offers],
            "batch_id": [batch.batch_id] * len(offers),
            "time": [now] * len(offers),
        },
        schema=FILES.arrow_schema(),
    )
    batch.write("files", table, part="ledger")
