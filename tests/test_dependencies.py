"""Files read beside the one offered: recorded in the ledger, checked like any file, re-read on change."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

from evalhouse.ingest import ingest, read_source
from evalhouse.warehouse import Warehouse, connect
from tests.conftest import FIXTURES

OUT = FIXTURES / "lm_eval" / "out"
RESULTS = "results_2024-05-30T08-00-00.json"
SAMPLES = "samples_arc_easy_2024-05-30T08-00-00.jsonl"


def _models(wh: Warehouse, table: str) -> set[str]:
    con = connect(wh)
    try:
        return {m for (m,) in con.sql(f"SELECT DISTINCT model FROM {table}").fetchall()}
    finally:
        con.close()


def test_a_changed_results_file_re_reads_its_samples(tmp_path: Path, wh: Warehouse) -> None:
    folder = tmp_path / "run"
    shutil.copytree(OUT / "EleutherAI__pythia-410m", folder)
    first = ingest(wh, [folder], workers=1)
    samples = next(o for o in first.offers if o.path.endswith(SAMPLES))
    assert samples.status == "ingested" and [d["path"] for d in samples.depends_on or []] == [str(folder / RESULTS)]
    assert _models(wh, "scores") == {"EleutherAI/pythia-410m"}

    doc = json.loads((folder / RESULTS).read_text())
    doc["model_name"] = "EleutherAI/pythia-410m-renamed"
    (folder / RESULTS).write_text(json.dumps(doc))
    second = ingest(wh, [folder], workers=1)
    status = {Path(o.path).name: o.status for o in second.offers}
    assert status[SAMPLES] == "ingested" and status[RESULTS] == "ingested"
    assert all(s == "unchanged" for name, s in status.items() if name not in (SAMPLES, RESULTS))
    # The samples' rows follow the results file: no rows are left under the old name.
    assert _models(wh, "scores") == {"EleutherAI/pythia-410m-renamed"}
    assert _models(wh, "metrics") == {"EleutherAI/pythia-410m-renamed"}

    third = ingest(wh, [folder], workers=1)
    assert {o.status for o in third.offers} == {"unchanged"}
    # Touching the results file without changing it re-hashes it, and still changes nothing.
    os.utime(folder / RESULTS, ns=(1, 1))
    fourth = ingest(wh, [folder], workers=1)
    assert {o.status for o in fourth.offers} == {"unchanged"}


def test_a_fifo_or_device_beside_samples_is_not_read(tmp_path: Path) -> None:
    folder = tmp_path / "EleutherAI__pythia-410m"
    folder.mkdir()
    shutil.copy(OUT / "EleutherAI__pythia-410m" / SAMPLES, folder / SAMPLES)
    os.mkfifo(folder / RESULTS)
    os.symlink("/dev/zero", folder / "results.json")
    got: list[object] = []
    worker = threading.Thread(target=lambda: got.append(read_source(str(folder / SAMPLES), "0" * 64)), daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "reading a FIFO sibling hung"
    (_fmt, runs, deps) = got[0]  # type: ignore[misc]
    assert deps is None and {r.model for r in runs} == {"EleutherAI/pythia-410m"}  # from the folder name
