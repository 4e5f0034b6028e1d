"""Check a warehouse: schema version, Parquet files against the declared schema, the ledger
against the data, leftovers of crashed writers, the views file.

``check`` only reads; ``fix`` removes what a crashed writer left behind and rewrites the views.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from engine.errors import WarehouseError
from engine.schema import SCHEMA_VERSION, TABLES
from engine.warehouse import VIEW_TMP_GLOB, Warehouse, read_meta, sql_literal, write_views_db

_PART = re.compile(r"^(?P<table>[a-z_]+?)(-\d+)?\.parquet$")


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
    if not any(f.level == "error" for f in out):
        out += _check_ledger(wh)
    out += _check_views(wh)
    return out


def _check_files(wh: Warehouse) -> list[Finding]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = []
    for staging in sorted(wh.data.glob(".staging-*")):
        out.append(Finding("warning", f"{staging}: an unfinished batch left by an interrupted writer (not visible)"))
    for tmp in sorted(wh.root.glob(VIEW_TMP_GLOB)):
        out.append(Finding("warning", f"{tmp}: a views file left half-written by an interrupted process"))
    for entry in sorted(wh.data.iterdir()) if wh.data.is_dir() else []:
        if entry.name.startswith(".staging-"):
            continue
        if not (entry.is_dir() and entry.name.startswith("b")):
            out.append(Finding("warning", f"{entry}: not a batch folder; no view reads it"))
            continue
        for f in sorted(entry.iterdir()):
            m = _PART.match(f.name)
            table = TABLES.get(m.group("table")) if m else None
            if table is None:
                out.append(Finding("warning", f"{f}: not a table file of this schema; no view reads it"))
                continue
            try:
                schema = pq.read_schema(f)
            except (OSError, pa.ArrowException) as exc:
                out.append(Finding("error", f"{f}: unreadable Parquet ({exc}); the views will fail"))
                continue
            declared = dict(zip(table.names, table.arrow_schema().types, strict=True))
            for field in schema:
                if field.name not in declared:
                    out.append(Finding("error", f"{f}: column {field.name!r} is not in the {table.name} schema"))
                elif field.type != declared[field.name]:
                    out.append(Finding("error", f"{f}: column {field.name!r} is {field.type}, "
                                                f"declared {declared[field.name]}"))  # fmt: skip
    return out


def _check_ledger(wh: Warehouse) -> list[Finding]:
    from engine.warehouse import connect

    con = connect(wh)
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
            "SELECT run_id FROM runs WHERE source_sha256 NOT IN (SELECT sha256 FROM files WHERE status = 'ingested')",
        ),
        (
            "file(s) recorded as ingested with rows have no runs",
            "SELECT DISTINCT sha256 FROM files WHERE status = 'ingested' AND rows > 0 AND sha256 NOT IN "
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
        for table in TABLES:
            sql = sql.replace(
                "{{parquet:" + table + "}}", f"read_parquet({sql_literal(wh.glob(table))}, union_by_name = true)"
            )
        bad = con.execute(sql).fetchall()
        if bad:
            sample = ", ".join(str(r[0]) for r in bad[:3])
            out.append(Finding("error", f"{len(bad)} {what}: {sample}{' ...' if len(bad) > 3 else ''}"))
    return out


def _check_views(wh: Warehouse) -> list[Finding]:
    import duckdb

    if not wh.db_path.exists():
        return [Finding("warning", f"{wh.db_path}: missing; `evalhouse doctor --fix` writes it")]
    try:
        con = duckdb.connect(str(wh.db_path), read_only=True)
        try:
            names = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
        finally:
            con.close()
    except duckdb.Error as exc:
        return [Finding("warning", f"{wh.db_path}: cannot be opened ({exc}); `evalhouse doctor --fix` rewrites it")]
    from engine.schema import VIEWS

    missing = sorted(set(VIEWS) - names)
    return [Finding("warning", f"{wh.db_path}: lacks views {', '.join(missing)}")] if missing else []


def fix(root: str | os.PathLike[str]) -> list[str]:
    """Remove leftovers of interrupted writers and rewrite the views file; returns what was done."""
    from engine.warehouse import lock, open_warehouse

    wh = open_warehouse(root)
    done = []
    with lock(wh):
        for staging in sorted(wh.data.glob(".staging-*")):
            shutil.rmtree(staging, ignore_errors=True)
            done.append(f"removed {staging}")
        for tmp in sorted(wh.root.glob(VIEW_TMP_GLOB)):
            tmp.unlink(missing_ok=True)
            done.append(f"removed {tmp}")
        write_views_db(wh)
        done.append(f"rewrote {wh.db_path}")
    return done
