"""The stored tables are Delta Lake tables: Delta readers see exactly the live rows the views give,
after a changed source, a copy whose original changed, and a compaction; optimize compacts and
vacuums; versions publish every commit at once."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner
from deltalake import DeltaTable

from evalhouse import tables, versions
from evalhouse.cli import main
from evalhouse.errors import WarehouseError
from evalhouse.ingest import ingest
from evalhouse.optimize import optimize, parse_duration
from evalhouse.schema import TABLES
from evalhouse.warehouse import Warehouse, connect, open_warehouse
from tests.conftest import FIXTURES

# A column per table whose values, with the row count, tell the rows apart.
FINGERPRINT = {
    "runs": "run_id", "scores": "run_id || ':' || sample_id || ':' || metric || ':' || score",
    "texts": "run_id || ':' || sample_id || ':' || coalesce(response, '')",
    "metrics": "run_id || ':' || metric || ':' || coalesce(filter, '') || ':' || value",
    "files": "path || ':' || status || ':' || batch_id", "comparisons": "analysis_id || ':' || coalesce(metric, '')",
}  # fmt: skip


def view_rows(wh: Warehouse, table: str) -> list[str]:
    """The table's live rows as evalhouse reads them (comparisons: every stored analysis)."""
    con = connect(wh)
    try:
        source = "{{parquet:" + table + "}}"
        from evalhouse.warehouse import fill_tables

        sql = fill_tables(wh, f"SELECT {FINGERPRINT[table]} AS k FROM {source} ORDER BY 1")
        return [r[0] for r in con.execute(sql).fetchall()]
    finally:
        con.close()


def delta_rows(wh: Warehouse, table: str) -> list[str]:
    """The same rows as a Delta reader (delta-rs, the table's newest version) gives them."""
    data = DeltaTable(str(wh.root / "tables" / table)).to_pyarrow_table()  # noqa: F841 - read by DuckDB
    return [r[0] for r in duckdb.sql(f"SELECT {FINGERPRINT[table]} AS k FROM data ORDER BY 1").fetchall()]


def assert_delta_equals_views(wh: Warehouse) -> None:
    for table in TABLES:
        assert delta_rows(wh, table) == view_rows(wh, table), table


@pytest.fixture
def so8t(tmp_path: Path) -> Path:
    out = tmp_path / "so8t"
    shutil.copytree(FIXTURES / "so8t" / "good", out)
    return out


def test_delta_readers_see_the_live_rows(wh: Warehouse, so8t: Path) -> None:
    ingest(wh, [so8t, FIXTURES / "lm_eval" / "out"], workers=1)
    assert_delta_equals_views(wh)
    # A changed source: its rows are replaced in the stored tables, not hidden by the views.
    simple = so8t / "20250302_090000_simple_abc_results.json"
    doc = json.loads(simple.read_text(encoding="utf-8"))
    doc["results"] = doc["results"][:2]
    simple.write_text(json.dumps(doc), encoding="utf-8")
    assert ingest(wh, [so8t], workers=1).retired_runs == 1
    assert_delta_equals_views(wh)
    # A copy, then its original changes: the copy keeps the old content live.
    tiny = so8t / "tiny-model_q8_0_results.json"
    (so8t / "copy").mkdir()
    shutil.copy(tiny, so8t / "copy" / tiny.name)
    ingest(wh, [so8t], workers=1)
    rows = json.loads(tiny.read_text(encoding="utf-8"))
    rows[0]["is_correct"] = not rows[0]["is_correct"]
    tiny.write_text(json.dumps(rows), encoding="utf-8")
    ingest(wh, [so8t], workers=1)
    con = connect(wh)
    assert con.execute("SELECT count(*) FROM runs WHERE model = 'tiny-model'").fetchall() == [(2,)]
    con.close()
    assert_delta_equals_views(wh)
    # A compaction: the same rows in fewer files.
    assert CliRunner().invoke(main, ["compare", "-w", str(wh.root)]).exit_code == 0
    before = {t: len(wh.table_files(t)) for t in TABLES}
    report = optimize(wh)
    assert report.compacted and all(after < n for n, after in report.compacted.values())
    assert {t: len(wh.table_files(t)) for t in TABLES} == {t: min(n, 1) for t, n in before.items()}
    assert_delta_equals_views(wh)
    # Polars reads the tables in place too.
    runs = pl.scan_delta(str(wh.root / "tables" / "runs")).collect()
    assert sorted(runs["run_id"].to_list()) == view_rows(wh, "runs")


def test_every_commit_is_one_version_naming_each_table(wh: Warehouse, so8t: Path) -> None:
    report = ingest(wh, [so8t], workers=1)
    v = versions.current(wh.root)
    assert v is not None and (v.number, v.kind, v.batch_id) == (report.version, "ingest", report.batch_id)
    assert v.tables == {t: tables.latest_version(wh.root, t) for t in TABLES}
    assert v.added["scores"] == connect(wh).execute("SELECT count(*) FROM scores").fetchall()[0][0]
    assert set(v.added) == {"runs", "scores", "texts", "files"}  # SO8T has no aggregate-only metrics
    with pytest.raises(WarehouseError, match="another writer published version"):
        versions.publish(wh.root, v)


def test_optimize_keeps_versions_of_the_retention_period_readable(wh: Warehouse, so8t: Path) -> None:
    ingest(wh, [so8t / "tiny-model_q8_0_results.json"], workers=1)
    ingest(wh, [so8t], workers=1)
    first = CliRunner().invoke(main, ["sql", "-w", str(wh.root), "--as-of", "1", "SELECT count(*) AS n FROM runs"])
    assert first.exit_code == 0 and first.stdout.splitlines()[-1].strip("│ ") == "1"
    optimize(wh)  # the default retention keeps every version of this week
    kept = CliRunner().invoke(main, ["sql", "-w", str(wh.root), "--as-of", "1", "SELECT count(*) AS n FROM runs"])
    assert kept.stdout == first.stdout
    result = CliRunner().invoke(main, ["optimize", "-w", str(wh.root), "--retention", "0"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].startswith(f"version {versions.numbers(wh.root)[-1]}: ")
    gone = CliRunner().invoke(main, ["sql", "-w", str(wh.root), "--as-of", "1", "SELECT count(*) FROM runs"])
    assert gone.exit_code == 1
    assert gone.stderr.startswith(f"Error: version 1 of {wh.root} can no longer be read: `evalhouse optimize`")
    # Only the live files are left, and the present reads as before.
    for table in TABLES:
        live = {Path(f).name for f in wh.table_files(table)}
        assert set(tables.data_files(wh.root, table)) == live, table
    assert_delta_equals_views(wh)
    assert [v.kind for v in versions.history(wh.root)] == ["create", "ingest", "ingest", "optimize", "optimize"]


def test_parse_duration() -> None:
    assert parse_duration("12h") == timedelta(hours=12) and parse_duration("30m") == timedelta(minutes=30)
    with pytest.raises(Exception, match="not a duration"):
        parse_duration("7 weeks")


def test_a_warehouse_from_nothing_has_empty_delta_tables(tmp_path: Path) -> None:
    wh = open_warehouse(tmp_path / "wh", create=True)
    for table, declared in TABLES.items():
        dt = DeltaTable(str(wh.root / "tables" / table))
        assert dt.to_pyarrow_table().num_rows == 0
        assert [f.name for f in dt.schema().fields] == declared.names


def _interrupt_at(monkeypatch: pytest.MonkeyPatch, stage: str) -> None:
    """Raise KeyboardInterrupt (Ctrl-C) when a commit reaches ``stage`` (see evalhouse.commit.checkpoint)."""
    import evalhouse.commit
    import evalhouse.optimize

    def checkpoint(at: str, table: str = "") -> None:
        if at == stage:
            raise KeyboardInterrupt

    monkeypatch.setattr(evalhouse.commit, "checkpoint", checkpoint)
    monkeypatch.setattr(evalhouse.optimize, "checkpoint", checkpoint)


def test_an_interrupt_after_publication_leaves_the_commit_live(
    wh: Warehouse, so8t: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as m:
        _interrupt_at(m, "published")
        with pytest.raises(KeyboardInterrupt):
            ingest(wh, [so8t], workers=1)
    again = open_warehouse(wh.root)
    assert [v.kind for v in versions.history(wh.root)] == ["create", "ingest"]
    assert connect(again).execute("SELECT count(*) FROM scores").fetchall() == [(21,)]
    assert_delta_equals_views(again)
    assert ingest(again, [so8t], workers=1).committed is False  # the ledger holds it: nothing to redo


@pytest.mark.parametrize("stage", ["table", "publish", "vacuum"])
def test_an_interrupted_optimize_never_loses_the_present(
    wh: Warehouse, so8t: Path, monkeypatch: pytest.MonkeyPatch, stage: str
) -> None:
    ingest(wh, [so8t / "tiny-model_q8_0_results.json"], workers=1)
    ingest(wh, [so8t], workers=1)
    before = view_rows(wh, "scores")
    with monkeypatch.context() as m:
        _interrupt_at(m, stage)
        with pytest.raises(KeyboardInterrupt):
            optimize(wh, retention=timedelta(0))
    again = open_warehouse(wh.root)
    assert view_rows(again, "scores") == before
    report = optimize(again, retention=timedelta(0))  # and the next one completes the job
    assert report.version is not None and view_rows(again, "scores") == before
    assert_delta_equals_views(again)
    for table in TABLES:
        assert set(tables.data_files(wh.root, table)) == {Path(f).name for f in again.table_files(table)}, table
