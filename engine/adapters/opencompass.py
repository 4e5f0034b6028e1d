"""OpenCompass outputs: the summary CSV and the per-dataset result files.

``summary/summary_<time>.csv`` is wide, one column per model: header
``dataset,version,metric,mode,<model>,<model>...``; one row per dataset and metric, scores on a
0-100 scale, ``-`` where a model has no score. Section rows (``--------- Exam ---------,-,-,-,...``)
carry no scores and are skipped. Each model column becomes a run of aggregate-only ``metrics`` rows
(benchmark = category = task = ``dataset``, ``filter`` = the ``mode``, ``gen`` or ``ppl``).

``<time>/results/<model_abbr>/<dataset_abbr>.json`` (written by ``OpenICLEvalTask._save_results``,
opencompass/tasks/openicl_eval.py) holds one model's scores on one dataset: ``{"accuracy": 70.5}``.
Every top-level number becomes a ``metrics`` row (a bare ``NaN``, which Python's json writes, is
missing), except ``bp``/``sys_len``/``ref_len``/``type``,
which the summary skips too (``METRIC_BLACKLIST`` in opencompass/summarizers/default.py); model and
dataset come from the path, the start time from the ``<time>`` folder, and ``filter`` is NULL (the
mode is not in the file). With ``--dump-eval-details`` the file also has per-item ``details``,
read as score rows where it is in one of the layouts OpenCompass writes:

- 0.4.1 and later (``BaseEvaluator.evaluate``): a list of ``{"example_abbr": "<dataset>_<index>",
  <key>: [one value per repetition], ...}``: item_id = the index, epoch = the repetition;
- before (``OpenICLEvalTask.format_details``): an object ``{"0": {"prompt", "origin_prediction",
  "predictions", "references", "correct"}, ...}``: item_id = the key, epoch 0.

The score is the item's ``correct`` (else ``is_correct``, else ``cascade_correct``), as 0/1, under
that name; an item without one has no row. ``prompt`` -> question, the prediction -> response,
the reference -> expected (non-text values as JSON). Other ``details`` shapes are not read, nor
are subjective evaluations' ``results/<model>_judged-by--<judge>/`` files.

Scores are scaled to 0-1 (divided by 100) so that an accuracy means the same as in every other
harness; the run's metadata records ``{"score_scale": 0.01, "source_scale": "0-100"}``. Per-item
scores are 0/1 already. OpenCompass writes no standard errors or item counts, so ``stderr`` and
``n`` are NULL.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from evalhouse.adapters.base import RunBuilder, Source, dumps, require, to_value
from evalhouse.errors import BadResultFile

NAME = "opencompass"
HARNESS = "opencompass"
SCALE = 0.01
_HEADER = ("dataset", "version", "metric", "mode")
_TIME = re.compile(r"(\d{8})_(\d{6})")
# Top-level numbers of a result file that are not scores (opencompass/summarizers/default.py).
_NOT_METRICS = frozenset(["bp", "sys_len", "ref_len", "type"])
# The per-item verdict, in the order OpenCompass's own G-Pass code looks for it
# (BaseEvaluator.evaluate in opencompass/openicl/icl_evaluator/icl_base_evaluator.py).
_ITEM_SCORES = ("correct", "is_correct", "cascade_correct")
_QUESTION = ("prompt", "origin_prompt")
_RESPONSE = ("origin_prediction", "predictions", "prediction", "pred")
_EXPECTED = ("references", "answer", "gold", "refr")
_INDEX = re.compile(r"_(\d+)$")
_JUDGED = re.compile(r"_(judged|summarized)-by--")


def result_layout(path: str) -> tuple[str, str] | None:
    """(model_abbr, dataset_abbr) of a ``results/<model_abbr>/<dataset_abbr>.json`` path, else None.

    >>> result_layout("outputs/default/20240601_120000/results/internlm2-7b-hf/gsm8k.json")
    ('internlm2-7b-hf', 'gsm8k')
    >>> result_layout("outputs/default/20240601_120000/predictions/internlm2-7b-hf/gsm8k.json") is None
    True
    >>> result_layout("outputs/default/20240601_120000/results/qwen-7b-hf_judged-by--gpt-4o/alignment_bench.json")
    """
    folder, name = os.path.split(os.path.normpath(path))
    results, model = os.path.split(folder)
    if os.path.basename(results) != "results" or not model or not name.endswith(".json") or name == ".json":
        return None
    # Subjective evaluation writes a judge's verdicts to results/<model>_judged-by--<judge>/
    # (opencompass/tasks/subjective_eval.py), in shapes of its own: not one model's scores.
    return None if _JUDGED.search(model) else (model, name.removesuffix(".json"))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def detect(source: Source) -> bool:
    if source.name.endswith(".json"):
        if result_layout(source.path) is None or not source.looks_like_json():
            return False
        doc = source.json_lenient
        return isinstance(doc, dict) and any(_number(v) for k, v in doc.items() if k not in _NOT_METRICS)
    if not source.name.lower().endswith(".csv"):
        return False
    first = source.first_line.decode("utf-8", "replace").strip()
    cells = [c.strip() for c in first.split(",")]
    return tuple(cells[:4]) == _HEADER and len(cells) > 4


def read(source: Source) -> list[RunBuilder]:
    if source.name.endswith(".json"):
        return [_read_result(source)]
    path = source.path
    try:
        text = source.data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadResultFile(path, "(file)", f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    source.check_lines(text)
    rows = list(csv.reader(io.StringIO(text)))
    header = [c.strip() for c in rows[0]]
    models = header[4:]
    require(all(models) and len(set(models)) == len(models), path, "header", "model columns must be named and distinct")
    started = _started(source.name)
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


def _started(name: str) -> datetime | None:
    m = _TIME.search(name)
    return datetime.strptime("".join(m.groups()), "%Y%m%d%H%M%S") if m else None


def _read_result(source: Source) -> RunBuilder:
    """One ``results/<model_abbr>/<dataset_abbr>.json``: its metrics and, where readable, its details."""
    path, doc = source.path, source.json_lenient
    layout = result_layout(path)
    assert layout is not None  # detect() checked it
    model, dataset = layout
    work_dir = os.path.basename(os.path.dirname(os.path.dirname(os.path.dirname(os.path.normpath(path)))))
    run = RunBuilder(dataset, model, started_at=_started(work_dir), harness=HARNESS,
                     metadata={"score_scale": SCALE, "source_scale": "0-100"})  # fmt: skip
    for metric, value in doc.items():
        if metric not in _NOT_METRICS and _number(value):
            run.add_metric(
                metric, _scaled(repr(value), float(value)), benchmark=dataset, category=dataset, task=dataset
            )
    details = doc.get("details")
    if isinstance(details, list) and all(isinstance(d, dict) and "example_abbr" in d for d in details):
        for i, item in enumerate(details):
            _add_item(run, item, _item_id(item["example_abbr"], path, i), (path, f"details[{i}]"), repeated=True)
    elif isinstance(details, dict):
        for key, item in details.items():
            if key.isdigit() and isinstance(item, dict):
                _add_item(run, item, key, (path, f"details.{key}"), repeated=False)
    return run


def _item_id(example_abbr: Any, path: str, i: int) -> str:
    """The item's index from ``<subdivision>_<index>`` (so that it matches the older layout's key)."""
    require(isinstance(example_abbr, str), path, f"details[{i}].example_abbr", "expected text")
    m = _INDEX.search(example_abbr)
    return m.group(1) if m else example_abbr


def _add_item(run: RunBuilder, item: dict[str, Any], item_id: str, at: tuple[str, str], *, repeated: bool) -> None:
    """Add one ``details`` entry (``at``: file, field) of the run's dataset: an answer per repetition.

    ``repeated``: the 0.4.1+ layout, where every value is a list with one entry per repetition.
    """
    path, where = at
    dataset = run.key
    metric = next((k for k in _ITEM_SCORES if k in item), None)
    if metric is None:
        return
    verdicts = item[metric]
    if repeated:
        require(isinstance(verdicts, list), path, f"{where}.{metric}", "expected one value per repetition")
    else:
        verdicts = [verdicts]
    attributes = dumps({"example_abbr": item["example_abbr"]}) if "example_abbr" in item else None
    for epoch, verdict in enumerate(verdicts):
        score = to_value(verdict, path, f"{where}.{metric}")
        if score is not None:
            run.add_answer(item_id, {metric: score}, benchmark=dataset, category=dataset, task=dataset, epoch=epoch,
                           attributes=attributes, question=_text(item, _QUESTION, epoch if repeated else None),
                           response=_text(item, _RESPONSE, epoch if repeated else None),
                           expected=_text(item, _EXPECTED, epoch if repeated else None))  # fmt: skip


def _text(item: dict[str, Any], keys: tuple[str, ...], epoch: int | None) -> str | None:
    """The first of ``keys`` the item has (for ``epoch``, of a per-repetition list), as text."""
    value = next((item[k] for k in keys if item.get(k) is not None), None)
    if epoch is not None and isinstance(value, list):
        value = value[epoch] if epoch < len(value) else None
    return value if value is None or isinstance(value, str) else dumps(value)
