"""SO8T ``{"metadata": {...}, "results": [item, ...], "summary": {...}}`` files.

One run per model named in ``results``. ``summary`` holds aggregates derived from the items and is
not read. The critical-infrastructure variant names its benchmark ``domain``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from itertools import repeat
from operator import attrgetter, itemgetter
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


# Types checked a column at a time: ``set(map(type, column))`` runs in C, a generator per value does not.
_TEXT = frozenset((str, type(None)))
_NUMBER = frozenset((int, float))
_OPT_NUMBER = frozenset((int, float, type(None)))
_TZINFO = attrgetter("tzinfo")
_ZERO, _ONE = 0.0, 1.0


def _present(values: list[Any]) -> list[Any]:
    return [v for v in values if v is not None]


def _is_text(values: list[Any]) -> bool:
    return set(map(type, values)) <= _TEXT


_SCALARS = (str, int, float, bool)
_SCALAR_TYPES = frozenset((*_SCALARS, type(None)))


def _attributes(results: list[dict[str, Any]], layouts: set[tuple[str, ...]]) -> list[str | None]:
    """``scalar_attributes`` of every item, working out the leftover keys once per key layout."""
    if len(layouts) == 1:  # every item has the same keys: no layout to work out per item
        keys = sorted(k for k in next(iter(layouts)) if k not in _USED)
        if not keys:
            return [None] * len(results)
        columns = _columns(results, tuple(keys), layouts)
        rows = zip(*columns, strict=True)
        if all(set(map(type, c)) <= _SCALAR_TYPES for c in columns):  # every value kept: dumped in C
            return list(map(bytes.decode, map(orjson.dumps, map(dict, map(zip, repeat(keys), rows)))))
        return [_scalars_json(keys, values) for values in rows]
    leftovers: dict[tuple[str, ...], list[str]] = {}
    out: list[str | None] = []
    for item in results:
        layout = tuple(item)
        rest = leftovers.get(layout)
        if rest is None:
            rest = leftovers[layout] = sorted(k for k in layout if k not in _USED)
        out.append(_scalars_json(rest, [item[k] for k in rest]) if rest else None)
    return out


def _scalars_json(keys: list[str], values: Iterable[Any]) -> str | None:
    # Keys are sorted already, so this is scalar_attributes' OPT_SORT_KEYS output.
    rest = {k: v for k, v in zip(keys, values, strict=True) if v is None or type(v) in _SCALARS}
    return orjson.dumps(rest).decode() if rest else None


def _columns(results: list[dict[str, Any]], keys: tuple[str, ...], layouts: set[tuple[str, ...]]) -> list[list[Any]]:
    """``[item.get(key) for item in results]`` for each of ``keys``, without a Python step per item.

    When every item has the same keys, all of them are read in one pass over the items (a pass per
    key went over a hundred thousand dicts scattered in memory each time).
    """
    if len(layouts) != 1:
        return [list(map(dict.get, results, repeat(key))) for key in keys]
    layout = next(iter(layouts))
    present = [k for k in keys if k in layout]
    columns: dict[str, list[Any]] = {}
    if len(present) > 1:
        rows = map(itemgetter(*present), results)
        columns = dict(zip(present, map(list, zip(*rows, strict=True)), strict=True))
    elif present:
        columns = {present[0]: list(map(itemgetter(present[0]), results))}
    nones: list[Any] = [None] * len(results)
    return [columns.get(key, nones) for key in keys]


def _item_ids(
    results: list[dict[str, Any]], names: list[str | None], benchmarks: list[str | None], questions: list[str | None]
) -> list[str] | None:
    """The items' ids as :func:`_item_id` gives them, or None where it would raise."""
    if None not in names and "" not in names:  # every item named: the usual case, no step per item
        return names  # type: ignore[return-value]
    item_ids: list[str] = []
    for item, name, bench, question in zip(results, names, benchmarks, questions, strict=True):
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
    return item_ids


def _read_columns(results: list[Any], started: datetime | None, run_meta: dict[str, Any]) -> list[RunBuilder] | None:
    """The same runs as ``_read_items``, built a column at a time (several times faster).

    Returns None as soon as anything is not of the plain expected type (a number given as text,
    a bool score, a time zone, a missing key...): ``_read_items`` then reads the file and either
    accepts it or names the field at fault, so both paths accept and reject the same files.
    """
    if set(map(type, results)) - {dict} or not results:
        return None
    layouts = set(map(tuple, results))
    keys = ("model", "score", "response_time", "category", "benchmark", "domain", "test_name", "question", "response",
            "expected_answer", "timestamp")  # fmt: skip
    models, scores, times, *text = _columns(results, keys, layouts)
    if set(map(type, models)) - {str} or "" in models:
        return None
    # (0.0).__le__ and (1.0).__ge__ compare ints and floats exactly, and are False for NaN.
    if not set(map(type, scores)) <= _NUMBER or not all(map(_ZERO.__le__, scores)) or not all(map(_ONE.__ge__, scores)):
        return None
    gaps = None in times
    if not set(map(type, times)) <= _OPT_NUMBER or not all(map(math.isfinite, _present(times) if gaps else times)):
        return None
    if not all(map(_is_text, text)):
        return None
    cols = dict(zip(keys[3:], text, strict=True))
    texts: list[str | None] = cols["timestamp"]  # type: ignore[assignment]
    try:
        if None in texts or "" in texts:
            stamps = [datetime.fromisoformat(v) if v else None for v in texts]
        else:
            stamps = list(map(datetime.fromisoformat, texts))  # type: ignore[arg-type]
    except ValueError:
        return None
    if set(map(_TZINFO, filter(None, stamps))) - {None}:
        return None
    named: list[str | None] = cols["benchmark"]  # type: ignore[assignment]
    domains: list[str | None] = cols["domain"]  # type: ignore[assignment]
    if any(domains) or "" in domains:  # ("" or "" is "", not None)
        benchmarks = [b or d for b, d in zip(named, domains, strict=True)]
    else:  # b or d, with every d None
        benchmarks = named if "" not in named else [b or None for b in named]
    questions: list[str | None] = cols["question"]  # type: ignore[assignment]
    names: list[str | None] = cols["test_name"]  # type: ignore[assignment]
    item_ids = _item_ids(results, names, benchmarks, questions)
    if item_ids is None:
        return None
    columns: dict[str, list[Any]] = {
        "item_ids": item_ids, "scores": list(map(_ZERO.__add__, scores)),  # float(v) + 0.0: -0.0 is 0.0
        "benchmark": benchmarks, "category": cols["category"],  # type: ignore[dict-item]
        "response_time_s": [None if v is None else float(v) for v in times] if gaps else list(map(float, times)),
        "timestamp": stamps,
        "attributes": _attributes(results, layouts),
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
