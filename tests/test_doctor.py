"""Schema versions and `evalhouse doctor`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from cli import main
from engine.doctor import check, fix
from engine.errors import WarehouseError
from engine.ingest import ingest
from engine.schema import SCHEMA_VERSION
from engine.warehouse import Warehouse, connect, open_warehouse
from tests.conftest import FIXTURES


def _set_version(wh: Warehouse, version: object) -> None:
    meta = json.loads(wh.meta_path.read_text())
    meta["schema_version"] = version
    wh.meta_path.write_text(json.dumps(meta))


def test_version_is_recorded(wh: Warehouse) -> None:
    assert json.loads(wh.meta_path.read_text())["schema_version"] == SCHEMA_VERSION


@pytest.mark.parametrize(
    ("version", "message"),
    [(SCHEMA_VERSION + 1, "newer than this evalhouse reads"), ("1", "not a version number"),
     (0, "schema_version 0 has no upgrade path")],
)  # fmt: skip
def test_unknown_versions_are_refused_not_misread(wh: Warehouse, version: object, message: str) -> None:
    _set_version(wh, version)
    with pytest.raises(WarehouseError, match=message):
        open_warehouse(wh.root)
    assert any("schema_version" in str(f) for f in check(wh.root))


def test_older_layout_without_a_table_is_upgraded(wh: Warehouse) -> None:
    ingest(wh, [FIXTURES / "so8t" / "good"], workers=1)
    # A warehouse written before the `metrics` table existed has no file for it (nor manifests).
    for f in [*wh.data.glob("b*/metrics*.parquet"), *wh.data.glob("b*/manifest.json")]:
        f.unlink()
    meta = json.loads(wh.meta_path.read_text())
    meta["tables"].remove("metrics")
    wh.meta_path.write_text(json.dumps(meta))
    reopened = open_warehouse(wh.root)
    assert connect(reopened).execute("SELECT count(*) FROM metrics").fetchone() == (0,)
    assert connect(reopened).execute("SELECT count(*) FROM scores").fetchone() == (21,)
    assert check(wh.root) == []


def test_doctor_finds_and_fixes_leftovers(wh: Warehouse) -> None:
    ingest(wh, [FIXTURES / "so8t" / "good"], workers=1)
    (wh.data / ".staging-b1-abc").mkdir()
    (wh.root / ".evalhouse.duckdb.1234.tmp").write_bytes(b"half")
    (wh.data / "stray.parquet").write_bytes(b"x")
    findings = [str(f) for f in check(wh.root)]
    assert [f.split(":", 1)[0] for f in findings] == ["warning"] * 3
    assert any("unfinished batch" in f for f in findings) and any("half-written" in f for f in findings)
    done = fix(wh.root)
    assert any("removed" in d and ".staging-b1-abc" in d for d in done)
    assert [str(f) for f in check(wh.root)] == [f"warning: {wh.data / 'stray.parquet'}: not a batch folder; "
                                                "no view reads it"]  # fmt: skip


def test_doctor_finds_duplicated_and_foreign_data(wh: Warehouse) -> None:
    ingest(wh, [FIXTURES / "so8t" / "good"], workers=1)
    batch = next(d for d in wh.batch_dirs() if not d.name.endswith("init"))
    copy = wh.data / (batch.name[:-6] + "ffffff")
    shutil.copytree(batch, copy)  # as if one batch were committed twice
    (copy / "manifest.json").unlink()  # as batches before manifests: its files are read by their names
    pq.write_table(pa.table({"run_id": ["x"], "score": ["high"]}), copy / "scores-99999.parquet")
    result = CliRunner().invoke(main, ["doctor", "-w", str(wh.root)])
    assert result.exit_code == 1
    assert "column 'score' is string, declared double" in result.stdout
    (copy / "scores-99999.parquet").unlink()
    findings = [str(f) for f in check(wh.root)]
    assert any("appear in more than one live copy" in f for f in findings)


def test_doctor_on_a_folder_that_is_not_a_warehouse(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["doctor", "-w", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == f"error: {tmp_path}: not a warehouse (no evalhouse.json)"
