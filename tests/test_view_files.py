"""Views name the exact list of committed files: no glob, so no path character is special and no
stray file is read; evalhouse.duckdb follows every commit and a moved or copied warehouse; doctor
checks each batch's files against what was committed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from engine import compare as cmp
from engine.doctor import check, fix
from engine.errors import WarehouseError
from engine.ingest import ingest
from engine.schema import VIEWS
from engine.warehouse import Warehouse, connect, file_literal, lock, open_warehouse, views_are_current
from tests.conftest import FIXTURES

SO8T = FIXTURES / "so8t" / "good"
SUMMARY_SQL = "SELECT model, n FROM model_summary WHERE metric = 'score' ORDER BY model"
# What SUMMARY_SQL gives for SO8T once (tests/test_cli.py checks the same numbers).
SO8T_SUMMARY = ["model,n", "base-m,7", "base-m-q4km,3", "tiny-model,3"]


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout


def duckdb_shell(db: Path, sql: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The DuckDB shell users install (duckdb-cli 1.5), run from ``cwd`` on a relative path to ``db``."""
    exe = shutil.which("duckdb") or os.path.join(os.path.dirname(sys.executable), "duckdb")
    if not os.access(exe, os.X_OK):
        pytest.skip("the duckdb shell is not installed")
    cwd.mkdir(exist_ok=True)
    return subprocess.run([exe, "-csv", os.path.relpath(db, cwd), "-c", sql], cwd=cwd, capture_output=True,
                          text=True, timeout=60)  # fmt: skip


def shell_lines(db: Path, sql: str, cwd: Path) -> list[str]:
    proc = duckdb_shell(db, sql, cwd)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def newest_batch(wh: Warehouse) -> Path:
    return wh.batch_dirs()[-1]


def stale(findings: Sequence[object]) -> list[str]:
    return [str(f) for f in findings if "stale" in str(f)]


# ---------------------------------------------------------------------------------------------
# A path with glob characters in it
# ---------------------------------------------------------------------------------------------


def test_a_warehouse_path_with_glob_characters_reads_only_its_own_files(tmp_path: Path) -> None:
    root = tmp_path / "evals [x] *?"
    # As a glob, the path above matches this folder: a warehouse with the same rows would double them.
    decoy = tmp_path / "evals x ab"
    assert cli("ingest", "-q", str(SO8T), "-w", str(decoy))[0] == 0
    assert cli("ingest", "-q", str(SO8T), "-w", str(root))[0] == 0

    code, out = cli("summary", "--by", "model", "--format", "json", "-w", str(root))
    assert code == 0
    assert {(r["model"], r["n"]) for r in json.loads(out) if r["metric"] == "score"} == {
        ("base-m", 7), ("base-m-q4km", 3), ("tiny-model", 3),
    }  # fmt: skip
    code, out = cli("compare", "-w", str(root), "--format", "json")
    assert code == 0 and {r["candidate"] for r in json.loads(out)} == {"base-m-q4km", "base-m:q8_0"}
    assert check(root) == []

    db = root / "evalhouse.duckdb"
    assert shell_lines(db, SUMMARY_SQL, tmp_path / "elsewhere") == SO8T_SUMMARY
    assert shell_lines(db, "SELECT count(*) AS n FROM comparisons", tmp_path / "elsewhere") != ["n", "0"]


def test_a_path_duckdb_cannot_name_is_refused_clearly() -> None:
    assert file_literal("/w/it's [x]*?/b/scores.parquet") == "'/w/it''s [[]x][*][?]/b/scores.parquet'"
    assert file_literal("/w/back\\slash/scores.parquet") == "'/w/back\\slash/scores.parquet'"  # no glob: as is
    with pytest.raises(WarehouseError, match=r"both a backslash and one of \* \? \["):
        file_literal("/w/a\\[b]/scores.parquet")


# ---------------------------------------------------------------------------------------------
# Files no writer committed
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("manifest", [True, False], ids=["batch", "batch-before-manifests"])
def test_a_planted_copy_is_not_read_and_doctor_moves_it_aside(wh: Warehouse, tmp_path: Path, manifest: bool) -> None:
    ingest(wh, [SO8T], workers=1)
    batch = newest_batch(wh)
    if not manifest:
        (batch / "manifest.json").unlink()
    before = connect(wh).execute("SELECT count(*), sum(score) FROM scores").fetchone()
    planted = [batch / "scores-00000 (1).parquet", batch / "texts-00000.parquet.bak"]
    if manifest:  # a writer's name, but not a file this batch was committed with
        planted.append(batch / "scores-00007.parquet")
    for f in planted:
        shutil.copy(batch / "scores-00000.parquet", f)

    wh = open_warehouse(wh.root)
    assert connect(wh).execute("SELECT count(*), sum(score) FROM scores").fetchone() == before
    assert shell_lines(wh.db_path, SUMMARY_SQL, tmp_path / "elsewhere") == SO8T_SUMMARY
    code, out = cli("doctor", "-w", str(wh.root))
    assert code == 0  # nothing is misread: warnings
    dest = {f: wh.root / "quarantine" / batch.name / f.name for f in planted}
    warnings = [
        f"warning: {f}: not a file evalhouse committed; no view reads it (`evalhouse doctor --fix` moves it to "
        f"{dest[f]})"
        for f in planted
    ]
    assert out.splitlines() == [*sorted(warnings), f"0 error(s), {len(planted)} warning(s)"]

    done = fix(wh.root)
    assert [d for d in done if d.startswith("moved")] == sorted(f"moved {f} to {dest[f]}" for f in planted)
    assert all(dest[f].is_file() and not f.exists() for f in planted)
    assert check(wh.root) == []
    assert connect(wh).execute("SELECT count(*), sum(score) FROM scores").fetchone() == before


def test_folders_in_data_that_are_not_batches_are_not_read(wh: Warehouse) -> None:
    ingest(wh, [SO8T], workers=1)
    backup = wh.data / "backup"  # starts with "b", as batch folders do
    shutil.copytree(newest_batch(wh), backup)
    assert connect(wh).execute("SELECT count(*) FROM scores").fetchone() == (21,)
    assert [str(f) for f in check(wh.root)] == [f"warning: {backup}: not a batch folder; no view reads it"]


# ---------------------------------------------------------------------------------------------
# Deleted or replaced files
# ---------------------------------------------------------------------------------------------


def test_deleted_texts_and_metrics_files_are_reported(wh: Warehouse) -> None:
    ingest(wh, [FIXTURES / "lm_eval" / "v0_4_12"], workers=1)
    batch = newest_batch(wh)
    committed = json.loads((batch / "manifest.json").read_text())["files"]
    texts, metrics = batch / "texts-00001.parquet", batch / "metrics-00000.parquet"
    texts.unlink()
    metrics.unlink()
    code, out = cli("doctor", "-w", str(wh.root))
    assert code == 1
    assert out.splitlines()[:2] == [
        f"error: {metrics}: missing; the {committed[metrics.name]['rows']} metrics row(s) committed in it are lost "
        "from the views",
        f"error: {texts}: missing; the {committed[texts.name]['rows']} texts row(s) committed in it are lost "
        "from the views",
    ]
    # The views still work meanwhile, without those rows.
    con = connect(wh)
    assert con.execute("SELECT count(*) FROM metrics").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM samples").fetchone() == (6,)


def test_without_a_manifest_the_ledger_still_counts_score_and_metric_rows(wh: Warehouse) -> None:
    ingest(wh, [FIXTURES / "lm_eval" / "v0_4_12"], workers=1)
    batch = newest_batch(wh)
    (batch / "manifest.json").unlink()  # a batch committed before manifests
    assert check(wh.root) == []
    (batch / "metrics-00000.parquet").unlink()  # 8 rows; the batch's scores files hold 6
    assert [str(f) for f in check(wh.root) if "ledger" in str(f)] == [
        f"error: {batch}: the ledger records 14 score and metric row(s) ingested in this batch; its scores and "
        "metrics files hold 6"
    ]


def test_a_replaced_file_is_reported(wh: Warehouse) -> None:
    ingest(wh, [SO8T], workers=1)
    batch = newest_batch(wh)
    shutil.copy(batch / "scores-00001.parquet", batch / "scores-00000.parquet")
    rows = json.loads((batch / "manifest.json").read_text())["files"]
    findings = [str(f) for f in check(wh.root)]
    f = batch / "scores-00000.parquet"
    assert f"error: {f}: holds {rows['scores-00001.parquet']['rows']} row(s), committed with " \
           f"{rows['scores-00000.parquet']['rows']} (replaced since)" in findings  # fmt: skip


def test_a_table_without_files_still_has_its_view(wh: Warehouse) -> None:
    for f in [*wh.data.glob("b*/retired*.parquet"), *wh.data.glob("b*/comparisons*.parquet")]:
        f.unlink()
    con = connect(wh)  # as it stands, before anything upgrades it
    for name in ("retired", "comparisons"):
        assert [r[0] for r in con.execute(f"DESCRIBE {name}").fetchall()] == VIEWS[name].names
        assert con.execute(f"SELECT count(*) FROM {name}").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM runs").fetchone() == (0,)


# ---------------------------------------------------------------------------------------------
# The views file: current after every commit, rewritten for a moved or copied warehouse
# ---------------------------------------------------------------------------------------------


def test_every_commit_leaves_the_views_file_current(wh: Warehouse) -> None:
    def current() -> bool:
        return views_are_current(wh) and check(wh.root) == []

    assert current()
    ingest(wh, [SO8T], workers=1)
    assert current()
    for _ in range(cmp.KEEP_ANALYSES + 1):  # the last save also prunes an old analysis
        cmp.save(wh, cmp.compare(connect(wh)))
    assert current()
    meta = json.loads(wh.meta_path.read_text())  # an older warehouse, without the metrics table
    meta["tables"].remove("metrics")
    wh.meta_path.write_text(json.dumps(meta))
    for f in [*wh.data.glob("b*/metrics*.parquet"), *wh.data.glob("b*/manifest.json")]:
        f.unlink()
    open_warehouse(wh.root)  # upgrades
    assert current()
    shutil.rmtree(newest_batch(wh))  # a batch deleted by hand: the views file names its files
    assert stale(check(wh.root)) == [
        f"error: {wh.db_path}: stale: its views read a list of files that is not the current one; any evalhouse "
        "command run on the warehouse, or `evalhouse doctor --fix`, rewrites it"
    ]
    fix(wh.root)
    assert current()


@pytest.mark.parametrize("how", ["mv", "cp -r"])
def test_a_moved_or_copied_warehouse_gets_its_own_views(tmp_path: Path, how: str) -> None:
    original, moved = tmp_path / "wh", tmp_path / "elsewhere" / "wh2"
    assert cli("ingest", "-q", str(SO8T), "-w", str(original))[0] == 0
    moved.parent.mkdir()
    subprocess.run([*how.split(), str(original), str(moved)], check=True)
    if how == "cp -r":  # the original goes on changing: the copy must not show it
        assert cli("ingest", "-q", str(FIXTURES / "lm_eval" / "v0_4_12"), "-w", str(original))[0] == 0
    else:  # the views file names the old folder's files, which are gone
        assert duckdb_shell(moved / "evalhouse.duckdb", SUMMARY_SQL, tmp_path / "cwd").returncode != 0

    code, out = cli("doctor", "-w", str(moved))
    assert code == 1
    assert out.splitlines() == [
        f"error: {moved / 'evalhouse.duckdb'}: stale: its views read another folder's files (the warehouse was "
        "moved or copied); any evalhouse command run on the warehouse, or `evalhouse doctor --fix`, rewrites it",
        "1 error(s), 0 warning(s)",
    ]
    assert cli("files", "-w", str(moved))[0] == 0  # any command
    assert cli("doctor", "-w", str(moved)) == (0, "healthy\n")
    assert shell_lines(moved / "evalhouse.duckdb", SUMMARY_SQL, tmp_path / "cwd") == SO8T_SUMMARY
    runs = "SELECT count(*) AS n FROM runs"
    assert shell_lines(moved / "evalhouse.duckdb", runs, tmp_path / "cwd") == ["n", "7"]
    if how == "cp -r":
        assert shell_lines(original / "evalhouse.duckdb", runs, tmp_path / "cwd") == ["n", "10"]


def test_readers_of_a_moved_warehouse_never_wait_for_the_lock(tmp_path: Path) -> None:
    wh = open_warehouse(tmp_path / "wh", create=True)
    ingest(wh, [SO8T], workers=1)
    os.rename(wh.root, tmp_path / "moved")
    moved = Warehouse(tmp_path / "moved")
    with lock(moved):  # an ingest is writing: readers query in memory and leave the views file to it
        code, out = cli("models", "-w", str(moved.root), "--format", "csv")
        assert code == 0 and "tiny-model" in out
        assert len(stale(check(moved.root))) == 1
    assert cli("models", "-w", str(moved.root))[0] == 0
    assert stale(check(moved.root)) == []
