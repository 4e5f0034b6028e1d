"""What the ingest's work costs at the least, whatever reads the files: the benchmark's floor steps.

The DuckDB reference steps of bench/run.py parse the files and copy what they hold to Parquet, and
nothing else. An ingest must also do what those steps leave out, and these two steps do just that
much more, with the fastest tools at hand, so that the figures say how far the targets stand from
what the work itself costs:

- ``so8t-results GLOB OUT_DIR``: two processes, each taking jobs of 500 files as the ingest's workers
  do: the SHA-256 of every file (hashlib), then DuckDB (one thread) reads every file once as text,
  takes the type of every field of every item (``json_structure``: a score given as text or a field
  of two types must be noticed, not cast), parses it with the item fields declared, splits each
  answer into the narrow scores row and the texts row (the item id, benchmark and leftover
  attributes worked out in SQL) and writes both to Parquet with zstd. No ledger, no canonical
  names, no commit.
- ``lm-eval GLOB``: two processes parse every line of every samples file into Python objects with
  orjson and hash every file: what any reader that builds rows in Python pays before its first
  row is built.

Prints ``{"files": n, "rows": n}`` as JSON. Usage: python bench/floor.py so8t-results GLOB OUT_DIR
                                               python bench/floor.py lm-eval GLOB
"""

from __future__ import annotations

import glob as globbing
import hashlib
import json
import sys
from multiprocessing import Pool
from pathlib import Path

# The fields an so8t-results item may have (the ones the adapter reads, and the leftover fields the
# benchmark's corpora hold); any other key would need a per-item look, which only makes it dearer.
ITEM = {
    "model": "VARCHAR", "score": "DOUBLE", "response_time": "DOUBLE", "category": "VARCHAR",
    "benchmark": "VARCHAR", "domain": "VARCHAR", "test_name": "VARCHAR", "task_index": "BIGINT",
    "question": "VARCHAR", "response": "VARCHAR", "expected_answer": "VARCHAR", "timestamp": "VARCHAR",
    "scenario": "VARCHAR", "criticality": "VARCHAR", "evaluation_type": "VARCHAR",
}  # fmt: skip
OK_TYPES = {"VARCHAR", "DOUBLE", "UBIGINT", "BIGINT", "NULL"}
# Processes, and files a job of each: as the ingest's workers on this 2-core machine (a job of 64 MB).
WORKERS = 2
CHUNK_FILES = 500


def _so8t_chunk(job: tuple[int, list[str], str]) -> int:
    """One chunk of files, in one process with one DuckDB thread (as an ingest worker reads a job)."""
    import duckdb

    n, files, out = job
    for path in files:
        with open(path, "rb") as f:
            hashlib.file_digest(f, "sha256")
    con = duckdb.connect(config={"threads": 1})
    con.execute(
        "CREATE TEMP TABLE docs AS SELECT filename, json_structure(content) AS shape, "
        "from_json(content, $s) AS doc FROM read_text($files)",
        {"s": json.dumps({"metadata": "JSON", "results": [ITEM]}), "files": files},
    )
    # The type check: every field of every item is of one plain type (the shapes are few: one query).
    for (shape,) in con.execute("SELECT DISTINCT shape::VARCHAR FROM docs").fetchall():
        types = json.loads(shape)["results"][0]
        if not isinstance(types, dict) or not set(types.values()) <= OK_TYPES:
            raise SystemExit(f"a file's items do not have the expected types: {shape[:200]}")
    con.execute(
        "CREATE TEMP TABLE items AS SELECT filename, doc.metadata->>'timestamp' AS started_at, "
        "unnest(doc.results) AS it, generate_subscripts(doc.results, 1) - 1 AS sample_id FROM docs"
    )
    con.execute("DROP TABLE docs")
    bad = con.execute(
        "SELECT count(*) FROM items WHERE it.model IS NULL OR it.model = '' OR NOT it.score BETWEEN 0 AND 1"
    ).fetchone()
    if bad and bad[0]:
        raise SystemExit(f"{bad[0]} items fail the checks")
    bench = "coalesce(nullif(it.benchmark, ''), it.domain)"
    con.execute(
        f"COPY (SELECT filename, it.model, sample_id::INTEGER AS sample_id, {bench} AS benchmark, "
        f"coalesce(it.category, {bench}, 'unknown') AS category, "
        f"CASE WHEN it.test_name <> '' THEN it.test_name WHEN {bench} <> '' AND it.task_index IS NOT NULL "
        f"THEN {bench} || '#' || it.task_index ELSE 'q:' || left(sha1(trim(it.question)), 16) END AS item_id, "
        "'score' AS metric, it.score + 0.0 AS score, it.response_time AS response_time_s, "
        "strptime(it.timestamp, '%Y-%m-%dT%H:%M:%S.%f') AS timestamp, "
        "to_json(struct_pack(criticality := it.criticality, evaluation_type := it.evaluation_type, "
        "scenario := it.scenario))::VARCHAR AS attributes FROM items) TO $out (FORMAT parquet, COMPRESSION zstd)",
        {"out": f"{out}/scores-{n:05d}.parquet"},
    )
    con.execute(
        "COPY (SELECT filename, sample_id::INTEGER AS sample_id, it.question, it.response, "
        "it.expected_answer AS expected FROM items) TO $out (FORMAT parquet, COMPRESSION zstd)",
        {"out": f"{out}/texts-{n:05d}.parquet"},
    )
    (rows,) = con.execute("SELECT count(*) FROM items").fetchone() or (0,)
    return int(rows)


def so8t_results(pattern: str, out: Path) -> dict[str, int]:
    files = sorted(globbing.glob(pattern))
    step = CHUNK_FILES
    jobs = [(n, files[k : k + step], str(out)) for n, k in enumerate(range(0, len(files), step))]
    with Pool(WORKERS) as pool:
        rows = sum(pool.map(_so8t_chunk, jobs, chunksize=1))
    return {"files": len(files), "rows": rows}


def _lines(path: str) -> int:
    import orjson

    with open(path, "rb") as f:
        data = f.read()
    hashlib.sha256(data).hexdigest()
    return len([orjson.loads(line) for line in data.splitlines() if line.strip()])


def lm_eval(pattern: str) -> dict[str, int]:
    files = sorted(globbing.glob(pattern))
    with Pool(WORKERS) as pool:
        rows = sum(pool.map(_lines, files, chunksize=max(1, len(files) // 8)))
    return {"files": len(files), "rows": rows}


def main() -> None:
    mode, pattern, *rest = sys.argv[1:]
    if mode == "so8t-results":
        out = Path(rest[0])
        out.mkdir(parents=True, exist_ok=True)
        print(json.dumps(so8t_results(pattern, out)))
    elif mode == "lm-eval":
        print(json.dumps(lm_eval(pattern)))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
