"""SO8T ``{"metadata": {...}, "results": [item, ...], "summary": {...}}`` files.

One run per model named in ``results``. ``summary`` holds aggregates derived from the items and is
not read. The critical-infrastructure variant names its benchmark ``domain``.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import orjson

from evalhouse.adapters.base import (
    RunBuilder,
    Source,
    opt_str,
    parse_time,
    question_key,
    require,
    scalar_attributes,
    to_float_or_none,
    unit_score,
)

NAME = "so8t-results"
_TEXT_FIELDS = ("benchmark", "domain", "category", "test_name", "question", "response", "expected_answer")

_USED = frozenset(
    "model score category test_name benchmark domain task_index question expected_answer "
    "response response_time timestamp".split()
)


def detect(source: Source) -> bool:
    if not source.looks_like_json():
        return False
    doc = source.json
    return isinstance(doc, dict) and isinstance(doc.get("results"), list) and "metadata" in doc


def read(source: Source) -> list[RunBuilder]:
    path, doc = source.path, source.json
    meta = doc["metadata"]
    require(isinstance(meta, dict), path, "metadata", "expected an object")
    started = parse_time(meta.get("timestamp"), path, "metadata.timestamp")
    run_meta = {k: v for k, v in meta.items() if k != "timestamp"}
    fast = _read_columns(doc["results"], started, run_meta)
    return fast if fast is not None else _read_items(path, doc["results"], started, run_meta)


def _read_items(path: str, results: list[Any], started: datetime | None, run_meta: dict[str, Any]) -> list[RunBuilder]:
    """Item by item, checking every field: the path for files the column reader declines."""
    runs: dict[str, RunBuilder] = {}
    for i, item in enumerate(results):
        # Field paths for error messages are built only on the slow path: this loop runs once per
        # item and f-strings for every field would cost a third of the ingest.
        if type(item) is not dict:
            require(False, path, f"results[{i}]", "expected an object")
        model = item.get("model")
        if type(model) is not str or not model:
            require(False, path, f"results[{i}].model", "missing or not text")
        if "score" not in item:
            require(False, path, f"results[{i}].score", "missing")
        score = item["score"]
        if type(score) is not float or not 0.0 <= score <= 1.0:
            score = unit_score(score, path, f"results[{i}].score")
        score += 0.0  # -0.0 -> 0.0
        run = runs.get(model)
        if run is None:
            run = runs[model] = RunBuilder(model, model, started_at=started, metadata=run_meta, harness="so8t")
        text = {}
        for key in _TEXT_FIELDS:
            v = item.get(key)
            text[key] = v if v is None or type(v) is str else opt_str(v, path, f"results[{i}].{key}")
        response_time = item.get("response_time")
        if response_time is not None and type(response_time) is not float:
            response_time = to_float_or_none(response_time, path, f"results[{i}].response_time")
        benchmark = text["benchmark"] or text["domain"]
        run.add_answer(
            _item_id(item, benchmark, text, path, i),
            {"score": score},
            benchmark=benchmark,
            category=text["category"],
            response_time_s=response_time,
            timestamp=parse_time(item.get("timestamp"), path, f"results[{i}].timestamp"),
            attributes=scalar_attributes(item, _USED),
            question=text["question"],
            response=text["response"],
            expected=text["expected_answer"],
        )
    return list(runs.values())


def _item_id(item: dict[str, Any], benchmark: str | None, text: dict[str, Any], path: str, i: int) -> str:
    """test_name, else benchmark#task_index, else a hash of the question (the pairing order)."""
    if text["test_name"]:
        return str(text["test_name"])
    task_index = item.get("task_index")
    if benchmark and task_index is not None:
        require(type(task_index) is int, path, f"results[{i}].task_index", f"{task_index!r} is not an integer")
        return f"{benchmark}#{task_index}"
    require(bool(text["question"]), path, f"results[{i}]", "no test_name, task_index or question to identify the item")
    return question_key(text["question"])


def _text_column(results: list[dict[str, Any]], key: str) -> list[str | None] | None:
    values = [item.get(key) for item in results]
    return values if all(v is None or type(v) is str for v in values) else None


_SCALARS = (str, int, float, bool)


def _attributes(results: list[dict[str, Any]]) -> list[str | None]:
    """``scalar_attributes`` of every item, working out the leftover keys once per key layout."""
    leftovers: dict[tuple[str, ...], list[str]] = {}
    out: list[str | None] = []
    for item in results:
        layout = tuple(item)
        keys = leftovers.get(layout)
        if keys is None:
            keys = leftovers[layout] = sorted(k for k in layout if k not in _USED)
        rest = {k: v for k in keys if (v := item[k]) is None or type(v) in _SCALARS}
        # Keys are sorted already, so this is scalar_attributes' OPT_SORT_KEYS output.
        out.append(orjson.dumps(rest).decode() if rest else None)
    return out


def _read_columns(results: list[Any], started: datetime | None, run_meta: dict[str, Any]) -> list[RunBuilder] | None:
    """The same runs as ``_read_items``, built a column at a time (several times faster).

    Returns None as soon as anything is not of the plain expected type (a number given as text,
    a bool score, a time zone, a missing key...): ``_read_items`` then reads the file and either
    accepts it or names the field at fault, so both paths accept and reject the same files.
    """
    if not all(type(item) is dict for item in results):
        return None
    models = [item.get("model") for item in results]
    if not all(type(m) is str and m for m in models):
        return None
    scores = [item.get("score") for item in results]
    if not all((type(v) is float or type(v) is int) and 0 <= v <= 1 for v in scores):  # type: ignore[operator]
        return None
    times = [item.get("response_time") for item in results]
    if not all(v is None or ((type(v) is float or type(v) is int) and math.isfinite(v)) for v in times):
        return None
    keys = ("category", "benchmark", "domain", "test_name", "question", "response", "expected_answer", "timestamp")
    cols = {key: _text_column(results, key) for key in keys}
    if any(c is None for c in cols.values()):
        return None
    try:
        stamps = [datetime.fromisoformat(v) if v else None for v in cols["timestamp"]]  # type: ignore[union-attr]
    except ValueError:
        return None
    if any(t is not None and t.tzinfo is not None for t in stamps):
        return None
    benchmarks = [b or d for b, d in zip(cols["benchmark"], cols["domain"], strict=True)]  # type: ignore[arg-type]
    questions: list[str | None] = cols["question"]  # type: ignore[assignment]
    item_ids: list[str] = []
    for item, name, bench, question in zip(results, cols["test_name"], benchmarks, questions, strict=True):  # type: ignore[arg-type]
        index = item.get("task_index")
        if name:
            item_ids.append(name)
        elif bench and index is not None:
            if type(index) is not int:
                return None
            item_ids.append(f"{bench}#{index}")
        elif question:
            item_ids.append(question_key(question))
        else:
            return None
    columns: dict[str, list[Any]] = {
        "item_ids": item_ids, "scores": [float(v) + 0.0 for v in scores],  # type: ignore[arg-type]
        "benchmark": benchmarks, "category": cols["category"],  # type: ignore[dict-item]
        "response_time_s": [None if v is None else float(v) for v in times], "timestamp": stamps,
        "attributes": _attributes(results),
        "question": questions, "response": cols["response"], "expected": cols["expected_answer"],  # type: ignore[dict-item]
    }  # fmt: skip
    order = list(dict.fromkeys(models))
    runs = []
    for model in order:
        if len(order) == 1:
            part = columns
        else:
            keep = [i for i, m in enumerate(models) if m == model]
            part = {k: [v[i] for i in keep] for k, v in columns.items()}
        run = RunBuilder(model, model, started_at=started, metadata=run_meta, harness="so8t")  # type: ignore[arg-type]
        run.add_answers(part["item_ids"], "score", part["scores"], benchmark=part["benchmark"],
                        category=part["category"], response_time_s=part["response_time_s"],
                        timestamp=part["timestamp"], attributes=part["attributes"], question=part["question"],
                        response=part["response"], expected=part["expected"])  # fmt: skip
        runs.append(run)
    return runs
