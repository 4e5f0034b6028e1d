"""A writer killed or failed at any point: workers never keep the lock and die with the ingest, and
creating a warehouse is all or nothing (what a failed first ingest leaves, any command finishes)."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from evalhouse import synth, versions
from evalhouse.cli import main
from evalhouse.commit import pending
from evalhouse.doctor import check
from evalhouse.ingest import _worker_pool, ingest
from evalhouse.warehouse import (
    META_TMP_GLOB,
    VIEW_TMP_GLOB,
    Warehouse,
    connect,
    lock,
    open_warehouse,
    unfinished_creation,
)
from tests.conftest import FIXTURES, ROOT

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads processes from /proc")

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
GOOD = FIXTURES / "so8t" / "good"

# Runs the first ingest of argv[2] into argv[1], SIGKILLing itself just before its argv[3]-th write
# to the warehouse folder (0: never; each write is printed instead). Python's audit events name
# every mkdir, open for writing, rename and removal; pyarrow and delta-rs write natively, so their
# calls are counted: pyarrow's write_table, and every step engine/commit.py announces (each Delta
# commit, table creation and the publication of a version).
KILL_DRIVER = r"""
import os, signal, sys
root, corpus, kill_at = os.path.abspath(sys.argv[1]), sys.argv[2], int(sys.argv[3])
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT
seen = 0

def hook(event, args):
    global seen
    if event == "evalhouse.commit":
        path = os.path.join(root, "<" + "-".join(a for a in args if a) + ">")
    else:
        path = os.path.abspath(args[0]) if args and isinstance(args[0], str) else ""
    if path != root and not path.startswith(root + os.sep):
        return
    if event == "open":
        mode, flags = args[1], args[2]
        if not (mode and any(c in mode for c in "wax+") or mode is None and flags & WRITE_FLAGS):
            return
    elif event not in ("os.mkdir", "os.rename", "os.replace", "os.remove", "os.rmdir", "shutil.rmtree",
                       "os.link", "pyarrow.write", "evalhouse.commit"):
        return
    seen += 1
    if seen == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    if not kill_at:
        to = f" -> {os.path.relpath(args[1], root)}" if event in ("os.rename", "os.replace") else ""
        print("write:", event, os.path.relpath(path, root) + to, flush=True)

sys.addaudithook(hook)
import pyarrow.parquet as pq
write_table = pq.write_table
def counted(table, where, *args, **kwargs):
    hook("pyarrow.write", (str(where),))
    return write_table(table, where, *args, **kwargs)
pq.write_table = counted
from evalhouse.cli import main
main(["ingest", corpus, "-w", root, "-q", "--workers", "1"])
"""


def run_killed(root: Path, kill_at: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", KILL_DRIVER, str(root), str(GOOD), str(kill_at)],
        env=ENV, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def signature(wh: Warehouse) -> tuple[object, ...]:
    con = connect(wh)
    try:
        return (
            con.execute("SELECT model, count(*), round(sum(score), 6) FROM scores GROUP BY ALL ORDER BY 1").fetchall(),
            con.execute("SELECT count(*), count(DISTINCT run_id) FROM runs").fetchone(),
            con.execute("SELECT count(*) FROM metrics").fetchone(),
            con.execute("SELECT status, count(*) FROM files GROUP BY ALL ORDER BY ALL").fetchall(),
        )
    finally:
        con.close()


def wait_for(condition: Callable[[], object], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie (a dead process its parent has not reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def session(sid: int) -> set[int]:
    """The live processes of a session, its leader excepted."""
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != sid:
            try:
                state, _ppid, _pgrp, session_id = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:4]
            except OSError:
                continue
            if int(session_id) == sid and state != "Z":
                out.add(int(entry.name))
    return out


def holds(pid: int, path: Path) -> bool:
    """Whether the process has ``path`` open."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                return True
        except OSError:
            continue
    return False


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic corpus (60 MB) big enough that two workers are busy parsing for a while."""
    out = tmp_path_factory.mktemp("synth") / "corpus"
    synth.generate(out, 200, seed=0)
    return out


# ---------------------------------------------------------------------------------------------
# Workers
# ---------------------------------------------------------------------------------------------


def test_workers_hold_no_lock_and_stop_when_the_ingest_gives_up(wh: Warehouse) -> None:
    before = {p.pid for p in multiprocessing.active_children()}
    t0 = time.monotonic()
    with lock(wh), pytest.raises(RuntimeError, match="gave up"), _worker_pool(2) as pool:
        assert pool is not None
        assert list(pool.map(abs, [-1, -2, -3, -4])) == [1, 2, 3, 4]  # both workers started
        workers = [p.pid for p in multiprocessing.active_children() if p.pid not in before]
        assert len(workers) == 2
        assert holds(os.getpid(), wh.root / ".lock")
        assert not [pid for pid in workers if holds(pid, wh.root / ".lock")]
        for _ in workers:
            pool.submit(time.sleep, 60)
        raise RuntimeError("the ingest gave up")
    assert not [pid for pid in workers if alive(pid)]
    assert time.monotonic() - t0 < 30  # the sleeping workers were stopped, not waited for


@pytest.mark.slow
def test_killing_the_ingest_alone_leaves_no_worker_and_no_lock(corpus: Path, tmp_path: Path) -> None:
    """What the OOM killer does: SIGKILL of the ingest's process only, while its workers parse."""
    clean = open_warehouse(tmp_path / "clean", create=True)
    ingest(clean, [corpus], workers=2)
    target = open_warehouse(tmp_path / "wh", create=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "evalhouse.cli", "ingest", str(corpus), "-w", str(target.root), "-q", "--workers", "2"],
        env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        # A worker has written the Parquet files of its first job: parsing is under way.
        parts = target.root / "tables"
        assert wait_for(lambda: proc.poll() is not None or list(parts.glob("scores/part-*.parquet")), 120)
        assert proc.poll() is None, "the ingest finished before it could be killed"
        helpers = session(proc.pid)  # workers, and the fork server and resource tracker they start from
        assert len(helpers) >= 2
        assert holds(proc.pid, target.root / ".lock")
        assert not [pid for pid in helpers if holds(pid, target.root / ".lock")]
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        assert wait_for(lambda: not [pid for pid in helpers if alive(pid)], 15), "workers outlived the ingest"
    finally:
        if proc.poll() is None or session(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)  # the processes this test started, should it fail
            proc.wait(timeout=30)
    assert signature(target)[:3] == signature(open_warehouse(tmp_path / "empty", create=True))[:3]
    again = subprocess.run(
        [sys.executable, "-m", "evalhouse.cli", "ingest", str(corpus), "-w", str(target.root), "-q", "--no-wait"],
        env=ENV, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert signature(target) == signature(clean)
    assert pending(target.root) == [] and check(target.root) == []


# ---------------------------------------------------------------------------------------------
# Creating a warehouse
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def first_ingest_writes(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Every write of a first ingest of GOOD to the warehouse folder, in order."""
    done = run_killed(tmp_path_factory.mktemp("listing") / "wh", 0)
    assert done.returncode == 0, done.stderr
    writes = [line.removeprefix("write: ") for line in done.stdout.splitlines() if line.startswith("write: ")]
    assert writes.index("open .lock") < writes.index("os.mkdir versions"), writes
    return writes


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, ...]:
    wh = open_warehouse(tmp_path_factory.mktemp("expected") / "wh", create=True)
    ingest(wh, [GOOD], workers=1)
    return signature(wh)


def copy(src: Path, dest: Path) -> Path:
    if src.exists():
        shutil.copytree(src, dest, symlinks=True)
    return dest


@pytest.mark.slow
def test_a_first_ingest_killed_at_every_write_of_creating_the_warehouse(
    first_ingest_writes: list[str], expected: tuple[object, ...], tmp_path: Path
) -> None:
    # Every write of the creation, and the first two of the ingest itself (its lock, its batch).
    ingest_lock = first_ingest_writes.index("open .lock", first_ingest_writes.index("open .lock") + 1)
    assert any(w.endswith("-> evalhouse.json") for w in first_ingest_writes[:ingest_lock])
    runner = CliRunner()
    for k in range(1, ingest_lock + 3):
        root = tmp_path / f"k{k}"
        killed = run_killed(root, k)
        assert killed.returncode == -signal.SIGKILL, (k, killed.stderr)
        # Either no warehouse or a usable one, for every command.
        created = (root / ".lock").exists()
        reader = runner.invoke(main, ["models", "-w", str(copy(root, tmp_path / f"r{k}")), "--format", "csv"])
        if created:
            assert reader.exit_code == 0, (k, first_ingest_writes[k - 1], reader.stderr)
            assert reader.stdout.splitlines() == ["model,model_base,quantization,runs,items"]
        else:
            assert reader.exit_code == 1 and reader.stderr.startswith(f"Error: no warehouse at {tmp_path / f'r{k}'}\n")
        fixed = runner.invoke(main, ["doctor", "--fix", "-w", str(copy(root, tmp_path / f"d{k}"))])
        if created:
            assert fixed.exit_code == 0 and fixed.stdout.splitlines()[-1] == "healthy", (k, fixed.output)
        else:
            assert fixed.exit_code == 1 and "no warehouse at" in fixed.stderr
        result = runner.invoke(main, ["ingest", str(GOOD), "-w", str(root), "-q"])
        assert result.exit_code == 0, (k, first_ingest_writes[k - 1], result.stderr)
        assert signature(open_warehouse(root)) == expected
        # Killed writing the views file or evalhouse.json once it existed: leftovers doctor --fix removes.
        leftovers = [str(p) for p in (*root.glob(META_TMP_GLOB), *root.glob(VIEW_TMP_GLOB))]
        assert [f for f in check(root) if not any(p in f.what for p in leftovers)] == []


def test_doctor_fix_finishes_an_interrupted_creation(first_ingest_writes: list[str], tmp_path: Path) -> None:
    # Killed with the empty tables and version 0 written, just before evalhouse.json.
    k = 1 + next(i for i, w in enumerate(first_ingest_writes) if w.startswith("open .evalhouse.json."))
    root = tmp_path / "wh"
    assert run_killed(root, k).returncode == -signal.SIGKILL
    assert versions.numbers(root) == [0] and not (root / "evalhouse.json").exists()
    assert unfinished_creation(Warehouse(root))
    result = CliRunner().invoke(main, ["doctor", "--fix", "-w", str(root)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "healthy"
    wh = open_warehouse(root)
    assert signature(wh)[:3] == ([], (0, 0), (0,))
    ingest(wh, [GOOD], workers=1)
    assert check(root) == []


def test_data_without_evalhouse_json_is_not_taken_over(wh: Warehouse) -> None:
    ingest(wh, [GOOD], workers=1)
    wh.meta_path.unlink()
    result = CliRunner().invoke(main, ["ingest", str(GOOD), "-w", str(wh.root)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {wh.root} holds warehouse data but {wh.meta_path} is missing")
    assert CliRunner().invoke(main, ["models", "-w", str(wh.root)]).stderr.startswith("Error: no warehouse at")


@pytest.fixture
def small_tmpfs(mount_tmpfs) -> Path:
    """A 16 KB tmpfs: room for less than a new warehouse."""
    return mount_tmpfs("16k")


def test_a_first_ingest_on_a_full_disk(small_tmpfs: Path, expected: tuple[object, ...]) -> None:
    root = small_tmpfs / "wh"
    runner = CliRunner()
    result = runner.invoke(main, ["ingest", str(GOOD), "-w", str(root)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot create a warehouse at {root}: No space left on device\n")
    assert "Hint: free some disk space" in result.stderr
    reader = runner.invoke(main, ["models", "-w", str(root)])
    assert reader.exit_code == 1 and reader.stderr.startswith(f"Error: no warehouse at {root} yet: ")
    subprocess.run(["mount", "-o", "remount,size=8m", str(small_tmpfs)], check=True)
    # Space again: a reader finishes the creation, and the warehouse is whole.
    reader = runner.invoke(main, ["models", "-w", str(root), "--format", "csv"])
    assert reader.exit_code == 0, reader.stderr
    assert check(root) == []
    assert runner.invoke(main, ["ingest", str(GOOD), "-w", str(root), "-q"]).exit_code == 0
    assert signature(open_warehouse(root)) == expected
