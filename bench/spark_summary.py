"""Time `summary --by model,category` on DuckDB and on Spark local[2], on one warehouse of ~10M score rows.

    .venv/bin/python bench/spark_summary.py [--work bench/out/spark] [--corpus DIR] [--copies 10] [--reps 3]

The warehouse is built once and reused: the so8t-results-10000 corpus that bench/run.py generates
(10,000 files, 1M score rows) is ingested, then its live scores files are hard-linked ``--copies``
times into the scores table as one more commit (distinct files, the same rows again: 10M rows,
each item answered ``copies`` times as often). Both engines then read the same Delta version.

Per engine: the start (DuckDB: connect and views; Spark: the JVM, then the views), the first
summary (cold) and the median of ``--reps`` more. The two results are checked equal (floats to
1e-9). Spark runs with the settings `evalhouse summary --engine spark` uses, on local[2].
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
BY = ["model", "category"]


def build(work: Path, corpus: Path, copies: int) -> Path:
    """The warehouse of ``copies`` x the corpus's scores under ``work`` (reused when already there)."""
    from run import replicate  # bench/run.py: the same 10M-row warehouse its summary step reads

    wh_path = work / f"wh-x{copies}"
    if (wh_path / "evalhouse.json").exists():
        return wh_path
    if not corpus.is_dir():
        sys.exit(f"{corpus}: no such corpus; run `evalhouse synth --runs 10000 --shape so8t-results --out {corpus}`")
    once = work / "wh-x1"
    if not (once / "evalhouse.json").exists():
        shutil.rmtree(once, ignore_errors=True)
        t0 = time.perf_counter()
        cmd = [sys.executable, "-m", "evalhouse.cli", "ingest", "-q", str(corpus), "-w", str(once)]
        subprocess.run(cmd, check=True)
        print(f"ingested {corpus} in {time.perf_counter() - t0:.1f} s", flush=True)
    replicate(once, wh_path, copies)
    return wh_path


def timed(fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def run(name: str, start: Any, reps: int) -> tuple[dict[str, float], Any]:
    from evalhouse.stats import describe

    started, con = timed(start)
    try:
        cold, frame = timed(lambda: describe(con, BY))
        warm = [timed(lambda: describe(con, BY))[0] for _ in range(reps)]
    finally:
        con.close()
    figures = {"start_s": started, "first_s": cold, "median_s": statistics.median(warm)}
    median = figures["median_s"]
    print(f"{name:>14}: start {started:6.2f} s, first summary {cold:6.2f} s, median of {reps} {median:6.2f} s "
          f"({frame.height} groups)", flush=True)  # fmt: skip
    return figures, frame


def same(a: Any, b: Any) -> bool:
    if a.columns != b.columns or a.height != b.height:
        return False
    for x, y in zip(a.rows(), b.rows(), strict=True):
        for u, v in zip(x, y, strict=True):
            if isinstance(u, float) and isinstance(v, float):
                if not ((math.isnan(u) and math.isnan(v)) or math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-9)):
                    return False
            elif u != v:
                return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "out" / "spark")
    parser.add_argument("--corpus", type=Path, default=ROOT / "bench" / "out" / "corpora" / "so8t-results-10000")
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()

    from evalhouse import spark
    from evalhouse.settings import SparkSettings
    from evalhouse.warehouse import connect, open_warehouse

    wh = open_warehouse(build(args.work, args.corpus, args.copies))
    rows = sum(pq.read_metadata(f).num_rows for f in wh.table_files("scores"))
    print(f"warehouse {wh.root}: {rows:,} score rows in {len(wh.table_files('scores')):,} files; "
          f"{os.cpu_count()} cores", flush=True)  # fmt: skip

    duck, duck_frame = run("DuckDB", lambda: connect(wh), args.reps)
    settings = SparkSettings(master=args.master, conf={"spark.driver.memory": "4g"})
    started, (session, _owned) = timed(lambda: spark.session(settings))
    session.sparkContext.setLogLevel("ERROR")
    print(f"{'Spark JVM':>14}: started in {started:.2f} s ({args.master})", flush=True)
    sp, sp_frame = run(f"Spark {args.master}", lambda: spark.connect(wh, spark=session), args.reps)
    session.stop()
    print(f"results equal: {same(sp_frame, duck_frame)}; Spark / DuckDB (median): "
          f"{sp['median_s'] / duck['median_s']:.1f}x", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
