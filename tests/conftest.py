"""Shared fixtures: fresh warehouses, the fixture corpus, the SO8T corpus when present."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from evalhouse.warehouse import Warehouse, open_warehouse

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SO8T = ROOT.parent / "shared" / "corpus" / "so8t"


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    """A new, empty warehouse."""
    return open_warehouse(tmp_path / "wh", create=True)


@pytest.fixture
def so8t_fixtures(tmp_path: Path) -> Path:
    """A private copy of tests/fixtures/so8t (tests may change files in it)."""
    dest = tmp_path / "so8t"
    shutil.copytree(FIXTURES / "so8t", dest)
    return dest


@pytest.fixture
def so8t_corpus() -> Path:
    """The real SO8T corpus beside the repository; skips when it is absent."""
    if not SO8T.is_dir():
        pytest.skip("../shared/corpus/so8t is not present")
    return SO8T


@pytest.fixture
def mount_tmpfs(tmp_path: Path):
    """Mount a real tmpfs of a given size (a disk that fills up); skips where mounting is not allowed."""
    import subprocess

    mounted: list[Path] = []

    def mount(size: str) -> Path:
        mnt = tmp_path / f"mnt-{len(mounted)}"
        mnt.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
                          capture_output=True).returncode:  # fmt: skip
            pytest.skip("cannot mount a tmpfs here")
        mounted.append(mnt)
        return mnt

    yield mount
    for mnt in mounted:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.fixture
def put_scores(wh: Warehouse):
    """Write score rows (dicts with model, score and any other scores column) as one commit.

    Also writes one run per model and, for ``metrics=[...]`` rows, aggregate results. Returns the
    warehouse so tests can connect to it.
    """
    import pyarrow as pa

    from evalhouse.commit import Commit
    from evalhouse.modelname import split_model
    from evalhouse.schema import METRICS, RUNS, SCORES

    def put(rows: list[dict], metrics: list[dict] | None = None, source: str = "/data/results.json") -> Warehouse:
        batch = Commit(wh, "ingest")
        models = sorted({r["model"] for r in rows} | {m["model"] for m in metrics or []})
        run_ids = {m: f"run-{batch.batch_id}-{i}" for i, m in enumerate(models)}
        runs = [
            {"run_id": run_ids[m], "source_path": source, "model": m, "model_base": split_model(m)[0],
             "quantization": split_model(m)[1], "n_items": sum(r["model"] == m for r in rows),
             "batch_id": batch.batch_id}
            for m in models
        ]  # fmt: skip
        defaults = {"metric": "score", "category": "general", "item_id": None, "epoch": 0, "higher_is_better": True}
        scores = []
        for i, r in enumerate(rows):
            row = {**defaults, **r, "run_id": run_ids[r["model"]], "sample_id": i}
            if row["item_id"] is None:
                row["item_id"] = f"{r['model']}-{i}"  # unshared unless the test names items
            scores.append(row)
        mrows = [{"higher_is_better": True, **m, "run_id": run_ids[m["model"]]} for m in metrics or []]
        for table, data in ((RUNS, runs), (SCORES, scores), (METRICS, mrows)):
            batch.write(table.name, pa.Table.from_pylist(data, schema=table.arrow_schema()))
        batch.publish()
        return wh

    return put


@pytest.fixture
def hashed_files(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files the ingest's hash pass reads (whole, before they are parsed), in order."""
    from evalhouse import ingest

    names: list[str] = []
    plain = ingest._hash_file
    monkeypatch.setattr(ingest, "_hash_file", lambda path: names.append(Path(path).name) or plain(path))
    return names
