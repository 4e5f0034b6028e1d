"""What ``fix`` does: finish or undo unfinished commits, set aside unknown and damaged files,
remove temporary leftovers, rewrite the views file, and drop lost files in one ``repair`` version
that withdraws the runs whose rows they may have held, for re-ingest."""

from __future__ import annotations

import contextlib
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from evalhouse import tables, versions
from evalhouse.commit import COMMIT_ORDER, RUN_TABLES, Commit, recover
from evalhouse.doctor.checks import LostFile, _scan, quarantine_path
from evalhouse.doctor.meta import damaged, rebuild
from evalhouse.errors import WarehouseError
from evalhouse.schema import FILES, SCHEMA_VERSION, TABLES
from evalhouse.warehouse import Warehouse, fsync, lock, read_meta, views_are_current, write_views_db


def fix(root: str | os.PathLike[str]) -> list[str]:
    """Repair what :func:`check` finds that can be repaired; returns what was done, one line each.

    Waits for the write lock. A damaged or lost evalhouse.json is rebuilt from the data (see
    engine/doctor/meta.py). A warehouse whose versions or Delta logs cannot be read is left as it
    is: this raises WarehouseError saying what (restore it from a backup).
    """
    wh = Warehouse(Path(root).resolve())
    done: list[str] = rebuild(wh) if damaged(wh) else []
    if _needs_opening(wh):
        # An unfinished creation, an older schema: opening finishes or upgrades it, or says why not.
        from evalhouse.warehouse import open_warehouse

        open_warehouse(wh.root)
    from evalhouse.migrate import LEFTOVERS, remove_leftovers

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
    from evalhouse.ingest import content_key

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
    """Each path's latest ledger row that read it (as evalhouse.ingest.LedgerState decides).

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
