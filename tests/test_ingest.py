"""Ingest of the hand-written SO8T-shaped fixtures: every column, every file status, replacement."""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime
from pathlib import Path

import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable

from evalhouse.errors import StrictModeRejection
from evalhouse.ingest import ingest
from evalhouse.schema import TABLES
from evalhouse.warehouse import Warehouse, connect, open_warehouse


def one(wh: Warehouse, sql: str, params: list | None = None) -> dict:
    cur = connect(wh).execute(sql, params or [])
    cols = [d[0] for d in cur.description]
    rows = cur.fetchall()
    assert len(rows) == 1, rows
    return dict(zip(cols, rows[0], strict=True))


def test_every_status(wh: Warehouse, so8t_fixtures: Path) -> None:
    (so8t_fixtures / "good" / "zcopy").mkdir()  # walked after the original
    good = so8t_fixtures / "good"
    # The same bytes under the same name elsewhere: the same model, so the same content.
    shutil.copy(good / "tiny-model_q8_0_results.json", good / "zcopy" / "copy_of_tiny.json")
    (good / "zcopy" / "copy_of_tiny.json").rename(good / "zcopy" / "tiny-model_q8_0_results.json")
    report = ingest(wh, [so8t_fixtures])
    by_name = {Path(o.path).name if "zcopy" not in o.path else "copy_of_tiny.json": o for o in report.offers}
    assert {n: o.status for n, o in by_name.items()} == {
        "20250301_101500_automated_benchmark_results.json": "ingested",
        "20250302_090000_simple_abc_results.json": "ingested",
        "20250303_critical_infrastructure_abc_results.json": "ingested",
        "improvement_benchmark_results_20250304_120000.json": "ingested",
        "tiny-model_q8_0_results.json": "ingested",
        "copy_of_tiny.json": "duplicate",
        "metadata.json": "not-results",
        "truncated.json": "rejected",
        "score_not_a_number.json": "rejected",
        "unknown_shape.json": "rejected",
        "empty.json": "rejected",
    }
    bad = str(so8t_fixtures / "bad" / "score_not_a_number.json")
    assert by_name["score_not_a_number.json"].reason == f"{bad}: results[1].score: 'high' is not a number"
    assert "(file): not valid JSON" in (by_name["truncated.json"].reason or "")
    assert by_name["copy_of_tiny.json"].reason == "same content as " + str(
        so8t_fixtures / "good" / "tiny-model_q8_0_results.json"
    )
    # The ledger records every offer, with what the report said.
    ledger = connect(wh).execute("SELECT status, count(*) FROM files GROUP BY status ORDER BY status").fetchall()
    assert ledger == [("duplicate", 1), ("ingested", 5), ("not-results", 1), ("rejected", 4)]

    again = ingest(wh, [so8t_fixtures])
    statuses = {Path(o.path).name if "zcopy" not in o.path else "copy_of_tiny.json": o.status for o in again.offers}
    assert statuses["tiny-model_q8_0_results.json"] == "unchanged"
    assert statuses["copy_of_tiny.json"] == "unchanged"
    assert statuses["truncated.json"] == "rejected"  # rejected files are tried again
    assert again.rows == 0
    assert connect(wh).execute("SELECT count(*) FROM scores").fetchone() == (report.rows,)


def test_a_copy_whose_model_comes_from_its_name_is_stored(wh: Warehouse, so8t_fixtures: Path) -> None:
    """`cp a_results.json b_q8_0_results.json`: the same bytes, another model: stored, not a duplicate."""
    good = so8t_fixtures / "good"
    shutil.copy(good / "tiny-model_q8_0_results.json", good / "other-model_q4_0_results.json")
    report = ingest(wh, [good])
    statuses = {Path(o.path).name: o.status for o in report.offers}
    assert statuses["tiny-model_q8_0_results.json"] == statuses["other-model_q4_0_results.json"] == "ingested"
    con = connect(wh)
    models = dict(con.execute("SELECT model, count(*) FROM scores GROUP BY model").fetchall())
    assert models["other-model"] == models["tiny-model"] > 0


def test_a_copy_keeps_its_content_when_the_original_changes(wh: Warehouse, so8t_fixtures: Path) -> None:
    good = so8t_fixtures / "good"
    (good / "zcopy").mkdir()
    original = good / "tiny-model_q8_0_results.json"
    shutil.copy(original, good / "zcopy" / original.name)
    before = ingest(wh, [good])
    assert {Path(o.path).parent.name: o.status for o in before.offers if o.path.endswith(original.name)} == {
        "good": "ingested", "zcopy": "duplicate"}  # fmt: skip
    old_bytes = original.read_bytes()
    rows = json.loads(old_bytes)
    rows[0]["is_correct"] = not rows[0]["is_correct"]
    original.write_text(json.dumps(rows), encoding="utf-8")  # the original changes
    ingest(wh, [good])
    con = connect(wh)
    # The copy still holds the old content: both contents are live, each once.
    assert con.execute("SELECT count(*) FROM runs WHERE model = 'tiny-model'").fetchone()[0] == 2
    con.close()
    shutil.copy(original, good / "zcopy" / original.name)  # the copy follows: the old content is held by no path
    again = ingest(wh, [good])
    assert {Path(o.path).parent.name: o.status for o in again.offers if o.path.endswith(original.name)} == {
        "good": "unchanged", "zcopy": "duplicate"}  # fmt: skip
    con = connect(wh)
    assert con.execute("SELECT count(*) FROM runs WHERE model = 'tiny-model'").fetchone()[0] == 1
    con.close()


def test_a_value_for_every_column(wh: Warehouse, so8t_fixtures: Path) -> None:
    good = so8t_fixtures / "good"
    ingest(wh, [good])
    auto = str(good / "20250301_101500_automated_benchmark_results.json")

    run = one(wh, "SELECT * FROM runs WHERE model = 'base-m-q4km'")
    assert set(run) == set(TABLES["runs"].names)
    assert run["run_id"].startswith("r-") and len(run["run_id"]) == 22
    assert run["source_path"] == auto
    assert len(run["source_sha256"]) == 64
    assert run["source_format"] == "so8t-results"
    assert (run["model_base"], run["quantization"]) == ("base-m", "q4_k_m")
    assert run["harness"] == "so8t"
    assert run["status"] is None
    assert run["started_at"] == datetime(2025, 3, 1, 10, 15, 0, 250000)
    assert run["ingested_at"].year >= 2025
    assert run["n_items"] == 3
    assert run["batch_id"].startswith("b")
    assert json.loads(run["metadata"])["categories"] == ["math", "日本語"]

    s = one(wh, "SELECT * FROM samples WHERE model = 'base-m-q4km' AND item_id = '敬語'")
    expected_cols = [*TABLES["scores"].names, "question", "response", "expected"]
    assert list(s) == expected_cols
    assert s["run_id"] == run["run_id"]
    assert s["sample_id"] == 2
    assert (s["model"], s["benchmark"], s["category"], s["task"]) == ("base-m-q4km", None, "日本語", None)
    assert (s["epoch"], s["filter"], s["split"], s["metric"]) == (0, None, None, "score")
    assert s["score"] == 0.2 and s["higher_is_better"] is True
    assert s["response_time_s"] == 2.5 and s["tokens_per_sec"] is None
    assert s["timestamp"] == datetime(2025, 3, 1, 10, 15, 10)
    assert json.loads(s["attributes"]) == {"evaluation_type": "rubric"}
    assert (s["question"], s["response"], s["expected"]) == (None, "いいえ", None)

    # benchmark + task_index identify items; the benchmark stands in for the missing category.
    s = one(wh, "SELECT * FROM samples WHERE item_id = 'elyza_100#1'")
    assert (s["benchmark"], s["category"], s["score"]) == ("elyza_100", "elyza_100", 0.0)
    assert (s["question"], s["response"], s["expected"]) == ("1+1は？", "3", "2")

    # Critical-infrastructure items: domain is the benchmark, the question hash is the key.
    s = one(wh, "SELECT * FROM samples WHERE benchmark = 'defense'")
    assert s["category"] == "threat_detection" and s["item_id"].startswith("q:")
    assert json.loads(s["attributes"]) == {"criticality": "high", "scenario": "Radar Signal Analysis"}

    # Task arrays: model and quantization from the file name, speed and wall time kept.
    run = one(wh, "SELECT * FROM runs WHERE source_format = 'so8t-tasks'")
    assert (run["model"], run["model_base"], run["quantization"]) == ("tiny-model", "tiny-model", "q8_0")
    assert run["started_at"] is None
    s = one(wh, "SELECT * FROM samples WHERE item_id = 'mmlu_abstract_algebra#1'")
    assert (s["task"], s["benchmark"], s["category"], s["score"]) == (
        "mmlu_abstract_algebra", "mmlu_abstract_algebra", "mmlu_abstract_algebra", 0.0
    )  # fmt: skip
    assert (s["tokens_per_sec"], s["response_time_s"], s["expected"]) == (58.0, 3.0, "Yes")
    assert json.loads(s["attributes"]) == {"type": "multiple_choice"}

    # Baseline vs improved: both sides are runs, two metrics per item.
    rows = (
        connect(wh)
        .execute("SELECT model, metric, sum(score) FROM scores WHERE model LIKE '%:q8_0' GROUP BY ALL ORDER BY ALL")
        .fetchall()
    )
    assert rows == [
        ("base-m:q8_0", "correct", 1.0),
        ("base-m:q8_0", "partial_credit", 1.0),
        ("tuned-m:q8_0", "correct", 2.0),
        ("tuned-m:q8_0", "partial_credit", 1.75),
    ]
    s = one(wh, "SELECT * FROM samples WHERE model = 'tuned-m:q8_0' AND metric = 'partial_credit' AND score = 0.75")
    assert (s["question"], s["response"], s["expected"]) == ("Name a prime above 10.", "13", "11")
    assert json.loads(s["attributes"])["hallucination_detected"] is True
    base_item = one(wh, "SELECT item_id FROM scores WHERE model = 'base-m:q8_0' AND metric = 'correct' AND score = 0")
    assert base_item["item_id"] == s["item_id"]  # the same question pairs across the two sides

    f = one(wh, "SELECT * FROM files WHERE path = ?", [auto])
    assert set(f) == set(TABLES["files"].names)
    assert (f["status"], f["format"], f["rows"], f["reason"]) == ("ingested", "so8t-results", 6, None)
    assert f["size"] == os.path.getsize(auto) and f["mtime_ns"] == os.stat(auto).st_mtime_ns
    assert f["time"].year >= 2025 and f["batch_id"] == run["batch_id"]


def test_changed_file_replaces_its_rows(wh: Warehouse, so8t_fixtures: Path) -> None:
    path = so8t_fixtures / "good" / "20250302_090000_simple_abc_results.json"
    ingest(wh, [path])
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["results"] = doc["results"][:2]
    doc["results"][0]["score"] = 0.25
    path.write_text(json.dumps(doc), encoding="utf-8")
    report = ingest(wh, [path])
    assert report.offers[0].status == "ingested" and report.retired_runs == 1
    con = connect(wh)
    assert con.execute("SELECT count(*), sum(score) FROM scores").fetchone() == (2, 0.25)
    assert con.execute("SELECT count(*) FROM runs").fetchone() == (1,)
    # Replaced in the stored tables, not hidden: a Delta reader sees the same live rows.
    stored = DeltaTable(str(wh.root / "tables" / "scores")).to_pyarrow_table()
    assert (stored.num_rows, pc.sum(stored["score"]).as_py()) == (2, 0.25)


def test_strict_writes_nothing(wh: Warehouse, so8t_fixtures: Path) -> None:
    before = sorted(p.relative_to(wh.root) for p in wh.root.rglob("*") if p.name not in (".lock", ".pending"))
    with pytest.raises(StrictModeRejection, match=r"score_not_a_number\.json: results"):
        ingest(wh, [so8t_fixtures], strict=True)
    assert sorted(p.relative_to(wh.root) for p in wh.root.rglob("*") if p.name not in (".lock", ".pending")) == before


def test_parallel_ingest_matches_serial(tmp_path: Path, so8t_fixtures: Path) -> None:
    from evalhouse import ingest as ingest_mod
    from evalhouse.warehouse import open_warehouse

    many = tmp_path / "many"
    many.mkdir()
    src = json.loads((so8t_fixtures / "good" / "20250302_090000_simple_abc_results.json").read_text("utf-8"))
    for i in range(70):
        src["metadata"]["run"] = i  # distinct content per file
        src["results"][0]["score"] = i / 100
        (many / f"run{i:03d}_results.json").write_text(json.dumps(src), encoding="utf-8")
    serial = open_warehouse(tmp_path / "serial", create=True)
    parallel = open_warehouse(tmp_path / "parallel", create=True)
    ingest(serial, [many], workers=1)
    assert len(list(many.iterdir())) >= ingest_mod.PARALLEL_MIN_FILES
    ingest(parallel, [many], workers=2)
    q = "SELECT model, count(*), round(sum(score), 6) FROM scores GROUP BY model"
    assert connect(serial).execute(q).fetchall() == connect(parallel).execute(q).fetchall() == [("base-m", 210, 94.15)]


def test_the_hash_is_of_the_bytes_parsed(wh: Warehouse, so8t_fixtures: Path, monkeypatch) -> None:
    """A file rewritten between the hash pass and the parse is stored under its new content's hash."""
    import hashlib

    from evalhouse import ingest as ingest_module

    path = so8t_fixtures / "good" / "tiny-model_q8_0_results.json"
    real = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setattr(ingest_module, "_hash_file", lambda p: ("0" * 64, None))  # what the hash pass saw
    report = ingest(wh, [path], workers=1)
    assert [(o.status, o.sha256) for o in report.offers] == [("ingested", real)]
    assert one(wh, "SELECT source_sha256 FROM runs")["source_sha256"] == real
    assert one(wh, "SELECT sha256 FROM files")["sha256"] == real


def test_re_ingesting_unchanged_files_does_not_grow_the_ledger(wh: Warehouse, so8t_fixtures: Path) -> None:
    first = ingest(wh, [so8t_fixtures])
    rows = one(wh, "SELECT count(*) AS n FROM files")["n"]
    assert rows == len(first.offers)
    again = ingest(wh, [so8t_fixtures])
    assert {o.status for o in again.offers if o.status != "rejected"} == {"unchanged"}
    # Rejected files are tried again and say so; unchanged ones add nothing.
    assert one(wh, "SELECT count(*) AS n FROM files")["n"] == rows + sum(o.status == "rejected" for o in again.offers)


def test_a_copy_whose_model_comes_from_its_path_gives_its_rows_up_when_either_changes(
    wh: Warehouse, so8t_fixtures: Path, tmp_path: Path
) -> None:
    """`cp a_q4_0_results.json b_q8_0_results.json` stores b's runs under a key of their own; when b,
    then a, changes, each one's old rows go, and the warehouse equals a clean ingest."""
    src = tmp_path / "src"
    src.mkdir()
    a, b = src / "a_q4_0_results.json", src / "b_q8_0_results.json"
    shutil.copy(so8t_fixtures / "good" / "tiny-model_q8_0_results.json", a)
    ingest(wh, [src], workers=1)
    shutil.copy(a, b)
    assert [o.status for o in ingest(wh, [src], workers=1).offers] == ["unchanged", "ingested"]

    def state(w: Warehouse) -> tuple[object, ...]:
        con = connect(w)
        try:
            runs = con.execute("SELECT model, count(*) FROM runs GROUP BY ALL ORDER BY ALL").fetchall()
            scores = con.execute("SELECT model, count(*), sum(score) FROM scores GROUP BY ALL ORDER BY ALL").fetchall()
            return runs, scores
        finally:
            con.close()

    b.write_text(json.dumps(json.loads(b.read_text(encoding="utf-8"))[:2]), encoding="utf-8")
    assert ingest(wh, [src], workers=1).retired_runs == 1
    a.write_text(json.dumps(json.loads(a.read_text(encoding="utf-8"))[:1]), encoding="utf-8")
    assert ingest(wh, [src], workers=1).retired_runs == 1
    clean = open_warehouse(tmp_path / "clean", create=True)
    ingest(clean, [src], workers=1)
    assert state(wh) == state(clean) and state(wh)[0] == [("a", 1), ("b", 1)]
