"""lighteval: ``results_<time>.json`` (aggregates) and ``details_<task>_<time>.parquet`` (per item).

Results: ``config_general`` (``model_name``, ``start_time``, ...) and ``results`` keyed
``"suite|task|fewshot"`` -> {metric, metric_stderr}. Each real task gives ``metrics`` rows: the
benchmark is the task before ``:`` (``mmlu:anatomy`` -> ``mmlu``), the category the part after it
(else the benchmark), the task the full key. ``"all"`` and ``..._average`` entries are averages of
other tasks, not items or tasks: they are kept in the run's metadata, not as rows. The files may
hold bare ``NaN`` (Python's json writes it): such values are missing, never stored.

Details: a Parquet file per task with struct columns ``doc`` (``query``, ``choices``,
``gold_index``, ``id``, ...), ``model_response`` (``text``, ...) and ``metric`` ({name: value}).
Each row is one item: item_id = ``doc.id`` when set, else the row's position (the same across
models for one task); the task comes from the file name; the model from the folder layout
``details/<model_name>/<time>/``.
"""

from __future__ import annotations

import io
import math
import os
import re
from typing import Any

from engine.adapters.base import RunBuilder, Source, dumps, parse_time, require, to_value
from engine.errors import BadResultFile

NAME = "lighteval"
HARNESS = "lighteval"
_PARQUET = b"PAR1"
_DETAILS_NAME = re.compile(r"^details_(.+)_(\d{4}-\d{2}-\d{2}T[0-9\-.:]+)\.parquet$")
_DETAIL_COLUMNS = ("doc", "model_response", "metric")


def detect(source: Source) -> bool:
    if source.data[:4] == _PARQUET:
        return _parquet_columns(source) is not None
    if not source.name.endswith(".json") or not source.looks_like_json():
        return False
    doc = source.json_lenient
    return (
        isinstance(doc, dict) and isinstance(doc.get("config_general"), dict) and isinstance(doc.get("results"), dict)
    )


def _parquet_columns(source: Source) -> list[str] | None:
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(io.BytesIO(source.data)).names
    except Exception:
        return None
    return names if all(c in names for c in _DETAIL_COLUMNS) else None


def split_task(key: str) -> tuple[str, str]:
    """(benchmark, category) of a ``suite|task|fewshot`` key.

    >>> split_task("lighteval|mmlu:college_chemistry|5"), split_task("leaderboard|gsm8k|5")
    (('mmlu', 'college_chemistry'), ('gsm8k', 'gsm8k'))
    """
    parts = key.split("|")
    name = parts[1] if len(parts) >= 2 else key
    benchmark, _, sub = name.partition(":")
    return benchmark, sub or benchmark


def _is_average(key: str) -> bool:
    return key == "all" or "_average" in key


def read(source: Source) -> list[RunBuilder]:
    if source.data[:4] == _PARQUET:
        return [_read_details(source)]
    path, doc = source.path, source.json_lenient
    general = doc["config_general"]
    model = general.get("model_name")
    require(isinstance(model, str) and model != "", path, "config_general.model_name", "missing or not text")
    start = general.get("start_time")
    # start_time is often a monotonic clock reading, not a date: only accept plausible Unix times.
    started = (
        parse_time(start, path, "config_general.start_time")
        if isinstance(start, (int, float)) and start > 1e9
        else None
    )
    averages: dict[str, Any] = {}
    run = RunBuilder("results", model, started_at=started, harness=HARNESS,
                     metadata={k: general[k] for k in ("lighteval_sha", "model_sha", "model_dtype", "num_fewshot_seeds",
                                                       "max_samples") if general.get(k) is not None})  # fmt: skip
    for key, entry in doc["results"].items():
        where = f"results.{key}"
        require(isinstance(entry, dict), path, where, "expected an object")
        if _is_average(key):
            averages[key] = {k: v for k, v in entry.items() if v is not None}
            continue
        benchmark, category = split_task(key)
        run.add_metric_entry(entry, path, where, benchmark=benchmark, category=category, task=key)
    if averages:
        run.metadata["averages"] = averages
    return [run]


def _model_from_path(path: str) -> str:
    """The model of a details file from ``.../details/<model_name>/<time>/details_*.parquet``.

    >>> _model_from_path("/o/details/openai/gpt2/2024-05-01T12-00-00/details_x_2024-05-01T12-00-00.parquet")
    'openai/gpt2'
    """
    parts = os.path.normpath(path).split(os.sep)
    if "details" in parts[:-1]:
        i = len(parts) - 2 - parts[:-1][::-1].index("details")
        model = "/".join(parts[i + 1 : -2])
        if model:
            return model
    return parts[-3] if len(parts) >= 3 else ""


def _read_details(source: Source) -> RunBuilder:
    import pyarrow.parquet as pq

    path = source.path
    m = _DETAILS_NAME.match(source.name)
    require(m is not None, path, "(file name)", "lighteval details must be named details_<task>_<time>.parquet")
    assert m is not None
    task, time = m.group(1), m.group(2)
    model = _model_from_path(path)
    require(bool(model), path, "(file name)", "cannot tell the model from the folder layout")
    try:
        table = pq.read_table(io.BytesIO(source.data), columns=list(_DETAIL_COLUMNS))
    except Exception as exc:
        raise BadResultFile(path, "(file)", f"not a readable Parquet file: {exc}") from None
    benchmark, category = split_task(task)
    date, _, clock = time.partition("T")
    started = parse_time(f"{date}T{clock.replace('-', ':')}", path, "(file name)") if clock else None
    run = RunBuilder(f"details:{task}", model, started_at=started, harness=HARNESS, metadata={"task": task})
    docs, responses, metrics = (table.column(c).to_pylist() for c in _DETAIL_COLUMNS)
    for i, (doc, response, metric) in enumerate(zip(docs, responses, metrics, strict=True)):
        where = f"row {i}"
        require(isinstance(metric, dict), path, f"{where}.metric", "expected a struct of metric values")
        scores = {}
        for name, raw in metric.items():
            value = (
                None if isinstance(raw, float) and math.isnan(raw) else to_value(raw, path, f"{where}.metric.{name}")
            )
            if value is not None:
                scores[name] = value
        if not scores:
            continue
        doc = doc if isinstance(doc, dict) else {}
        doc_id = doc.get("id")
        run.add_answer(
            str(doc_id) if doc_id not in (None, "") else str(i),
            scores,
            benchmark=benchmark,
            category=category,
            task=task,
            question=doc.get("query") if isinstance(doc.get("query"), str) else None,
            response=_response_text(response),
            expected=_gold_text(doc),
        )
    return run


def _response_text(response: Any) -> str | None:
    text = response.get("text") if isinstance(response, dict) else None
    if isinstance(text, list):
        return text[0] if len(text) == 1 and isinstance(text[0], str) else dumps(text)
    return text if isinstance(text, str) else None


def _gold_text(doc: dict[str, Any]) -> str | None:
    choices, gold = doc.get("choices"), doc.get("gold_index")
    if isinstance(gold, int):
        gold = [gold]
    if isinstance(choices, list) and isinstance(gold, list) and gold:
        picked = [choices[g] for g in gold if isinstance(g, int) and 0 <= g < len(choices)]
        if picked and all(isinstance(p, str) for p in picked):
            return picked[0] if len(picked) == 1 else dumps(picked)
    return None
