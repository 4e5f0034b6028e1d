"""The evalhouse benchmark: synthetic corpora, every step timed as its own process, with peak memory.

Usage: python bench/run.py [--quick] [--reps N] [--shapes so8t-results,so8t-tasks,so8t-ab] [--sizes 1000,10000]
       [--files 1000,100000]

Corpora are generated with engine/synth.py into bench/out/corpora/ (git-ignored) and reused when
their manifest matches. Each step runs as a child process (``python -m evalhouse.cli ...``, the naive
loader, the DuckDB reference); its wall time is taken around the child, and its memory two ways:

- ``peak_mb``: the largest sum of PSS (proportional set size, so pages shared between the ingest
  workers and their parent are not counted twice) over the child and all its descendants,
  sampled from /proc/<pid>/smaps_rollup every 20 ms by a thread of this process;
- ``max_rss_mb``: ``ru_maxrss`` of the child from ``os.wait4``: the largest single process of the
  tree (it is not a sum), exact;

and its CPU time, ``cpu_s``: user + system seconds of the whole tree. This process is made a child
subreaper, so the descendants the child leaves (the ingest's fork server and workers) are reaped
here, and the CPU time the kernel adds to this process's children's on each reap is the tree's.

Children run with bytecode caching on (``PYTHONDONTWRITEBYTECODE`` removed): an installed evalhouse
has its bytecode cached, and compiling its modules on every start is no part of what is measured.

Figures are medians over ``--reps`` runs. Each ingest-like figure of an so8t-results corpus is also
given as a ratio to the naive loader (bench/naive.py) measured on the same corpus in the same run
(the loader runs only where a target compares with it: ``--naive-shapes``), and each performance
target is checked. Results go to bench/results.json and bench/results.md.

The default run (``make bench``) takes 5-10 minutes on 2 cores once its corpora exist: so8t-tasks
files are ~1 MB each, so that shape is measured at 1,000 runs only (1.1 GB; 10,000 would be 11 GB),
and every target's figure is in it (README, Benchmark, says what it covers).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evalhouse import synth  # noqa: E402

OUT = ROOT / "bench" / "out"  # default --work: corpora and scratch warehouses (git-ignored)
PY = sys.executable
ENV = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}, "PYTHONPATH": str(ROOT)}
PR_SET_CHILD_SUBREAPER = 36
SAMPLE_S = 0.02


# ---------------------------------------------------------------------------------------------
# Measuring one child process
# ---------------------------------------------------------------------------------------------


@dataclass
class Measure:
    wall_s: float
    peak_mb: float
    max_rss_mb: float
    stdout: str
    cpu_s: float = 0.0


def _children_cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def _reap_orphans(timeout: float = 30.0) -> None:
    """Wait for the descendants the child left (reparented here, see :func:`measure`)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return  # none left
        if pid == 0:  # some still running
            if time.monotonic() >= deadline:
                return
            time.sleep(0.005)


def _tree(pid: int) -> list[int]:
    pids, i = [pid], 0
    while i < len(pids):
        try:
            for tid in os.listdir(f"/proc/{pids[i]}/task"):
                with open(f"/proc/{pids[i]}/task/{tid}/children") as f:
                    pids += [int(c) for c in f.read().split()]
        except OSError:
            pass
        i += 1
    return pids


def _pss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total / 1024


def measure(cmd: list[str], *, check: bool = True) -> Measure:
    """Run ``cmd`` from the repository root; its wall time, peak memory and stdout."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # Linux; see the docstring
    _reap_orphans(0)
    cpu0 = _children_cpu()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=out, stderr=err)
        peak = [0.0]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(SAMPLE_S):
                peak[0] = max(peak[0], _pss_mb(_tree(proc.pid)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        done.set()
        sampler.join()
        _reap_orphans()
        cpu = _children_cpu() - cpu0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{stderr[-2000:]}")
    return Measure(wall, peak[0], usage.ru_maxrss / 1024, stdout, cpu)


@dataclass
class Step:
    name: str
    corpus: str | None
    wall_s: float
    peak_mb: float
    max_rss_mb: float
    runs: list[float]
    cpu_s: float = 0.0  # user + system seconds of the whole process tree (median)
    vs_naive: float | None = None  # naive loader's time / this step's time
    note: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def repeat(name: str, corpus: str | None, reps: int, make_cmd: Any, before: Any = None) -> tuple[Step, Measure]:
    """Run a step ``reps`` times (``before()`` untimed before each); medians of wall and memory."""
    ms = []
    for _ in range(reps):
        if before:
            before()
        ms.append(measure(make_cmd()))
    step = Step(name, corpus, statistics.median(m.wall_s for m in ms), statistics.median(m.peak_mb for m in ms),
                statistics.median(m.max_rss_mb for m in ms), [round(m.wall_s, 4) for m in ms],
                round(statistics.median(m.cpu_s for m in ms), 3))  # fmt: skip
    print(f"  {name:<34} {corpus or '':<22} {step.wall_s:8.3f} s  {step.cpu_s:7.2f} CPU-s  {step.peak_mb:7.0f} MB",
          flush=True)  # fmt: skip
    return step, ms[-1]


def cli(*args: str) -> list[str]:
    return [PY, "-m", "evalhouse.cli", *args]


# ---------------------------------------------------------------------------------------------
# Corpora and warehouses
# ---------------------------------------------------------------------------------------------


def corpus(root: Path, shape: str, runs: int) -> tuple[Path, dict[str, Any]]:
    """The corpus folder (generated unless a matching one exists) and its facts."""
    path = root / "corpora" / f"{shape}-{runs}"
    want = {"runs": runs, "shape": shape, "seed": 0, "families": synth.families_for(runs),
            "counts": synth.plan(runs, shape)}  # fmt: skip
    facts: dict[str, Any] = {"shape": shape, "runs": runs}
    if synth.read_manifest(path) != want:
        shutil.rmtree(path, ignore_errors=True)
        m = measure(cli("synth", "--runs", str(runs), "--shape", shape, "--seed", "0", "--out", str(path)))
        facts["synth_s"] = round(m.wall_s, 3)
        print(f"  generated {path.name} in {m.wall_s:.1f} s", flush=True)
    files = [p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")]
    facts |= {"files": len(files), "bytes": sum(p.stat().st_size for p in files)}
    return path, facts


def rows_added(stdout: str) -> int:
    m = re.search(r"(\d+) row\(s\) added", stdout)
    return int(m.group(1)) if m else 0


def replicate(src: Path, dest: Path, copies: int) -> None:
    """A warehouse holding ``copies`` times the scores of ``src``: its live scores files hard-linked
    under new names into the scores table and committed as one more version (same rows, distinct
    files)."""
    from evalhouse.commit import Commit
    from evalhouse.warehouse import lock, open_warehouse

    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(src, dest, copy_function=os.link)
    wh = open_warehouse(dest)
    with lock(wh):
        batch = Commit(wh, "ingest")
        for k in range(1, copies):
            for i, f in enumerate(wh.table_files("scores")):
                target = batch.path("scores", f"c{k:02d}{i:05d}")
                os.link(f, target)
                batch.add("scores", target, pq.read_metadata(target).num_rows)
        batch.publish()


# ---------------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------------

DUCKDB_COPY = """
import sys, duckdb
glob, out = sys.argv[1], sys.argv[2]
q = lambda s: "'" + s.replace("'", "''") + "'"
duckdb.connect().execute(
    "COPY (SELECT metadata.timestamp AS started_at, unnest(results, recursive := true) "
    f"FROM read_json({q(glob)})) TO {q(out)} (FORMAT parquet, COMPRESSION zstd)")
"""

# The DuckDB path for lm-eval samples: read_ndjson with the columns named (no inference), one row
# per line with both metrics, to Parquet.
DUCKDB_NDJSON = """
import sys, duckdb
glob, out = sys.argv[1], sys.argv[2]
q = lambda s: "'" + s.replace("'", "''") + "'"
cols = ("{doc_id: 'BIGINT', doc: 'JSON', target: 'JSON', filtered_resps: 'JSON', filter: 'VARCHAR', "
        "acc: 'DOUBLE', acc_norm: 'DOUBLE'}")
duckdb.connect().execute(
    f"COPY (SELECT * FROM read_ndjson({q(glob)}, columns = {cols}, filename = true)) "
    f"TO {q(out)} (FORMAT parquet, COMPRESSION zstd)")
"""

# The floor steps (bench/floor.py): the ingest's own work beyond the DuckDB steps' (a hash of every
# file, the type of every field, two tables), done with DuckDB and hashlib; and for lm-eval samples,
# parsing every line into Python objects. A target below its floor cannot be met by a faster reader.
FLOOR_SO8T = "floor: duckdb + sha256 + type check + two tables"
FLOOR_LM_EVAL = "floor: orjson of every line + sha256, 2 processes"

# Runs per corpus for shapes that are not measured at --sizes: lm-eval samples files are 1,000
# lines each, so the corpus is 300 of them; so8t-tasks files are ~1 MB each (1.1 GB at
# 1,000 runs), so 10,000 of them would take most of the run's time and 11 GB of disk.
SHAPE_SIZES = {"lm-eval-samples": [300], "so8t-tasks": [1000]}
QUICK_SHAPE_SIZES = {"lm-eval-samples": [3]}
# Shapes the naive loader runs on: the one a target compares with it (the loader holds every row
# in Python objects and is the slowest step wherever it runs: 19 s on lm-eval-samples-300).
NAIVE_SHAPES = "so8t-results"

# Corpora of many small files (one scored item each), for what grows with the number of files rather
# than rows: the ingest's state per file, the ledger, the walk. Their cold ingest gives the memory
# target's two ends; the largest one's re-ingest, the re-ingest target.
MANY_FILES = [1_000, 100_000]
QUICK_MANY_FILES = [50, 500]


def small_files(root: Path, files: int) -> tuple[Path, dict[str, Any]]:
    """A folder of ``files`` so8t-results files of one item each (generated once, then reused)."""
    path = root / "corpora" / f"small-files-{files}"
    done = path / ".complete"
    if not done.exists():
        shutil.rmtree(path, ignore_errors=True)
        t0 = time.perf_counter()
        for i in range(files):
            folder = path / f"d{i // 1000:03d}"
            if i % 1000 == 0:
                folder.mkdir(parents=True)
            model = f"model-{i % 20}"
            doc = {"metadata": {"timestamp": f"2025-03-01T09:{i // 60 % 60:02d}:{i % 60:02d}", "models": [model]},
                   "results": [{"model": model, "category": "math", "test_name": f"item {i // 20:05d}",
                                "question": f"What is {i} + 1?", "expected_answer": str(i + 1),
                                "response": str(i + 1 - i % 2), "score": float(1 - i % 2),
                                "response_time": 1.5}]}  # fmt: skip
            (folder / f"run_{i:06d}_results.json").write_text(json.dumps(doc), encoding="utf-8")
        done.touch()
        print(f"  generated {path.name} in {time.perf_counter() - t0:.1f} s", flush=True)
    names = [p for p in path.rglob("*.json")]
    return path, {"shape": "small-files", "files": len(names), "bytes": sum(p.stat().st_size for p in names)}


SUMMARY_SQL = "SELECT * FROM model_category_summary ORDER BY model, category, metric"


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        ram_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        ram_gb = float("nan")
    versions = {}
    for mod in ("duckdb", "polars", "pyarrow", "orjson", "numpy"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            versions[mod] = None
    return {"nproc": os.cpu_count(), "ram_gb": round(ram_gb, 1), "cpu": cpu, "python": platform.python_version(),
            "platform": platform.platform(), **versions}  # fmt: skip


def commands() -> set[str]:
    from evalhouse.cli import main

    return set(main.commands)


def bench(root: Path, quick: bool, reps: int, shapes: list[str], sizes: list[int],
          naive_max_runs: int = 20_000, naive_shapes: tuple[str, ...] = (NAIVE_SHAPES,),
          many_files: list[int] | None = None) -> dict[str, Any]:  # fmt: skip
    """Every step on every corpus; the results as a JSON-able dict.

    ``many_files``: the small-file corpora (default ``MANY_FILES``, ``QUICK_MANY_FILES`` with ``quick``).
    """
    root.mkdir(parents=True, exist_ok=True)
    work = root / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    steps: list[Step] = []
    corpora: dict[str, Any] = {}
    skipped: list[dict[str, str]] = []
    big_wh: Path | None = None
    big_name = ""

    def scratch(name: str) -> str:
        return str(work / f"{name}.parquet")

    for shape in shapes:
        for runs in (QUICK_SHAPE_SIZES if quick else SHAPE_SIZES).get(shape, sizes):
            path, facts = corpus(root, shape, runs)
            name = path.name
            corpora[name] = facts
            print(f"{name}: {facts['files']} files, {facts['bytes'] / 1e6:.0f} MB", flush=True)
            naive = duck = None
            if runs <= naive_max_runs:
                if shape in naive_shapes:
                    naive, m = repeat("naive loader", name, reps,
                                      lambda p=path: [PY, "bench/naive.py", str(p), scratch("naive")])  # fmt: skip
                    facts["rows"] = json.loads(m.stdout)["rows"]
                    steps.append(naive)
                if shape == "so8t-results":
                    glob = str(path / "so8t-results" / "*.json")
                    duck, _ = repeat("duckdb read_json COPY", name, reps,
                                     lambda g=glob: [PY, "-c", DUCKDB_COPY, g, scratch("duckdb")])  # fmt: skip
                    steps.append(duck)
                    floor_cmd = [PY, "bench/floor.py", "so8t-results", glob, str(work / "floor")]
                    floor, _ = repeat(FLOOR_SO8T, name, reps, lambda c=floor_cmd: c)
                    steps.append(floor)
                if shape == "lm-eval-samples":
                    glob = str(path / "lm-eval" / "*" / "samples_*.jsonl")
                    duck, _ = repeat("duckdb read_ndjson COPY", name, reps,
                                     lambda g=glob: [PY, "-c", DUCKDB_NDJSON, g, scratch("duckdb")])  # fmt: skip
                    steps.append(duck)
                    floor, _ = repeat(FLOOR_LM_EVAL, name, reps,
                                      lambda g=glob: [PY, "bench/floor.py", "lm-eval", g])  # fmt: skip
                    steps.append(floor)
            else:
                skipped.append({"name": f"naive loader and DuckDB on {name}",
                                "why": f"more than --naive-max-runs {naive_max_runs} runs (the naive loader holds every row)"})  # fmt: skip  # noqa: E501
            wh = work / f"wh-{name}"
            s, m = repeat("cold ingest", name, reps, lambda p=path, w=wh: cli("ingest", "-q", str(p), "-w", str(w)),
                          before=lambda w=wh: shutil.rmtree(w, ignore_errors=True))  # fmt: skip
            s.extra["rows"] = rows_added(m.stdout)
            facts.setdefault("rows", s.extra["rows"])
            steps.append(s)
            s, _ = repeat(
                "re-ingest unchanged", name, reps, lambda p=path, w=wh: cli("ingest", "-q", str(p), "-w", str(w))
            )
            steps.append(s)
            extra = work / f"new-{name}"
            counter = iter(range(10_000))

            def add_one(shape: str = shape, runs: int = runs, extra: Path = extra, counter: Any = counter) -> None:
                # A run the corpus does not have (index past its end), beside the corpus folder.
                shutil.rmtree(extra, ignore_errors=True)
                u = synth.universe(0, synth.families_for(runs))
                for rel, data in synth.WRITERS[shape](u, runs + next(counter)):
                    (extra / rel).parent.mkdir(parents=True, exist_ok=True)
                    (extra / rel).write_bytes(data)

            s, m = repeat("ingest 1 new file", name, reps, lambda p=path, w=wh, e=extra: cli("ingest", "-q", str(p), str(e), "-w", str(w)),  # noqa: E501
                          before=add_one)  # fmt: skip
            steps.append(s)
            for st in steps:
                if st.corpus == name and naive and st is not naive:
                    st.vs_naive = round(naive.wall_s / st.wall_s, 2)
                if st.corpus == name and duck and st is not duck and st.name.endswith("ingest"):
                    st.extra["vs_duckdb"] = round(duck.wall_s / st.wall_s, 2)
            if shape == "so8t-results" and runs == max(sizes):
                big_wh, big_name = wh, name

    if big_wh is not None:
        inproc_reps = max(3, reps + 1)  # the first run is reported apart, the median is of the rest
        copies = 10
        big10 = work / "wh-x10"
        replicate(big_wh, big10, copies)
        for label, wh in ((big_name, big_wh), (f"{big_name} x{copies}", big10)):
            s, m = repeat("summary --by model,category", label, reps,
                          lambda w=wh: cli("summary", "--by", "model,category", "--format", "csv",
                                           "-w", str(w)))  # fmt: skip
            steps.append(s)
            s, m = repeat("summary query in process", label, 1,
                          lambda w=wh: [PY, "bench/inproc.py", str(w), str(inproc_reps), "sql",
                                        SUMMARY_SQL])  # fmt: skip
            s.extra = json.loads(m.stdout)
            s.note = "wall_s is the whole child; extra.median_s is the query alone (after a first, cold run)"
            steps.append(s)
        available = commands()
        if "compare" in available:
            # Every model against every other (both ways), overall and per category.
            s, m = repeat("compare all pairs", big_name, reps,
                          lambda w=big_wh: cli("compare", "-b", "*", "-c", "*", "--by", "category", "--no-save",
                                               "--format", "csv", "-w", str(w)))  # fmt: skip
            s.extra["rows"] = max(0, len(m.stdout.splitlines()) - 1)
            steps.append(s)
            s, m = repeat("compare all pairs in process", big_name, 1,
                          lambda w=big_wh: [PY, "bench/inproc.py", str(w), str(inproc_reps), "compare"])  # fmt: skip
            s.extra = json.loads(m.stdout)
            s.note = "wall_s is the whole child; extra.median_s is compare() alone"
            steps.append(s)
        if "report" in available:
            try:
                s, _ = repeat(
                    "report", big_name, 1, lambda w=big_wh: cli("report", "--out", str(work / "report"), "-w", str(w))
                )
                steps.append(s)
            except RuntimeError as exc:
                skipped.append({"name": "report", "why": f"`evalhouse report -w WH` failed: {str(exc)[-300:]}"})
        for command in ("compare", "report"):
            if command not in available:
                skipped.append({"name": command, "why": f"no `evalhouse {command}` command on this branch yet"})
    if many_files is None:
        many_files = QUICK_MANY_FILES if quick else MANY_FILES
    for files in many_files:
        path, facts = small_files(root, files)
        corpora[path.name] = facts
        print(f"{path.name}: {facts['files']} files, {facts['bytes'] / 1e6:.0f} MB", flush=True)
        wh = work / f"wh-{path.name}"
        # One cold ingest of the largest (it takes the longest of all steps, and only its memory is asked).
        cold_reps = reps if files < max(many_files) else 1
        s, m = repeat("cold ingest of many files", path.name, cold_reps,
                      lambda p=path, w=wh: cli("ingest", "-q", str(p), "-w", str(w)),
                      before=lambda w=wh: shutil.rmtree(w, ignore_errors=True))  # fmt: skip
        s.extra["rows"] = rows_added(m.stdout)
        facts["rows"] = s.extra["rows"]
        steps.append(s)
        s, _ = repeat("re-ingest of many unchanged files", path.name, reps,
                      lambda p=path, w=wh: cli("ingest", "-q", str(p), "-w", str(w)))  # fmt: skip
        steps.append(s)
        shutil.rmtree(wh, ignore_errors=True)
    s, _ = repeat("evalhouse --help", None, max(reps, 5), lambda: cli("--help"))
    steps.append(s)
    shutil.rmtree(work, ignore_errors=True)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "reps": reps,
        "machine": machine(),
        "memory_measure": "peak_mb: max over 20 ms samples of summed PSS of the child's process tree "
        "(/proc/<pid>/smaps_rollup); max_rss_mb: ru_maxrss of os.wait4 (largest single process)",
        "corpora": corpora,
        "steps": [asdict(s) for s in steps],
        "skipped": skipped,
        "targets": targets(steps, max(sizes, default=0), corpora),
    }


def _floor(floor: Step | None, reference: Step, measure: str, per_m_rows: float | None = None) -> str:
    """The floor step's figure and its ratio to the reference step's (see FLOOR_SO8T), or nothing."""
    if floor is None:
        return ""
    value, ref = getattr(floor, measure), getattr(reference, measure)
    figure = f"{value:.2f} s" if per_m_rows is None else f"{value / per_m_rows:.2f} CPU-s per 1M rows"
    return f"; floor {figure}, {value / max(ref, 1e-9):.2f}x the DuckDB step"


def targets(steps: list[Step], big: int, corpora: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The performance targets, checked against this run's figures (None where not measured)."""

    def find(name: str, corpus: str | None = None, prefix: bool = False) -> Step | None:
        for s in steps:
            if s.name == name and (
                corpus is None or s.corpus == corpus or (prefix and (s.corpus or "").startswith(corpus))
            ):
                return s
        return None

    res = f"so8t-results-{big}"
    out: list[dict[str, Any]] = []

    def add(target: str, figure: str, met: bool | None) -> None:
        out.append({"target": target, "measured": figure, "met": met})

    ing, naive, dd = find("cold ingest", res), find("naive loader", res), find("duckdb read_json COPY", res)
    floor = find(FLOOR_SO8T, res)
    if ing and dd:
        add("ingest so8t-results no slower than DuckDB read_json COPY (ratio <= 1.0)",
            f"{ing.wall_s / dd.wall_s:.2f} ({ing.wall_s:.2f} s vs {dd.wall_s:.2f} s; "
            f"{ing.vs_naive}x faster than the naive loader){_floor(floor, dd, 'wall_s')}",
            ing.wall_s <= dd.wall_s)  # fmt: skip
        rows = max(ing.extra.get("rows", 0), 1) / 1e6
        add("ingest so8t-results CPU-s per 1M rows <= 1.2x DuckDB's",
            f"{ing.cpu_s / rows:.2f} vs {dd.cpu_s / rows:.2f} CPU-s per 1M rows "
            f"({ing.cpu_s / max(dd.cpu_s, 1e-9):.2f}x){_floor(floor, dd, 'cpu_s', rows)}",
            ing.cpu_s <= 1.2 * dd.cpu_s)  # fmt: skip
    if ing and naive:
        add("ingest so8t-results >= 3x faster than naive",
            f"{ing.vs_naive}x ({ing.wall_s:.2f} s vs {naive.wall_s:.2f} s)", (ing.vs_naive or 0) >= 3)  # fmt: skip
    lm = next((s.corpus for s in steps if (s.corpus or "").startswith("lm-eval-samples-")), None)
    ing, dd = find("cold ingest", lm), find("duckdb read_ndjson COPY", lm)
    if lm and ing and dd:
        add("ingest lm-eval samples no slower than DuckDB read_ndjson COPY (ratio <= 1.0)",
            f"{ing.wall_s / dd.wall_s:.2f} ({ing.wall_s:.2f} s vs {dd.wall_s:.2f} s)"
            f"{_floor(find(FLOOR_LM_EVAL, lm), dd, 'wall_s')}",
            ing.wall_s <= dd.wall_s)  # fmt: skip
    many = sorted((s for s in steps if s.name == "cold ingest of many files"),
                  key=lambda s: int((s.corpus or "").rsplit("-", 1)[1]))  # fmt: skip
    if len(many) >= 2:
        lo, hi = many[0], many[-1]
        add("ingest peak memory flat in the number of files (within 1.2x)",
            f"{hi.peak_mb / lo.peak_mb:.2f}x: {lo.peak_mb:.0f} MB ({lo.corpus}) -> {hi.peak_mb:.0f} MB ({hi.corpus})",
            hi.peak_mb <= 1.2 * lo.peak_mb)  # fmt: skip
    reingest = [s for s in steps if s.name.startswith("re-ingest")]
    # The corpus of the most files (the 100,000); rows do not matter, files are stat'ed.
    re_ = max(reingest, key=lambda s: (corpora or {}).get(s.corpus or "", {}).get("files", 0), default=None)
    if re_:
        add("re-ingest unchanged corpus < 1 s", f"{re_.wall_s:.2f} s ({re_.corpus})", re_.wall_s < 1)
    new = find("ingest 1 new file", res)
    if new:
        add("1 new file into the corpus < 1 s", f"{new.wall_s:.2f} s", new.wall_s < 1)
    q10 = [s for s in steps if s.name == "summary query in process" and (s.corpus or "").endswith("x10")]
    if q10:
        rows, secs = q10[0].extra.get("score_rows"), q10[0].extra.get("median_s", 0)
        add("summary over 10M rows < 0.5 s in process", f"{secs:.3f} s over {rows:,} rows", secs < 0.5)
    cmp = find("compare all pairs in process")
    if cmp:
        rows, secs = cmp.extra.get("rows", 0), cmp.extra.get("median_s", 0)
        add("compare over 12k+ pairs < 1 s in process", f"{secs:.3f} s for {rows:,} tests", secs < 1)
    rep = find("report")
    if rep:
        add("report on the largest corpus < 15 s", f"{rep.wall_s:.2f} s", rep.wall_s < 15)
    h = find("evalhouse --help")
    if h:
        add("evalhouse --help < 0.3 s", f"{h.wall_s:.3f} s", h.wall_s < 0.3)
    return out


# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------


def markdown(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [
        "# evalhouse benchmark results",
        "",
        f"{res['date']}; {m['nproc']} cores, {m['ram_gb']} GiB RAM, {m['cpu']}; Python {m['python']}, "
        f"DuckDB {m['duckdb']}, Polars {m['polars']}, PyArrow {m['pyarrow']}. Medians of {res['reps']} run(s)"
        f"{' (--quick)' if res['quick'] else ''}. Memory: {res['memory_measure']}.",
        "",
        "| corpus | files | MB | rows |",
        "|---|---:|---:|---:|",
    ]
    for name, c in res["corpora"].items():
        lines.append(f"| {name} | {c['files']:,} | {c['bytes'] / 1e6:,.0f} | {c.get('rows', 0):,} |")
    lines += ["", "| step | corpus | wall s | CPU s | peak MB | x naive | x DuckDB |",
              "|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for s in res["steps"]:
        wall = f"{s['wall_s']:.3f}"
        if s["name"].endswith("in process"):
            wall = f"{s['extra']['median_s']:.3f} (alone)"
        ratio = f"{s['vs_naive']:.2f}" if s["vs_naive"] else ""
        duck = f"{s['extra']['vs_duckdb']:.2f}" if "vs_duckdb" in s["extra"] else ""
        cpu = f"{s['cpu_s']:.2f}" if s.get("cpu_s") else ""
        lines.append(f"| {s['name']} | {s['corpus'] or ''} | {wall} | {cpu} | {s['peak_mb']:.0f} | {ratio} | {duck} |")
    lines += ["", "| target | measured | met |", "|---|---|---|"]
    for t in res["targets"]:
        lines.append(f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else 'no'} |")
    for sk in res["skipped"]:
        lines.append(f"\nSkipped `{sk['name']}`: {sk['why']}.")
    return "\n".join(lines) + "\n"


README_START, README_END = "<!-- bench-results:start -->", "<!-- bench-results:end -->"


def update_readme(res: dict[str, Any], readme: Path = ROOT / "README.md") -> None:
    """Put the results' tables between the bench-results markers of README.md."""
    text = readme.read_text(encoding="utf-8")
    head, _, rest = text.partition(README_START)
    _, _, tail = rest.partition(README_END)
    body = markdown(res).split("\n", 2)[2]  # without the title
    readme.write_text(f"{head}{README_START}\n{body}{README_END}{tail}", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small corpora, one repetition (a smoke test)")
    ap.add_argument("--reps", type=int, default=None, help="repetitions per step (default 3; 1 with --quick)")
    ap.add_argument("--shapes", default="so8t-results,so8t-tasks,so8t-ab,lm-eval-samples",
                    help="corpus shapes ('' for none: only the small-file corpora and --help)")  # fmt: skip
    ap.add_argument("--sizes", default=None, help="runs per corpus (default 1000,10000; 20,60 with --quick)")
    ap.add_argument("--out", default=str(ROOT / "bench"), help="where results.json and results.md go")
    ap.add_argument("--files", default=None,
                    help="files of the small-file corpora (default 1000,100000; 50,500 with --quick; "
                         "'' for none)")  # fmt: skip
    ap.add_argument("--naive-shapes", default=NAIVE_SHAPES,
                    help=f"shapes the naive loader runs on (default {NAIVE_SHAPES}: "
                         "where a target compares with it)")  # fmt: skip
    ap.add_argument("--naive-max-runs", type=int, default=20_000,
                    help="skip the naive loader and DuckDB above this many runs (default 20000)")  # fmt: skip
    ap.add_argument("--work", default=str(OUT), help="where corpora and scratch warehouses go (default bench/out)")
    ap.add_argument("--readme", action="store_true",
                    help="only copy the tables of bench/results.json into README.md (no measuring)")  # fmt: skip
    args = ap.parse_args()
    if args.readme:
        update_readme(json.loads((Path(args.out) / "results.json").read_text(encoding="utf-8")))
        return
    reps = args.reps or (1 if args.quick else 3)
    sizes = [int(x) for x in (args.sizes or ("20,60" if args.quick else "1000,10000")).split(",")]
    shapes = (
        [x for x in args.shapes.split(",") if x]
        if not args.quick or args.shapes != ap.get_default("shapes")
        else ["so8t-results", "so8t-tasks", "lm-eval-samples"]
    )
    files = None if args.files is None else [int(x) for x in args.files.split(",") if x]
    res = bench(Path(args.work), args.quick, reps, shapes, sizes, args.naive_max_runs,
                tuple(x for x in args.naive_shapes.split(",") if x), files)  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    (out / "results.md").write_text(markdown(res), encoding="utf-8")
    print()
    print(markdown(res))


if __name__ == "__main__":
    main()
