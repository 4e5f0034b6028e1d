"""Check a warehouse: schema version, each batch's files against what its writer committed, the
ledger against the data, leftovers of crashed writers, the views file.

``check`` only reads; ``fix`` removes what a crashed writer left behind, moves files no writer
put in a batch to ``quarantine/``, and rewrites the views.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import WarehouseError
from engine.schema import SCHEMA_VERSION, TABLES
from engine.warehouse import (
    BATCH_NAME,
    MANIFEST,
    META_TMP_GLOB,
    VIEW_TMP_GLOB,
    Warehouse,
    committed_files,
    file_literal,
    fill_tables,
    read_manifest,
    read_meta,
    table_of,
    views_are_current,
    write_views_db,
)

if TYPE_CHECKING:
    import duckdb

# Where `doctor --fix` moves files found in a batch folder that no writer put there:
# quarantine/<batch_id>/<name>, outside data/, so nothing reads them and nothing is lost.
QUARANTINE = "quarantine"


@dataclass(frozen=True)
class Finding:
    """One thing doctor noticed: ``error`` (data at risk or misread) or ``warning`` (harmless)."""

    level: str
    what: str

    def __str__(self) -> str:
        return f"{self.level}: {self.what}"


def check(root: str | os.PathLike[str]) -> list[Finding]:
    """Everything wrong with the warehouse at ``root`` (an empty list when it is healthy).

    >>> import tempfile; from engine.warehouse import open_warehouse
    >>> check(open_warehouse(tempfile.mkdtemp() + "/w", create=True).root)
    []
    """
    wh = Warehouse(Path(root).resolve())
    if not wh.meta_path.exists():
        what = "no evalhouse.json" + (" but a data folder exists" if wh.data.exists() else "")
        return [Finding("error", f"{wh.root}: not a warehouse ({what})")]
    try:
        meta = read_meta(wh)
    except WarehouseError as exc:
        return [Finding("error", str(exc))]
    out: list[Finding] = []
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        out.append(Finding("error", f"schema_version is {version!r}; this evalhouse writes {SCHEMA_VERSION}"))
    out += _check_files(wh)
    try:
        if not any(f.level == "error" for f in out):
            out += _check_ledger(wh)
        out += _check_views(wh)
    except WarehouseError as exc:  # a warehouse whose files DuckDB cannot name
        out.append(Finding("error", str(exc)))
    return out


def unknown_files(wh: Warehouse) -> list[Path]:
    """Files in committed batch folders that no view reads: not written by evalhouse's writers
    (``scores-00000 (1).parquet``), or not in the manifest the batch was committed with."""
    out = []
    for batch in wh.batch_dirs():
        read = {f.name for f in committed_files(batch)}
        out += [f for f in sorted(batch.iterdir()) if f.name != MANIFEST and f.name not in read]
    return out


def quarantine_path(wh: Warehouse, f: Path) -> Path:
    """Where ``fix`` moves an unknown file: quarantine/<batch_id>/<name> (numbered if taken)."""
    dest = wh.root / QUARANTINE / f.parent.name / f.name
    n = 1
    while dest.exists():
        dest = dest.with_name(f"{f.name}.{n}")
        n += 1
    return dest


def _check_files(wh: Warehouse) -> list[Finding]:
    out = []
    for staging in sorted(wh.data.glob(".staging-*")):
        out.append(Finding("warning", f"{staging}: an unfinished batch left by an interrupted writer (not visible)"))
    for tmp in sorted(wh.root.glob(VIEW_TMP_GLOB)):
        out.append(Finding("warning", f"{tmp}: a views file left half-written by an interrupted process"))
    for tmp in sorted(wh.root.glob(META_TMP_GLOB)):
        out.append(Finding("warning", f"{tmp}: a copy of evalhouse.json left half-written by an interrupted process"))
    for entry in sorted(wh.data.iterdir()) if wh.data.is_dir() else []:
        if entry.name.startswith(".staging-"):
            continue
        if not (entry.is_dir() and BATCH_NAME.fullmatch(entry.name)):
            out.append(Finding("warning", f"{entry}: not a batch folder; no view reads it"))
            continue
        out += _check_batch(wh, entry)
    for f in unknown_files(wh):
        out.append(Finding("warning", f"{f}: not a file evalhouse committed; no view reads it "
                                      f"(`evalhouse doctor --fix` moves it to {quarantine_path(wh, f)})"))  # fmt: skip
    return out


def _check_batch(wh: Warehouse, batch: Path) -> list[Finding]:
    """A batch's files against its manifest (rows, presence) and the declared schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = []
    try:
        manifest = read_manifest(batch) or {}
    except WarehouseError as exc:
        out.append(Finding("error", f"{exc}; its files are read by their names"))
        manifest = {}
    for name, entry in sorted(manifest.items()):
        if not table_of(name) or (batch / name).is_file():
            continue
        if entry.get("rows") == 0:
            out.append(Finding("warning", f"{batch / name}: missing (it held no rows)"))
        else:
            out.append(Finding("error", f"{batch / name}: missing; the {entry.get('rows', '?')} {table_of(name)} "
                                        "row(s) committed in it are lost from the views"))  # fmt: skip
    for f in committed_files(batch):
        table = TABLES[table_of(f.name) or ""]
        try:
            parquet = pq.ParquetFile(f)
            schema, rows = parquet.schema_arrow, parquet.metadata.num_rows
        except (OSError, pa.ArrowException) as exc:
            out.append(Finding("error", f"{f}: unreadable Parquet ({exc}); the views will fail"))
            continue
        committed = manifest.get(f.name, {}).get("rows")
        if committed is not None and committed != rows:
            out.append(Finding("error", f"{f}: holds {rows} row(s), committed with {committed} (replaced since)"))
        declared = dict(zip(table.names, table.arrow_schema().types, strict=True))
        for field in schema:
            if field.name not in declared:
                out.append(Finding("error", f"{f}: column {field.name!r} is not in the {table.name} schema"))
            elif field.type != declared[field.name]:
                out.append(Finding("error", f"{f}: column {field.name!r} is {field.type}, "
                                            f"declared {declared[field.name]}"))  # fmt: skip
    return out


def _check_ledger(wh: Warehouse) -> list[Finding]:
    import pyarrow as pa

    from engine.warehouse import connect

    con = connect(wh)
    # What runs.source_sha256 holds for each ingested offer: the file's hash, combined with those
    # of the files read with it (see engine.ingest.content_key).
    ingested = con.execute(
        "SELECT sha256, depends_on, rows FROM files WHERE status = 'ingested' AND sha256 IS NOT NULL"
    ).fetchall()
    keys = pa.table(
        {"content": [_content_key(sha, deps) for sha, deps, _ in ingested], "rows": [r for *_, r in ingested]}
    )
    con.register("_ingested", keys)
    out = []
    checks = [
        (
            "run(s) appear in more than one live copy (duplicated data)",
            "SELECT run_id FROM runs GROUP BY run_id HAVING count(*) > 1",
        ),
        (
            "score rows belong to no live run (orphans)",
            "SELECT DISTINCT run_id FROM {{parquet:scores}} WHERE run_id NOT IN (SELECT run_id FROM {{parquet:runs}})",
        ),
        (
            "run(s) come from content the ledger never recorded as ingested",
            "SELECT run_id FROM runs WHERE source_sha256 NOT IN (SELECT content FROM _ingested)",
        ),
        (
            "file(s) recorded as ingested with rows have no runs",
            "SELECT DISTINCT content FROM _ingested WHERE rows > 0 AND content NOT IN "
            "(SELECT source_sha256 FROM {{parquet:runs}})",
        ),
        (
            "run(s) whose n_items disagrees with their score rows",
            "SELECT r.run_id FROM runs AS r LEFT JOIN (SELECT run_id, count(DISTINCT sample_id) AS n FROM scores "
            "GROUP BY run_id) AS s USING (run_id) WHERE coalesce(s.n, 0) <> r.n_items AND r.n_items > 0 "
            "AND r.run_id NOT IN (SELECT run_id FROM metrics)",
        ),
    ]
    for what, sql in checks:
        bad = con.execute(fill_tables(wh, sql)).fetchall()
        if bad:
            sample = ", ".join(str(r[0]) for r in bad[:3])
            out.append(Finding("error", f"{len(bad)} {what}: {sample}{' ...' if len(bad) > 3 else ''}"))
    out += _check_ledger_rows(wh, con)
    return out


def _content_key(sha256: str, depends_on: str | None) -> str:
    import orjson

    from engine.ingest import content_key

    return content_key(sha256, orjson.loads(depends_on) if depends_on else None) or sha256


def _check_ledger_rows(wh: Warehouse, con: duckdb.DuckDBPyConnection) -> list[Finding]:
    """Each batch's score and metric rows against the ledger's count (``files.rows``) for it.

    An ingest writes its ledger in the batch that holds the rows, so a deleted, truncated or
    replaced scores or metrics file shows here even in a batch committed without a manifest.
    """
    import pyarrow.parquet as pq

    recorded = dict(
        con.execute("SELECT batch_id, sum(rows) FROM files WHERE status = 'ingested' GROUP BY batch_id").fetchall()
    )
    out = []
    for batch in wh.batch_dirs():
        if batch.name not in recorded:
            continue
        stored = sum(
            pq.read_metadata(f).num_rows for f in committed_files(batch) if table_of(f.name) in ("scores", "metrics")
        )
        if stored != recorded[batch.name]:
            what = f"the ledger records {recorded[batch.name]} score and metric row(s) ingested in this batch"
            out.append(Finding("error", f"{batch}: {what}; its scores and metrics files hold {stored}"))
    return out


def _check_views(wh: Warehouse) -> list[Finding]:
    import duckdb

    from engine.schema import VIEWS
    from engine.warehouse import connect

    if not wh.db_path.exists():
        return [Finding("warning", f"{wh.db_path}: missing; `evalhouse doctor --fix` writes it")]
    listing = "SELECT view_name, sql FROM duckdb_views() WHERE NOT internal"
    try:
        con = duckdb.connect(str(wh.db_path), read_only=True)
        try:
            stored = dict(con.execute(listing).fetchall())
        finally:
            con.close()
    except duckdb.Error as exc:
        out = [Finding("warning", f"{wh.db_path}: cannot be opened ({exc}); `evalhouse doctor --fix` rewrites it")]
        if not views_are_current(wh):  # what evalhouse.json says it was written for, then
            out.append(_stale(wh, "files other than this warehouse's current ones"))
        return out
    missing = sorted(set(VIEWS) - set(stored))
    if missing:
        return [Finding("warning", f"{wh.db_path}: lacks views {', '.join(missing)}")]
    try:
        current = dict(connect(wh).execute(listing).fetchall())
    except duckdb.Error:  # a file the views cannot read, reported above; compare what evalhouse.json says
        return [] if views_are_current(wh) else [_stale(wh, "files other than this warehouse's current ones")]
    if all(stored[name] == current[name] for name in VIEWS):
        return []
    here = file_literal(str(wh.data) + os.sep)[1:-1]
    if not any(here in stored[name] for name in VIEWS):
        return [_stale(wh, "another folder's files (the warehouse was moved or copied)")]
    return [_stale(wh, "a list of files that is not the current one")]


def _stale(wh: Warehouse, reads: str) -> Finding:
    return Finding("error", f"{wh.db_path}: stale: its views read {reads}; any evalhouse command run on "
                            "the warehouse, or `evalhouse doctor --fix`, rewrites it")  # fmt: skip


def fix(root: str | os.PathLike[str]) -> list[str]:
    """Remove leftovers of interrupted writers, move unknown files in batch folders to quarantine/,
    and rewrite the views file; returns what was done."""
    from engine.warehouse import lock, open_warehouse

    wh = open_warehouse(root)
    done = []
    with lock(wh):
        for staging in sorted(wh.data.glob(".staging-*")):
            shutil.rmtree(staging, ignore_errors=True)
            done.append(f"removed {staging}")
        for tmp in sorted([*wh.root.glob(VIEW_TMP_GLOB), *wh.root.glob(META_TMP_GLOB)]):
            tmp.unlink(missing_ok=True)
            done.append(f"removed {tmp}")
        for f in unknown_files(wh):
            dest = quarantine_path(wh, f)
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(f, dest)
            except OSError as exc:
                raise WarehouseError(f"cannot move {f} to {dest}: {exc.strerror or exc}") from None
            done.append(f"moved {f} to {dest}")
        write_views_db(wh)
        done.append(f"rewrote {wh.db_path}")
    return done
