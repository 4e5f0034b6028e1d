"""Resource errors: read-only warehouse, full disk, missing warehouse. A clear error, exit 1, and
nothing half-written."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from evalhouse.cli import main
from evalhouse.ingest import ingest
from evalhouse.warehouse import Warehouse, connect, open_warehouse
from tests.conftest import FIXTURES


def big_corpus(folder: Path, n: int) -> Path:
    folder.mkdir()
    for f in range(n):
        items = [
            {"model": "m", "test_name": f"t{i}", "score": 0.5, "response": os.urandom(400).hex()} for i in range(50)
        ]
        (folder / f"r{f}.json").write_bytes(orjson.dumps({"metadata": {"f": f}, "results": items}))
    return folder


def state(wh: Warehouse) -> tuple[object, ...]:
    con = connect(wh)
    return (
        con.execute("SELECT count(*) FROM scores").fetchone(),
        con.execute("SELECT count(*) FROM files").fetchone(),
        sorted(str(p.relative_to(wh.root)) for p in (wh.root / "tables").rglob("*.parquet")),
    )


@pytest.fixture
def tmpfs(mount_tmpfs) -> Path:
    """A 3 MB tmpfs (a real full disk)."""
    return mount_tmpfs("3m")


def test_disk_full_for_real(tmpfs: Path, tmp_path: Path) -> None:
    wh = open_warehouse(tmpfs / "wh", create=True)
    ingest(wh, [FIXTURES / "so8t" / "good"], workers=1)
    before = state(wh)
    result = CliRunner().invoke(main, ["ingest", str(big_corpus(tmp_path / "big", 150)), "-w", str(wh.root)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: could not write to the warehouse {wh.root}: No space left on device")
    assert "Hint: free some disk space" in result.stderr
    assert state(wh) == before


def test_disk_full_simulated(wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow.parquet as pq

    ingest(wh, [FIXTURES / "so8t" / "good"], workers=1)
    before = state(wh)

    def no_space(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", no_space)
    result = CliRunner().invoke(
        main, ["ingest", str(big_corpus(tmp_path / "c", 3)), "-w", str(wh.root), "--workers", "1"]
    )
    assert result.exit_code == 1 and "No space left on device; nothing was written" in result.stderr
    assert state(wh) == before


def test_read_only_warehouse_for_real(tmp_path: Path) -> None:
    wh = open_warehouse(tmp_path / "wh", create=True)
    ingest(wh, [FIXTURES / "so8t" / "good"], workers=1)
    ro = tmp_path / "ro"
    ro.mkdir()
    if subprocess.run(["mount", "--bind", "-o", "ro", str(wh.root), str(ro)], capture_output=True).returncode:
        pytest.skip("cannot make a read-only bind mount here")
    try:
        result = CliRunner().invoke(main, ["ingest", str(FIXTURES / "so8t" / "bad"), "-w", str(ro)])
        assert result.exit_code == 1
        assert result.stderr.startswith(f"Error: cannot write to the warehouse {ro}: Read-only file system")
        # Reading still works.
        result = CliRunner().invoke(main, ["models", "-w", str(ro), "--format", "csv"])
        assert result.exit_code == 0 and "tiny-model" in result.stdout
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=False)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes whatever the mode")
def test_read_only_warehouse_by_mode(wh: Warehouse) -> None:
    wh.root.chmod(0o555)
    try:
        result = CliRunner().invoke(main, ["ingest", str(FIXTURES / "so8t" / "good"), "-w", str(wh.root)])
        assert result.exit_code == 1 and "cannot write to the warehouse" in result.stderr
    finally:
        wh.root.chmod(0o755)


def test_missing_warehouse_for_readers_and_uncreatable_for_ingest(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["summary", "-w", str(tmp_path / "none")])
    assert result.exit_code == 1 and result.stderr.startswith(f"Error: no warehouse at {tmp_path / 'none'}")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(main, ["ingest", str(FIXTURES / "so8t" / "good"), "-w", str(blocker / "wh")])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot create a warehouse at {blocker / 'wh'}: Not a directory")
    assert not shutil.os.path.exists(blocker / "wh")  # type: ignore[attr-defined]
