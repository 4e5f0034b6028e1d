"""Ingest: files -> adapters -> canonical Arrow tables -> one commit of the warehouse's Delta tables.

One call of :func:`ingest` is one batch, published as one warehouse version at the end (see
engine/commit.py), so an interrupted ingest leaves the warehouse exactly as it was and a second
run finishes the job.

The work is in three passes so that content deduplication is decided before anything is parsed:

1. walk the paths and ``stat`` every file; a file whose path, size and mtime match the ledger is
   ``unchanged`` without being read (this keeps re-ingesting a large corpus under a second);
2. hash the remaining files (in worker processes when there are many);
3. parse the files whose content is new and write their rows, each worker into its own Parquet
   files in the tables' folders, flushing in bounded row groups so memory stays flat.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import multiprocessing.forkserver
import os
import stat
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from engine import adapters, tables, versions
from engine.adapters.base import MAX_FILE_BYTES, RunBuilder, Source, dumps
from engine.commit import Commit, recover
from engine.errors import BadResultFile, EvalhouseError, StrictModeRejection, WarehouseError
from engine.schema import FILES, METRICS, RUNS, SCORES, TABLES, TEXTS
from engine.warehouse import Warehouse, is_disk_full, lock, os_reason

# Extensions read when walking a folder (a file named on the command line is always offered).
RESULT_SUFFIXES = (".json", ".jsonl", ".csv", ".eval", ".parquet")
# Rows a worker buffers before writing a row group: bounds memory, keeps row groups large.
FLUSH_ROWS = 100_000
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


@dataclass
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
    # The content key its runs were stored under, where it is not the plain one (see _parse_chunk).
    key: str | None = None

    @property
    def content(self) -> str | None:
        """What identifies the content read: the file's hash, with its dependencies' if it has any."""
        return self.key or content_key(self.sha256, self.depends_on)


def content_key(sha256: str | None, depends_on: list[dict[str, Any]] | None) -> str | None:
    """The file's SHA-256, or, when other files were read with it, a hash of all of them.

    A samples file whose results file changed is new content even though its own bytes are not.

    >>> content_key("ab", None), content_key("ab", [{"path": "/r.json", "sha256": "cd"}])[:12]
    ('ab', 'c46dfb0e5227')
    """
    if not depends_on or sha256 is None:
        return sha256
    parts = [sha256, *sorted(f"{d['path']}\0{d['sha256']}" for d in depends_on)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


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
        return sum(1 for o in self.offers if o.status == status)

    @property
    def rejected(self) -> list[Offer]:
        return [o for o in self.offers if o.status == "rejected"]


def ingest(
    wh: Warehouse,
    paths: Iterable[str | os.PathLike[str]],
    *,
    strict: bool = False,
    workers: int | None = None,
    wait: bool = True,
    on_wait: Callable[[], None] | None = None,
    progress: ProgressFn | None = None,
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

    Returns:
        An ``IngestReport`` with one ``Offer`` per file.
    """
    offers, skipped = walk(paths)
    first = len(versions.numbers(wh.root)) <= 1
    if (workers or os.cpu_count() or 1) > 1 and len(offers) >= PARALLEL_MIN_FILES and first:
        # A first ingest will need workers: the server imports while the ledger loads. A later
        # one starts it only if files changed (a re-ingest of unchanged files needs none).
        _fork_server()
    with lock(wh, wait=wait, on_wait=on_wait):
        recover(wh)  # what a writer killed before us left
        state = LedgerState.load(wh)
        batch = Commit(wh, "ingest")
        try:
            report = _ingest_locked(wh, batch, offers, state, workers, progress)
            report.skipped = skipped
            if strict and report.rejected:
                raise StrictModeRejection(
                    f"{len(report.rejected)} file(s) rejected, nothing written (--strict):\n"
                    + "\n".join(f"  {o.reason}" for o in report.rejected)
                )
            if any(not o.seen_before for o in report.offers) or report.retired_runs:
                report.version = batch.publish().number
            else:  # nothing new: no commit, no new version, the views stay as they are
                batch.abort()
                report.committed = False
        except BaseException as exc:
            batch.abort()
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


def walk(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[Offer], list[str]]:
    """Every file under ``paths``, stat'ed; returns (offers, skipped with the reason why).

    Symlinked folders are not followed (no loops; noted in ``skipped``). Anything that is not a
    regular file (a FIFO would block a reader forever) or cannot be stat'ed is offered and rejected,
    so that it is recorded rather than silently dropped.
    """
    offers: list[Offer] = []
    skipped: list[str] = []
    seen: set[str] = set()

    def offer(p: str) -> None:
        path = os.path.abspath(p)
        if path in seen:
            return
        seen.add(path)
        o = Offer(path)
        try:
            st = os.stat(path)
            o.size, o.mtime_ns = st.st_size, st.st_mtime_ns
            if not stat.S_ISREG(st.st_mode):
                o.status, o.reason = "rejected", f"{path}: (file): not a regular file"
            elif st.st_size > MAX_FILE_BYTES:
                o.status = "rejected"
                o.reason = f"{path}: (file): {st.st_size:,} bytes, over the {MAX_FILE_BYTES:,}-byte limit per file"
        except OSError as exc:
            o.status, o.reason = "rejected", f"{path}: (file): cannot read: {exc.strerror or exc}"
        offers.append(o)

    for raw in paths:
        p = os.fspath(raw)
        if os.path.isdir(p):
            for dirpath, dirnames, filenames in os.walk(p):
                for d in dirnames:
                    if os.path.islink(os.path.join(dirpath, d)):
                        skipped.append(f"{os.path.abspath(os.path.join(dirpath, d))}: symlinked folder not followed")
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    full = os.path.join(dirpath, name)
                    if name.startswith("."):
                        continue
                    if name.lower().endswith(RESULT_SUFFIXES):
                        offer(full)
                    else:
                        skipped.append(f"{os.path.abspath(full)}: not a result file by its extension")
        elif os.path.lexists(p):
            offer(p)
        else:
            raise EvalhouseError(f"no such file or folder: {p}")
    return offers, skipped


@dataclass
class LedgerState:
    """What the warehouse already holds, as the ingest decisions need it."""

    # path -> (size, mtime_ns) of its latest offer
    last_seen: dict[str, tuple[int, int]]
    # path -> (content key, status) of the latest offer that was read (not `unchanged`)
    content: dict[str, tuple[str | None, str]]
    # path -> (own sha256, dependencies) of that offer
    read_with: dict[str, tuple[str | None, list[dict[str, Any]]]]
    # sha256 of content that is live in the warehouse -> the path it came from
    live: dict[str, str]
    # sha256 -> run_ids of live runs
    runs_by_sha: dict[str, list[str]]
    # sha256 -> the models of its live runs (what a second copy of the same bytes must match)
    models_by_sha: dict[str, set[str]]

    @classmethod
    def load(cls, wh: Warehouse) -> LedgerState:
        # Oldest offer first (files hold no order a compaction keeps), so the latest offer wins.
        files = _read(wh, "files", ["path", "sha256", "size", "mtime_ns", "status", "depends_on"], order="batch_id")
        last_seen: dict[str, tuple[int, int]] = {}
        content: dict[str, tuple[str | None, str]] = {}
        read_with: dict[str, tuple[str | None, list[dict[str, Any]]]] = {}
        for path, sha, size, mtime, status, deps_json in zip(*(files[c] for c in files), strict=True):
            if size is not None and mtime is not None:
                last_seen[path] = (size, mtime)
            if status != "unchanged":
                deps = orjson.loads(deps_json) if deps_json else []
                content[path] = (content_key(sha, deps), status)
                read_with[path] = (sha, deps)
        runs = _read(wh, "runs", ["run_id", "source_sha256", "model", "source_path"])
        runs_by_sha: dict[str, list[str]] = {}
        models_by_sha: dict[str, set[str]] = {}
        keys_by_path: dict[str, set[str]] = {}
        for run_id, sha, model, source in zip(*(runs[c] for c in runs), strict=True):
            runs_by_sha.setdefault(sha, []).append(run_id)
            models_by_sha.setdefault(sha, set()).add(model)
            keys_by_path.setdefault(source, set()).add(sha)
        # A copy whose models come from its path stored its runs under a salted key (the ledger has
        # its bytes' hash): it holds that key, so that its runs go when it changes, and it does not
        # hold the original's content.
        for path, (key, status) in list(content.items()):
            own = keys_by_path.get(path, set())
            if status == "ingested" and len(own) == 1 and key not in own:
                content[path] = (next(iter(own)), status)
        live = {
            sha: path
            for path, (sha, status) in content.items()
            if sha and status in ("ingested", "not-results") and (status == "not-results" or sha in runs_by_sha)
        }
        # A copy keeps content live when the path it was read from has changed since.
        for path, (sha, status) in content.items():
            if sha and status == "duplicate" and sha in runs_by_sha:
                live.setdefault(sha, path)
        return cls(last_seen, content, read_with, live, runs_by_sha, models_by_sha)


def _read(wh: Warehouse, table: str, columns: list[str], order: str | None = None) -> dict[str, list[Any]]:
    files = wh.table_files(table)
    if not files:
        return {c: [] for c in columns}
    if order:
        data = _read(wh, table, [*columns, order])
        index = sorted(range(len(data[order])), key=data[order].__getitem__)
        return {c: [data[c][i] for i in index] for c in columns}
    # Files written before a column was added lack it: read what each has, the rest as NULL.
    schema = pa.schema([TABLES[table].arrow_schema().field(c) for c in columns])
    # ParquetFile, not read_table: read_table goes through pyarrow.dataset, whose import (pandas)
    # costs more than a re-ingest of unchanged files takes otherwise.
    parts = []
    for f in files:
        pf = pq.ParquetFile(f)
        parts.append(pf.read(columns=[c for c in columns if c in pf.schema_arrow.names]))
    return (
        pa.concat_tables(
            [t.cast(pa.schema([schema.field(c) for c in t.column_names])) for t in parts], promote_options="default"
        )
        .select(columns)
        .to_pydict()
    )  # type: ignore[no-any-return]


def _ingest_locked(
    wh: Warehouse,
    batch: Commit,
    offers: list[Offer],
    state: LedgerState,
    workers: int | None,
    progress: ProgressFn | None,
) -> IngestReport:
    # Pass 1: unchanged by stat alone.
    to_hash: list[Offer] = []
    for o in offers:
        if o.status:
            continue
        known = state.content.get(o.path)
        own, deps = state.read_with.get(o.path, (None, []))
        if (
            known
            and known[1] != "rejected"
            and state.last_seen.get(o.path) == (o.size, o.mtime_ns)
            and all(_stat_of(d["path"]) == (d["size"], d["mtime_ns"]) for d in deps)
        ):
            o.sha256, o.depends_on, o.status, o.seen_before = own, deps or None, "unchanged", True
        else:
            to_hash.append(o)

    n_workers = workers or os.cpu_count() or 1
    parallel = n_workers > 1 and len(to_hash) >= PARALLEL_MIN_FILES
    with _worker_pool(n_workers if parallel else 1) as pool:
        # Pass 2: hash what may have changed.
        for o, (sha, err) in zip(to_hash, _map(pool, _hash_file, [o.path for o in to_hash], progress, "hash"),
                                 strict=True):  # fmt: skip
            if err:
                o.status, o.reason = "rejected", err
            else:
                o.sha256 = sha

        # Decide: unchanged content, the bytes of content already held (a copy), or new content.
        to_parse: list[Offer] = []
        copies: list[tuple[Offer, str]] = []  # (offer, path of the content it repeats)
        claimed = dict(state.live)
        for o in to_hash:
            if o.status:
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
        by_path = {o.path: o for o in to_parse}
        first = [(o, None, None) for o in to_parse] + [
            (o, orig, sorted(state.models_by_sha.get(o.sha256 or "", set())))
            for o, orig in copies if orig not in by_path
        ]  # fmt: skip
        results = _parse_all(pool, batch, first, n_workers if parallel else 1, progress, start=0)
        second = [(o, orig, results[orig][5]) for o, orig in copies if orig in by_path]
        results |= _parse_all(pool, batch, second, n_workers if parallel else 1, progress, start=len(results))

    rows = 0
    for o, *_ in first + second:
        fmt, o.status, o.reason, o.rows, o.depends_on, _models, sha, o.key = results[o.path]
        o.format, o.sha256 = fmt, sha or o.sha256
        rows += o.rows

    retired = _retire_replaced(offers, state, batch)
    _write_ledger(offers, batch)
    return IngestReport(batch.batch_id, offers, retired_runs=retired, rows=rows)


def _parse_all(
    pool: ProcessPoolExecutor | None,
    batch: Commit,
    offers: Sequence[tuple[Offer, str | None, list[str] | None]],
    workers: int,
    progress: ProgressFn | None,
    start: int,
) -> dict[str, ParseResult]:
    """Parse ``(offer, path it copies, models it must match)`` in jobs; path -> result."""
    if not offers:
        return {}
    index = {o.path: (orig, models) for o, orig, models in offers}
    jobs = [
        (str(batch.wh.root), f"{start + i:05d}",
         [(o.path, o.sha256, o.size, *index[o.path]) for o in chunk], batch.batch_id)
        for i, chunk in enumerate(_chunks([o for o, _orig, _m in offers], workers))
    ]  # fmt: skip
    results: dict[str, ParseResult] = {}
    for chunk_result, written in _map(pool, _parse_chunk, jobs, progress, "parse", weights=[len(j[2]) for j in jobs]):
        results.update(chunk_result)
        for table, path, rows in written:
            batch.add(table, Path(path), rows)
    return results


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

    It starts in the background; a worker forked from it starts in milliseconds. pyarrow imports
    pandas, when installed, the first time it builds a table (0.15 s): that is done there too.
    """
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__, "pandas"])
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
    now = datetime.now(UTC)
    table = pa.table(
        {
            "path": [o.path for o in offers],
            "sha256": [o.sha256 for o in offers],
            "size": [o.size for o in offers],
            "mtime_ns": [o.mtime_ns for o in offers],
            "format": [o.format for o in offers],
            "status": [o.status for o in offers],
            "reason": [o.reason for o in offers],
            "rows": [o.rows for o in offers],
            "depends_on": [dumps(o.depends_on) if o.depends_on else None for o in offers],
            "batch_id": [batch.batch_id] * len(offers),
            "time": [now] * len(offers),
        },
        schema=FILES.arrow_schema(),
    )
    batch.write("files", table, part="ledger")


# ---------------------------------------------------------------------------------------------
# Worker side: parse a chunk of files and append their rows to this chunk's Parquet files.
# ---------------------------------------------------------------------------------------------


def read_source(path: str, sha256: str) -> tuple[str, list[RunBuilder], list[dict[str, Any]] | None]:
    """Detect the format of one file and read it; raises BadResultFile / UnknownFormat.

    Returns the format, the runs, and the other files the adapter read with it (or None).
    """
    del sha256  # the hash of the bytes actually read is used (see _read_file)
    fmt, runs, deps, _sha = _read_file(path)
    return fmt, runs, deps


def _read_file(path: str) -> tuple[str, list[RunBuilder], list[dict[str, Any]] | None, str]:
    """:func:`read_source`, also returning the SHA-256 of the bytes read.

    The hash is of what was parsed: a file rewritten between the hash pass and the parse is stored
    under its new content's hash, not the old one.
    """
    with open(path, "rb") as f:
        data = f.read()
    actual = hashlib.sha256(data).hexdigest()
    source = Source(path, data, actual)
    if not data.strip():
        raise BadResultFile(path, "(file)", "is empty")
    refused: BadResultFile | None = None
    for adapter in adapters.ADAPTERS:
        try:
            claimed = adapter.detect(source)
        except BadResultFile as exc:
            # A strict-JSON adapter refusing bytes (bare NaN) must not stop a later, tolerant one.
            refused = refused or exc
            continue
        if claimed:
            try:
                runs = adapter.read(source)
                deps = sorted(source.dependencies.values(), key=lambda d: d["path"]) or None
                return adapter.NAME, runs, deps, actual
            except BadResultFile as exc:
                exc.format = adapter.NAME
                raise
    if refused is not None:
        raise refused
    raise BadResultFile(path, "(file)", f"no adapter recognises this content ({_describe(source)})")


def _describe(source: Source) -> str:
    if not source.looks_like_json():
        return "not JSON, JSONL or a known table"
    doc = source.json
    if isinstance(doc, dict):
        keys = ", ".join(list(doc)[:8])
        return f"a JSON object with keys {keys or '(none)'}"
    return f"a JSON {type(doc).__name__}"


def run_id_for(sha256: str, adapter: str, key: str) -> str:
    """Stable run id: the same content read by the same adapter always gives the same id.

    >>> run_id_for("ab" * 32, "so8t-results", "modela")
    'r-dd522c94ae1b863dc4a5'
    """
    return "r-" + hashlib.sha256(f"{sha256}\0{adapter}\0{key}".encode()).hexdigest()[:20]


class _ChunkWriter:
    """Buffers rows of one chunk and writes them as row groups of the chunk's Parquet files."""

    def __init__(self, root: str, part: str, batch_id: str) -> None:
        self.root, self.part, self.batch_id = Path(root), part, batch_id
        self.writers: dict[str, pq.ParquetWriter] = {}
        # (table, path, rows) of every file written, for the commit to add
        self.written: dict[str, list[Any]] = {}
        self.buffers: dict[str, dict[str, list[Any]]] = {
            t.name: {c: [] for c in t.names} for t in (RUNS, SCORES, TEXTS, METRICS)
        }
        self.now = datetime.now(UTC)

    def add(self, path: str, sha256: str, fmt: str, runs: list[RunBuilder]) -> int:
        """Buffer the rows of one file's runs; ``sha256`` is its content key (see :func:`content_key`)."""
        rows = 0
        b = self.buffers
        for run in runs:
            run_id = run_id_for(sha256, fmt, run.key)
            n, nm = run.n_scores, run.n_metrics
            rows += n + nm
            r = b["runs"]
            for col, value in (
                ("run_id", run_id), ("source_path", path), ("source_sha256", sha256), ("source_format", fmt),
                ("model", run.model), ("model_base", run.model_base), ("quantization", run.quantization),
                ("harness", run.harness), ("status", run.status), ("started_at", run.started_at),
                ("ingested_at", self.now), ("n_items", run.n_answers), ("batch_id", self.batch_id),
                ("metadata", dumps(run.metadata) if run.metadata else None),
            ):  # fmt: skip
                r[col].append(value)
            s = b["scores"]
            s["run_id"].extend([run_id] * n)
            s["model"].extend([run.model] * n)
            for col, values in run.scores.items():
                s[col].extend(values)
            t = b["texts"]
            t["run_id"].extend([run_id] * len(run.texts["sample_id"]))
            for col, values in run.texts.items():
                t[col].extend(values)
            m = b["metrics"]
            m["run_id"].extend([run_id] * nm)
            m["model"].extend([run.model] * nm)
            for col, values in run.metrics.items():
                m[col].extend(values)
        if len(b["scores"]["run_id"]) + len(b["texts"]["run_id"]) >= FLUSH_ROWS:
            self.flush()
        return rows

    def flush(self) -> None:
        for table in (RUNS, SCORES, TEXTS, METRICS):
            cols = self.buffers[table.name]
            if not cols["run_id"]:
                continue
            arrow = pa.table(cols, schema=table.arrow_schema())
            writer = self.writers.get(table.name)
            if writer is None:
                path = tables.folder(self.root, table.name) / tables.part_name(self.batch_id, self.part)
                writer = self.writers[table.name] = tables.parquet_writer(path, table.name)
                self.written[table.name] = [table.name, str(path), 0]
            writer.write_table(arrow, row_group_size=tables.ROW_GROUP_ROWS)
            self.written[table.name][2] += arrow.num_rows
            self.buffers[table.name] = {c: [] for c in table.names}

    def close(self) -> None:
        self.flush()
        for writer in self.writers.values():
            writer.close()


# (format, status, reason, rows, dependencies, models of its runs, SHA-256 of the bytes parsed, key)
# (..., the content key its runs are stored under: salted with the models for a copy whose models
# come from its path, see _parse_chunk; None when nothing was stored)
ParseResult = tuple[str | None, str, str | None, int, list[dict[str, Any]] | None, list[str], str | None, str | None]


def _parse_chunk(
    job: tuple[str, str, list[tuple[str, str, int, str | None, list[str] | None]], str],
) -> tuple[dict[str, ParseResult], list[tuple[str, str, int]]]:
    """Parse a chunk of files; returns (path -> :data:`ParseResult`, the files written as
    (table, path, rows)).

    A file given with the path it copies and that content's models is a duplicate when it reads as
    the same models; otherwise its runs come from its path and it is stored, its content key salted
    with its models so that its run ids differ from the original's.
    """
    root, part, files, batch_id = job
    writer = _ChunkWriter(root, part, batch_id)
    out: dict[str, ParseResult] = {}
    for path, expected, _size, original, original_models in files:
        try:
            fmt, runs, deps, sha256 = _read_file(path)
        except BadResultFile as exc:
            out[path] = (exc.format, "rejected", str(exc), 0, None, [], None, None)
            continue
        except OSError as exc:
            reason = f"{path}: (file): cannot read: {exc.strerror or exc}"
            out[path] = (None, "rejected", reason, 0, None, [], None, None)
            continue
        except RecursionError:
            out[path] = (None, "rejected", f"{path}: (file): nested too deeply", 0, None, [], None, None)
            continue
        except Exception as exc:  # an adapter bug must cost one file, not the whole ingest
            reason = f"{path}: (file): could not be read ({type(exc).__name__}: {exc})"
            out[path] = (None, "rejected", reason, 0, None, [], None, None)
            continue
        models = sorted({r.model for r in runs if r.n_scores or r.n_metrics})
        key = content_key(sha256, deps) or sha256
        if original is not None and sha256 == expected:
            if models == sorted(original_models or []):
                out[path] = (fmt, "duplicate", f"same content as {original}", 0, deps, models, sha256, None)
                continue
            key = hashlib.sha256("\0".join([key, *models]).encode()).hexdigest()
        if not models:
            out[path] = (fmt, "not-results", f"{path}: holds no scores", 0, deps, models, sha256, None)
        else:
            # Write errors (disk full) are not the file's fault: they propagate and abort the batch.
            out[path] = (fmt, "ingested", None, writer.add(path, key, fmt, runs), deps, models, sha256, key)
    writer.close()
    return out, [tuple(w) for w in writer.written.values()]
