"""Time one analysis inside one process, after the imports and the views are set up.

Usage:
    python bench/inproc.py WAREHOUSE REPEATS sql "SELECT ..."
    python bench/inproc.py WAREHOUSE REPEATS compare      (every model against every other, by category)

Prints JSON: import_s, connect_s, first_s (the first run: cold Parquet metadata), median_s of the
remaining repeats, rows (of the result) and score_rows (rows of the scores view).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Any


def main(warehouse: str, repeats: int, what: str, sql: str = "") -> None:
    t0 = time.perf_counter()
    from evalhouse.warehouse import connect, open_warehouse

    if what == "compare":
        from evalhouse.compare import compare

        def run(con: Any) -> int:
            return compare(con, baseline=["*"], candidate=["*"], by=["category"]).height
    else:

        def run(con: Any) -> int:
            return len(con.execute(sql).fetchall())

    t1 = time.perf_counter()
    con = connect(open_warehouse(warehouse))
    t2 = time.perf_counter()
    times, rows = [], 0
    for _ in range(repeats):
        t = time.perf_counter()
        rows = run(con)
        times.append(time.perf_counter() - t)
    rest = times[1:] or times
    (score_rows,) = con.execute("SELECT count(*) FROM scores").fetchone() or (0,)
    print(json.dumps({"import_s": t1 - t0, "connect_s": t2 - t1, "first_s": times[0],
                      "median_s": statistics.median(rest), "rows": rows, "score_rows": score_rows}))  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), *sys.argv[3:])
