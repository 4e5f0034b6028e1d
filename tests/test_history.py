"""Time travel over commits: `evalhouse history`, `--as-of` on read commands, and the report's version."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from evalhouse.cli import main
from evalhouse.errors import WarehouseError
from evalhouse.ingest import ingest
from evalhouse.versions import resolve
from evalhouse.warehouse import Warehouse, history, open_warehouse


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def _count(wh: Path, *extra: str) -> int:
    result = run("sql", "-w", str(wh), "SELECT count(*) AS n FROM scores", "--format", "json", *extra)
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout)[0]["n"]


def test_history_and_as_of(wh: Warehouse, so8t_fixtures: Path, tmp_path: Path) -> None:
    good = so8t_fixtures / "good"
    tiny = good / "tiny-model_q8_0_results.json"
    aside = tmp_path / tiny.name
    shutil.move(tiny, aside)
    ingest(wh, [good], workers=1)  # version 1
    first = _count(wh.root)
    shutil.move(aside, tiny)
    ingest(wh, [good], workers=1)  # version 2: the tiny model's rows added
    rows = json.loads(tiny.read_text())
    rows[0]["is_correct"] = not rows[0]["is_correct"]
    tiny.write_text(json.dumps(rows))
    ingest(wh, [good], workers=1)  # version 3: its content replaced (old run retired)
    now = _count(wh.root)
    assert now > first
    commits = history(wh)
    assert [c["kind"] for c in commits] == ["create", "ingest", "ingest", "ingest"]
    assert [c["version"] for c in commits] == [0, 1, 2, 3]
    result = run("history", "-w", str(wh.root), "--format", "json")
    assert result.exit_code == 0 and [r["version"] for r in orjson.loads(result.stdout)] == [0, 1, 2, 3]

    # Each version reads as it was: rows, and the run retired later still live before it.
    assert _count(wh.root, "--as-of", "1") == first
    assert _count(wh.root, "--as-of", commits[2]["batch_id"]) == now
    assert _count(wh.root, "--as-of", "0") == 0
    models = run("models", "-w", str(wh.root), "--as-of", "2", "--format", "json")
    tiny_runs = [m for m in orjson.loads(models.stdout) if m["model"] == "tiny-model"]
    assert tiny_runs and tiny_runs[0]["runs"] == 1
    at_time = commits[1]["time"].isoformat()
    assert resolve(wh, at_time) == 1
    with pytest.raises(WarehouseError, match="no version 9"):
        open_warehouse(wh.root, as_of="9")
    bad = run("summary", "-w", str(wh.root), "--as-of", "yesterday")
    assert bad.exit_code == 1 and "is not a version number, a batch id or an ISO time" in bad.stderr

    # Reading the past never rewrites the present's views file, and compare there saves nothing.
    views = (wh.root / "evalhouse.duckdb").read_bytes()
    cmp = run("compare", "-w", str(wh.root), "--as-of", "1", "-b", "base-m", "-c", "base-m-q4km", "--format", "json")
    assert cmp.exit_code == 0 and "stored" not in cmp.stderr
    assert (wh.root / "evalhouse.duckdb").read_bytes() == views
    assert len(history(wh)) == 4


def test_report_records_the_version(wh: Warehouse, so8t_fixtures: Path, tmp_path: Path) -> None:
    ingest(wh, [so8t_fixtures / "good"], workers=1)
    result = run("report", "-w", str(wh.root), "--out", str(tmp_path / "r"), "--output", "md",
                 "-b", "base-m", "-c", "base-m-q4km")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"1 (ingest, batch {history(wh)[1]['batch_id']})" in (tmp_path / "r" / "report.md").read_text(
        encoding="utf-8"
    )


def test_an_ingest_with_nothing_new_commits_nothing(wh: Warehouse, so8t_fixtures: Path) -> None:
    good = so8t_fixtures / "good"
    ingest(wh, [good], workers=1)
    versions = len(history(wh))
    result = run("ingest", "-w", str(wh.root), str(good))
    assert result.exit_code == 0 and result.stdout.rstrip().endswith("(nothing new: no commit)")
    assert len(history(wh)) == versions
