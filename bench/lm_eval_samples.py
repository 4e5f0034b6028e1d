"""Ingest speed for lm-eval samples files, against a naive loader.

Generates N ``samples_<task>_<time>.jsonl`` files of 1,000 lines (~2.6 KB a line, the shape
lm-eval writes for a 4-choice task), then times

- the naive loader: ``json.loads`` per line into a dict per (doc, metric) row, kept in a list;
- ``evalhouse ingest`` of the same folder into a fresh warehouse.

Usage: python bench/lm_eval_samples.py [N_FILES] [WORKERS]   (default 50 files, one worker per core)
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def generate(out: Path, n_files: int, n_lines: int = 1000) -> None:
    rng = random.Random(0)
    words = "the a of to in is was for on that with as by at from".split() + [f"w{i}" for i in range(500)]

    def text(n: int) -> str:
        return " ".join(rng.choice(words) for _ in range(n))

    for f in range(n_files):
        folder = out / f"org__model-{f % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"samples_task_{f // 10:02d}_2024-05-29T10-20-{f % 60:02d}.{f:06d}.jsonl", "w") as fh:
            for i in range(n_lines):
                question, choices = text(40), [text(6) for _ in range(4)]
                prompt = f"Question: {question}\nAnswer:"
                line = {
                    "doc_id": i,
                    "doc": {"id": f"id{i}", "question": question, "choices": {"text": choices, "label": list("ABCD")},
                            "answerKey": "B", "fewshot": text(120)},
                    "target": 1,
                    "arguments": {f"gen_args_{k}": {"arg_0": prompt, "arg_1": " " + c} for k, c in enumerate(choices)},
                    "resps": [[[-rng.random() * 10, False]] for _ in choices],
                    "filtered_resps": [[-rng.random() * 10, False] for _ in choices],
                    "filter": "none", "metrics": ["acc", "acc_norm"],
                    "doc_hash": f"{rng.getrandbits(256):064x}", "prompt_hash": f"{rng.getrandbits(256):064x}",
                    "target_hash": f"{rng.getrandbits(256):064x}",
                    "acc": float(rng.random() < 0.5), "acc_norm": float(rng.random() < 0.5),
                }  # fmt: skip
                fh.write(json.dumps(line) + "\n")


def naive(folder: Path) -> tuple[float, int]:
    start = time.perf_counter()
    rows = []
    for path in sorted(folder.rglob("*.jsonl")):
        with open(path) as fh:
            for line in fh:
                d = json.loads(line)
                for m in d["metrics"]:
                    row = {"model": path.parent.name, "task": path.name, "metric": m, "score": d[m]}
                    row.update({k: d[k] for k in ("doc_id", "filter", "doc", "arguments", "resps", "filtered_resps",
                                                  "target")})  # fmt: skip
                    rows.append(row)
    return time.perf_counter() - start, len(rows)


def main() -> None:
    n_files = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else None
    from evalhouse.ingest import ingest
    from evalhouse.warehouse import open_warehouse

    tmp = Path(tempfile.mkdtemp())
    try:
        generate(tmp / "data", n_files)
        size = sum(p.stat().st_size for p in (tmp / "data").rglob("*.jsonl")) / 1e6
        wh = open_warehouse(tmp / "wh", create=True)
        start = time.perf_counter()
        report = ingest(wh, [tmp / "data"], workers=workers)
        ours = time.perf_counter() - start
        rss = max(resource.getrusage(r).ru_maxrss for r in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024
        print(
            f"{n_files} files, {size:.0f} MB: evalhouse ingest {ours:.2f} s ({report.rows} rows, max RSS {rss:.0f} MB)"
        )
        if os.environ.get("BENCH_NAIVE", "1") == "1":
            seconds, n = naive(tmp / "data")
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"naive json.loads per line: {seconds:.2f} s ({n} rows, max RSS {rss:.0f} MB); "
                  f"speed-up {seconds / ours:.1f}x")  # fmt: skip
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
