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
    to_score,
)

NAME = "so8t-results"

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
        where = f"results[{i}]"
        require(isinstance(item, dict), path, where, "expected an object")
        model = item.get("model")
        require(isinstance(model, str) and model != "", path, f"{where}.model", "missing or not text")
        require("score" in item, path, f"{where}.score", "missing")
        score = to_score(item["score"], path, f"{where}.score")
        run = runs.get(model)
        if run is None:
            run = runs[model] = RunBuilder(model, model, started_at=started, metadata=run_meta, harness="so8t")
        benchmark = opt_str(item.get("benchmark"), path, f"{where}.benchmark") or opt_str(
            item.get("domain"), path, f"{where}.domain"
        )
        question = opt_str(item.get("question"), path, f"{where}.question")
        run.add_answer(
            _item_id(item, benchmark, question, path, where),
            {"score": score},
            benchmark=benchmark,
            category=opt_str(item.get("category"), path, f"{where}.category"),
            response_time_s=to_float_or_none(item.get("response_time"), path, f"{where}.response_time"),
            timestamp=parse_time(item.get("timestamp"), path, f"{where}.timestamp"),
            attributes=scalar_attributes(item, _USED),
            question=question,
            response=opt_str(item.get("response"), path, f"{where}.response"),
            expected=opt_str(item.get("expected_answer"), path, f"{where}.expected_answer"),
        )
    return list(runs.values())


def _item_id(item: dict[str, Any], benchmark: str | None, question: str | None, path: str, where: str) -> str:
    """test_name, else benchmark#task_index, else a hash of the question (the pairing order)."""
    test_name = opt_str(item.get("test_name"), path, f"{where}.test_name")
    if test_name:
        return test_name
    task_index = item.get("task_index")
    if benchmark and task_index is not None:
        require(isinstance(task_index, int) and not isinstance(task_index, bool), path, f"{where}.task_index",
                f"{task_index!r} is not an integer")  # fmt: skip
        return f"{benchmark}#{task_index}"
    require(bool(question), path, where, "no test_name, task_index or question to identify the item")
    return question_key(question or "")
