"""Upgrading a warehouse of the previous layout (data/<batch>/*.parquet, schema 1 and 2) to Delta tables.

The old warehouse is built by hand here, file by file, as the old writers laid it out; the rows the
upgrade must keep are computed from those files independently of engine/migrate.py, then read back
through the views and through Delta Lake itself.
"""

from __future__ import annotations

import errno
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import evalhouse.commit
import evalhouse.migrate
from evalhouse import versions
from evalhouse.commit import Commit
from evalhouse.errors import WarehouseError
from evalhouse.migrate import remove_leftovers, upgrade
from evalhouse.schema import SCHEMA_VERSION, TABLES
from evalhouse.warehouse import Warehouse, connect, file_literal, open_warehouse, read_meta, table_source

OLD_TABLES = (*TABLES, "retired")
RETIRED_SCHEMA = pa.schema([("run_id", pa.string()), ("reason", pa.string()), ("batch_id", pa.string())])
# Columns schema 2 added: schema-1 files lack them.
ADDED_IN_2 = {"scores": "item_hash", "files": "depends_on"}
CREATED_AT = "2025-01-01T00:00:00+00:00"

INIT = "b00000000T000000000000-init"
B1 = "b20250101T000000000000-a1b2c3"  # schema 1, written before batches had a manifest
UPGRADE_1_2 = "b20250102T000000000000-schema-d4e5f6"  # the old 1 -> 2 upgrade: empty files, new columns
B2 = "b20250103T000000000000-0a0b0c"
B3 = "b20250104T000000000000-1a2b3c"
CMP1 = "b20250105T000000000000-2c3d4e"
CMP2 = "b20250106T000000000000-3e4f5a"
STAGING = ".staging-b20250107T000000000000-4f5a6b"


class Killed(BaseException):
    """Stands for SIGKILL: no ``except Exception`` clean-up runs."""


# ---------------------------------------------------------------------------------------------
# The previous layout, by hand
# ---------------------------------------------------------------------------------------------


def old_schema(table: str, version: int) -> pa.Schema:
    if table == "retired":
        return RETIRED_SCHEMA
    schema = TABLES[table].arrow_schema()
    if version == 1 and table in ADDED_IN_2:
        schema = schema.remove(schema.get_field_index(ADDED_IN_2[table]))
    return schema


def run_row(run_id: str, model: str, batch: str, n: int) -> dict[str, Any]:
    return {
        "run_id": run_id, "source_path": f"/results/{run_id}.json", "source_sha256": f"sha-{run_id}",
        "source_format": "so8t-results", "model": model, "model_base": model.split("-q")[0],
        "quantization": "q4_k_m" if model.endswith("q4_k_m") else None, "harness": "so8t", "status": "success",
        "started_at": datetime(2025, 1, 1, 12, n), "ingested_at": datetime(2025, 1, 2, 8, n, tzinfo=UTC),
        "n_items": n, "batch_id": batch, "metadata": json.dumps({"seed": n}),
    }  # fmt: skip


def score_rows(run_id: str, model: str, n: int, *, hashes: bool) -> list[dict[str, Any]]:
    return [
        {"run_id": run_id, "sample_id": i, "model": model, "benchmark": "arith", "category": f"c{i % 2}",
         "task": None, "item_id": f"q{i}", "epoch": 0, "filter": None, "split": "test", "metric": "score",
         "score": ((i * 7 + len(run_id)) % 5) / 4, "higher_is_better": True, "response_time_s": 0.5 + i,
         "tokens_per_sec": None, "timestamp": None, "attributes": None,
         **({"item_hash": f"h{i}"} if hashes else {})}
        for i in range(n)
    ]  # fmt: skip


def text_rows(run_id: str, n: int) -> list[dict[str, Any]]:
    return [
        {"run_id": run_id, "sample_id": i, "question": f"{i}+{i} = ? 問{i}", "expected": str(2 * i),
         "response": None if i == 0 else f"answer {run_id} {i} " + "é" * i}
        for i in range(n)
    ]  # fmt: skip


def metric_rows(run_id: str, model: str) -> list[dict[str, Any]]:
    return [
        {"run_id": run_id, "model": model, "benchmark": "mmlu", "category": c, "task": "mmlu", "metric": "acc",
         "filter": None, "value": v, "stderr": 0.01, "n": 100, "higher_is_better": True}
        for c, v in (("math", 0.5), ("law", 0.25))
    ]  # fmt: skip


def ledger_rows(batch: str, offers: list[tuple[str, str]], *, deps: bool) -> list[dict[str, Any]]:
    return [
        {"path": f"/results/{name}", "sha256": f"sha-{name}", "size": 100 + i, "mtime_ns": 10**18 + i,
         "format": None if status == "rejected" else "so8t-results", "status": status,
         "reason": "bad JSON" if status == "rejected" else None, "rows": 5 if status == "ingested" else 0,
         "batch_id": batch, "time": datetime(2025, 1, 3, tzinfo=UTC),
         **({"depends_on": json.dumps([{"path": "/results/spec.json"}]) if i == 0 else None} if deps else {})}
        for i, (name, status) in enumerate(offers)
    ]  # fmt: skip


def comparison_rows(analysis: str, scopes: list[str]) -> list[dict[str, Any]]:
    return [
        {"baseline": "m-a", "candidate": "m-b", "metric": "score", "scope": scope,
         "category": "c0" if scope == "category" else None, "diff": 0.125 * (i + 1), "p_value": 0.5,
         "comparable": True, "analysis_id": analysis, "analysis_time": datetime(2025, 1, 5, tzinfo=UTC)}
        for i, scope in enumerate(scopes)
    ]  # fmt: skip


class OldWarehouse:
    """Writes the previous layout's folders; remembers which files its views read."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.live: dict[str, list[str]] = {t: [] for t in OLD_TABLES}
        # The runs the upgrade must keep (the views showed).
        self.live_runs: list[str] = []

    def batch(self, name: str, files: dict[str, list[dict[str, Any]]], *, version: int = 2,
              manifest: bool = True) -> Path:  # fmt: skip
        """A committed batch: ``files`` maps file name (``scores-00001.parquet``) to rows."""
        folder = self.root / "data" / name
        folder.mkdir(parents=True)
        listed = {}
        for file, rows in files.items():
            table = file.split(".")[0].split("-")[0]
            pq.write_table(pa.Table.from_pylist(rows, schema=old_schema(table, version)), folder / file)
            listed[file] = {"table": table, "rows": len(rows), "bytes": (folder / file).stat().st_size}
            if not name.startswith("."):
                self.live[table].append(str(folder / file))
        if manifest:
            (folder / "manifest.json").write_text(json.dumps({"batch_id": name, "files": listed}), encoding="utf-8")
        return folder

    def finish(self, schema: int) -> OldWarehouse:
        meta = {"schema_version": schema, "created_at": CREATED_AT, "tables": sorted(OLD_TABLES), "views": "0" * 64}
        (self.root / "evalhouse.json").write_text(json.dumps(meta), encoding="utf-8")
        return self


def build_old_warehouse(root: Path, schema: int = 2) -> OldWarehouse:
    """A schema-2 warehouse of the previous layout that was once schema 1 (or, with ``schema=1``,
    one never upgraded: no file of it has scores.item_hash or files.depends_on)."""
    old = OldWarehouse(root)
    old.batch(INIT, {f"{t}.parquet": [] for t in OLD_TABLES}, version=1)
    old.batch(B1, {
        "runs.parquet": [run_row("r1", "m-a-7b-q4_k_m", B1, 5), run_row("r2", "m-b", B1, 4)],
        "scores.parquet": score_rows("r1", "m-a-7b-q4_k_m", 5, hashes=False) + score_rows("r2", "m-b", 4, hashes=False),
        "texts.parquet": text_rows("r1", 5) + text_rows("r2", 4),
        "metrics.parquet": metric_rows("r1", "m-a-7b-q4_k_m") + metric_rows("r2", "m-b"),
        "files.parquet": ledger_rows(B1, [("r1.json", "ingested"), ("r2.json", "ingested"), ("x.json", "rejected")],
                                     deps=False),
    }, version=1, manifest=False)  # fmt: skip
    if schema == 1:
        old.batch(CMP1, {"comparisons.parquet": comparison_rows(CMP1, ["overall", "category"])}, version=1)
        old.live_runs = ["r1", "r2"]
        return old.finish(1)
    old.batch(UPGRADE_1_2, {"scores.parquet": [], "files.parquet": []})
    b2 = old.batch(B2, {
        "runs.parquet": [run_row("r3", "m-c", B2, 3), run_row("r4", "m-a-7b-q4_k_m", B2, 6)],
        "scores-00000.parquet": score_rows("r3", "m-c", 3, hashes=True),
        "scores-00001.parquet": score_rows("r4", "m-a-7b-q4_k_m", 6, hashes=True),
        "texts-00000.parquet": text_rows("r3", 3),
        "texts-00001.parquet": text_rows("r4", 6),
        "retired.parquet": [{"run_id": "r1", "reason": "/results/r1.json changed", "batch_id": B2}],
        "files.parquet": ledger_rows(B2, [("r1.json", "ingested"), ("r3.json", "ingested"),
                                          ("r2.json", "unchanged"), ("copy.json", "duplicate"),
                                          ("notes.json", "not-results")], deps=True),
    })  # fmt: skip
    # Files in a manifest batch that its manifest does not list: a copy a file manager made, and a
    # well-named file put there by hand. Neither was ever read.
    shutil.copyfile(b2 / "scores-00001.parquet", b2 / "scores-00000 (1).parquet")
    pq.write_table(pa.Table.from_pylist(metric_rows("r4", "m-a-7b-q4_k_m")), b2 / "metrics-00007.parquet")
    old.batch(B3, {
        "runs.parquet": [run_row("r5", "モデル-ß-q4_k_m", B3, 4)],
        "scores.parquet": score_rows("r5", "モデル-ß-q4_k_m", 4, hashes=True),
        "texts.parquet": text_rows("r5", 4),
        "metrics.parquet": metric_rows("r5", "モデル-ß-q4_k_m"),
        "retired.parquet": [{"run_id": "r3", "reason": "/results/r3.json changed", "batch_id": B3}],
        "files.parquet": ledger_rows(B3, [("r3.json", "ingested"), ("r5.json", "ingested")], deps=True),
    })  # fmt: skip
    old.batch(CMP1, {"comparisons.parquet": comparison_rows(CMP1, ["overall", "category", "benchmark"])})
    old.batch(CMP2, {"comparisons.parquet": comparison_rows(CMP2, ["overall", "overall", "category"])})
    # A writer that died before its rename: never committed.
    old.batch(STAGING, {"runs.parquet": [run_row("r9", "ghost", STAGING, 1)],
                        "scores.parquet": score_rows("r9", "ghost", 1, hashes=True)}, manifest=False)  # fmt: skip
    # Runs r1 (withdrawn in B2) and r3 (withdrawn in B3) must not survive, nor r9 (never committed).
    old.live_runs = ["r2", "r4", "r5"]
    return old.finish(2)


# ---------------------------------------------------------------------------------------------
# The same questions asked of the old files, the new views and the Delta tables
# ---------------------------------------------------------------------------------------------

# Over the relations every reader has: runs, scores, samples, metrics, files, comparisons.
VIEW_QUERIES = {
    "runs": "SELECT count(*), count(DISTINCT run_id), sum(n_items), sum(length(model)), count(quantization), "
    "sum(epoch_us(ingested_at)), sum(epoch_us(started_at)), string_agg(run_id, ',' ORDER BY run_id) FROM runs",
    "scores": "SELECT count(*), count(DISTINCT run_id), sum(score), sum(sample_id), count(item_hash), "
    "sum(length(item_hash)), sum(response_time_s), count(DISTINCT model) FROM scores",
    "samples": "SELECT count(*), sum(length(question)), sum(length(response)), sum(length(expected)), "
    "count(response) FROM samples",
    "metrics": "SELECT count(*), count(DISTINCT run_id), sum(value), sum(n) FROM metrics",
    "files": "SELECT status, count(*), count(depends_on), sum(size), count(DISTINCT batch_id) FROM files "
    "GROUP BY status ORDER BY status",
    "comparisons": "SELECT count(*), sum(diff), min(analysis_id) FROM comparisons",
}
# Over the stored tables themselves (no view shows all of them).
TABLE_QUERIES = {
    "texts": "SELECT count(*), count(DISTINCT run_id), sum(length(question)), sum(length(response)), "
    "sum(length(expected)) FROM texts",
    "all comparisons": "SELECT scope, count(*), sum(diff), count(DISTINCT analysis_id) FROM all_comparisons "
    "GROUP BY scope ORDER BY scope",
}
DERIVED = [
    "CREATE VIEW samples AS SELECT s.*, t.question, t.response, t.expected FROM scores AS s "
    "LEFT JOIN texts AS t USING (run_id, sample_id)",
    "CREATE VIEW comparisons AS SELECT * FROM all_comparisons WHERE scope = 'overall' "
    "AND analysis_id = (SELECT max(analysis_id) FROM all_comparisons)",
]


def answers(con: duckdb.DuckDBPyConnection, queries: dict[str, str]) -> dict[str, list[tuple[Any, ...]]]:
    return {name: con.execute(sql).fetchall() for name, sql in queries.items()}


def old_connection(old: OldWarehouse) -> duckdb.DuckDBPyConnection:
    """The old warehouse's live rows, straight from the files its views read."""
    con = duckdb.connect()

    def source(table: str) -> str:
        files = f"read_parquet([{', '.join(file_literal(f) for f in old.live[table])}], union_by_name = true)"
        if table in ADDED_IN_2:  # a column no file may have reads as NULL
            return f"(SELECT * FROM {files} UNION ALL BY NAME SELECT NULL::VARCHAR AS {ADDED_IN_2[table]} WHERE false)"
        return files

    for table in ("runs", "scores", "texts", "metrics"):
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM {source(table)} "
                    f"WHERE run_id NOT IN (SELECT run_id FROM {source('retired')})")  # fmt: skip
    con.execute(f"CREATE VIEW files AS SELECT * FROM {source('files')}")
    con.execute(f"CREATE VIEW all_comparisons AS SELECT * FROM {source('comparisons')}")
    for statement in DERIVED:
        con.execute(statement)
    return con


def delta_connection(root: Path) -> duckdb.DuckDBPyConnection:
    """The new warehouse's tables as Delta Lake itself reads them."""
    from deltalake import DeltaTable

    con = duckdb.connect()
    for table in TABLES:
        data = DeltaTable(str(root / "tables" / table)).to_pyarrow_table()
        assert data.schema == TABLES[table].arrow_schema()
        con.register("all_comparisons" if table == "comparisons" else table, data)
    for statement in DERIVED:
        con.execute(statement)
    return con


def expected(old: OldWarehouse) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    con = old_connection(old)
    return answers(con, VIEW_QUERIES), answers(con, TABLE_QUERIES), old.live_runs


def assert_migrated(wh: Warehouse, want: tuple[dict[str, Any], dict[str, Any], list[str]]) -> None:
    """``wh`` holds exactly the old live rows, by its views and by Delta Lake, and nothing old."""
    con = connect(wh)
    assert answers(con, VIEW_QUERIES) == want[0]
    assert [r for (r,) in con.execute("SELECT run_id FROM runs ORDER BY run_id").fetchall()] == want[2]
    delta = delta_connection(wh.root)
    assert answers(delta, VIEW_QUERIES) == want[0]
    assert answers(delta, TABLE_QUERIES) == want[1]
    meta = read_meta(wh)
    assert (meta["schema_version"], meta["tables"], meta["created_at"]) == (SCHEMA_VERSION, sorted(TABLES), CREATED_AT)
    assert "leftovers" not in meta
    assert not (wh.root / "data").exists()
    assert not (wh.root / "tables" / "retired").exists()
    assert [v.kind for v in versions.history(wh.root)] == ["create", "migrate"]


@pytest.fixture
def old(tmp_path: Path) -> OldWarehouse:
    # * and a quote in the path: the old files must be named exactly, never globbed.
    return build_old_warehouse(tmp_path / "old wh's *")


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------


def test_fixture_is_what_it_claims(old: OldWarehouse) -> None:
    """The independent reading sees retired runs withdrawn, schema-1 NULLs, every ledger row."""
    views, stored, live_runs = expected(old)
    assert views["runs"][0][-1] == ",".join(live_runs) == "r2,r4,r5"
    assert views["scores"][0][:2] == (4 + 6 + 4, 3)
    assert views["scores"][0][4] == 6 + 4  # r2's schema-1 rows have no item_hash
    assert views["comparisons"][0][:2] == (2, 0.125 + 0.25)
    assert sum(n for _s, n, *_ in views["files"]) == 3 + 5 + 2
    assert stored["all comparisons"] == [("benchmark", 1, 0.375, 1), ("category", 2, 0.625, 2), ("overall", 3, 0.5, 2)]


def test_open_migrates_the_live_rows(old: OldWarehouse) -> None:
    want = expected(old)
    wh = open_warehouse(old.root)
    assert_migrated(wh, want)
    # The views file evalhouse.json vouches for is the new one.
    views = duckdb.connect(str(wh.db_path), read_only=True)
    assert views.execute("SELECT count(*) FROM runs").fetchone() == (len(old.live_runs),)


def test_schema_1_warehouse(tmp_path: Path) -> None:
    """Never upgraded to schema 2: no file has item_hash or depends_on, which arrive as NULL."""
    old = build_old_warehouse(tmp_path / "wh1", schema=1)
    want = expected(old)
    assert want[0]["scores"][0][:5] == (9, 2, want[0]["scores"][0][2], 10 + 6, 0)
    assert_migrated(open_warehouse(old.root), want)


def test_second_open_does_nothing(old: OldWarehouse) -> None:
    want = expected(old)
    wh = open_warehouse(old.root)
    first = versions.history(wh.root)
    files = sorted(p.relative_to(wh.root) for p in (wh.root / "tables").rglob("*.parquet"))
    upgrade(wh)  # as `evalhouse migrate` would, on a warehouse another process upgraded
    wh = open_warehouse(old.root)
    assert versions.history(wh.root) == first
    assert sorted(p.relative_to(wh.root) for p in (wh.root / "tables").rglob("*.parquet")) == files
    assert_migrated(wh, want)


def test_two_processes_open_it_at_once(old: OldWarehouse) -> None:
    """The second waits for the lock, finds schema 3 and converts nothing."""
    from concurrent.futures import ThreadPoolExecutor

    want = expected(old)
    with ThreadPoolExecutor(2) as pool:
        opened = [f.result() for f in [pool.submit(open_warehouse, old.root) for _ in range(2)]]
    assert_migrated(opened[0], want)


def test_big_tables_are_written_in_several_files(old: OldWarehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    want = expected(old)
    monkeypatch.setattr(evalhouse.migrate, "BATCH_ROWS", 2)
    monkeypatch.setattr(evalhouse.migrate, "FILE_ROWS", 4)
    wh = open_warehouse(old.root)
    assert_migrated(wh, want)
    sizes = [pq.read_metadata(f).num_rows for f in wh.table_files("scores")]
    assert sum(sizes) == 14 and max(sizes) == 4 and len(sizes) == 4


def test_progress(old: OldWarehouse) -> None:
    calls: list[tuple[str, int, int]] = []
    upgrade(Warehouse(old.root.resolve()), progress=lambda *a: calls.append(a))
    # Every old row counts toward the total; the copy ends short of it (withdrawn runs), then says done.
    assert calls[-1] == ("migrate", 71, 71)
    assert [done for _p, done, _t in calls] == sorted(done for _p, done, _t in calls)


@pytest.mark.parametrize("fault", [Killed, RuntimeError])
def test_killed_before_publishing_leaves_the_old_warehouse(
    old: OldWarehouse, monkeypatch: pytest.MonkeyPatch, fault: type[BaseException]
) -> None:
    want = expected(old)
    before = sorted(p.relative_to(old.root) for p in (old.root / "data").rglob("*"))

    def publish(self: Commit) -> None:
        raise fault("killed")

    with monkeypatch.context() as m:
        m.setattr(Commit, "publish", publish)
        with pytest.raises(fault):
            open_warehouse(old.root)
    assert json.loads((old.root / "evalhouse.json").read_text())["schema_version"] == 2
    assert sorted(p.relative_to(old.root) for p in (old.root / "data").rglob("*")) == before
    if fault is RuntimeError:  # a failure, not a kill: nothing of the attempt is left
        assert not any((old.root / name).exists() for name in ("tables", "versions", ".pending"))
    assert_migrated(open_warehouse(old.root), want)


@pytest.mark.parametrize("stage", ["table", "publish", "published"])
def test_killed_inside_the_commit(old: OldWarehouse, monkeypatch: pytest.MonkeyPatch, stage: str) -> None:
    """Killed between the commit's steps (some Delta tables committed, or the version published),
    with no clean-up run: the next open starts over from data/."""
    want = expected(old)

    def checkpoint(at: str, table: str = "") -> None:
        if at == stage:
            raise Killed

    with monkeypatch.context() as m:
        m.setattr(evalhouse.commit, "checkpoint", checkpoint)
        m.setattr(evalhouse.commit, "recover", lambda wh: [])  # a killed process undoes nothing
        with pytest.raises(Killed):
            open_warehouse(old.root)
    assert json.loads((old.root / "evalhouse.json").read_text())["schema_version"] == 2
    assert (old.root / ".pending").is_dir()
    assert_migrated(open_warehouse(old.root), want)


def test_killed_after_publishing_before_the_commit_point(old: OldWarehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tables are published but evalhouse.json still says schema 2: the next open starts over."""
    want = expected(old)

    def write_meta(wh: Warehouse, meta: dict[str, Any]) -> None:
        raise Killed

    with monkeypatch.context() as m:
        m.setattr(evalhouse.migrate, "write_meta", write_meta)
        with pytest.raises(Killed):
            open_warehouse(old.root)
    assert [v.kind for v in versions.history(old.root.resolve())] == ["create", "migrate"]
    assert json.loads((old.root / "evalhouse.json").read_text())["schema_version"] == 2
    assert (old.root / "data" / B1 / "runs.parquet").is_file()
    assert_migrated(open_warehouse(old.root), want)


def test_killed_after_the_commit_point(old: OldWarehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    """evalhouse.json says schema 3 and lists data/ as a leftover: remove_leftovers deletes it."""
    want = expected(old)

    def partly_removed(wh: Warehouse) -> None:
        shutil.rmtree(wh.root / "data" / B2)
        raise Killed

    with monkeypatch.context() as m:
        m.setattr(evalhouse.migrate, "_remove_leftovers", partly_removed)
        with pytest.raises(Killed):
            open_warehouse(old.root)
    assert read_meta(Warehouse(old.root))["leftovers"] == ["data"] and (old.root / "data").is_dir()
    wh = open_warehouse(old.root)  # a schema-3 warehouse listing leftovers: they go
    assert "leftovers" not in read_meta(wh) and not (wh.root / "data").exists()
    assert_migrated(wh, want)


def test_remove_leftovers_keeps_a_folder_it_did_not_leave(tmp_path: Path) -> None:
    """A data/ folder in a new warehouse is the user's: only one evalhouse.json lists is deleted."""
    wh = open_warehouse(tmp_path / "wh", create=True)
    (wh.root / "data").mkdir()
    (wh.root / "data" / "mine.csv").write_text("x\n")
    remove_leftovers(wh)
    upgrade(wh)
    assert (wh.root / "data" / "mine.csv").is_file()


def test_disk_full_leaves_the_old_warehouse(old: OldWarehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    want = expected(old)

    def write_file(*args: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(evalhouse.migrate.tables, "write_file", write_file)
        with pytest.raises(WarehouseError) as caught:
            open_warehouse(old.root)
    assert (
        "No space left on device" in str(caught.value) and caught.value.hint == "free some disk space and run it again"
    )
    assert not (old.root / "tables").exists()
    assert json.loads((old.root / "evalhouse.json").read_text())["schema_version"] == 2
    assert_migrated(open_warehouse(old.root), want)


def test_unknown_schema_version_is_refused(old: OldWarehouse) -> None:
    meta = json.loads((old.root / "evalhouse.json").read_text()) | {"schema_version": 0}
    (old.root / "evalhouse.json").write_text(json.dumps(meta))
    with pytest.raises(WarehouseError, match=f"schema_version 0 has no upgrade path to {SCHEMA_VERSION}"):
        open_warehouse(old.root)
    assert not (old.root / "tables").exists()


# ---------------------------------------------------------------------------------------------
# Schema 3 -> 4: columns added to a Delta table in place (the comparisons' flips and noise floor)
# ---------------------------------------------------------------------------------------------

ADDED_IN_4 = ("flips_down", "flips_up", "flip_rate", "flip_rate_low", "flip_rate_high", "noise_sd", "noise_runs",
              "noise_floor", "within_noise")  # fmt: skip


def build_schema_3(root: Path, analyses: list[str]) -> Warehouse:
    """A Delta-layout warehouse of schema 3: comparisons without the columns schema 4 added, holding
    the rows of ``analyses``, published as a `compare` version."""
    from deltalake import DeltaTable, write_deltalake

    wh = open_warehouse(root, create=True)
    folder = wh.root / "tables" / "comparisons"
    shutil.rmtree(folder)
    full = TABLES["comparisons"].arrow_schema()
    old_schema = pa.schema([f for f in full if f.name not in ADDED_IN_4])
    DeltaTable.create(str(folder), old_schema)
    for analysis in analyses:
        rows = [{k: v for k, v in r.items() if k in old_schema.names} for r in comparison_rows(analysis, ["overall"])]
        write_deltalake(str(folder), pa.Table.from_pylist(rows, schema=old_schema), mode="append")
    current = versions.current(wh.root)
    assert current is not None
    tables = current.tables | {"comparisons": DeltaTable(str(folder)).version()}
    versions.publish(wh.root, versions.new(wh.root, "compare", None, tables))
    meta = read_meta(wh) | {"schema_version": 3}
    (wh.root / "evalhouse.json").write_text(json.dumps(meta), encoding="utf-8")
    return Warehouse(wh.root)


def assert_schema_4(wh: Warehouse, analyses: list[str]) -> None:
    """The Delta schema and the views have the new columns; every stored row is kept, NULL in them."""
    from deltalake import DeltaTable

    assert read_meta(wh)["schema_version"] == SCHEMA_VERSION == 4
    delta = DeltaTable(str(wh.root / "tables" / "comparisons"))
    assert pa.schema(delta.schema().to_arrow()).names == TABLES["comparisons"].names
    con = connect(wh)
    assert [r[0] for r in con.execute("DESCRIBE comparisons").fetchall()] == TABLES["comparisons"].names
    rows = con.execute(f"SELECT analysis_id, {', '.join(ADDED_IN_4)} FROM {table_source(wh, 'comparisons')}").fetchall()
    assert sorted(r[0] for r in rows) == sorted(analyses) and all(v is None for r in rows for v in r[1:])
    assert pa.table(delta.to_pyarrow_table()).num_rows == len(analyses)


def test_schema_3_gets_the_new_comparison_columns(tmp_path: Path) -> None:
    from evalhouse.compare import compare, save

    wh = build_schema_3(tmp_path / "wh", [CMP1, CMP2])
    wh = open_warehouse(wh.root)
    assert_schema_4(wh, [CMP1, CMP2])
    kinds = [v.kind for v in versions.history(wh.root)]
    assert kinds == ["create", "compare", "migrate"]
    upgrade(wh)  # a second time: nothing to do
    assert [v.kind for v in versions.history(open_warehouse(wh.root).root)] == kinds
    # A new analysis is stored beside the old ones, with its flips in the new columns.
    commit = Commit(wh, "ingest")
    runs = [run_row("r1", "m", B1, 6), run_row("r2", "m-q4_k_m", B1, 6)]
    scores = [r | {"score": float(r["score"] >= 0.5)} for r in score_rows("r1", "m", 6, hashes=True)]
    scores += [r | {"score": float(r["score"] < 0.5)} for r in score_rows("r2", "m-q4_k_m", 6, hashes=True)]
    commit.write("runs", pa.Table.from_pylist(runs, schema=TABLES["runs"].arrow_schema()))
    commit.write("scores", pa.Table.from_pylist(scores, schema=TABLES["scores"].arrow_schema()))
    commit.publish()
    new = save(wh, compare(connect(wh), by=[]))
    stored = connect(wh).execute("SELECT analysis_id, flips_down + flips_up, n_paired FROM comparisons").fetchall()
    assert stored == [(new, 6, 6)]


def test_schema_3_without_stored_comparisons(tmp_path: Path) -> None:
    wh = open_warehouse(build_schema_3(tmp_path / "wh", []).root)
    assert_schema_4(wh, [])
    assert [v.kind for v in versions.history(wh.root)] == ["create", "compare", "migrate"]


@pytest.mark.parametrize("stage", ["table", "publish"])
def test_schema_3_upgrade_killed_is_done_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage: str) -> None:
    """Killed after the Delta schema changed, before the version naming it: the next open undoes the
    change (a Delta restore restores the schema) and upgrades again."""
    wh = build_schema_3(tmp_path / "wh", [CMP1])

    def checkpoint(at: str, table: str = "") -> None:
        if at == stage:
            raise Killed

    with monkeypatch.context() as m:
        m.setattr(evalhouse.commit, "checkpoint", checkpoint)
        m.setattr(evalhouse.commit, "recover", lambda wh: [])
        with pytest.raises(Killed):
            open_warehouse(wh.root)
    assert read_meta(wh)["schema_version"] == 3
    wh = open_warehouse(wh.root)
    assert_schema_4(wh, [CMP1])
    assert [v.kind for v in versions.history(wh.root)] == ["create", "compare", "migrate"]
