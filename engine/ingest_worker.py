"""Ingest's worker side: read files, convert their runs' rows to Arrow and write the chunk's Parquet files.

A parse job (:func:`parse_chunk`) runs in a worker process (see engine/ingest.py's pool) or, for a
few files, in the ingest itself. Everything one file does, up to its rows converted for writing, is
that file's alone: a failure rejects the file and the chunk goes on.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from evalhouse import tables
from evalhouse.errors import BadResultFile
from evalhouse.limits import DEFAULT, Limits, nesting
from evalhouse.schema import METRICS, RUNS, SCORES, TEXTS, Table

# The adapters are imported by the functions that read files, not with this module: the ingest
# imports this module, and a re-ingest of unchanged files, which reads none, would spend a tenth of
# its time importing them. The workers' fork server imports them ahead (engine/ingest.py).
if TYPE_CHECKING:
    from evalhouse.adapters.base import RunBuilder, Source

# Rows a worker buffers before writing a row group: bounds memory, keeps row groups large.
FLUSH_ROWS = 100_000


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
    return (*_read_data(path, data, actual, limits), actual)


def _read_data(
    path: str, data: bytes, sha256: str, limits: Limits
) -> tuple[str, list[RunBuilder], list[dict[str, Any]] | None]:
    """The format, runs and dependencies of a file's bytes (see :func:`read_source`)."""
    from evalhouse import adapters
    from evalhouse.adapters.base import Source

    source = Source(path, data, sha256, limits)
    if not data or data.isspace():  # (not data.strip(), which copies the whole file)
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
                return adapter.NAME, runs, deps
            except BadResultFile as exc:
                exc.format = adapter.NAME
                raise
    if refused is not None:
        raise refused
    raise BadResultFile(path, "(file)", f"no adapter recognises this content ({_describe(source)})")


def _read_bytes(path: str, limits: Limits) -> bytes:
    """The bytes of a regular file of at most ``limits.file_bytes`` (opened without blocking on a FIFO)."""
    from evalhouse.adapters.base import open_regular, read_at_most

    with open_regular(path) as (fd, st), os.fdopen(fd, "rb", closefd=False) as f:
        data = read_at_most(f, st.st_size, limits.file_bytes)
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
            # Every row carries its run; scores and metrics carry the model too (texts join on the run).
            parts = (("scores", run.scores, n), ("texts", run.texts, len(run.texts["sample_id"])),
                     ("metrics", run.metrics, nm))  # fmt: skip
            for table, columns, count in parts:
                out = b[table]
                out["run_id"].extend([run_id] * count)
                if table != "texts":
                    out["model"].extend([run.model] * count)
                for col, values in columns.items():
                    out[col].extend(values)
        return rows

    def _metadata(self, path: str, metadata: dict[str, Any]) -> str | None:
        if not metadata:
            return None
        from evalhouse.adapters.base import dumps

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


# (format, status, reason, rows, dependencies, models of its runs, SHA-256 of the bytes parsed, key,
# size of the bytes parsed)
# (..., the content key its runs are stored under: salted with the models for a copy whose models
# come from its path, see parse_chunk; None when nothing was stored; the size None when not read)
ParseResult = tuple[
    str | None, str, str | None, int, list[dict[str, Any]] | None, list[str], str | None, str | None, int | None
]


def parse_chunk(
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
        out[path] = (out[path][0], "rejected", reason, 0, None, [], out[path][6], None, out[path][8])


def _parse_one(
    writer: _ChunkWriter, path: str, expected: str, original: str | None, original_models: list[str] | None
) -> ParseResult:
    """Read one file and convert its rows (see :func:`parse_chunk`); never raises for the file's sake."""
    fmt: str | None = None
    sha256: str | None = None  # of the bytes read: the ledger's record of a file, also when rejected
    size: int | None = None
    try:
        data = _read_bytes(path, writer.limits)
        sha256, size = hashlib.sha256(data).hexdigest(), len(data)
        fmt, runs, deps = _read_data(path, data, sha256, writer.limits)
        del data  # (the runs hold what is needed of it)
        models = sorted({r.model for r in runs if r.n_scores or r.n_metrics})
        key = content_key(sha256, deps) or sha256
        if original is not None and original_models is not None and sha256 == expected:
            if models == sorted(original_models):
                return (fmt, "duplicate", f"same content as {original}", 0, deps, models, sha256, None, size)
            key = hashlib.sha256("\0".join([key, *models]).encode()).hexdigest()
        if not models:
            return (fmt, "not-results", f"{path}: holds no scores", 0, deps, models, sha256, None, size)
        if deps and not all(_utf8(d["path"]) for d in deps):
            raise BadResultFile(path, "(dependencies)", "a file read with it has a name that is not valid UTF-8")
        return (fmt, "ingested", None, writer.add(path, key, fmt, runs), deps, models, sha256, key, size)
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
    return (fmt, "rejected", reason, 0, None, [], sha256, None, size)
