"""OpenCompass summaries: ``summary/summary_<time>.csv``, wide, one column per model.

Header ``dataset,version,metric,mode,<model>,<model>...``; one row per dataset and metric, scores on
a 0-100 scale, ``-`` where a model has no score. Section rows (``--------- Exam ---------,-,-,-,...``)
carry no scores and are skipped. Each model column becomes a run of aggregate-only ``metrics`` rows
(benchmark = category = task = ``dataset``, ``filter`` = the ``mode``, ``gen`` or ``ppl``).

Scores are scaled to 0-1 (divided by 100) so that an accuracy means the same as in every other
harness; the run's metadata records ``{"score_scale": 0.01, "source_scale": "0-100"}``.
OpenCompass writes no standard errors or item counts, so ``stderr`` and ``n`` are NULL.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation

from engine.adapters.base import RunBuilder, Source, require, to_value
from engine.errors import BadResultFile

NAME = "opencompass"
HARNESS = "opencompass"
SCALE = 0.01
_HEADER = ("dataset", "version", "metric", "mode")
_TIME = re.compile(r"(\d{8})_(\d{6})")


def detect(source: Source) -> bool:
    if not source.name.lower().endswith(".csv"):
        return False
    first = source.first_line.decode("utf-8", "replace").strip()
    cells = [c.strip() for c in first.split(",")]
    return tuple(cells[:4]) == _HEADER and len(cells) > 4


def read(source: Source) -> list[RunBuilder]:
    path = source.path
    try:
        text = source.data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadResultFile(path, "(file)", f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    rows = list(csv.reader(io.StringIO(text)))
    header = [c.strip() for c in rows[0]]
    models = header[4:]
    require(all(models) and len(set(models)) == len(models), path, "header", "model columns must be named and distinct")
    m = _TIME.search(source.name)
    started = datetime.strptime("".join(m.groups()), "%Y%m%d%H%M%S") if m else None
    runs = [
        RunBuilder(model, model, started_at=started, harness=HARNESS,
                   metadata={"score_scale": SCALE, "source_scale": "0-100"})
        for model in models
    ]  # fmt: skip
    for line, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        require(len(row) == len(header), path, f"line {line}", f"{len(row)} cells, the header has {len(header)}")
        dataset, _version, metric, mode = (c.strip() for c in row[:4])
        cells = [c.strip() for c in row[4:]]
        if metric == "-" and all(c == "-" for c in cells):
            continue  # a section heading
        require(bool(dataset) and metric not in ("", "-"), path, f"line {line}", "dataset or metric missing")
        for run, cell, model in zip(runs, cells, models, strict=True):
            value = to_value(cell, path, f"line {line}.{model}")
            if value is not None:
                run.add_metric(metric, _scaled(cell, value), benchmark=dataset, category=dataset, task=dataset,
                               filter=mode if mode not in ("", "-") else None)  # fmt: skip
    return runs


def _scaled(cell: str, value: float) -> float:
    """The cell scaled to 0-1, computed on the decimal text so no binary noise is added.

    >>> _scaled("70.51", 70.51), 70.51 * SCALE
    (0.7051, 0.7051000000000001)
    """
    try:
        return float(Decimal(cell) * Decimal(str(SCALE)))
    except InvalidOperation:
        return value * SCALE
