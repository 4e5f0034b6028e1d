"""`evalhouse doctor`: what it finds in a damaged warehouse, and what `--fix` makes of it.

Every repair ends the same way: `check` finds nothing, and after re-ingesting the corpus the views
hold exactly what a clean ingest of it holds.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from evalhouse import tables, versions
from evalhouse.cli import main
from evalhouse.commit import PENDING_DIR, new_batch_id
from evalhouse.doctor import check, examine, fix
from evalhouse.errors import WarehouseError
from evalhouse.ingest import ingest
from evalhouse.schema import SCHEMA_VERSION
from evalhouse.warehouse import Warehouse, connect, fill_tables, lock, open_warehouse
from tests.conftest import FIXTURES

# Scores with texts (so8t) and aggregate-only metrics (lm-eval 0.3).
CORPUS = [FIXTURES / "so8t" / "good", FIXTURES / "lm_eval" / "v0_3_pythia"]
FIX_HINT = "then `evalhouse ingest` of their files restores them"


def cli(*args: str) -> tuple[int, list[str]]:
    """Exit code and output lines, but the informational ones (rows per table; see examine)."""
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, [line for line in result.stdout.splitlines() if not line.startswith("info: ")]


def live(wh: Warehouse, table: str) -> list[Path]:
    """The live files of ``table``, in name order."""
    return sorted(Path(p) for p in wh.table_files(table))


def held(wh: Warehouse) -> dict[str, Any]:
    """What the views hold: scores per model, and rows of every other view."""
    con = connect(open_warehouse(wh.root))
    out: dict[str, Any] = {
        "scores": con.execute("SELECT model, count(*), sum(score) FROM scores GROUP BY ALL ORDER BY 1").fetchall()
    }
    for view in ("runs", "metrics", "samples", "models", "model_summary"):
        out[view] = con.execute(f"SELECT count(*) FROM {view}").fetchone()
    out["texts"] = con.execute("SELECT count(response) FROM samples").fetchone()
    out["run ids"] = con.execute("SELECT count(DISTINCT run_id) FROM runs").fetchone()
    return out


def stored_rows(wh: Warehouse, table: str) -> int:
    """Rows of a stored table as Delta lists them (no view in between: orphans count)."""
    sql = fill_tables(wh, "SELECT count(*) FROM {{parquet:" + table + "}}")
    return int(connect(wh).execute(sql).fetchone()[0])  # type: ignore[index]


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What the views of a clean ingest of CORPUS hold."""
    wh = open_warehouse(tmp_path_factory.mktemp("clean") / "wh", create=True)
    ingest(wh, CORPUS, workers=1)
    return held(wh)


@pytest.fixture
def full(wh: Warehouse) -> Warehouse:
    """A warehouse holding CORPUS."""
    ingest(wh, CORPUS, workers=1)
    return wh


def lost_hint(*batches: str) -> str:
    return f"(`evalhouse doctor --fix` drops it and withdraws the runs of batch {', '.join(batches)}; {FIX_HINT})"


# ---------------------------------------------------------------------------------------------
# A healthy warehouse; evalhouse.json
# ---------------------------------------------------------------------------------------------


def test_a_healthy_warehouse_reports_its_rows(full: Warehouse) -> None:
    assert check(full.root) == []
    assert cli("doctor", "-w", str(full.root)) == (0, ["healthy"])
    notes = [str(n) for n in examine(full.root).notes]
    assert [n.split(" in ")[0] for n in notes] == [
        "info: runs: 9 live row(s)", "info: scores: 21 live row(s)", "info: texts: 17 live row(s)",
        "info: metrics: 16 live row(s)", "info: files: 8 live row(s)", "info: comparisons: 0 live row(s)",
    ]  # fmt: skip
    assert notes[1] == f"info: scores: 21 live row(s) in {len(live(full, 'scores'))} file(s)"


def test_files_of_the_user_in_the_warehouse_folder_are_only_noted(full: Warehouse) -> None:
    (full.root / "notes.txt").write_text("mine")
    (full.root / "tables" / "old_scores").mkdir()
    assert check(full.root) == []
    assert [str(n) for n in examine(full.root).notes][-2:] == [
        f"info: {full.root / 'notes.txt'}: not part of the warehouse; evalhouse leaves it alone",
        f"info: {full.root / 'tables' / 'old_scores'}: not a table of this evalhouse; nothing reads it",
    ]
    fix(full.root)
    assert (full.root / "notes.txt").read_text() == "mine"


def test_the_old_layout_left_by_an_upgrade_is_removed_by_fix(full: Warehouse) -> None:
    (full.root / "data" / "b1").mkdir(parents=True)
    meta = json.loads(full.meta_path.read_text())
    full.meta_path.write_text(json.dumps(meta | {"leftovers": ["data"]}))
    assert [str(f) for f in check(full.root)] == [
        f"warning: {full.root / 'data'}: left over from the upgrade to Delta tables (`evalhouse doctor --fix` "
        "deletes it)"
    ]
    assert fix(full.root) == [f"removed {full.root / 'data'} (left over from the upgrade to Delta tables)"]
    assert check(full.root) == []


def test_version_is_recorded(wh: Warehouse) -> None:
    assert json.loads(wh.meta_path.read_text())["schema_version"] == SCHEMA_VERSION


@pytest.mark.parametrize(
    ("version", "message", "advice"),
    [(SCHEMA_VERSION + 1, "newer than this evalhouse reads", "this evalhouse cannot read it"),
     ("1", "not a version number", "`evalhouse doctor --fix` rebuilds it from the tables")],
)  # fmt: skip
def test_unknown_schema_versions_are_refused_not_misread(
    wh: Warehouse, version: object, message: str, advice: str
) -> None:
    meta = json.loads(wh.meta_path.read_text())
    wh.meta_path.write_text(json.dumps(meta | {"schema_version": version}))
    with pytest.raises(WarehouseError, match=message):
        open_warehouse(wh.root)
    assert [str(f) for f in check(wh.root)] == [
        f"error: {wh.meta_path}: schema_version is {version!r}; this evalhouse writes {SCHEMA_VERSION} ({advice})"
    ]


def test_a_folder_that_is_not_a_warehouse(tmp_path: Path) -> None:
    assert cli("doctor", "-w", str(tmp_path)) == (
        1, [f"error: {tmp_path}: not a warehouse (no evalhouse.json)", "1 error(s), 0 warning(s)"]
    )  # fmt: skip


def test_an_unreadable_version_is_reported_and_not_fixed(full: Warehouse) -> None:
    newest = versions.path_of(full.root, versions.numbers(full.root)[-1])
    newest.write_text("{")
    findings = [str(f) for f in check(full.root)]
    assert len(findings) == 1
    assert findings[0].startswith(f"error: {newest}: not a warehouse version (")
    assert findings[0].endswith("; restore it from a backup (`evalhouse history` fails until then)")
    result = CliRunner().invoke(main, ["doctor", "--fix", "-w", str(full.root)])
    assert result.exit_code == 1 and result.stderr.startswith(f"Error: {newest}: not a warehouse version (")


# ---------------------------------------------------------------------------------------------
# Lost files: missing or damaged
# ---------------------------------------------------------------------------------------------


def test_deleted_texts_and_metrics_files_are_restored_by_fix_and_reingest(
    full: Warehouse, clean: dict[str, Any]
) -> None:
    texts, metrics = live(full, "texts")[0], live(full, "metrics")[0]
    rows = {f: pq.read_metadata(f).num_rows for f in (texts, metrics)}
    batch = tables.batch_of(texts.name) or ""
    texts.unlink()
    metrics.unlink()
    code, out = cli("doctor", "-w", str(full.root))
    assert (code, out) == (1, [
        f"error: {texts}: missing; its {rows[texts]} texts row(s) are lost {lost_hint(batch)}",
        f"error: {metrics}: missing; its {rows[metrics]} metrics row(s) are lost {lost_hint(batch)}",
        "2 error(s), 0 warning(s)",
    ])  # fmt: skip

    code, out = cli("doctor", "--fix", "-w", str(full.root))
    sources = sorted(str(p) for d in CORPUS for p in d.glob("*.json") if p.name != "metadata.json")
    assert (code, out) == (0, [
        f"dropped {texts} from table texts ({rows[texts]} row(s) lost)",
        f"dropped {metrics} from table metrics ({rows[metrics]} row(s) lost)",
        "withdrew 9 run(s) whose rows the lost file(s) may have held, from every run table",
        "marked 7 source file(s) for re-ingest; `evalhouse ingest` of them restores their runs:",
        *(f"  {p}" for p in sources),
        f"rewrote {full.db_path}",
        "healthy",
    ])  # fmt: skip
    assert versions.current(full.root).kind == "repair"  # type: ignore[union-attr]
    assert held(full)["runs"] == (0,) and stored_rows(full, "scores") == 0
    rejected = connect(full).execute("SELECT path, reason FROM files WHERE status = 'rejected' ORDER BY 1").fetchall()
    assert rejected == [
        (p, f"{p}: (warehouse): rows lost from the warehouse (file {texts.name} missing, file {metrics.name} "
            "missing); re-ingest to restore")
        for p in sources
    ]  # fmt: skip

    report = ingest(full, CORPUS, workers=1)
    assert report.count("ingested") == 7 and report.count("unchanged") == 1
    assert held(full) == clean
    assert check(full.root) == []


def test_a_truncated_file_is_set_aside_and_its_runs_restored(full: Warehouse, clean: dict[str, Any]) -> None:
    scores = live(full, "scores")[-1]
    size, rows = scores.stat().st_size, pq.read_metadata(scores).num_rows
    with open(scores, "r+b") as f:
        f.truncate(size // 2)
    batch = tables.batch_of(scores.name) or ""
    problem = f"{size // 2} bytes, the Delta log records {size}"
    assert [str(f) for f in check(full.root)] == [
        f"error: {scores}: damaged ({problem}); its {rows} scores row(s) are lost {lost_hint(batch)}"
    ]
    done = fix(full.root)
    dest = full.root / "quarantine" / "scores" / scores.name
    assert done[0] == f"moved {scores} (damaged: {problem}) to {dest}"
    assert dest.stat().st_size == size // 2  # kept, not deleted
    assert check(full.root) == []
    assert str(examine(full.root).notes[-1]) == (
        f"info: {full.root / 'quarantine'}: 1 file(s) set aside by `evalhouse doctor --fix`; nothing reads them"
    )
    ingest(full, CORPUS, workers=1)
    assert held(full) == clean


def test_a_lost_runs_file_withdraws_the_rows_left_of_its_runs(full: Warehouse, clean: dict[str, Any]) -> None:
    runs = live(full, "runs")[0]
    runs.unlink()
    assert [f.level for f in check(full.root)] == ["error"]
    fix(full.root)
    assert check(full.root) == []
    # No score, text or metric row is left without its run.
    assert [stored_rows(full, t) for t in ("runs", "scores", "texts", "metrics")] == [0, 0, 0, 0]
    ingest(full, CORPUS, workers=1)
    assert held(full) == clean


def test_a_lost_ledger_file_withdraws_its_runs_rather_than_store_them_twice(
    full: Warehouse, clean: dict[str, Any]
) -> None:
    (ledger,) = live(full, "files")
    ledger.unlink()
    assert [str(f) for f in check(full.root)] == [
        f"error: {ledger}: missing; its 8 files row(s) are lost {lost_hint(tables.batch_of(ledger.name) or '')}"
    ]
    fix(full.root)
    assert check(full.root) == []
    ingest(full, CORPUS, workers=1)
    assert held(full) == clean  # the same runs, once each


def test_a_lost_rewritten_file_withdraws_the_runs_of_the_batches_it_came_from(
    wh: Warehouse, so8t_fixtures: Path, tmp_path: Path
) -> None:
    so8t, lm_eval = so8t_fixtures / "good", CORPUS[1]
    first = ingest(wh, [so8t], workers=1).batch_id
    ingest(wh, [lm_eval], workers=1)
    changed = so8t / "20250302_090000_simple_abc_results.json"
    changed.write_text(changed.read_text(encoding="utf-8").replace("東京です", "東京だ"), encoding="utf-8")
    # The changed file's old run is withdrawn: the file that held it with others is rewritten.
    third = ingest(wh, [so8t], workers=1).batch_id
    rewritten = next(f for t in ("texts", "scores") for f in live(wh, t) if f.name.startswith(f"part-{third}-r"))
    rewritten.unlink()
    (finding,) = [str(f) for f in check(wh.root)]
    assert finding.endswith(lost_hint(first))
    fix(wh.root)
    left = connect(wh).execute("SELECT DISTINCT batch_id FROM runs ORDER BY 1").fetchall()
    assert first not in {b for (b,) in left} and len(left) == 2  # the runs of the other batches stay
    assert check(wh.root) == []

    ingest(wh, [so8t, lm_eval], workers=1)
    reference = open_warehouse(tmp_path / "reference", create=True)
    ingest(reference, [so8t, lm_eval], workers=1)
    assert held(wh) == held(reference)


def test_a_lost_comparisons_file_is_only_dropped(full: Warehouse) -> None:
    assert cli("compare", "-w", str(full.root), "-b", "base-m", "-c", "base-m-q4km")[0] == 0
    (comparisons,) = live(full, "comparisons")
    rows = pq.read_metadata(comparisons).num_rows
    before = held(full)
    comparisons.unlink()
    assert [str(f) for f in check(full.root)] == [
        f"error: {comparisons}: missing; its {rows} comparisons row(s) are lost (`evalhouse doctor --fix` drops it "
        "from the table; run `evalhouse compare` again)"
    ]
    assert fix(full.root) == [
        f"dropped {comparisons} from table comparisons ({rows} row(s) lost)",
        "comparisons were lost: run `evalhouse compare` again",
        f"rewrote {full.db_path}",
    ]
    assert check(full.root) == []
    assert held(full) == before


# ---------------------------------------------------------------------------------------------
# Files nothing reads; unfinished commits; the views file
# ---------------------------------------------------------------------------------------------


def test_a_planted_copy_is_moved_to_quarantine(full: Warehouse) -> None:
    before = held(full)
    planted = full.root / "tables" / "scores" / "scores-00000 (1).parquet"
    shutil.copy(live(full, "scores")[0], planted)
    dest = full.root / "quarantine" / "scores" / planted.name
    warning = (f"warning: {planted}: no Delta version lists it, so nothing reads it (`evalhouse doctor --fix` moves "
               f"it to {dest})")  # fmt: skip
    assert cli("doctor", "-w", str(full.root)) == (0, [warning, "0 error(s), 1 warning(s)"])
    assert held(full) == before
    assert cli("doctor", "--fix", "-w", str(full.root)) == (0, [f"moved {planted} to {dest}", "healthy"])
    shutil.copy(live(full, "scores")[0], planted)  # again: the name in quarantine/ is taken
    assert fix(full.root) == [f"moved {planted} to {dest.with_name(planted.name + '.1')}"]
    assert check(full.root) == []
    assert held(full) == before


def test_a_dead_writers_leftovers_are_reported_once_no_writer_is_at_work(full: Warehouse) -> None:
    batch = new_batch_id()
    marker = full.root / PENDING_DIR / batch
    marker.touch()
    orphan = full.root / "tables" / "scores" / tables.part_name(batch, "00000")
    shutil.copy(live(full, "scores")[0], orphan)
    tmp = full.root / ".evalhouse.duckdb.1234.tmp"
    tmp.write_bytes(b"half")
    leftover = f"warning: {tmp}: a temporary file left by an interrupted process (`evalhouse doctor --fix` removes it)"
    with lock(full):  # a writer at work: its marker and new files are its own business
        assert [str(f) for f in check(full.root)] == [leftover]
        assert str(examine(full.root).notes[0]) == (
            f"info: another ingest is writing to {full.root}; unfinished commits and new files were not checked"
        )
    assert [str(f) for f in check(full.root)] == [
        f"warning: {marker}: a commit whose writer died before publishing it; its 1 file(s) were never live "
        "(`evalhouse doctor --fix` deletes them and the marker)",
        leftover,
    ]
    assert fix(full.root) == [f"batch {batch}: 1 unpublished file(s) deleted", f"removed {tmp}"]
    assert not orphan.exists() and not marker.exists()
    assert check(full.root) == []


def test_a_table_committed_past_the_warehouse_version_is_undone(full: Warehouse) -> None:
    before = held(full)
    named = versions.current(full.root).tables["scores"]  # type: ignore[union-attr]
    extra = tables.folder(full.root, "scores") / tables.part_name(new_batch_id(), "00000")
    rows = tables.write_file(extra, "scores", pq.read_table(live(full, "scores")[0]))
    tables.commit(full.root, "scores", [tables.add_action(extra, rows)], None, "ingest")
    assert [str(f) for f in check(full.root)] == [
        f"error: {tables.folder(full.root, 'scores')}: Delta version {named + 1} was committed after version "
        f"{named}, which the warehouse names (a writer died mid-commit); evalhouse ignores it but other Delta "
        "readers read it (`evalhouse doctor --fix` undoes it)"
    ]
    assert held(full) == before
    assert fix(full.root) == [f"scores: commits after Delta version {named} undone (no warehouse version named them)"]
    assert tables.live_entries(full.root, "scores", tables.latest_version(full.root, "scores")) == (
        tables.live_entries(full.root, "scores", named)
    )
    assert check(full.root) == []


def test_a_copied_warehouse_has_stale_views_until_fixed(full: Warehouse, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(full.root, copy)
    db = copy / "evalhouse.duckdb"
    assert cli("doctor", "-w", str(copy)) == (1, [
        f"error: {db}: stale: its views read another folder's files (the warehouse was moved or copied); any "
        "evalhouse command run on the warehouse, or `evalhouse doctor --fix`, rewrites it",
        "1 error(s), 0 warning(s)",
    ])  # fmt: skip
    assert check(full.root) == []
    assert cli("doctor", "--fix", "-w", str(copy)) == (0, [f"rewrote {db}", "healthy"])
    os.remove(db)
    assert [str(f) for f in check(copy)] == [
        f"warning: {db}: missing; any evalhouse command run on the warehouse, or `evalhouse doctor --fix`, rewrites it"
    ]
    assert fix(copy) == [f"rewrote {db}"]
    assert check(copy) == []
