"""The command line: help with examples, output formats, errors and exit codes, the DuckDB shell."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from evalhouse.cli import main
from tests.conftest import FIXTURES, ROOT


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def loaded(tmp_path: Path) -> str:
    wh = str(tmp_path / "wh")
    code, out, _ = run("ingest", str(FIXTURES / "so8t" / "good"), "--warehouse", wh)
    assert code == 0, out
    return wh


def test_every_command_has_help_with_an_example() -> None:
    for name, command in main.commands.items():
        code, out, _ = run(name, "--help")
        assert code == 0
        assert "Example:" in out and f"evalhouse {name}" in out, name
        assert command.help and command.help.strip(), name


def test_ingest_summary_line(tmp_path: Path) -> None:
    code, out, err = run("ingest", str(FIXTURES / "so8t"), "-w", str(tmp_path / "wh"))
    assert code == 0
    assert out.startswith("10 file(s): 5 ingested, 0 unchanged, 0 duplicate, 1 not-results, 4 rejected;")
    assert err.count("rejected: ") == 4 and "results[1].score: 'high' is not a number" in err


def test_strict_exits_1(tmp_path: Path) -> None:
    code, _, err = run("ingest", "--strict", str(FIXTURES / "so8t"), "-w", str(tmp_path / "wh"))
    assert code == 1
    assert err.startswith("Error: 4 file(s) rejected, nothing written (--strict):")


def test_missing_path_and_missing_warehouse(tmp_path: Path) -> None:
    code, _, err = run("ingest", str(tmp_path / "nope"), "-w", str(tmp_path / "wh"))
    assert (code, err.splitlines()[0]) == (1, f"Error: no such file or folder: {tmp_path / 'nope'}")
    code, _, err = run("models", "-w", str(tmp_path / "absent"))
    assert code == 1
    assert err.splitlines() == [
        f"Error: no warehouse at {tmp_path / 'absent'}",
        "Hint: run `evalhouse ingest PATH` to create one, or pass --warehouse DIR",
    ]


def test_usage_error_exits_2(loaded: str) -> None:
    code, _, err = run("summary", "--by", "colour", "-w", loaded)
    assert code == 2 and "Invalid value for '--by'" in err


def test_formats(loaded: str) -> None:
    _, out, _ = run("summary", "--by", "model", "--format", "json", "-w", loaded)
    records = json.loads(out)
    base = next(r for r in records if r["model"] == "base-m" and r["metric"] == "score")
    assert base["n"] == 7 and base["mean"] == pytest.approx((1 + 0.5 + 0.8 + 1 + 0 + 1 + 0.45) / 7)
    _, out, _ = run("summary", "--by", "model,category", "--format", "csv", "-w", loaded)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["category"] for r in rows if r["model"] == "base-m"} >= {"math", "日本語", "elyza_100"}
    _, out, _ = run("models", "--format", "markdown", "-w", loaded)
    assert out.splitlines()[0] == "| model | model_base | quantization | runs | items |"
    assert "| base-m-q4km | base-m | q4_k_m | 1 | 3 |" in out
    _, out, _ = run("models", "-w", loaded)
    assert out.splitlines()[0].split() == ["model", "model_base", "quantization", "runs", "items"]


def test_files_filter_and_env_warehouse(loaded: str) -> None:
    code, out, _ = run("files", "--status", "not-results", "--format", "csv", env={"EVALHOUSE_WAREHOUSE": loaded})
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [Path(r["path"]).name for r in rows] == ["metadata.json"]


def test_sql_binds_nothing_from_names_and_reports_errors(loaded: str) -> None:
    code, out, _ = run("sql", "SELECT count(*) AS n FROM scores", "--format", "json", "-w", loaded)
    assert json.loads(out) == [{"n": 21}]
    code, _, err = run("sql", "SELECT * FROM no_such_view", "-w", loaded)
    assert code == 1 and err.startswith("Error: query failed:") and "no_such_view" in err


def _duckdb_cli() -> str:
    exe = shutil.which("duckdb") or os.path.join(os.path.dirname(sys.executable), "duckdb")
    if not os.access(exe, os.X_OK):
        pytest.skip("the duckdb shell is not installed")
    return exe


def test_real_duckdb_shell_reads_the_views_file(loaded: str, tmp_path: Path) -> None:
    exe = _duckdb_cli()
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("v1.5"), version  # the shell users get from duckdb-cli
    # From another working directory, with a relative path to the file, like a user would.
    proc = subprocess.run(
        [exe, "-csv", os.path.relpath(Path(loaded) / "evalhouse.duckdb", tmp_path), "-c",
         "SELECT model, n FROM model_summary WHERE metric = 'score' ORDER BY model"],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert proc.stdout.splitlines() == ["model,n", "base-m,7", "base-m-q4km,3", "tiny-model,3"]


def test_evalhouse_shell_opens_duckdb_on_the_warehouse(loaded: str, tmp_path: Path) -> None:
    _duckdb_cli()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EVALHOUSE_WAREHOUSE": loaded}
    proc = subprocess.run(
        [sys.executable, "-m", "evalhouse.cli", "shell"], input="SELECT count(*) AS runs FROM runs;\n",
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "runs" in proc.stdout and "6" in proc.stdout
