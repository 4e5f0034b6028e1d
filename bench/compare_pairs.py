"""Benchmark: compare every pair among N models (N = 200: 19,900 pairs, about 20,000 tests).

A synthetic warehouse (binary and continuous metrics, items shared by every model) is written
straight as one Parquet batch, then ``evalhouse.compare.compare`` runs on all pairs. Call
:func:`run` from the benchmark suite, or run this file::

    python bench/compare_pairs.py [N_MODELS] [ITEMS_PER_CATEGORY]
"""

from __future__ import annotations

import sys
import tempfile
import time
from itertools import combinations
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evalhouse.commit import Commit  # noqa: E402
from evalhouse.compare import compare  # noqa: E402
from evalhouse.schema import RUNS, SCORES  # noqa: E402
from evalhouse.warehouse import connect, lock, open_warehouse  # noqa: E402

CATEGORIES = 10


def build(root: Path, n_models: int, items_per_category: int, seed: int = 7) -> int:
    """Write a warehouse of ``n_models`` models answering the same items; return the score rows."""
    rng = np.random.default_rng(seed)
    wh = open_warehouse(root, create=True)
    n_items = CATEGORIES * items_per_category
    models = [f"model-{i:03d}" for i in range(n_models)]
    category = np.repeat([f"cat{c}" for c in range(CATEGORIES)], items_per_category)
    item_id = np.array([f"item{i}" for i in range(n_items)])
    # Half the categories are 0/1 (McNemar), half continuous (paired t).
    binary = np.repeat(np.arange(CATEGORIES) % 2 == 0, items_per_category)
    difficulty = rng.uniform(0.2, 0.9, n_items)
    cols: dict[str, list] = {k: [] for k in ("run_id", "sample_id", "model", "category", "item_id", "score")}
    for m in models:
        skill = rng.normal(0, 0.05)
        p = np.clip(difficulty + skill, 0, 1)
        score = np.where(binary, (rng.uniform(size=n_items) < p).astype(float), np.clip(rng.normal(p, 0.1), 0, 1))
        cols["run_id"].append(np.full(n_items, f"run-{m}"))
        cols["sample_id"].append(np.arange(n_items, dtype=np.int32))
        cols["model"].append(np.full(n_items, m))
        cols["category"].append(category)
        cols["item_id"].append(item_id)
        cols["score"].append(score)
    data = {k: np.concatenate(v) for k, v in cols.items()}
    n = len(data["score"])
    scores = pa.table(
        {
            f.name: pa.array(data[f.name], f.type) if f.name in data else pa.nulls(n, f.type)
            for f in SCORES.arrow_schema()
        }
    ).set_column(SCORES.names.index("metric"), "metric", pa.array(["score"] * n))
    scores = scores.set_column(SCORES.names.index("epoch"), "epoch", pa.array(np.zeros(n, np.int32)))
    scores = scores.set_column(SCORES.names.index("higher_is_better"), "higher_is_better", pa.array(np.ones(n, bool)))
    runs = pa.Table.from_pylist(
        [
            {"run_id": f"run-{m}", "model": m, "model_base": m, "n_items": n_items, "source_path": "/bench"}
            for m in models
        ],
        schema=RUNS.arrow_schema(),
    )
    with lock(wh):
        batch = Commit(wh, "ingest")
        batch.write("scores", scores)
        batch.write("runs", runs)
        batch.publish()
    return n


def run(n_models: int = 200, items_per_category: int = 50, by: tuple[str, ...] = ()) -> dict[str, float]:
    """Time ``compare`` over every pair of ``n_models`` models; return timings and counts."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        rows = build(Path(tmp) / "wh", n_models, items_per_category)
        t1 = time.perf_counter()
        con = connect(open_warehouse(Path(tmp) / "wh"))
        models = [f"model-{i:03d}" for i in range(n_models)]
        pairs = list(combinations(models, 2))
        out = compare(con, pairs=pairs, by=list(by))
        t2 = time.perf_counter()
        con.close()
    return {
        "models": n_models,
        "score_rows": rows,
        "pairs": len(pairs),
        "tests": int(out["p_value"].is_not_null().sum()),
        "build_s": round(t1 - t0, 3),
        "compare_s": round(t2 - t1, 3),
    }


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    k = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    print(run(n, k))
    print(run(n, k, by=("category",)))
