"""Time a query inside one process, after the imports and the views are set up.

Usage: python bench/inproc.py WAREHOUSE REPEATS SQL
Prints JSON: connect_s, first_s (cold Parquet metadata), median_s of the remaining repeats, rows,
score_rows (rows of the scores view).
"""

from __future__ import annotations

import json
import statistics
import sys
import time


def main(warehouse: str, repeats: int, sql: str) -> None:
    from engine.warehouse import connect, open_warehouse

    t0 = time.perf_counter()
    con = connect(open_warehouse(warehouse))
    connect_s = time.perf_counter() - t0
    times, rows = [], 0
    for _ in range(repeats):
        t = time.perf_counter()
        rows = len(con.execute(sql).fetchall())
        times.append(time.perf_counter() - t)
    rest = times[1:] or times
    (score_rows,) = con.execute("SELECT count(*) FROM scores").fetchone() or (0,)
    print(json.dumps({"connect_s": connect_s, "first_s": times[0], "median_s": statistics.median(rest), "rows": rows,
                      "score_rows": score_rows}))  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
