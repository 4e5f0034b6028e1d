"""``evalhouse export --format parquet OUT``: the live warehouse as plain Parquet, for BI tools.

One folder per table (``OUT/<table>/part-00000.parquet``, zstd, a new part only past ~1 GiB of
data), readable as a dataset by pyarrow, Polars, DuckDB, Spark or any Parquet reader, and a data
dictionary of every exported column (``OUT/data_dictionary.json``, ``OUT/DATA_DICTIONARY.md``).
The tables, their columns, types and meanings all come from ``evalhouse.schema``:

- ``runs``, ``scores``, ``metrics``: the views of the same name (the live rows);
- ``texts``: the stored texts of the live runs (join ``scores`` on run_id, sample_id);
- ``files``: the ingest ledger;
- ``comparisons``: the newest ``evalhouse compare``, every scope (the views ``comparisons`` and
  ``category_comparisons`` together).

With ``-m``, the run tables keep the chosen models' runs, ``comparisons`` the pairs of two chosen
models and ``files`` the offers of their source files.

It reads one snapshot: the views of the connection it is given name the files committed when it
was opened, so an ingest meanwhile changes nothing in it. The export is written beside OUT and
renamed into place, so a reader sees the old export or the new one, never a mixture. An
existing OUT is replaced only when it is an earlier export (it holds ``MARKER``) or an empty
folder; anything else is refused.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
import shutil
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from evalhouse import __version__
from evalhouse.errors import ExportError
from evalhouse.schema import SCHEMA_VERSION, TABLES, VIEWS, Column, Table
from evalhouse.warehouse import fsync, os_reason, table_source

if TYPE_CHECKING:
    from evalhouse.export import ExportJob, ExportReport

MARKER = ".evalhouse-export.json"
DICTIONARY_JSON = "data_dictionary.json"
DICTIONARY_MD = "DATA_DICTIONARY.md"
COMPRESSION = "zstd"
# Rows per row group (DuckDB's own row-group size): large enough for column statistics to skip
# work, small enough that a batch of long texts stays a modest amount of memory.
ROW_GROUP = 122_880
# A part file is closed once this much (uncompressed) data went into it: a few large files.
PART_BYTES = 1 << 30

# DuckDB's name for each declared Arrow type: what `DESCRIBE` and BI tools show.
_SQL_TYPES = {
    "string": "VARCHAR",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "double": "DOUBLE",
    "bool": "BOOLEAN",
    "timestamp[us]": "TIMESTAMP",
    "timestamp[us, tz=UTC]": "TIMESTAMP WITH TIME ZONE",
}


@dataclass(frozen=True)
class Exported:
    """One exported table: its declaration (name, meaning, columns) and the query for its rows.

    ``sql`` selects from the views (texts: from its stored files, ``{texts}``) the declared
    ``{columns}`` of the chosen live runs (registered as ``_export_runs``); a table not keyed by run
    has a ``{where}`` for ``only_chosen``, the filter applied when ``-m`` chose models.
    """

    table: Table
    sql: str
    only_chosen: str = ""

    @property
    def name(self) -> str:
        return self.table.name

    def arrow_schema(self) -> pa.Schema:
        """The declared schema, each field carrying its meaning (readers that show metadata see it)."""
        return pa.schema(
            [pa.field(c.name, c.type, metadata={"description": c.doc}) for c in self.table.columns],  # type: ignore[arg-type]
            metadata={"description": self.table.doc},
        )


_CHOSEN = "run_id IN (SELECT run_id FROM _export_runs)"
_CHOSEN_MODELS = "(SELECT model FROM runs WHERE run_id IN (SELECT run_id FROM _export_runs))"

EXPORTED: dict[str, Exported] = {
    e.name: e
    for e in (
        Exported(
            Table("runs", VIEWS["runs"].doc, TABLES["runs"].columns),
            f"SELECT {{columns}} FROM runs WHERE {_CHOSEN} ORDER BY run_id",
        ),
        Exported(
            Table("scores", VIEWS["scores"].doc, TABLES["scores"].columns),
            f"SELECT {{columns}} FROM scores WHERE {_CHOSEN} ORDER BY run_id, sample_id, metric, epoch",
        ),
        Exported(
            Table(
                "texts",
                "The question, response and expected answer of each answer of the live runs "
                "(join `scores` on run_id and sample_id).",
                TABLES["texts"].columns,
            ),
            f"SELECT {{columns}} FROM {{texts}} WHERE {_CHOSEN} ORDER BY run_id, sample_id",
        ),
        Exported(
            Table("metrics", VIEWS["metrics"].doc, TABLES["metrics"].columns),
            f"SELECT {{columns}} FROM metrics WHERE {_CHOSEN} "
            "ORDER BY run_id, benchmark, category, task, filter, metric",
        ),
        Exported(
            Table("files", TABLES["files"].doc, TABLES["files"].columns),
            "SELECT {columns} FROM files {where} ORDER BY time, path",
            "WHERE path IN (SELECT source_path FROM runs WHERE run_id IN (SELECT run_id FROM _export_runs))",
        ),
        Exported(
            Table(
                "comparisons",
                "The newest `evalhouse compare`, every scope: the rows of the views `comparisons` (scope "
                "`overall`) and `category_comparisons` (scope `category` or `benchmark`).",
                TABLES["comparisons"].columns,
            ),
            "SELECT {columns} FROM (SELECT * FROM comparisons UNION ALL BY NAME SELECT * FROM category_comparisons) "
            "{where} ORDER BY scope = 'overall' DESC, baseline, candidate, metric NULLS FIRST, scope, benchmark, "
            "category",
            f"WHERE baseline IN {_CHOSEN_MODELS} AND candidate IN {_CHOSEN_MODELS}",
        ),
    )
}


def sql_type(column: Column) -> str:
    """The DuckDB type a reader of the export (or of the views) sees for a declared column.

    >>> sql_type(TABLES["runs"].columns[0]), sql_type(TABLES["runs"].columns[-4]), sql_type(VIEWS["models"].columns[3])
    ('VARCHAR', 'TIMESTAMP WITH TIME ZONE', 'BIGINT')
    """
    return column.type if isinstance(column.type, str) else _SQL_TYPES[column.type_name]


def choose_tables(names: Sequence[str] | None) -> list[Exported]:
    """The tables to export, in their canonical order: all of them, or those named.

    >>> [e.name for e in choose_tables(["scores", "runs", "scores"])]
    ['runs', 'scores']
    """
    if names is None:
        return list(EXPORTED.values())
    known = ", ".join(EXPORTED)
    if not names:
        raise ExportError(f"--tables names no table; choose from {known}")
    for name in names:
        if name not in EXPORTED:
            raise ExportError(f"unknown table {name!r} for --tables; choose from {known}")
    return [e for e in EXPORTED.values() if e.name in names]


def write_parquet(job: ExportJob) -> ExportReport:
    """Write the chosen tables of ``job`` as Parquet folders with a data dictionary, replacing OUT whole."""
    from evalhouse.export import ExportReport

    chosen = choose_tables(job.tables)
    out = Path(os.path.abspath(job.out))  # `..` resolved, a symbolic link not followed
    _check_destination(out)
    report = ExportReport(out, runs=len(job.run_ids))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(out)
        tmp = out.parent / f".{out.name}.export-{os.getpid()}-{secrets.token_hex(4)}"
        tmp.mkdir()
    except OSError as exc:
        raise ExportError(f"cannot write {out}: {os_reason(exc)}") from None
    try:
        job.con.register("_export_runs", pa.table({"run_id": pa.array(job.run_ids, pa.string())}))
        texts = table_source(job.wh, "texts")  # the version the views read (the warehouse is pinned)
        entries = []
        for exported in chosen:
            columns = ", ".join(f'"{c}"' for c in exported.table.names)
            where = exported.only_chosen if job.models else ""
            sql = exported.sql.format(columns=columns, texts=texts, where=where)
            files, rows = _write_table(job.con, sql, exported.arrow_schema(), tmp / exported.name)
            report.tables[exported.name] = rows
            report.files += [out / f.relative_to(tmp) for f in files]
            entries.append((exported, rows, [f.relative_to(tmp).as_posix() for f in files]))
        dictionary = data_dictionary(entries)
        (tmp / DICTIONARY_JSON).write_bytes(orjson.dumps(dictionary, option=orjson.OPT_INDENT_2) + b"\n")
        (tmp / DICTIONARY_MD).write_text(dictionary_markdown(dictionary), encoding="utf-8")
        marker = {key: dictionary[key] for key in ("format", "evalhouse_version", "schema_version", "exported_at")}
        (tmp / MARKER).write_bytes(orjson.dumps({**marker, "tables": [e.name for e in chosen]}) + b"\n")
        _fsync_tree(tmp)
        _check_destination(out)  # again: something may have appeared there meanwhile
        _put_in_place(tmp, out)
    except OSError as exc:
        raise ExportError(f"cannot write {out}: {os_reason(exc)}") from None
    except duckdb.Error as exc:  # a file removed meanwhile (`doctor --fix`, an old comparison pruned)
        raise ExportError(f"cannot read {job.wh.name}: {exc}", hint="run the export again") from None
    finally:
        with contextlib.suppress(Exception):
            job.con.unregister("_export_runs")
        shutil.rmtree(tmp, ignore_errors=True)
    return report


def _write_table(con: Any, sql: str, schema: pa.Schema, folder: Path) -> tuple[list[Path], int]:
    """Stream a query's rows into ``folder/part-NNNNN.parquet`` files with the declared schema."""
    folder.mkdir()
    files: list[Path] = []
    rows = 0
    writer: pq.ParquetWriter | None = None
    written = 0
    try:
        for batch in _batches(con, sql):
            if writer is None or written >= PART_BYTES:
                if writer is not None:
                    writer.close()
                files.append(folder / f"part-{len(files):05d}.parquet")
                writer = pq.ParquetWriter(files[-1], schema, compression=COMPRESSION)
                written = 0
            # The declared types: DuckDB labels a TIMESTAMPTZ with its session's zone, and a view
            # over old batches may widen nothing, but the export promises exactly the schema.
            writer.write_batch(batch.cast(schema), row_group_size=ROW_GROUP)
            written += batch.nbytes
            rows += batch.num_rows
        if writer is None:  # no rows: one empty file still gives readers the schema
            files.append(folder / "part-00000.parquet")
            pq.write_table(schema.empty_table(), files[-1], compression=COMPRESSION)
    finally:
        if writer is not None:
            writer.close()
    return files, rows


def _batches(con: Any, sql: str) -> Iterator[pa.RecordBatch]:
    for batch in con.sql(sql).to_arrow_reader(ROW_GROUP):
        if batch.num_rows:
            yield batch


def data_dictionary(entries: Sequence[tuple[Exported, int, list[str]]]) -> dict[str, Any]:
    """The export's data dictionary: each table's folder, files, rows and every column's type and meaning."""
    return {
        "format": "parquet",
        "compression": COMPRESSION,
        "evalhouse_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "tables": [
            {
                "name": e.name,
                "doc": e.table.doc,
                "path": f"{e.name}/",
                "files": files,
                "rows": rows,
                "columns": [
                    {"name": c.name, "type": c.type_name, "sql_type": sql_type(c), "doc": c.doc}
                    for c in e.table.columns
                ],
            }
            for e, rows, files in entries
        ],
    }


def dictionary_markdown(dictionary: dict[str, Any]) -> str:
    """The data dictionary as Markdown (``DATA_DICTIONARY.md``)."""

    def cell(text: str) -> str:
        # The schema's own text (Markdown, trusted): only a pipe would break the table's row.
        return text.replace("|", "\\|")

    lines = [
        "# Data dictionary",
        "",
        f"Exported by evalhouse {dictionary['evalhouse_version']} (schema version {dictionary['schema_version']}) "
        f"at {dictionary['exported_at']}: one folder of {dictionary['compression']}-compressed Parquet files per "
        "table; read a folder as one dataset. Only live rows are exported.",
        "",
    ]
    for t in dictionary["tables"]:
        lines += [f"## `{t['name']}`", "", t["doc"], "", f"Folder `{t['path']}`, {t['rows']} row(s).", ""]
        lines += ["| column | Parquet (Arrow) type | SQL type | meaning |", "|---|---|---|---|"]
        lines += [
            "| " + " | ".join(cell(v) for v in (f"`{c['name']}`", c["type"], c["sql_type"], c["doc"])) + " |"
            for c in t["columns"]
        ]
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Replacing OUT
# ---------------------------------------------------------------------------------------------


def _check_destination(out: Path) -> None:
    """Refuse an OUT that holds anything but an earlier export (or nothing)."""
    if out.is_symlink():
        raise ExportError(f"{out} is a symbolic link; not replacing it", hint="give the folder's own path")
    if not out.exists():
        return
    if not out.is_dir():
        raise ExportError(f"{out} exists and is not a folder", hint="choose another OUT")
    try:
        if (out / MARKER).is_file() or next(out.iterdir(), None) is None:
            return
    except OSError as exc:
        raise ExportError(f"cannot read {out}: {os_reason(exc)}") from None
    raise ExportError(
        f"{out} exists and is not an evalhouse export; not overwriting it",
        hint="choose a new folder, or remove it first",
    )


def _put_in_place(tmp: Path, out: Path) -> None:
    """Move the finished export ``tmp`` to ``out``, replacing an earlier export in one step where possible."""
    if not out.exists() or next(out.iterdir(), None) is None:
        os.rename(tmp, out)  # rename replaces an empty folder
    elif _exchange(tmp, out):
        shutil.rmtree(tmp)  # now the earlier export
    else:
        # No atomic exchange here: the earlier export is moved aside first, so for the moment
        # between the two renames OUT is missing, never half-written.
        old = tmp.with_name(tmp.name.replace(".export-", ".old-", 1))
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    fsync(out.parent)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # a C library without it (musl before 1.2.?, old glibc)
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):  # kernel or file system without it
        return False
    raise OSError(code, os.strerror(code), str(b))


def _remove_abandoned(out: Path) -> None:
    """Delete the temporary folders of exports to ``out`` whose process is gone (killed mid-export)."""
    for kind in ("export", "old"):
        for p in out.parent.glob(f".{out.name}.{kind}-*-*"):
            pid = p.name[len(f".{out.name}.{kind}-") :].split("-", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(p, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_tree(root: Path) -> None:
    """Flush every file and folder under ``root`` before it is renamed into place."""
    for folder, _, names in os.walk(root):
        for name in names:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync(Path(folder))
