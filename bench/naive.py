"""The naive loader the benchmark measures evalhouse against.

What a results notebook usually does: ``json.load`` each file, flatten it into one dict per
scored answer (text included), build a DataFrame from the list of dicts, write it to Parquet.
No ledger, no hashing, no validation beyond skipping files that fail to parse. lm-eval samples
(``.jsonl``) are read a line at a time, one dict per line and metric.

Usage: python bench/naive.py CORPUS_DIR OUT.parquet
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def rows_of(path: str, doc: Any) -> list[dict[str, Any]]:
    """One dict per scored answer, for the three SO8T shapes (anything else: no rows)."""
    if isinstance(doc, dict) and isinstance(doc.get("results"), list):
        meta = doc.get("metadata") or {}
        return [{"file": path, "run_timestamp": meta.get("timestamp"), **item} for item in doc["results"]]
    if isinstance(doc, list):
        model = os.path.basename(path).removesuffix(".json").removesuffix("_results")
        return [{"file": path, "model": model, **item} for item in doc if isinstance(item, dict)]
    if isinstance(doc, dict) and isinstance(doc.get("baseline"), dict):
        rows = []
        for side in ("baseline", "improved"):
            data = doc[side]
            for result, evaluation in zip(data.get("results", []), data.get("evaluations", []), strict=False):
                rows.append({"file": path, "side": side, "model": data.get("model"), **result, **evaluation})
        return rows
    return []


def jsonl_rows(path: str) -> list[dict[str, Any]]:
    """lm-eval samples: one dict per (line, metric); nested fields kept as JSON text (a DataFrame
    cannot hold lists that mix numbers and booleans)."""
    rows = []
    model = os.path.basename(os.path.dirname(path))
    with open(path, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            for metric in d.get("metrics", []):
                row = {"file": path, "model": model, "doc_id": d["doc_id"], "filter": d.get("filter"),
                       "metric": metric, "score": d[metric]}  # fmt: skip
                for key in ("doc", "arguments", "resps", "filtered_resps", "target"):
                    row[key] = json.dumps(d[key])
                rows.append(row)
    return rows


def main(corpus: str, out: str) -> None:
    import polars as pl

    rows: list[dict[str, Any]] = []
    for dirpath, _dirs, files in os.walk(corpus):
        for name in sorted(files):
            path = os.path.join(dirpath, name)
            if name.startswith("."):
                continue
            if name.endswith(".jsonl"):
                rows.extend(jsonl_rows(path))
                continue
            if not name.endswith(".json") or name.startswith("results_"):  # lm-eval aggregates: not rows
                continue
            try:
                with open(path, encoding="utf-8") as f:
                    doc = json.load(f)
            except (OSError, ValueError):
                continue
            rows.extend(rows_of(path, doc))
    df = pl.DataFrame(rows, infer_schema_length=None)
    df.write_parquet(out)
    print(json.dumps({"rows": df.height}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
