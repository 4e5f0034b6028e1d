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

import array
import collections
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
from datetime import UTC, datetime, timedelta
from itertools import compress
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from evalhouse import tables, versions
from evalhouse.commit import Commit, recover
from evalhouse.errors import BadResultFile, EvalhouseError, StrictModeRejection, WarehouseError
from evalhouse.ingest_worker import ParseResult, _storable, _utf8, content_key, parse_chunk
from evalhouse.ingest_worker import read_source as read_source  # callers import it from here
from evalhouse.limits import DEFAULT, Limits
from evalhouse.schema import FILES, TABLES
from evalhouse.tabular import terminal_text
from evalhouse.warehouse import Warehouse, is_disk_full, lock, os_reason

# multiprocessing and concurrent.futures are imported where workers start: a re-ingest of unchanged
# files starts none.
if TYPE_CHECKING:
    import multiprocessing.context
    from concurrent.futures import Future, ProcessPoolExecutor
    from multiprocessing.connection import Connection

# Extensions read when walking a folder (a file named on the command line is always offered).
RESULT_SUFFIXES = (".json", ".jsonl", ".csv", ".eval", ".parquet")
# Below this many files to parse, worker processes cost more than they save.
PARALLEL_MIN_FILES = 64
# Input bytes per parse job. Each job writes its own Parquet files, and queries pay per file
# (10M rows in 1,570 files of 6,400 rows took 2.6x longer to aggregate than in 10 files), so jobs
# are sized by bytes, not files; but there are at least CHUNKS_PER_WORKER jobs per worker so the
# workers finish together, and at most CHUNK_MAX_FILES files per job so progress keeps moving and
# a worker's buffers stay small (a job holds all its files' rows until it ends: 4,096 small files
# cost a worker 12 MB more than 125 did, 2,048 cost 6).
CHUNK_BYTES = 64 * 2**20
CHUNKS_PER_WORKER = 4
CHUNK_MAX_FILES = 2048
# Files hashed in one task of a worker.
HASH_BATCH_FILES = 256
# Rows of the ledger made and written at a time (each a row group of its file).
LEDGER_BATCH_ROWS = 16_384

ProgressFn = Callable[[str, int, int], None]
_status = operator.attrgetter("status")
_mode, _size, _mtime_ns = (operator.attrgetter(f"st_{a}") for a in ("mode", "size", "mtime_ns"))
_ARROW_POOL = "ARROW_DEFAULT_MEMORY_POOL"
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


# Offer.status, stored as its index here ("": not decided yet).
_STATUSES = ("", "unchanged", "ingested", "duplicate", "not-results", "rejected")
_STATUS = {s: i for i, s in enumerate(_STATUSES)}
_UNCHANGED = _STATUS["unchanged"]
# Offers.flags: its hash is in Offers.digests; seen before; its key is its hash.
_HASHED, _SEEN, _KEYED = 1, 2, 4
_NOTHING_RARE: dict[str, Any] = {}  # (shared: never changed by a reader)


class Offers(Sequence[Offer]):
    """The files offered to one ingest, a column per field of :class:`Offer`: an ``Offer`` is made
    of a file's row when asked, and written back with ``offers[i] = offer``.

    An object per file (an Offer, its path, its hash as text, its numbers: some 440 bytes) made the
    ingest's memory grow with the number of files; as columns a file costs its path and 70 bytes.
    What few files have (a reason, dependencies, a key of their own, no size) is kept aside.

    >>> offers = Offers()
    >>> offers.extend(["/r/a.json", "/r/b.json"], [10, 20], [1, 2])
    >>> offers[1] = Offer("/r/b.json", 20, 2, "ab" * 32, "so8t-results", "ingested", rows=3, key="ab" * 32)
    >>> offers[1] == Offer("/r/b.json", 20, 2, "ab" * 32, "so8t-results", "ingested", rows=3, key="ab" * 32)
    True
    >>> offers[0].status, offers.count_of("ingested"), len(offers)
    ('', 1, 2)
    """

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.sizes = array.array("q")
        self.mtimes = array.array("q")
        self.digests = bytearray()  # each file's SHA-256, 32 bytes (zeros where not known)
        self.flags = bytearray()  # _HASHED | _SEEN | _KEYED
        self.statuses = bytearray()  # index in _STATUSES
        self.formats = bytearray()  # index in self.format_names
        self.format_names: list[str | None] = [None]
        self.rows = array.array("q")
        # file -> {field: value} of the fields its columns cannot say
        self.rare: dict[int, dict[str, Any]] = {}

    def __len__(self) -> int:
        return len(self.paths)

    # report.offers was a list of Offers: it still equals one, and shows as one.
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, (list, Offers)):
            return NotImplemented
        return list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # (a list has none either)

    def __repr__(self) -> str:
        return repr(list(self))

    @overload
    def __getitem__(self, i: int) -> Offer: ...
    @overload
    def __getitem__(self, i: slice) -> list[Offer]: ...
    def __getitem__(self, i: int | slice) -> Offer | list[Offer]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        path = self.paths[i]  # (raises IndexError past the end, which iteration needs)
        i %= len(self)
        flags = self.flags[i]
        sha = self.digests[32 * i : 32 * i + 32].hex() if flags & _HASHED else None
        o = Offer(path, self.sizes[i], self.mtimes[i], sha, self.format_names[self.formats[i]],
                  _STATUSES[self.statuses[i]], None, self.rows[i], None, bool(flags & _SEEN),
                  sha if flags & _KEYED else None)  # fmt: skip
        for name, value in self.rare.get(i, _NOTHING_RARE).items():
            setattr(o, name, value)
        return o

    def __setitem__(self, i: int, o: Offer) -> None:
        # As a list: offers[-1] is the last (the hash's slice, the rare fields' key must be its
        # position), and past the end is an IndexError.
        i = range(len(self))[i]
        rare: dict[str, Any] = {}
        flags = _SEEN if o.seen_before else 0
        if o.size is None:
            rare["size"] = None
        if o.mtime_ns is None:
            rare["mtime_ns"] = None
        self.sizes[i], self.mtimes[i] = o.size or 0, o.mtime_ns or 0
        sha = o.sha256
        digest = _digest(sha)
        if digest is not None:
            self.digests[32 * i : 32 * i + 32] = digest
            flags |= _HASHED
        elif sha is not None:
            rare["sha256"] = sha
        if o.key is not None and o.key == sha and digest is not None:
            flags |= _KEYED
        elif o.key is not None:
            rare["key"] = o.key
        if o.reason is not None:
            rare["reason"] = o.reason
        if o.depends_on is not None:
            rare["depends_on"] = o.depends_on
        self.flags[i], self.statuses[i], self.rows[i] = flags, _STATUS[o.status], o.rows
        if o.format not in self.format_names:
            self.format_names.append(o.format)
        self.formats[i] = self.format_names.index(o.format)
        if rare:
            self.rare[i] = rare
        else:
            self.rare.pop(i, None)

    def append(self, o: Offer) -> None:
        self.extend([o.path], [0], [0])
        self[len(self) - 1] = o

    def extend(self, paths: list[str], sizes: list[int], mtimes: list[int]) -> None:
        """Add files of these paths, sizes and mtimes, nothing else known of them yet."""
        n = len(paths)
        self.paths += paths
        self.sizes.extend(sizes)
        self.mtimes.extend(mtimes)
        self.digests += bytes(32 * n)
        self.flags += bytes(n)
        self.statuses += bytes(n)
        self.formats += bytes(n)
        self.rows.frombytes(bytes(8 * n))

    def sha(self, i: int) -> str | None:
        if self.flags[i] & _HASHED:
            return self.digests[32 * i : 32 * i + 32].hex()
        return self.rare.get(i, _NOTHING_RARE).get("sha256")

    def size(self, i: int) -> int | None:
        return self.rare.get(i, _NOTHING_RARE).get("size", self.sizes[i])

    def hashed(self, i: int, sha: str) -> None:
        """Give file ``i`` the SHA-256 ``sha``."""
        digest = _digest(sha)
        if digest is None or i in self.rare:
            o = self[i]
            o.sha256 = sha
            self[i] = o
        else:
            self.digests[32 * i : 32 * i + 32] = digest
            self.flags[i] |= _HASHED

    def unchanged(self, i: int, sha: str | None, depends_on: list[dict[str, Any]] | None) -> None:
        """Mark file ``i`` unchanged by stat alone, with the hash and dependencies the ledger has."""
        digest = _digest(sha)
        if digest is None or depends_on or i in self.rare:
            o = self[i]
            o.sha256, o.depends_on, o.status, o.seen_before = sha, depends_on, "unchanged", True
            self[i] = o
        else:  # (the usual case, without making an Offer: 100,000 of them on a re-ingest)
            self.digests[32 * i : 32 * i + 32] = digest
            self.flags[i] = _HASHED | _SEEN
            self.statuses[i] = _UNCHANGED

    def parsed(self, i: int, result: ParseResult) -> None:
        """Give file ``i`` what parsing it found (see parse_chunk).

        A file rewritten since it was stat'ed takes the size of the bytes parsed: the ledger has the
        size of the bytes it holds the hash of, which tells a later ingest that a file of that size
        may be their copy.
        """
        fmt, status, reason, rows, deps, _models, sha, key, size = result
        digest = None if sha is None else _digest(sha)
        if i in self.rare or reason is not None or deps is not None or (sha is not None and digest is None):
            o = self[i]
            o.format, o.status, o.reason, o.rows, o.depends_on = fmt, status, reason, rows, deps
            if size is not None:
                o.size = size
            if sha is not None:
                o.sha256 = sha
            o.key = key
            self[i] = o
            return
        # (the usual case, without making an Offer)
        if size is not None:
            self.sizes[i] = size
        flags = self.flags[i] & ~_KEYED
        if digest is not None:
            self.digests[32 * i : 32 * i + 32] = digest
            flags |= _HASHED
        if key is not None and flags & _HASHED and key == (sha or self.sha(i)):
            flags |= _KEYED
        elif key is not None:
            self.rare[i] = {"key": key}
        self.flags[i] = flags
        self.statuses[i], self.rows[i] = _STATUS[status], rows
        if fmt not in self.format_names:
            self.format_names.append(fmt)
        self.formats[i] = self.format_names.index(fmt)

    def seen(self) -> int:
        """How many files are unchanged by stat alone."""
        return sum(self.flags.count(f) for f in range(8) if f & _SEEN)

    def count_of(self, status: str) -> int:
        """How many files have ``status`` (none for a status no file can have, as a list counts)."""
        code = _STATUS.get(status)
        return 0 if code is None else self.statuses.count(code)

    def where(self, *statuses: str) -> Iterator[int]:
        """The files that have one of ``statuses``, in order."""
        codes = {_STATUS[s] for s in statuses}
        return (i for i, code in enumerate(self.statuses) if code in codes)


def _digest(sha: str | None) -> bytes | None:
    """The 32 bytes a SHA-256 written in lower-case hex stands for (None for anything else).

    >>> _digest("0f" * 32) == bytes([15] * 32), _digest("0F" * 32), _digest(None)
    (True, None, None)
    """
    if sha is None or len(sha) != 64:
        return None
    try:
        digest = bytes.fromhex(sha)
    except ValueError:
        return None
    return digest if digest.hex() == sha else None


@dataclass
class IngestReport:
    """What one ingest did."""

    batch_id: str
    offers: Sequence[Offer]
    skipped: list[str] = field(default_factory=list)
    retired_runs: int = 0
    # False when nothing was new (every file unchanged): no batch was committed.
    committed: bool = True
    # The warehouse version the ingest published.
    version: int | None = None
    rows: int = 0

    def count(self, status: str) -> int:
        if isinstance(self.offers, Offers):
            return self.offers.count_of(status)
        return list(map(_status, self.offers)).count(status)  # (in C: 100,000 offers are counted often)

    @property
    def rejected(self) -> list[Offer]:
        if isinstance(self.offers, Offers):
            return [self.offers[i] for i in self.offers.where("rejected")]
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
            if offers.seen() < len(offers) or report.retired_runs:
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


def walk(paths: Iterable[str | os.PathLike[str]], limits: Limits = DEFAULT) -> tuple[Offers, list[str]]:
    """Every file under ``paths``, stat'ed; returns (offers, skipped with the reason why).

    Symlinked folders are not followed (no loops; noted in ``skipped``). Anything that is not a
    regular file (a FIFO would block a reader forever), cannot be stat'ed, is over
    ``limits.file_bytes`` or has a name that is not UTF-8 (no table can store it) is offered and
    rejected, and so is a folder that cannot be listed, so that it is recorded rather than silently
    dropped.
    """
    offers = Offers()
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
                offers.extend(full, sizes, list(map(_mtime_ns, stats)))
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
def _unchanged_by_stat(offers: Offers, state: LedgerState) -> array.array[int]:
    """Pass 1: mark the offers the ledger shows unchanged by stat alone; returns the others to hash."""
    to_hash = array.array("q")
    read, last_seen = state.read, state.last_seen
    statuses, sizes, mtimes = offers.statuses, offers.sizes, offers.mtimes
    for i, path in enumerate(offers.paths):
        if statuses[i]:
            continue
        known = read.get(path)
        if known is None or known[1] == "rejected" or last_seen.get(path) != (sizes[i], mtimes[i]):
            to_hash.append(i)
            continue
        _key, _status, own, deps = known
        if deps and not all(_stat_of(d["path"]) == (d["size"], d["mtime_ns"]) for d in deps):
            to_hash.append(i)
            continue
        offers.unchanged(i, own, deps or None)
    return to_hash


def _ingest_locked(
    wh: Warehouse,
    batch: Commit,
    offers: Offers,
    state: LedgerState,
    workers: int | None,
    progress: ProgressFn | None,
    limits: Limits,
) -> IngestReport:
    to_hash = _unchanged_by_stat(offers, state)
    n_workers = workers or os.cpu_count() or 1
    parallel = n_workers > 1 and len(to_hash) >= PARALLEL_MIN_FILES
    paths, statuses = offers.paths, offers.statuses
    with _worker_pool(n_workers if parallel else 1) as pool:
        # Pass 2: hash what may have changed, or may repeat other content. A new path of a size no
        # other file offered and no file seen before has cannot be either: the parse is the one read
        # of its bytes (it hashes what it parses).
        sizes = Counter(offers.size(i) for i in to_hash)
        if sizes:  # (a re-ingest of unchanged files has no use for the ledger's sizes)
            sizes.update(size for size, _mtime in state.last_seen.values())
        new = [i for i in to_hash if paths[i] not in state.read]
        read_once = {i for i in new if sizes[offers.size(i)] == 1}
        jobs = _Jobs(pool, batch, n_workers if parallel else 1, progress, limits)
        read_once.update(_ends_differ(jobs, offers, new, sizes))
        hashed = array.array("q", (i for i in to_hash if i not in read_once))
        # In batches given out as workers take them, like the parse jobs (see _parse_all); without
        # workers a file at a time, so that progress moves as each file is hashed (a batch of 256
        # large files read here showed none until the last was read). Progress is told per file
        # either way, as it was: (hash, 1, n), (hash, 2, n), ...
        per = HASH_BATCH_FILES if pool else 1
        starts = range(0, len(hashed), per)
        for k, results in zip(starts, _each_file(jobs, _hash_file, paths, hashed, per), strict=True):
            for done, (i, (sha, err)) in enumerate(zip(hashed[k : k + per], results, strict=True), k + 1):
                if err:
                    o = offers[i]
                    o.status, o.reason = "rejected", err
                    offers[i] = o
                else:
                    offers.hashed(i, sha)
                if progress:
                    progress("hash", done, len(hashed))

        # Decide: unchanged content, the bytes of content already held (a copy), or new content.
        to_parse = array.array("q")
        copies: list[tuple[int, str]] = []  # (offer, path of the content it repeats)
        live = state.live if to_hash else {}
        # The content claimed by a file of this ingest, where a later one may repeat it: a claim of
        # every file was a dict as large as the corpus (10 MB of the peak at 100,000 files).
        claimed: dict[str, str] = {}
        repeats = _repeated_prefixes(offers.digests, hashed)
        for i in to_hash:
            if statuses[i]:
                continue
            if i in read_once:
                to_parse.append(i)
                continue
            path, sha = paths[i], offers.sha(i) or ""
            previous = state.content.get(path)
            own, deps = state.read_with.get(path, (None, []))
            if (
                previous
                and own == sha
                and previous[1] != "rejected"
                and all(_hash_file(d["path"])[0] == d["sha256"] for d in deps)
            ):
                o = offers[i]
                o.status, o.depends_on = "unchanged", deps or None
                offers[i] = o
                continue
            holder = claimed.get(sha) or live.get(sha)
            if holder is not None and holder != path:
                copies.append((i, holder))
            else:
                if int.from_bytes(offers.digests[32 * i : 32 * i + 8], "little") in repeats:
                    claimed[sha] = path
                to_parse.append(i)

        # Pass 3: parse and write. A copy is parsed too: where its model comes from its path (a task
        # array named `b_q8_0_results.json`) it holds other runs and is stored; where it reads as the
        # same models, it is a duplicate and nothing of it is written. Copies of content read in
        # this ingest wait for it (second round), so the models to match are known.
        del claimed, read_once, hashed, to_hash
        originals = {orig for _i, orig in copies}
        parsed = {paths[i]: i for i in to_parse if paths[i] in originals}  # the originals read in this ingest
        first = to_parse + array.array("q", [i for i, orig in copies if orig not in parsed])
        del to_parse
        copying: dict[str, tuple[str, list[str] | None]] = {
            paths[i]: (orig, sorted(state.models_by_sha.get(offers.sha(i) or "", set())))
            for i, orig in copies if orig not in parsed
        }  # fmt: skip
        models = _parse_all(jobs, offers, first, copying, start=0, models_of=set(parsed))
        # A copy of content rejected in this ingest is read as a file of its own (rejected for the
        # same reason when the reason is in its bytes), never a duplicate of nothing.
        second = array.array("q", [i for i, orig in copies if orig in parsed])
        rejected = _STATUS["rejected"]
        copying = {paths[i]: (orig, None if statuses[parsed[orig]] == rejected else models[orig])
                   for i, orig in copies if orig in parsed}  # fmt: skip
        _parse_all(jobs, offers, second, copying, start=len(first), models_of=set())
        del first, second, copies, parsed, copying

    rows = sum(offers.rows)  # (only what was parsed has rows)
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


# (the path it copies, the models it must match) of a file that is no copy
_NO_COPY: tuple[None, None] = (None, None)


def _parse_all(
    jobs: _Jobs,
    offers: Offers,
    which: array.array[int],
    copying: dict[str, tuple[str, list[str] | None]],
    start: int,
    models_of: set[str],
) -> dict[str, list[str]]:
    """Parse the offers ``which`` in jobs, each offer given its result as its job's results come;
    returns the models read from the paths in ``models_of``.

    ``copying`` has (path it copies, models it must match) of the offers that are copies; the
    models are None for a copy whose original was rejected: it is read as a file of its own.
    Nothing else of a result is kept: the ingest's memory stays flat in the number of files.
    """
    if not which:
        return {}
    batch = jobs.batch
    root, paths = str(batch.wh.root), offers.paths
    groups = _chunks([offers.sizes[i] for i in which], jobs.workers)

    def job(n: int, group: range) -> tuple[Any, ...]:
        files = [
            (paths[i], offers.sha(i), offers.size(i), *copying.get(paths[i], _NO_COPY))
            for i in which[group.start : group.stop]
        ]
        return root, f"{start + n:05d}", files, batch.batch_id, jobs.limits

    wanted: dict[str, list[str]] = {}
    # A job is built when a worker is about to need it, not all up front: a tuple per file of
    # every job at once was some 20 MB of the ingest's peak at 100,000 files.
    results = _ahead(jobs.pool, parse_chunk, itertools.starmap(job, enumerate(groups)), jobs.workers + 1)
    for group, (chunk_result, written) in zip(groups, results, strict=True):
        for i in which[group.start : group.stop]:
            result = chunk_result[paths[i]]
            offers.parsed(i, result)
            if paths[i] in models_of:
                wanted[paths[i]] = result[5]
        del chunk_result
        for table, path, rows in written:
            batch.add(table, Path(path), rows)
        if jobs.progress:
            jobs.progress("parse", group.stop, len(which))
    return wanted


def _ahead(
    pool: ProcessPoolExecutor | None, fn: Callable[[Any], Any], items: Iterator[Any], ahead: int
) -> Iterator[Any]:
    """``map`` in order, in the pool if there is one, with at most ``ahead`` items given out and
    not yet taken back (``items`` is read no further ahead)."""
    if pool is None:
        yield from map(fn, items)
        return
    pending: collections.deque[Future[Any]] = collections.deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        del item  # (the pool holds it until a worker has it: not this frame too)
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


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
    pool = ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=_start_worker, initargs=(lifeline,))
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
    # The server and its workers take Arrow's memory from the C library's malloc rather than
    # mimalloc, Arrow's default: mimalloc kept what a job of thousands of small files had freed,
    # some 15 MB a worker (Arrow itself never held more than 3 MB), so a corpus of many small
    # files cost far more memory than one of few. (Read once, when Arrow starts in the server: the
    # ingest's own process is not affected; a pool the user chose is left as it is.)
    chosen = _ARROW_POOL in os.environ
    os.environ.setdefault(_ARROW_POOL, "system")
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        if not chosen:
            del os.environ[_ARROW_POOL]
    return ctx


def _start_worker(lifeline: Connection) -> None:
    """Worker initializer: leave what the fork server imported to it, and watch ``lifeline``."""
    # What the worker inherits (pyarrow, pandas, the adapters: some 35 MB) is shared with the fork
    # server and the other workers until written to; the cyclic collector's passes write to every
    # object they visit, so after a few thousand files each worker had its own copy of most of it.
    # Frozen, it is never visited: those objects live as long as the worker anyway.
    gc.freeze()
    _watch_lifeline(lifeline)


def _watch_lifeline(lifeline: Connection) -> None:
    """Exit the moment the ingest's end of ``lifeline`` closes."""

    def watch() -> None:
        with contextlib.suppress(EOFError, OSError):
            lifeline.recv_bytes()
        os._exit(1)

    threading.Thread(target=watch, name="evalhouse-lifeline", daemon=True).start()


def _chunks(sizes: list[int], workers: int) -> list[range]:
    """Split files of these ``sizes`` into jobs of about CHUNK_BYTES (fewer, larger Parquet files);
    returns each job's positions in ``sizes``.

    >>> [len(c) for c in _chunks([2**20] * 10, workers=1)]
    [3, 3, 3, 1]
    """
    total = sum(sizes)
    target = max(1, min(CHUNK_BYTES, total // (workers * CHUNKS_PER_WORKER)))
    chunks: list[range] = []
    first = size = 0
    for i, n in enumerate(sizes):
        size += n
        if size >= target or i + 1 - first >= CHUNK_MAX_FILES:
            chunks.append(range(first, i + 1))
            first, size = i + 1, 0
    if first < len(sizes):
        chunks.append(range(first, len(sizes)))
    return chunks


def _repeated_prefixes(digests: bytearray, which: array.array[int]) -> set[int]:
    """The first 8 bytes (as an int) of the hashes in ``digests`` that at least two of the files
    ``which`` begin with: only those files may repeat one another's content. (Found in NumPy, with
    no Python object per file.)

    >>> digests = bytearray(bytes([1] * 32) + bytes([2] * 32) + bytes([1] * 8 + [3] * 24))
    >>> _repeated_prefixes(digests, array.array("q", [0, 1, 2])) == {int.from_bytes(bytes([1] * 8), "little")}
    True
    """
    if not which:
        return set()
    import numpy as np  # (imported with pyarrow already)

    firsts = np.frombuffer(digests, dtype="<u8")[0::4][np.frombuffer(which, dtype=np.int64)]
    values, counts = np.unique(firsts, return_counts=True)
    return set(values[counts > 1].tolist())


def _stat_of(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _each_file(
    jobs: _Jobs, fn: Callable[[str], Any], paths: list[str], which: Sequence[int], per: int
) -> Iterator[list[Any]]:
    """``fn`` of each of the files ``which`` (positions in ``paths``), in order, a list per batch of
    ``per`` files; in the pool if there is one, the batches made as workers take them (see _ahead)."""
    batches = ((fn, [paths[i] for i in which[k : k + per]]) for k in range(0, len(which), per))
    return _ahead(jobs.pool, _each, batches, 4 * jobs.workers)


def _each(job: tuple[Callable[[str], Any], list[str]]) -> list[Any]:
    fn, paths = job
    return list(map(fn, paths))


def _ends_differ(jobs: _Jobs, offers: Offers, new: list[int], sizes: Counter[int | None]) -> Iterator[int]:
    """The new files (``new``: paths not seen before) that share their size only with other new
    files (``sizes``: of every file offered or seen before) and whose ends differ from those of all
    of them (see :func:`_ends`): no file can be their copy, so their parse is their one read.

    In a corpus of files of similar sizes most sizes repeat (two in three of 10,000 files of ~110 KB),
    and a hash pass read them all twice.
    """
    alike = Counter(offers.size(i) for i in new)
    probed = [i for i in new if sizes[size := offers.size(i)] > 1 and size is not None and alike[size] == sizes[size]]
    if not probed:
        return iter(())
    ends: list[bytes | None] = []
    for got in _each_file(jobs, _ends, offers.paths, probed, HASH_BATCH_FILES):
        ends += got
        if jobs.progress:
            jobs.progress("probe", len(ends), len(probed))
    # A file that could not be read now may be by the time its neighbours are parsed: none of its
    # size is told apart by its ends.
    unread = {offers.size(i) for i, e in zip(probed, ends, strict=True) if e is None}
    counts = Counter(ends)
    once = (i for i, e in zip(probed, ends, strict=True) if e is not None and counts[e] == 1)
    return (i for i in once if offers.size(i) not in unread)


# Bytes read at each end of a file by :func:`_ends`.
ENDS_BYTES = 4096


def _ends(path: str) -> bytes | None:
    """A digest of a regular file's size and its first and last ENDS_BYTES bytes (None when it
    cannot be read: the hash pass reads it, and says why it cannot). Two files whose digests differ
    cannot hold the same bytes; the ends of result files hold their models and times.

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> for name, text in (("a", b"x" * 9000), ("b", b"x" * 4500 + b"y" + b"x" * 4499), ("c", b"x" * 8999 + b"y")):
    ...     _ = Path(d, name).write_bytes(text)
    >>> _ends(f"{d}/a") == _ends(f"{d}/b"), _ends(f"{d}/a") == _ends(f"{d}/c"), _ends(f"{d}/missing")
    (True, False, None)
    """
    from evalhouse.adapters.base import open_regular

    try:
        with open_regular(path) as (fd, st):
            head = os.pread(fd, ENDS_BYTES, 0)
            tail = os.pread(fd, ENDS_BYTES, max(0, st.st_size - ENDS_BYTES))
    except (OSError, BadResultFile):
        return None
    return hashlib.sha256(b"%d\0%b\0%b" % (st.st_size, head, tail)).digest()


def _hash_file(path: str) -> tuple[str | None, str | None]:
    """The SHA-256 of a regular file, or why it has none (``path: (file): reason``)."""
    from evalhouse.adapters.base import open_regular

    try:
        with open_regular(path) as (fd, _st), os.fdopen(fd, "rb", closefd=False) as f:
            return hashlib.file_digest(f, "sha256").hexdigest(), None
    except OSError as exc:
        return None, f"{path}: (file): cannot read: {exc.strerror or exc}"
    except BadResultFile as exc:
        return None, str(exc)


def _retire_replaced(offers: Offers, state: LedgerState, batch: Commit) -> int:
    """Withdraw the runs of content no path holds any more (a file changed, and no copy has it).

    A path whose content equals another's stays attached to it: when the path that was read first
    changes, the copy keeps the content's runs live.
    """
    held = ("ingested", "duplicate", "not-results")
    # Only a path read before, now holding other content, can leave content unheld: when there is
    # none (a first ingest, a re-ingest of unchanged files), the holders need not be worked out.
    if not state.read or not any(offers.paths[i] in state.read for i in offers.where(*held)):
        return 0
    now_held = [offers[i] for i in offers.where(*held)]
    holds = {path: key for path, (key, status) in state.content.items() if status in held}
    for o in now_held:
        holds[o.path] = o.content
    holders: dict[str | None, set[str]] = {}
    for path, key in holds.items():
        holders.setdefault(key, set()).add(path)
    run_ids: set[str] = set()
    for o in now_held:
        previous = state.content.get(o.path)
        if not previous or previous[0] == o.content or previous[1] not in ("ingested", "duplicate"):
            continue
        if holders.get(previous[0], set()) - {o.path}:
            continue  # a copy elsewhere still holds that content
        run_ids.update(state.runs_by_sha.get(previous[0] or "", []))
    batch.remove_runs(run_ids)  # their rows go in the same commit as the new ones come
    return len(run_ids)


def _write_ledger(offers: Offers, batch: Commit) -> None:
    """Record the offers that tell something new: the last state per path plus its real changes.

    A file unchanged by stat alone adds no row, so re-ingesting a corpus does not grow the ledger.
    """
    seen = offers.seen()
    if seen == len(offers):
        return
    from evalhouse.adapters.base import dumps  # (see engine/ingest_worker.py: not for a re-ingest)

    new = range(len(offers)) if not seen else [i for i, f in enumerate(offers.flags) if not f & _SEEN]
    now = (datetime.now(UTC) - _EPOCH) // _MICROSECOND
    rare = offers.rare.get
    schema = FILES.arrow_schema()
    columns: dict[str, Callable[[Sequence[int]], list[Any]]] = {
        "path": lambda rows: [_storable(offers.paths[i]) for i in rows],
        "sha256": lambda rows: [offers.sha(i) for i in rows],
        "size": lambda rows: [offers.size(i) for i in rows],
        "mtime_ns": lambda rows: [rare(i, _NOTHING_RARE).get("mtime_ns", offers.mtimes[i]) for i in rows],
        "format": lambda rows: [offers.format_names[offers.formats[i]] for i in rows],
        "status": lambda rows: [_STATUSES[offers.statuses[i]] for i in rows],
        "reason": lambda rows: [_storable(rare(i, _NOTHING_RARE).get("reason")) for i in rows],
        "rows": lambda rows: [offers.rows[i] for i in rows],
        "depends_on": lambda rows: [
            dumps(d) if (d := rare(i, _NOTHING_RARE).get("depends_on")) else None for i in rows
        ],
        "batch_id": lambda rows: [batch.batch_id] * len(rows),
        "time": lambda rows: [now] * len(rows),
    }

    def batches() -> Iterator[pa.RecordBatch]:
        # A slice of the rows at a time: the ledger of 100,000 files made and written at once,
        # as Arrow columns and then as the Parquet writer's pages, took 50 MB; this way, 30.
        for start in range(0, len(new), LEDGER_BATCH_ROWS):
            rows = new[start : start + LEDGER_BATCH_ROWS]
            yield pa.RecordBatch.from_arrays([_column(columns[f.name](rows), f.type) for f in schema], schema=schema)

    path = batch.path("files", "ledger")
    batch.add("files", path, tables.write_file(path, "files", batches()))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _column(values: list[Any], type_: pa.DataType) -> pa.Array:
    """``values`` (strings, or integers: a timestamp's in its unit) as an Arrow array of ``type_``,
    built from its buffers.

    Not ``pa.array``: given a list, it imports pandas (when installed) to ask whether the list is
    one of its objects, 50 MB of the ingest's memory for a table of strings and integers.

    >>> _column(["a", None, "é"], pa.string()).to_pylist(), _column([None, 2**40], pa.int64()).to_pylist()
    (['a', None, 'é'], [None, 1099511627776])
    """
    n = len(values)
    nulls = values.count(None)
    # Bit i of the validity bitmap says whether values[i] is set (an int's bits, least first).
    valid = int("".join(["0" if v is None else "1" for v in reversed(values)]), 2) if nulls else 0
    bitmap = pa.py_buffer(valid.to_bytes((n + 7) // 8, "little")) if nulls else None
    if pa.types.is_string(type_):
        text = "".join([v for v in values if v is not None])
        sizes = [0 if v is None else len(v) if v.isascii() else len(v.encode()) for v in values]
        offsets = array.array("i", itertools.accumulate(sizes, initial=0))
        buffers = [bitmap, pa.py_buffer(offsets), pa.py_buffer(text.encode())]
    else:
        buffers = [bitmap, pa.py_buffer(array.array("q", [0 if v is None else v for v in values]))]
    return pa.Array.from_buffers(type_, n, buffers, null_count=nulls)
