"""Every view of sql/ on DuckDB and on Spark local, row for row, on the demo warehouse (or any).

    .venv/bin/python bench/spark_views.py [WAREHOUSE]

Without WAREHOUSE, builds the demo's (``evalhouse synth --runs 300 --seed 0``, ingested, one
compare with the corpus's settings) under bench/out/demo-wh. Per view: the row counts on both
engines and how many values differ (floats to 1e-9 relative, timestamps without their zone: Spark
reads timestamp_ntz as local time). The test suite checks the same on a smaller warehouse.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def demo(work: Path) -> Path:
    wh = work / "wh"
    if (wh / "evalhouse.json").exists():
        return wh
    cli = [sys.executable, "-m", "evalhouse.cli"]
    subprocess.run([*cli, "synth", "--runs", "300", "--seed", "0", "--out", str(work / "corpus")], check=True)
    subprocess.run([*cli, "ingest", "--quiet", "-w", str(wh), str(work / "corpus")], check=True)
    config = str(work / "corpus" / ".evalhouse.toml")
    subprocess.run([*cli, "compare", "-w", str(wh), "--config", config], check=True, capture_output=True)
    return wh


def _norm(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 6) if math.isfinite(v) else str(v)
    if isinstance(v, list):
        return tuple(_norm(x) for x in v)
    return v


def _key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((x is None, type(x).__name__, str(x)) for x in map(_norm, row))


def _same(x: Any, y: Any) -> bool:
    if isinstance(x, float) and isinstance(y, float):
        return x == y or (math.isnan(x) and math.isnan(y)) or abs(x - y) <= 1e-9 * max(1.0, abs(x))
    if hasattr(x, "tzinfo") and hasattr(y, "tzinfo"):
        return bool(x.replace(tzinfo=None) == y.replace(tzinfo=None))
    if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
        return len(x) == len(y) and all(_same(a, b) for a, b in zip(x, y, strict=True))
    return bool(x == y)


def main() -> None:
    from evalhouse import spark
    from evalhouse.warehouse import SQL_DIR, connect, open_warehouse

    wh = open_warehouse(sys.argv[1] if len(sys.argv) > 1 else demo(ROOT / "bench" / "out" / "demo-wh"))
    duck = connect(wh)
    t0 = time.perf_counter()
    con = spark.connect(wh)
    print(f"Spark views registered in {time.perf_counter() - t0:.1f} s", flush=True)
    differing = 0
    for path in sorted(SQL_DIR.glob("*.sql")):
        view = path.stem.split("_", 1)[1]
        a = sorted(duck.execute(f'SELECT * FROM "{view}"').fetchall(), key=_key)
        b = sorted(con.sql(f'SELECT * FROM "{view}"').fetchall(), key=_key)
        diff = sum(not _same(x, y) for ra, rb in zip(a, b, strict=False) for x, y in zip(ra, rb, strict=True))
        diff += abs(len(a) - len(b))
        differing += diff > 0
        print(f"{view:24} DuckDB {len(a):>9,} rows  Spark {len(b):>9,} rows  differing values {diff}", flush=True)
    con.close()
    print(f"views differing: {differing}")
    sys.exit(1 if differing else 0)


if __name__ == "__main__":
    main()
