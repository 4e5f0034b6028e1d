"""SO8T baseline-vs-improved files: ``{"baseline": side, "improved": side, "analysis", "timestamp"}``.

Each side (``{model, results, evaluations, test_cases}``, lists aligned by position) becomes a run.
``evaluations[i].correct`` is the 0/1 metric ``correct`` and ``partial_credit`` a second metric.
``analysis`` is derived from the items and not read.
"""

from __future__ import annotations

from typing import Any

from evalhouse.adapters.base import (
    RunBuilder,
    Source,
    dumps,
    opt_str,
    parse_time,
    question_key,
    require,
    to_float_or_none,
    to_score,
    unit_score,
)

NAME = "so8t-ab"
_SIDES = ("baseline", "improved")


def detect(source: Source) -> bool:
    if not source.looks_like_json():
        return False
    doc = source.json
    return isinstance(doc, dict) and all(isinstance(doc.get(s), dict) for s in _SIDES)


def read(source: Source) -> list[RunBuilder]:
    path, doc = source.path, source.json
    started = parse_time(doc.get("timestamp"), path, "timestamp")
    return [_read_side(path, side, doc[side], started) for side in _SIDES]


def _read_side(path: str, side: str, data: dict[str, Any], started: Any) -> RunBuilder:
    model = data.get("model")
    require(isinstance(model, str) and model != "", path, f"{side}.model", "missing or not text")
    lists = {}
    for key in ("results", "evaluations", "test_cases"):
        value = data.get(key, [])
        require(isinstance(value, list), path, f"{side}.{key}", "expected a list")
        lists[key] = value
    results, evaluations, cases = lists["results"], lists["evaluations"], lists["test_cases"]
    require(len(evaluations) == len(results), path, f"{side}.evaluations",
            f"has {len(evaluations)} entries for {len(results)} results")  # fmt: skip
    run = RunBuilder(side, str(model), started_at=started, metadata={"side": side}, harness="so8t")
    for i, (result, evaluation) in enumerate(zip(results, evaluations, strict=True)):
        where = f"{side}.evaluations[{i}]"
        require(isinstance(result, dict), path, f"{side}.results[{i}]", "expected an object")
        require(isinstance(evaluation, dict), path, where, "expected an object")
        case = cases[i] if i < len(cases) and isinstance(cases[i], dict) else {}
        require("correct" in evaluation, path, f"{where}.correct", "missing")
        scores = {"correct": to_score(evaluation["correct"], path, f"{where}.correct")}
        if evaluation.get("partial_credit") is not None:
            scores["partial_credit"] = unit_score(evaluation["partial_credit"], path, f"{where}.partial_credit")
        question = opt_str(result.get("question") or case.get("question"), path, f"{side}.results[{i}].question")
        require(bool(question), path, f"{side}.results[{i}].question", "missing: nothing identifies the item")
        attrs = {k: v for k, v in {**result, **evaluation}.items()
                 if k not in ("question", "response", "response_time", "correct", "partial_credit")
                 and (v is None or isinstance(v, (str, int, float, bool)))}  # fmt: skip
        if "difficulty" in case:
            attrs.setdefault("difficulty", case["difficulty"])
        run.add_answer(
            question_key(question or ""),
            scores,
            response_time_s=to_float_or_none(result.get("response_time"), path, f"{side}.results[{i}].response_time"),
            attributes=dumps(attrs) if attrs else None,
            question=question,
            response=opt_str(result.get("response"), path, f"{side}.results[{i}].response"),
            expected=opt_str(case.get("expected_answer"), path, f"{side}.test_cases[{i}].expected_answer"),
        )
    return run
