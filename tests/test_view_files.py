"""Views name the exact list of live files: no glob, so no path character is special and no stray
file is read; evalhouse.duckdb follows every commit and a moved or copied warehouse."""

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

from evalhouse import compare as cmp
from evalhouse import versions
from evalhouse.cli import main
from evalhouse.doctor import check, fix
from evalhouse.errors import WarehouseError
from evalhouse.ingest import ingest
from evalhouse.optimize import optimize
from evalhouse.schema import VIEWS
from evalhouse.warehouse import Warehouse, connect, file_literal, lock, open_warehouse, views_are_current
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


def stale(findings: Sequence[object]) -> list[str]:
    return [str(f) for f in findings if "stale" in str(f)]


# ---------------------------------------------------------------------------------------------
# A path with glob characters in it
# ---------------------------------------------------------------------------------------------


def test_a_warehouse_path_with_glob_characters_reads_only_its_own_files(tmp_path: Path) -> None:
    root = tmp_path / "it's evals *?"
    # As a glob, the path above matches this folder: a warehouse with the same rows would double them.
    decoy = tmp_path / "it's evals ab"
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


def test_a_path_delta_rs_cannot_open_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    root = tmp_path / "evals [x]"
    result = CliRunner().invoke(main, ["ingest", str(SO8T), "-w", str(root)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {root}: the warehouse's path has [ ] in it, which delta-rs")
    assert not root.exists()


def test_a_path_duckdb_cannot_name_is_refused_clearly() -> None:
    assert file_literal("/w/it's [x]*?/b/scores.parquet") == "'/w/it''s [[]x][*][?]/b/scores.parquet'"
    assert file_literal("/w/back\\slash/scores.parquet") == "'/w/back\\slash/scores.parquet'"  # no glob: as is
    with pytest.raises(WarehouseError, match=r"both a backslash and one of \* \? \["):
        file_literal("/w/a\\[b]/scores.parquet")


def test_a_table_without_files_still_has_its_view(wh: Warehouse) -> None:
    con = connect(wh)  # a new warehouse: every table is empty, without a single file
    assert not any(wh.table_files(t) for t in ("runs", "comparisons"))
    for name in ("runs", "comparisons"):
        assert [r[0] for r in con.execute(f"DESCRIBE {name}").fetchall()] == VIEWS[name].names
        assert con.execute(f"SELECT count(*) FROM {name}").fetchone() == (0,)


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
    optimize(wh)  # compaction replaces every table's files
    assert current()
    # A version published by hand (the views file names the files before it).
    v = versions.current(wh.root)
    assert v is not None
    versions.publish(wh.root, versions.new(wh.root, "ingest", None, {**v.tables, "scores": 0}))
    assert len(stale(check(wh.root))) == 1
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
    assert [line for line in out.splitlines() if "stale" in line] == [
        f"error: {moved / 'evalhouse.duckdb'}: stale: its views read another folder's files (the warehouse was "
        "moved or copied); any evalhouse command run on the warehouse, or `evalhouse doctor --fix`, rewrites it",
    ]
    assert cli("files", "-w", str(moved))[0] == 0  # any command
    code, out = cli("doctor", "-w", str(moved))
    assert code == 0 and out.splitlines()[-1] == "healthy"
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
