"""Crash safety and concurrency: a killed ingest leaves the warehouse as before or as after, never
in between; two ingests at once serialise; readers never see a partial batch."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from evalhouse.commit import pending
from evalhouse.doctor import check
from evalhouse.ingest import ingest
from evalhouse.warehouse import Warehouse, connect, lock, open_warehouse
from tests.conftest import ROOT

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def write_corpus(folder: Path, n_files: int, tag: str) -> Path:
    folder.mkdir(parents=True)
    for f in range(n_files):
        items = [
            {"model": f"{tag}-m{f % 5}", "category": f"c{i % 7}", "test_name": f"t{i}",
             "score": ((i * 7 + f) % 11) / 10, "question": "q" * 200, "response": f"answer {f} {i} " + "r" * 600}
            for i in range(100)
        ]  # fmt: skip
        doc = {"metadata": {"timestamp": "2025-01-01T00:00:00", "file": f}, "results": items}
        (folder / f"{tag}{f:04d}_results.json").write_bytes(orjson.dumps(doc))
    return folder


def signature(wh: Warehouse) -> tuple[object, ...]:
    con = connect(wh)
    return (
        con.execute(
            "SELECT model, count(*), round(sum(score), 6) FROM scores GROUP BY model ORDER BY model"
        ).fetchall(),
        con.execute("SELECT count(*), count(DISTINCT run_id) FROM runs").fetchone(),
        con.execute("SELECT status, count(*) FROM files GROUP BY status ORDER BY status").fetchall(),
    )


def data_signature(wh: Warehouse) -> tuple[object, ...]:
    """The data part of the signature (the ledger grows with every offer, even unchanged ones)."""
    return signature(wh)[:2]


def start_ingest(corpus: Path, wh: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "evalhouse.cli", "ingest", str(corpus), "-w", str(wh), "-q", *extra],
        env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip


def finish(proc: subprocess.Popen[bytes]) -> int:
    """Wait for the process, closing its pipe; returns the exit status."""
    _, err = proc.communicate(timeout=300)
    assert proc.returncode in (0, -signal.SIGKILL), err.decode()
    return proc.returncode


@pytest.fixture(scope="module")
def corpora(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("corpora")
    before = write_corpus(root / "before", 5, "old")
    big = write_corpus(root / "big", 300, "new")
    base = open_warehouse(root / "base", create=True)
    ingest(base, [before], workers=1)
    after = open_warehouse(root / "after", create=True)
    ingest(after, [before], workers=1)
    ingest(after, [big])
    return {"before": before, "big": big, "base": base.root, "after": after.root}


@pytest.mark.slow
def test_sigkill_at_many_points(corpora: dict[str, Path], tmp_path: Path) -> None:
    expected_before = data_signature(open_warehouse(corpora["base"]))
    expected_after = data_signature(open_warehouse(corpora["after"]))
    assert expected_before != expected_after
    # Time one full ingest to spread the kills over its whole length.
    probe = tmp_path / "probe"
    shutil.copytree(corpora["base"], probe)
    t0 = time.monotonic()
    assert finish(start_ingest(corpora["big"], probe)) == 0
    duration = time.monotonic() - t0
    outcomes = []
    for k in range(12):
        target = tmp_path / f"wh{k}"
        shutil.copytree(corpora["base"], target)
        proc = start_ingest(corpora["big"], target)
        time.sleep(duration * (k + 0.5) / 12)
        os.killpg(proc.pid, signal.SIGKILL)
        finish(proc)
        wh = open_warehouse(target)
        got = data_signature(wh)
        assert got in (expected_before, expected_after), f"kill {k} left the warehouse in between"
        outcomes.append("after" if got == expected_after else "before")
        # The next run completes the job: no duplicates, nothing missing.
        assert finish(start_ingest(corpora["big"], target)) == 0
        assert data_signature(open_warehouse(target)) == expected_after
        assert pending(target) == [] and check(target) == []
    assert "before" in outcomes  # the kills did land mid-ingest


@pytest.mark.slow
def test_two_ingests_at_once_serialise(corpora: dict[str, Path], tmp_path: Path) -> None:
    target = tmp_path / "wh"
    shutil.copytree(corpora["base"], target)
    small = write_corpus(tmp_path / "small", 20, "other")
    first = start_ingest(corpora["big"], target)
    time.sleep(0.3)
    second = start_ingest(small, target)
    assert finish(first) == 0 and finish(second) == 0
    wh = open_warehouse(target)
    models = dict((m, n) for m, n, _ in signature(wh)[0])  # type: ignore[misc]
    assert models["new-m0"] == 300 // 5 * 100 and models["other-m0"] == 20 // 5 * 100
    assert connect(wh).execute(
        "SELECT count(*) - count(DISTINCT (run_id, sample_id, metric)) FROM scores"
    ).fetchone() == (0,)


def test_no_wait_fails_clearly_while_locked(wh: Warehouse, tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "c", 1, "x")
    with lock(wh):
        proc = start_ingest(corpus, wh.root, "--no-wait")
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err.decode().splitlines()[0] == f"Error: another ingest is writing to {wh.root}"


@pytest.mark.slow
def test_readers_never_see_a_partial_batch(corpora: dict[str, Path], tmp_path: Path) -> None:
    target = tmp_path / "wh"
    shutil.copytree(corpora["base"], target)
    wh = open_warehouse(target)
    before = connect(wh).execute("SELECT count(*) FROM scores").fetchone()
    after = connect(open_warehouse(corpora["after"])).execute("SELECT count(*) FROM scores").fetchone()
    proc = start_ingest(corpora["big"], target)
    seen = set()
    while proc.poll() is None:
        seen.add(connect(wh).execute("SELECT count(*) FROM scores").fetchone())
    seen.add(connect(wh).execute("SELECT count(*) FROM scores").fetchone())
    assert finish(proc) == 0
    assert seen <= {before, after} and after in seen


# Runs an ingest of argv[2] into argv[1] with two workers, SIGKILLing at the argv[3]-th step of the
# commit that engine/commit.py announces (0: never; the steps are printed instead): the main process
# alone (argv[4] == "main", what the OOM killer does) or its whole process group.
STEP_DRIVER = r"""
import os, signal, sys
root, corpus, kill_at, who = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
seen = 0

def hook(event, args):
    global seen
    if event != "evalhouse.commit":
        return
    seen += 1
    if seen == kill_at:
        os.kill(os.getpid(), signal.SIGKILL) if who == "main" else os.killpg(0, signal.SIGKILL)
    if not kill_at:
        print("step:", *(a for a in args if a), flush=True)

sys.addaudithook(hook)
from evalhouse.cli import main
main(["ingest", corpus, "-w", root, "-q", "--workers", "2"])
"""


def change(corpus: Path) -> None:
    """Two files of ``corpus`` changed in place (so the commit also rewrites files without their old
    runs) and two added."""
    for name in sorted(p.name for p in corpus.iterdir() if p.is_file())[:2]:
        doc = orjson.loads((corpus / name).read_bytes())
        doc["results"] = doc["results"][:40]
        (corpus / name).write_bytes(orjson.dumps(doc))
    write_corpus(corpus / "more", 2, "more")


@pytest.mark.slow
@pytest.mark.parametrize("who", ["group", "main"])
def test_sigkill_at_every_step_of_the_commit(tmp_path: Path, who: str) -> None:
    """Killed at each step of a commit that adds files to every table and replaces two sources'
    rows: the warehouse reads as before or as after, and the next ingest equals a clean one."""
    corpus = write_corpus(tmp_path / "corpus", 70, "old")  # enough files for two workers
    base = open_warehouse(tmp_path / "base", create=True)
    ingest(base, [corpus], workers=1)
    before = data_signature(base)
    change(corpus)
    expected = open_warehouse(_copy(base.root, tmp_path / "expected"))
    assert ingest(expected, [corpus], workers=1).retired_runs == 2
    after = data_signature(expected)

    def killed(target: Path, k: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", STEP_DRIVER, str(target), str(corpus), str(k), who], env=ENV,
                              capture_output=True, text=True, timeout=300, start_new_session=True)  # fmt: skip

    listing = killed(_copy(base.root, tmp_path / "listing"), 0)
    assert listing.returncode == 0, listing.stderr
    steps = [line for line in listing.stdout.splitlines() if line.startswith("step:")]
    assert steps == ["step: table texts", "step: table metrics", "step: table scores", "step: table runs",
                     "step: table files", "step: publish", "step: published"] or len(steps) >= 6, steps  # fmt: skip
    outcomes = []
    for k in range(1, len(steps) + 1):
        target = _copy(base.root, tmp_path / f"wh{k}")
        proc = killed(target, k)
        assert proc.returncode == -signal.SIGKILL, (k, proc.stderr)
        got = data_signature(open_warehouse(target))
        assert got in (before, after), f"killed at {steps[k - 1]}: the warehouse is in between"
        outcomes.append(got == after)
        deadline = time.monotonic() + 30
        while not _lock_free(target) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _lock_free(target), "a worker kept the lock"
        assert finish(start_ingest(corpus, target, "--no-wait")) == 0
        assert data_signature(open_warehouse(target)) == after
        assert pending(target) == [] and check(target) == [], steps[k - 1]
    assert outcomes == [False] * (len(steps) - 1) + [True]  # live exactly from the publication on


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def _lock_free(root: Path) -> bool:
    import fcntl

    fd = os.open(root / ".lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
