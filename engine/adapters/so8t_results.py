"""SO8T ``{"metadata": {...}, "results": [item, ...], "summary": {...}}`` files.

One run per model named in ``results``. ``summary`` holds aggregates derived from the items and is
not read. The critical-infrastructure variant names its benchmark ``domain``.
"""

from __future__ import annotations

from typing import Any

from engine.adapters.base import (
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
    runs: dict[str, RunBuilder] = {}
    for i, item in enumerate(doc["results"]):
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
