"""SO8T task arrays: ``[{task, type, question, model_response, correct_answer, is_correct, ...}]``.

The model is only in the file name: ``model-a_q8_0_results.json`` is model ``model-a`` quantized
``q8_0``. ``is_correct`` becomes the 0/1 metric ``score`` (the name the SO8T analysis used).
"""

from __future__ import annotations

import os

from evalhouse.adapters.base import (
    RunBuilder,
    Source,
    opt_str,
    require,
    scalar_attributes,
    to_float_or_none,
)
from evalhouse.modelname import split_model

NAME = "so8t-tasks"

_USED = frozenset("task question model_response correct_answer is_correct tokens_per_sec wall_time".split())


def detect(source: Source) -> bool:
    if not source.looks_like_json():
        return False
    doc = source.json
    return (
        isinstance(doc, list)
        and len(doc) > 0
        and isinstance(doc[0], dict)
        and "task" in doc[0]
        and "is_correct" in doc[0]
    )


def model_from_filename(path: str) -> tuple[str, str | None]:
    """(model, quantization) from a task-array file name.

    >>> model_from_filename("/r/model-a_q8_0_results.json")
    ('model-a', 'q8_0')
    """
    stem = os.path.basename(path)
    for suffix in (".json", "_results"):
        stem = stem.removesuffix(suffix)
    return split_model(stem)


def read(source: Source) -> list[RunBuilder]:
    path, doc = source.path, source.json
    model, quant = model_from_filename(path)
    run = RunBuilder("tasks", model, harness="so8t", model_base=model, quantization=quant)
    positions: dict[str, int] = {}
    for i, item in enumerate(doc):
        where = f"[{i}]"
        require(isinstance(item, dict), path, where, "expected an object")
        task = opt_str(item.get("task"), path, f"{where}.task")
        require(bool(task), path, f"{where}.task", "missing")
        assert task is not None
        correct = item.get("is_correct")
        require(isinstance(correct, bool), path, f"{where}.is_correct", f"{correct!r} is not true or false")
        position = positions.get(task, 0)
        positions[task] = position + 1
        expected = item.get("correct_answer")
        run.add_answer(
            f"{task}#{position}",
            {"score": 1.0 if correct else 0.0},
            benchmark=task,
            task=task,
            response_time_s=to_float_or_none(item.get("wall_time"), path, f"{where}.wall_time"),
            tokens_per_sec=to_float_or_none(item.get("tokens_per_sec"), path, f"{where}.tokens_per_sec"),
            attributes=scalar_attributes(item, _USED),
            question=opt_str(item.get("question"), path, f"{where}.question"),
            response=opt_str(item.get("model_response"), path, f"{where}.model_response"),
            expected=None if expected is None else str(expected),
        )
    return [run]
