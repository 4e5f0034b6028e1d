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

from evalhouse import adapters, tables, versions
from evalhouse.adapters.base import RunBuilder, Source, dumps, read_at_most
from evalhouse.commit import Commit, recover
from evalhouse.errors import BadResultFile, EvalhouseError, StrictModeRejection, WarehouseError
from evalhouse.limits import DEFAULT, Limits, nesting
from evalhouse.schema import FILES, METRICS, RUNS, SCORES, TABLES, TEXTS, Table
from evalhouse.tabular import terminal_text
from evalhouse.warehouse import Warehouse, is_disk_full, lock, os_reason

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
_DOCTOR_FIX = "run `evalhouse doctor --fix`: it drops a damaged file, and the next ingest restores its rows"


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
    offers, skipped = walk(paths, limits)
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

    def offer(p: str, absolute: bool = False) -> None:
        path = p if absolute else os.path.abspath(p)  # (abspath asks the OS for the cwd every time)
        if path in seen:
            return
        seen.add(path)
        o = Offer(path)
        try:
            st = os.stat(path)
            o.size, o.mtime_ns = st.st_size, st.st_mtime_ns
            if not _utf8(path):
                o.status, o.reason = "rejected", f"{path}: (file name): not valid UTF-8; rename the file"
            elif not stat.S_ISREG(st.st_mode):
                o.status, o.reason = "rejected", f"{path}: (file): not a regular file"
            elif st.st_size > limits.file_bytes:
                o.status = "rejected"
                o.reason = str(limits.over(path, "(file)", "file_bytes", f"{st.st_size:,} bytes"))
        except OSError as exc:
            o.status, o.reason = "rejected", f"{path}: (file): cannot read: {exc.strerror or exc}"
        offers.append(o)

    def unreadable(exc: OSError) -> None:
        path = os.path.abspath(exc.filename)
        if path not in seen:
            seen.add(path)
            reason = f"{path}: (folder): cannot read: {exc.strerror or exc}"
            offers.append(Offer(path, status="rejected", reason=reason))

    for raw in paths:
        p = os.fspath(raw)
        if os.path.isdir(p):
            # Walked from its absolute path, every path found is absolute and normalised already.
            for dirpath, dirnames, filenames in os.walk(os.path.abspath(p), onerror=unreadable):
                for d in dirnames:
                    if os.path.islink(os.path.join(dirpath, d)):
                        skipped.append(f"{os.path.join(dirpath, d)}: symlinked folder not followed")
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    full = os.path.join(dirpath, name)
                    if name.startswith("."):
                        continue
                    if name.lower().endswith(RESULT_SUFFIXES):
                        offer(full, absolute=True)
                    else:
                        skipped.append(f"{full}: not a result file by its extension")
        elif os.path.lexists(p):
            offer(p)
        else:
            raise EvalhouseError(f"no such file or folder: {p}")
    return offers, skipped


def _utf8(text: str) -> bool:
    """Whether ``text`` (a path, which Python decodes with surrogate escapes) is valid UTF-8.

    >>> _utf8("/r/modèle.json"), _utf8(os.fsdecode(b"/r/mod\\xe8le.json"))
    (True, False)
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _storable(text: str | None) -> str | None:
    """``text`` as the ledger can store it: bytes of a name that is not UTF-8, and lone surrogates,
    written as escapes (``\\xe8``, ``\\ud800``).

    >>> _storable(os.fsdecode(b"/r/mod\\xe8le.json")), _storable("a\\ud800b")
    ('/r/mod\\\\xe8le.json', 'a\\\\ud800b')
    """
    if text is None or _utf8(text):
        return text
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


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
        try:
            pf = pq.ParquetFile(f)
            parts.append(pf.read(columns=[c for c in columns if c in pf.schema_arrow.names]))
        except (pa.ArrowException, OSError) as exc:  # pyarrow's errors subclass both
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise WarehouseError(f"{f}: cannot read this file of the warehouse ({first})", _DOCTOR_FIX) from None
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
    limits: Limits,
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
        jobs = _Jobs(pool, batch, n_workers if parallel else 1, progress, limits)
        results = _parse_all(jobs, first, start=0)
        # A copy of content rejected in this ingest is read as a file of its own (rejected for the
        # same reason when the reason is in its bytes), never a duplicate of nothing.
        second = [(o, orig, None if results[orig][1] == "rejected" else results[orig][5])
                  for o, orig in copies if orig in by_path]  # fmt: skip
        results |= _parse_all(jobs, second, start=len(results))

    rows = 0
    for o, *_ in first + second:
        fmt, o.status, o.reason, o.rows, o.depends_on, _models, sha, o.key = results[o.path]
        o.format, o.sha256 = fmt, sha or o.sha256
        rows += o.rows

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
    jobs: _Jobs, offers: Sequence[tuple[Offer, str | None, list[str] | None]], start: int
) -> dict[str, ParseResult]:
    """Parse ``(offer, path it copies, models it must match)`` in jobs; path -> result.

    The models are None for a copy whose original was rejected: it is read as a file of its own.
    """
    if not offers:
        return {}
    batch = jobs.batch
    index = {o.path: (orig, models) for o, orig, models in offers}
    chunks = [
        (str(batch.wh.root), f"{start + i:05d}",
         [(o.path, o.sha256, o.size, *index[o.path]) for o in chunk], batch.batch_id, jobs.limits)
        for i, chunk in enumerate(_chunks([o for o, _orig, _m in offers], jobs.workers))
    ]  # fmt: skip
    results: dict[str, ParseResult] = {}
    weights = [len(j[2]) for j in chunks]
    for chunk_result, written in _map(jobs.pool, _parse_chunk, chunks, jobs.progress, "parse", weights=weights):
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


# ---------------------------------------------------------------------------------------------
# Worker side: parse a chunk of files and append their rows to this chunk's Parquet files.
# ---------------------------------------------------------------------------------------------


def read_source(
    path: str, sha256: str, limits: Limits = DEFAULT
) -> tuple[str, list[RunBuilder], list[dict[str, Any]] | None]:
    """Detect the format of one file and read it; raises BadResultFile / UnknownFormat.

    Returns the format, the runs, and the other files the adapter read with it (or None).
    """
    del sha256  # the hash of the bytes actually read is used (see _read_file)
    fmt, runs, deps, _sha = _read_file(path, limits)
    return fmt, runs, deps


def _read_file(path: str, limits: Limits = DEFAULT) -> tuple[str, list[RunBuilder], list[dict[str, Any]] | None, str]:
    """:func:`read_source`, also returning the SHA-256 of the bytes read.

    The hash is of what was parsed: a file rewritten between the hash pass and the parse is stored
    under its new content's hash, not the old one. The file is held to ``limits`` again here: it
    may have grown, or become a FIFO, since it was stat'ed.
    """
    data = _read_bytes(path, limits)
    actual = hashlib.sha256(data).hexdigest()
    source = Source(path, data, actual, limits)
    if not data.strip():
        raise BadResultFile(path, "(file)", "is empty")
    refused: BadResultFile | None = None
    for adapter in adapters.ADAPTERS:
        try:
            claimed = adapter.detect(source)
        except BadResultFile as exc:
            # A strict-JSON adapter refusing bytes (bare NaN) must not stop a later, tolerant one.
            refused = refused or exc
            if source.over_limit:
                break  # past a bound: no adapter may parse it
            continue
        if claimed:
            try:
                runs = adapter.read(source)
                rows = sum(r.n_scores + r.n_metrics for r in runs)
                if rows > limits.rows:
                    raise limits.over(path, "(file)", "rows", f"{rows:,} rows")
                deps = sorted(source.dependencies.values(), key=lambda d: d["path"]) or None
                return adapter.NAME, runs, deps, actual
            except BadResultFile as exc:
                exc.format = adapter.NAME
                raise
    if refused is not None:
        raise refused
    raise BadResultFile(path, "(file)", f"no adapter recognises this content ({_describe(source)})")


def _read_bytes(path: str, limits: Limits) -> bytes:
    """The bytes of a regular file of at most ``limits.file_bytes`` (opened without blocking on a FIFO)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BadResultFile(path, "(file)", "not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = read_at_most(f, st.st_size, limits.file_bytes)
    finally:
        os.close(fd)
    if len(data) > limits.file_bytes:
        raise limits.over(path, "(file)", "file_bytes", f"more than {limits.file_bytes:,} bytes")
    return data


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


# The tables a file's runs fill, in the order their rows are written.
RUN_TABLES = (RUNS, SCORES, TEXTS, METRICS)


class _ChunkWriter:
    """Buffers the rows of one chunk's files and writes them as row groups of the chunk's Parquet files.

    Rows are converted to Arrow a buffer at a time (each file on its own took 0.21 s per 1,000 files
    against 0.09 s in bulk, some 10 % of a cold ingest); when a buffer fails to convert, its files
    are converted one by one and only those holding a value Arrow cannot store (an integer beyond
    64 bits, a lone surrogate) are left out, each with the column at fault (see :meth:`flush`). So
    one file never fails the chunk, and the usual case pays nothing.
    """

    def __init__(self, root: str, part: str, batch_id: str, limits: Limits) -> None:
        self.root, self.part, self.batch_id, self.limits = Path(root), part, batch_id, limits
        self.writers: dict[str, pq.ParquetWriter] = {}
        # (table, path, rows) of every file written, for the commit to add
        self.written: dict[str, list[Any]] = {}
        self.buffers: dict[str, dict[str, list[Any]]] = {t.name: {c: [] for c in t.names} for t in RUN_TABLES}
        # (path, where its rows start in each table's buffer) of every file buffered, in order
        self.files: list[tuple[str, dict[str, int]]] = []
        self.now = datetime.now(UTC)

    def add(self, path: str, sha256: str, fmt: str, runs: list[RunBuilder]) -> int:
        """Buffer the rows of one file's runs (``sha256`` is its content key, see :func:`content_key`);
        returns its score and metric rows. Raises BadResultFile (buffering nothing) for metadata
        that cannot be stored as JSON."""
        metadata = [self._metadata(path, run.metadata) for run in runs]
        starts = {name: len(cols["run_id"]) for name, cols in self.buffers.items()}
        try:
            rows = self._buffer(path, sha256, fmt, runs, metadata)
        except BaseException:  # nothing of a file that failed half-way is kept
            for name, cols in self.buffers.items():
                for values in cols.values():
                    del values[starts[name] :]
            raise
        self.files.append((path, starts))
        return rows

    def _buffer(self, path: str, sha256: str, fmt: str, runs: list[RunBuilder], metadata: list[str | None]) -> int:
        b = self.buffers
        rows = 0
        for run, meta in zip(runs, metadata, strict=True):
            run_id = run_id_for(sha256, fmt, run.key)
            n, nm = run.n_scores, run.n_metrics
            rows += n + nm
            r = b["runs"]
            for col, value in (
                ("run_id", run_id), ("source_path", path), ("source_sha256", sha256), ("source_format", fmt),
                ("model", run.model), ("model_base", run.model_base), ("quantization", run.quantization),
                ("harness", run.harness), ("status", run.status), ("started_at", run.started_at),
                ("ingested_at", self.now), ("n_items", run.n_answers), ("batch_id", self.batch_id),
                ("metadata", meta),
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
        return rows

    def _metadata(self, path: str, metadata: dict[str, Any]) -> str | None:
        if not metadata:
            return None
        depth = nesting(metadata, self.limits.depth)
        if depth > self.limits.depth:
            raise self.limits.over(path, "metadata", "depth", f"{depth}+ levels of nesting")
        try:
            return dumps(metadata)
        except TypeError as exc:  # orjson: a lone surrogate, a value it cannot write
            raise BadResultFile(path, "metadata", f"cannot be stored as JSON ({exc})") from None

    @property
    def full(self) -> bool:
        return len(self.buffers["scores"]["run_id"]) + len(self.buffers["texts"]["run_id"]) >= FLUSH_ROWS

    def flush(self) -> dict[str, str]:
        """Write the buffered rows; returns ``{path: reason}`` of the files left out (see the class)."""
        converted, rejected = self._convert()
        for table in RUN_TABLES:
            arrow = converted.get(table.name)
            if arrow is None or not arrow.num_rows:
                continue
            writer = self.writers.get(table.name)
            if writer is None:
                path = tables.folder(self.root, table.name) / tables.part_name(self.batch_id, self.part)
                writer = self.writers[table.name] = tables.parquet_writer(path, table.name)
                self.written[table.name] = [table.name, str(path), 0]
            writer.write_table(arrow, row_group_size=tables.ROW_GROUP_ROWS)
            self.written[table.name][2] += arrow.num_rows
        self.buffers = {t.name: {c: [] for c in t.names} for t in RUN_TABLES}
        self.files = []
        return rejected

    def _convert(self) -> tuple[dict[str, pa.Table], dict[str, str]]:
        """The buffers as Arrow tables, and ``{path: reason}`` of the files left out of them."""
        b = self.buffers
        try:
            return {t.name: pa.table(b[t.name], schema=t.arrow_schema()) for t in RUN_TABLES if b[t.name]["run_id"]}, {}
        except Exception:  # some file holds a value Arrow cannot store: find it, keep the rest
            pass
        ends = [starts for _path, starts in self.files[1:]] + [{n: len(c["run_id"]) for n, c in b.items()}]
        parts: dict[str, list[pa.Table]] = {t.name: [] for t in RUN_TABLES}
        rejected: dict[str, str] = {}
        for (path, start), end in zip(self.files, ends, strict=True):
            try:
                own = [
                    (t.name, _arrow(path, t, {c: v[start[t.name] : end[t.name]] for c, v in b[t.name].items()}))
                    for t in RUN_TABLES
                    if end[t.name] > start[t.name]
                ]
            except BadResultFile as exc:
                rejected[path] = str(exc)
                continue
            for name, arrow in own:
                parts[name].append(arrow)
        return {name: pa.concat_tables(p) for name, p in parts.items() if p}, rejected

    def close(self) -> dict[str, str]:
        rejected = self.flush()
        for writer in self.writers.values():
            writer.close()
        return rejected


_INT_RANGE = {pa.int32(): "a 32-bit integer", pa.int64(): "a 64-bit integer"}


def _arrow(path: str, table: Table, columns: dict[str, list[Any]]) -> pa.Table:
    """One file's rows of ``table`` as Arrow; raises BadResultFile naming the column a value of
    which Arrow cannot store (``/r/a.json: metrics.n: 2**70 is beyond the range of a 64-bit integer``)."""
    schema = table.arrow_schema()
    try:
        return pa.table(columns, schema=schema)
    except Exception as exc:
        for f in schema:
            for value in columns[f.name]:
                try:
                    pa.array([value], type=f.type)
                except Exception:
                    raise BadResultFile(path, f"{table.name}.{f.name}", _unstorable(value, f.type)) from None
        raise BadResultFile(path, table.name, f"cannot be stored ({type(exc).__name__}: {exc})") from None


def _unstorable(value: Any, type_: pa.DataType) -> str:
    """Why ``value`` cannot be stored as ``type_``.

    >>> _unstorable(2**70, pa.int64())
    '1180591620717411303424 is beyond the range of a 64-bit integer'
    >>> _unstorable("a\\ud800", pa.string())
    "'a\\\\ud800' is not valid Unicode text (a lone surrogate)"
    """
    if isinstance(value, int) and type_ in _INT_RANGE:
        return f"{value} is beyond the range of {_INT_RANGE[type_]}"
    if isinstance(value, str):
        return f"'{(_storable(value) or '')[:80]}' is not valid Unicode text (a lone surrogate)"
    return f"{value!r:.80} cannot be stored as {type_}"


# (format, status, reason, rows, dependencies, models of its runs, SHA-256 of the bytes parsed, key)
# (..., the content key its runs are stored under: salted with the models for a copy whose models
# come from its path, see _parse_chunk; None when nothing was stored)
ParseResult = tuple[str | None, str, str | None, int, list[dict[str, Any]] | None, list[str], str | None, str | None]


def _parse_chunk(
    job: tuple[str, str, list[tuple[str, str, int, str | None, list[str] | None]], str, Limits],
) -> tuple[dict[str, ParseResult], list[tuple[str, str, int]]]:
    """Parse a chunk of files; returns (path -> :data:`ParseResult`, the files written as
    (table, path, rows)).

    Everything one file does, up to its rows converted for writing, is that file's alone: any
    failure rejects it with ``path: field: reason``, nothing of it is written, and the chunk goes
    on. Only writing the chunk's files (a full disk) fails the chunk, and with it the batch.

    A file given with the path it copies and that content's models is a duplicate when it reads as
    the same models; otherwise its runs come from its path and it is stored, its content key salted
    with its models so that its run ids differ from the original's. Given no models (the original
    was rejected), it is read as a file of its own.
    """
    root, part, files, batch_id, limits = job
    writer = _ChunkWriter(root, part, batch_id, limits)
    out: dict[str, ParseResult] = {}
    for path, expected, _size, original, original_models in files:
        out[path] = _parse_one(writer, path, expected, original, original_models)
        if writer.full:
            _left_out(out, writer.flush())  # outside the file's own handling: a write error is not its fault
    _left_out(out, writer.close())
    return out, [tuple(w) for w in writer.written.values()]


def _left_out(out: dict[str, ParseResult], rejected: dict[str, str]) -> None:
    """Record the files whose rows could not be stored (see :meth:`_ChunkWriter.flush`) as rejected."""
    for path, reason in rejected.items():
        out[path] = (out[path][0], "rejected", reason, 0, None, [], None, None)


def _parse_one(
    writer: _ChunkWriter, path: str, expected: str, original: str | None, original_models: list[str] | None
) -> ParseResult:
    """Read one file and convert its rows (see :func:`_parse_chunk`); never raises for the file's sake."""
    fmt: str | None = None
    try:
        fmt, runs, deps, sha256 = _read_file(path, writer.limits)
        models = sorted({r.model for r in runs if r.n_scores or r.n_metrics})
        key = content_key(sha256, deps) or sha256
        if original is not None and original_models is not None and sha256 == expected:
            if models == sorted(original_models):
                return (fmt, "duplicate", f"same content as {original}", 0, deps, models, sha256, None)
            key = hashlib.sha256("\0".join([key, *models]).encode()).hexdigest()
        if not models:
            return (fmt, "not-results", f"{path}: holds no scores", 0, deps, models, sha256, None)
        if deps and not all(_utf8(d["path"]) for d in deps):
            raise BadResultFile(path, "(dependencies)", "a file read with it has a name that is not valid UTF-8")
        return (fmt, "ingested", None, writer.add(path, key, fmt, runs), deps, models, sha256, key)
    except BadResultFile as exc:
        reason = str(exc)
        fmt = exc.format or fmt
    except OSError as exc:
        reason = f"{path}: (file): cannot read: {exc.strerror or exc}"
    except RecursionError:
        reason = f"{path}: (file): nested too deeply"
    except MemoryError:
        reason = f"{path}: (file): too large to read in memory"
    except Exception as exc:  # an adapter bug must cost one file, not the whole ingest
        reason = f"{path}: (file): could not be read ({type(exc).__name__}: {exc})"
    return (fmt, "rejected", reason, 0, None, [], None, None)
