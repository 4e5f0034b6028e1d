"""`evalhouse export --format parquet`: the live rows as Parquet folders, read back by three readers."""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from polars.testing import assert_frame_equal

import evalhouse.export_parquet as xp
from evalhouse.cli import main
from evalhouse.errors import ExportError
from evalhouse.export import PARQUET_TABLES, export
from evalhouse.schema import TABLES
from evalhouse.warehouse import Warehouse, connect, frame, open_warehouse, sql_literal, table_source
from tests._harness import FIXTURES, load

KEYS = {  # a unique order for each table, to compare whole tables row by row
    "runs": ["run_id"],
    "scores": ["run_id", "sample_id", "metric", "epoch"],
    "texts": ["run_id", "sample_id"],
    "metrics": ["run_id", "benchmark", "category", "task", "filter", "metric"],
    "files": ["time", "path", "status"],
    "comparisons": ["scope", "baseline", "candidate", "metric", "benchmark", "category"],
}
# What the export promises for each table, as a query on the views.
LIVE = {
    "runs": "SELECT * FROM runs",
    "scores": "SELECT * FROM scores",
    "texts": "SELECT * FROM {texts} WHERE run_id IN (SELECT run_id FROM runs)",
    "metrics": "SELECT * FROM metrics",
    "files": "SELECT * FROM files",
    "comparisons": "SELECT * FROM comparisons UNION ALL BY NAME SELECT * FROM category_comparisons",
}
RUN_TABLES = ("runs", "scores", "texts", "metrics")


def run_cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Warehouse, set[str]]:
    """SO8T and lm-eval fixtures; then two sources change, so that runs with scores, texts and
    metrics are replaced; then a compare is stored. Returns the warehouse and the replaced run ids."""
    root = tmp_path_factory.mktemp("export")
    so8t, lm_eval = root / "so8t", root / "lm_eval"
    shutil.copytree(FIXTURES / "so8t" / "good", so8t)
    shutil.copytree(FIXTURES / "lm_eval" / "out", lm_eval)
    wh = open_warehouse(root / "wh", create=True)
    load(wh, so8t, lm_eval)
    before = run_ids(wh)
    simple = so8t / "20250302_090000_simple_abc_results.json"
    doc = json.loads(simple.read_text(encoding="utf-8"))
    doc["results"] = doc["results"][:2]
    doc["results"][0]["score"] = 0.25
    simple.write_text(json.dumps(doc), encoding="utf-8")
    results = lm_eval / "EleutherAI__pythia-410m" / "results_2024-05-30T08-00-00.json"
    doc = json.loads(results.read_text(encoding="utf-8"))
    doc["results"]["arc_easy"]["acc,none"] = 0.5
    results.write_text(json.dumps(doc), encoding="utf-8")
    assert load(wh, so8t, lm_eval).retired_runs == 3  # the SO8T run, the results file's and its samples'
    assert run_cli("compare", "-w", str(wh.root))[0] == 0
    return wh, before - run_ids(wh)


@pytest.fixture(scope="module")
def wh(built: tuple[Warehouse, set[str]]) -> Warehouse:
    return built[0]


@pytest.fixture(scope="module")
def out(wh: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bi") / "export"
    code, stdout, err = run_cli("export", "--format", "parquet", str(out), "-w", str(wh.root))
    assert (code, err) == (0, "")
    counts = ", ".join(f"{t} {n}" for t, n in expected_counts(wh).items())
    assert stdout == (f"wrote 6 table(s) under {out} ({counts} row(s)); "
                      f"columns described in {out / 'DATA_DICTIONARY.md'}\n")  # fmt: skip
    return out


def live(wh: Warehouse, table: str) -> pl.DataFrame:
    """The table's live rows as the views give them, in the declared column order, sorted."""
    con = connect(wh)
    try:
        got = frame(con, live_sql(wh, table))
    finally:
        con.close()
    # DuckDB labels instants with its session's zone (Etc/UTC here); the export declares UTC.
    zoned = [name for name, dtype in got.schema.items() if isinstance(dtype, pl.Datetime) and dtype.time_zone]
    got = got.with_columns(pl.col(zoned).dt.convert_time_zone("UTC"))
    return got.select(TABLES[table].names).sort(KEYS[table], nulls_last=True)


def live_sql(wh: Warehouse, table: str) -> str:
    return LIVE[table].format(texts=table_source(wh, "texts"))


def expected_counts(wh: Warehouse) -> dict[str, int]:
    return {t: live(wh, t).height for t in PARQUET_TABLES}


def run_ids(wh: Warehouse) -> set[str]:
    con = connect(wh)
    try:
        return {r[0] for r in con.execute("SELECT run_id FROM runs").fetchall()}
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------
# Fingerprints: row count, and per column its non-null count and a sum (numbers), total length
# (text) or min and max (times); computed by each reader on the export and by DuckDB on the views
# ---------------------------------------------------------------------------------------------


def _kind(t: pa.DataType) -> str:
    if pa.types.is_string(t):
        return "text"
    if pa.types.is_timestamp(t):
        return "time"
    return "number"


def fingerprint_polars(df: pl.LazyFrame | pl.DataFrame, table: str) -> dict[str, Any]:
    exprs: list[pl.Expr] = [pl.len().alias("rows")]
    for c in TABLES[table].columns:
        exprs.append(pl.col(c.name).count().alias(f"{c.name}.count"))
        kind = _kind(c.type)  # type: ignore[arg-type]
        if kind == "text":
            exprs.append(pl.col(c.name).str.len_chars().sum().alias(f"{c.name}.length"))
        elif kind == "time":
            exprs += [pl.col(c.name).min().alias(f"{c.name}.min"), pl.col(c.name).max().alias(f"{c.name}.max")]
        else:
            exprs.append(pl.col(c.name).cast(pl.Float64).sum().alias(f"{c.name}.sum"))
    got = df.lazy().select(exprs).collect().to_dicts()[0]
    for c in TABLES[table].columns:  # Polars sums no values to 0, SQL to NULL
        for key in (f"{c.name}.length", f"{c.name}.sum"):
            if key in got and not got[f"{c.name}.count"]:
                got[key] = None
    return got


def fingerprint_arrow(table_data: pa.Table, table: str) -> dict[str, Any]:
    got: dict[str, Any] = {"rows": table_data.num_rows}
    for c in TABLES[table].columns:
        col = table_data.column(c.name)
        got[f"{c.name}.count"] = len(col) - col.null_count
        kind = _kind(c.type)  # type: ignore[arg-type]
        if kind == "text":
            got[f"{c.name}.length"] = pc.sum(pc.utf8_length(col)).as_py() if got[f"{c.name}.count"] else None
        elif kind == "time":
            got[f"{c.name}.min"], got[f"{c.name}.max"] = pc.min(col).as_py(), pc.max(col).as_py()
        else:
            as_float = pc.cast(col, pa.float64(), safe=False)  # mtime_ns is past float's exact integers
            got[f"{c.name}.sum"] = pc.sum(as_float).as_py() if got[f"{c.name}.count"] else None
    return got


def fingerprint_duckdb(con: duckdb.DuckDBPyConnection, source: str, table: str) -> dict[str, Any]:
    parts = ["count(*) AS rows"]
    for c in TABLES[table].columns:
        q = f'"{c.name}"'
        parts.append(f'count({q}) AS "{c.name}.count"')
        kind = _kind(c.type)  # type: ignore[arg-type]
        if kind == "text":
            parts.append(f'sum(length({q})) AS "{c.name}.length"')
        elif kind == "time":
            parts += [f'min({q}) AS "{c.name}.min"', f'max({q}) AS "{c.name}.max"']
        else:
            parts.append(f'sum({q}::DOUBLE) AS "{c.name}.sum"')
    cur = con.execute(f"SELECT {', '.join(parts)} FROM ({source})")
    return dict(zip([d[0] for d in cur.description], cur.fetchone(), strict=True))  # type: ignore[arg-type]


def same(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert got.keys() == want.keys()
    for key, value in want.items():
        if isinstance(value, float) and not math.isnan(value):
            assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
        else:
            assert got[key] == value, key


def read_pyarrow(folder: Path) -> pa.Table:
    return ds.dataset(folder, format="parquet").to_table()


def read_duckdb(folder: Path) -> str:
    return f"SELECT * FROM read_parquet({sql_literal(str(folder / '*.parquet'))})"


# ---------------------------------------------------------------------------------------------
# Layout and the rows
# ---------------------------------------------------------------------------------------------


def test_one_folder_per_table_and_a_dictionary(out: Path) -> None:
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*PARQUET_TABLES, ".evalhouse-export.json", "data_dictionary.json", "DATA_DICTIONARY.md"]
    )
    for table in PARQUET_TABLES:
        assert [p.name for p in (out / table).iterdir()] == ["part-00000.parquet"]  # compacted: one file
        meta = pq.ParquetFile(out / table / "part-00000.parquet").metadata
        assert {meta.row_group(i).column(j).compression for i in range(meta.num_row_groups)
                for j in range(meta.num_columns)} == {"ZSTD"}  # fmt: skip
    assert not [p for p in out.parent.iterdir() if p.name != "export"]  # nothing left beside OUT


def test_the_fixture_replaced_runs_of_every_run_table(built: tuple[Warehouse, set[str]]) -> None:
    """Three runs were replaced; the stored tables no longer hold them (nor does the export)."""
    wh, replaced = built
    assert len(replaced) == 3
    con = duckdb.connect()
    for table in RUN_TABLES:
        stored = {r[0] for r in con.execute(f"SELECT run_id FROM {table_source(wh, table)}").fetchall()}
        assert stored and not replaced & stored, table
    assert expected_counts(wh)["comparisons"] > 0


@pytest.mark.parametrize("table", PARQUET_TABLES)
def test_every_value_of_every_row_is_the_views(built: tuple[Warehouse, set[str]], out: Path, table: str) -> None:
    """Polars scan_parquet over the folder: the same frame, schema and values, as the views give."""
    got = pl.scan_parquet(out / table / "*.parquet").collect().sort(KEYS[table], nulls_last=True)
    wh, replaced = built
    assert_frame_equal(got, live(wh, table))
    if table in RUN_TABLES:
        assert not set(got["run_id"]) & replaced


@pytest.mark.parametrize("table", PARQUET_TABLES)
def test_three_readers_agree_with_the_views(wh: Warehouse, out: Path, table: str) -> None:
    con = connect(wh)
    try:
        want = fingerprint_duckdb(con, live_sql(wh, table), table)
    finally:
        con.close()
    folder = out / table
    arrow = read_pyarrow(folder)
    assert arrow.schema.equals(xp.EXPORTED[table].arrow_schema(), check_metadata=False)
    same(fingerprint_arrow(arrow, table), want)
    same(fingerprint_polars(pl.scan_parquet(folder / "*.parquet"), table), want)
    same(fingerprint_duckdb(duckdb.connect(), read_duckdb(folder), table), want)
    assert want["rows"] == expected_counts(wh)[table]


def test_a_few_rows_value_by_value(wh: Warehouse, out: Path) -> None:
    """Known rows, read back by each reader: the changed SO8T file's, lm-eval's new value, a text."""
    scores = read_pyarrow(out / "scores").filter(pc.field("run_id").isin(read_pyarrow(out / "texts").column("run_id")))
    texts = {(r["run_id"], r["sample_id"]): r for r in read_pyarrow(out / "texts").to_pylist()}
    changed = [r for r in scores.to_pylist() if texts[r["run_id"], r["sample_id"]]["question"] == "日本の首都は？"]
    assert [(r["model"], r["benchmark"], r["score"], r["response_time_s"], r["timestamp"]) for r in changed] == [
        ("base-m", "elyza_100", 0.25, 0.5, datetime(2025, 3, 2, 9, 0, 1))]  # fmt: skip
    assert texts[changed[0]["run_id"], changed[0]["sample_id"]]["response"] == "東京です"
    con = duckdb.connect()
    got = con.execute(
        f"SELECT value, stderr, n, higher_is_better, benchmark, task FROM ({read_duckdb(out / 'metrics')}) "
        "WHERE model = 'EleutherAI/pythia-410m' AND metric = 'acc' AND filter = 'none'"
    ).fetchall()
    assert got == [(0.5, 0.25, 4, True, "arc_easy", "arc_easy")]
    runs = pl.scan_parquet(out / "runs" / "*.parquet").filter(pl.col("model") == "EleutherAI/pythia-410m").collect()
    assert runs.height == 2 and set(runs["source_format"]) == {"lm-eval", "lm-eval-samples"}
    assert runs.schema["ingested_at"] == pl.Datetime("us", "UTC")
    joined = read_pyarrow(out / "texts").join(read_pyarrow(out / "scores"), ["run_id", "sample_id"])
    assert joined.num_rows == scores.num_rows  # every answer with a text has its text, once


# ---------------------------------------------------------------------------------------------
# The data dictionary
# ---------------------------------------------------------------------------------------------


def test_dictionary_lists_every_column_with_type_and_meaning(out: Path, wh: Warehouse) -> None:
    dictionary = json.loads((out / "data_dictionary.json").read_text(encoding="utf-8"))
    assert (dictionary["format"], dictionary["compression"]) == ("parquet", "zstd")
    assert [t["name"] for t in dictionary["tables"]] == list(PARQUET_TABLES)
    markdown = (out / "DATA_DICTIONARY.md").read_text(encoding="utf-8")
    con = duckdb.connect()
    for t in dictionary["tables"]:
        name = t["name"]
        assert (t["path"], t["files"]) == (f"{name}/", [f"{name}/part-00000.parquet"])
        assert t["rows"] == expected_counts(wh)[name] and t["doc"] == xp.EXPORTED[name].table.doc
        schema = pq.read_schema(out / t["files"][0])
        described = con.execute(f"DESCRIBE {read_duckdb(out / name)}").fetchall()
        declared = {c.name: c for c in TABLES[name].columns}
        assert [c["name"] for c in t["columns"]] == schema.names == [d[0] for d in described] == list(declared)
        for c, d in zip(t["columns"], described, strict=True):
            assert c["type"] == str(schema.field(c["name"]).type)  # the file's own type
            assert c["sql_type"] == d[1]  # what DuckDB (and a BI tool on it) calls it
            assert c["doc"] == declared[c["name"]].doc != ""  # one source: engine/schema.py
            assert schema.field(c["name"]).metadata == {b"description": c["doc"].encode()}
            row = f"| `{c['name']}` | {c['type']} | {c['sql_type']} | {c['doc'].replace('|', chr(92) + '|')} |"
            assert row in markdown.splitlines(), row
        assert f"## `{name}`" in markdown and f"Folder `{name}/`, {t['rows']} row(s)." in markdown


# ---------------------------------------------------------------------------------------------
# Options and errors
# ---------------------------------------------------------------------------------------------


def test_tables_option(wh: Warehouse, tmp_path: Path) -> None:
    out = tmp_path / "some"
    code, stdout, _ = run_cli("export", "--format", "parquet", str(out), "--tables", "scores, runs", "-w", str(wh.root))
    assert code == 0 and stdout.startswith(f"wrote 2 table(s) under {out} (runs ")
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["runs", "scores"]
    names = [t["name"] for t in json.loads((out / "data_dictionary.json").read_text())["tables"]]
    assert names == ["runs", "scores"]
    assert json.loads((out / ".evalhouse-export.json").read_text())["tables"] == ["runs", "scores"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tables", "runs,sample"],
         "Error: unknown table 'sample' for --tables; choose from runs, scores, texts, metrics, files, comparisons"),
        (["--tables", ","], "Error: --tables names no table; choose from runs, scores, texts, metrics, files, "
                            "comparisons"),
    ],
)  # fmt: skip
def test_unknown_table_is_refused(wh: Warehouse, tmp_path: Path, args: list[str], message: str) -> None:
    code, _, err = run_cli("export", "--format", "parquet", str(tmp_path / "o"), *args, "-w", str(wh.root))
    assert (code, err.splitlines()) == (1, [message])
    assert not (tmp_path / "o").exists()


def test_tables_is_for_parquet_only(wh: Warehouse, tmp_path: Path) -> None:
    code, _, err = run_cli("export", "--format", "eee", str(tmp_path / "o"), "--tables", "runs", "-w", str(wh.root))
    assert (code, err.splitlines()) == (1, ["Error: --tables applies to --format parquet, not eee"])


def test_models_option_keeps_the_chosen_models(wh: Warehouse, tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert run_cli("export", "--format", "parquet", str(out), "-m", "base-m*", "-w", str(wh.root))[0] == 0
    runs = pl.read_parquet(out / "runs" / "*.parquet")
    assert sorted(set(runs["model"])) == ["base-m", "base-m-q4km", "base-m:q8_0"]
    for table in ("scores", "metrics"):
        assert set(pl.read_parquet(out / table / "*.parquet")["run_id"]) <= set(runs["run_id"])
    assert set(pl.read_parquet(out / "texts" / "*.parquet")["run_id"]) <= set(runs["run_id"])
    files = pl.read_parquet(out / "files" / "*.parquet")
    assert files.height > 0 and set(files["path"]) <= set(runs["source_path"])
    comparisons = pl.read_parquet(out / "comparisons" / "*.parquet")
    assert comparisons.height > 0
    assert set(comparisons["baseline"]) | set(comparisons["candidate"]) <= set(runs["model"])


def test_an_empty_table_still_has_its_schema(tmp_path: Path) -> None:
    wh = open_warehouse(tmp_path / "wh", create=True)
    load(wh, FIXTURES / "so8t" / "good" / "tiny-model_q8_0_results.json")
    out = tmp_path / "o"
    assert _export(wh, out, "--tables", "metrics,comparisons") == (0, "")
    for table in ("metrics", "comparisons"):
        got = ds.dataset(out / table, format="parquet").to_table()
        assert got.num_rows == 0 and got.schema.equals(TABLES[table].arrow_schema(), check_metadata=False)
    empty = open_warehouse(tmp_path / "empty", create=True)
    code, _, err = run_cli("export", "--format", "parquet", str(tmp_path / "none"), "-w", str(empty.root))
    assert (code, err.splitlines()[0]) == (1, f"Error: no runs to export in {empty.root}")


def test_several_parts_read_as_one_dataset(wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xp, "ROW_GROUP", 7)
    monkeypatch.setattr(xp, "PART_BYTES", 1)  # a new part after every batch
    out = tmp_path / "o"
    report = export(wh, out, fmt="parquet", tables=["scores"])
    parts = sorted(p.name for p in (out / "scores").iterdir())
    n = expected_counts(wh)["scores"]
    assert parts == [f"part-{i:05d}.parquet" for i in range(math.ceil(n / 7))]
    assert report.files == [out / "scores" / p for p in parts] and report.tables == {"scores": n}
    got = pl.scan_parquet(out / "scores" / "*.parquet").collect()
    assert_frame_equal(got, live(wh, "scores"), check_row_order=False)
    assert read_pyarrow(out / "scores").num_rows == n
    con = duckdb.connect()
    assert con.execute(f"SELECT count(*) FROM ({read_duckdb(out / 'scores')})").fetchone() == (n,)


def test_times_keep_their_instant_whatever_the_session_zone(wh: Warehouse, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    def tokyo(wh: Warehouse) -> duckdb.DuckDBPyConnection:
        con = connect(wh)
        con.execute("SET TimeZone = 'Asia/Tokyo'")
        return con

    monkeypatch.setattr("evalhouse.warehouse.connect", tokyo)
    export(wh, tmp_path / "o", fmt="parquet", tables=["runs"])
    got = pl.read_parquet(tmp_path / "o" / "runs" / "*.parquet").sort("run_id")
    assert got.schema["ingested_at"] == pl.Datetime("us", "UTC")
    assert got["ingested_at"].to_list() == live(wh, "runs")["ingested_at"].to_list()


# ---------------------------------------------------------------------------------------------
# Replacing OUT
# ---------------------------------------------------------------------------------------------


def _export(wh: Warehouse, out: Path, *args: str) -> tuple[int, str]:
    code, _, err = run_cli("export", "--format", "parquet", str(out), *args, "-w", str(wh.root))
    return code, err


def test_a_folder_that_is_not_an_export_is_refused(wh: Warehouse, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert _export(wh, out) == (1, f"Error: {out} exists and is not an evalhouse export; not overwriting it\n"
                                   "Hint: choose a new folder, or remove it first\n")  # fmt: skip
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert _export(wh, blocker)[0] == 2  # click's own check of OUT; the engine's, for other callers:
    with pytest.raises(ExportError, match=f"^{blocker} exists and is not a folder$"):
        export(wh, blocker, fmt="parquet")
    link = tmp_path / "link"
    link.symlink_to(out)
    assert _export(wh, link)[1].startswith(f"Error: {link} is a symbolic link; not replacing it")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "link", "mine"]  # no leftovers


def test_an_empty_folder_is_used(wh: Warehouse, tmp_path: Path) -> None:
    (tmp_path / "o").mkdir()
    assert _export(wh, tmp_path / "o", "--tables", "runs") == (0, "")
    assert (tmp_path / "o" / "runs" / "part-00000.parquet").is_file()


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2-exchange", "two-renames"])
def test_an_earlier_export_is_replaced_whole(wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             exchange: bool) -> None:  # fmt: skip
    out = tmp_path / "o"
    assert _export(wh, out) == (0, "")
    (out / "scores" / "stray.parquet").write_bytes(b"")  # anything in the earlier export goes with it
    calls: list[bool] = []
    real = xp._exchange

    def spy(a: Path, b: Path) -> bool:
        calls.append(True)
        return real(a, b) if exchange else False

    monkeypatch.setattr(xp, "_exchange", spy)
    assert _export(wh, out, "--tables", "runs,files") == (0, "")
    assert calls == [True]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["files", "runs"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]  # no temporary or old folder left beside
    assert_frame_equal(pl.read_parquet(out / "runs" / "*.parquet").sort("run_id"), live(wh, "runs"))


def test_exchange_swaps_two_folders(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a")
    (b / "x").write_text("b")
    if not xp._exchange(a, b):
        pytest.skip("no renameat2(RENAME_EXCHANGE) on this system or file system")
    assert ((a / "x").read_text(), (b / "x").read_text()) == ("b", "a")


def test_a_failed_export_leaves_the_earlier_one(wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "o"
    assert _export(wh, out, "--tables", "runs") == (0, "")
    before = (out / "runs" / "part-00000.parquet").read_bytes()

    def full(*_: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(xp, "_write_table", full)
    assert _export(wh, out) == (1, f"Error: cannot write {out}: No space left on device\n")
    assert (out / "runs" / "part-00000.parquet").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]


def test_an_ingest_meanwhile_changes_nothing_in_the_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The export is one snapshot: the files committed when it started, whatever commits meanwhile."""
    wh = open_warehouse(tmp_path / "wh", create=True)
    load(wh, FIXTURES / "so8t" / "good" / "tiny-model_q8_0_results.json")
    want = {t: live(wh, t) for t in RUN_TABLES}
    real: Callable[..., Any] = xp._write_table
    ingested: list[bool] = []

    def with_an_ingest(*args: Any) -> Any:
        if not ingested:  # another process's ingest commits while the first table is written
            ingested.append(True)
            load(wh, FIXTURES / "so8t" / "good" / "20250302_090000_simple_abc_results.json")
        return real(*args)

    monkeypatch.setattr(xp, "_write_table", with_an_ingest)
    assert _export(wh, tmp_path / "o") == (0, "")
    assert ingested and live(wh, "runs").height > want["runs"].height
    for table in RUN_TABLES:
        assert_frame_equal(pl.read_parquet(tmp_path / "o" / table / "*.parquet"), want[table])


def test_an_abandoned_export_is_cleaned_up(wh: Warehouse, tmp_path: Path) -> None:
    dead = tmp_path / ".o.export-999999999-0badf00d"  # no such process
    dead.mkdir()
    (dead / "runs").mkdir()
    mine = tmp_path / f".o.export-{os.getpid()}-0badf00d"  # a live process's: left alone
    mine.mkdir()
    assert _export(wh, tmp_path / "o", "--tables", "runs") == (0, "")
    assert sorted(p.name for p in tmp_path.iterdir()) == [mine.name, "o"]
