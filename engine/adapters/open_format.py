"""The open format ``evalhouse-samples``: JSONL or CSV with the canonical sample columns.

The columns are declared in ``engine/schema.py`` (``OPEN_FORMAT``); ``evalhouse schema`` prints
their documentation. A file is this format when its first record (JSONL line or CSV header) has
``model``, ``item_id`` and ``score``; it is then held to the declaration: an unknown column, a
missing required value or a value of the wrong type rejects the whole file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import orjson

from evalhouse.adapters.base import RunBuilder, Source, dumps, parse_time, require, to_score
from evalhouse.errors import BadResultFile
from evalhouse.limits import nesting
from evalhouse.schema import OPEN_FORMAT, OPEN_FORMAT_NAME

NAME = OPEN_FORMAT_NAME

_FIELDS = {f.name: f for f in OPEN_FORMAT}
_REQUIRED = frozenset(f.name for f in OPEN_FORMAT if f.required)
_RUN_FIELDS = ("harness", "status", "started_at")
_ANSWER_KEY = ("item_id", "epoch", "task", "filter", "split", "benchmark", "category")


def detect(source: Source) -> bool:
    first = source.first_line
    if source.name.lower().endswith(".csv"):
        header = {c.strip() for c in first.decode("utf-8", "replace").strip().split(",")}
        return header >= _REQUIRED
    # Parse the first line only if it can hold the required keys: a one-line JSON file of another
    # format would otherwise be parsed whole here.
    if (
        first[:1] != b"{"
        or source.one_line_lacks(_REQUIRED)
        or any(b'"%s"' % key.encode() not in first for key in _REQUIRED)
    ):
        return False
    try:
        obj = orjson.loads(first)
    except orjson.JSONDecodeError:
        return False
    return isinstance(obj, dict) and obj.keys() >= _REQUIRED


def _records(source: Source) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """(where, record, from_csv) for every line of the file."""
    path = source.path
    if source.name.lower().endswith(".csv"):
        try:
            text = source.data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise BadResultFile(path, "(file)", f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
        source.check_lines(text)
        reader = csv.DictReader(io.StringIO(text))
        header = [c.strip() for c in reader.fieldnames or []]
        twice = sorted({c for c in header if header.count(c) > 1})
        require(not twice, path, "header", f"column {twice[0] if twice else ''!r} appears more than once")
        for row in reader:
            require(None not in row, path, f"line {reader.line_num}", "more cells than the header has columns")
            yield f"line {reader.line_num}", {k.strip(): v for k, v in row.items() if v not in (None, "")}, True
        return
    for i, obj in source.jsonl(nan_as_missing=True):
        require(isinstance(obj, dict), path, f"line {i}", "expected a JSON object")
        yield f"line {i}", {k: v for k, v in obj.items() if v is not None}, False


def _convert(kind: str, value: Any, from_csv: bool, source: Source, field: str) -> Any:
    path = source.path
    if kind == "text":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        require(isinstance(value, str), path, field, f"expected text, got {type(value).__name__}")
        return value
    if kind == "integer":
        if from_csv:
            try:
                value = int(value)
            except ValueError:
                raise BadResultFile(path, field, f"{value!r} is not an integer") from None
        require(isinstance(value, int) and not isinstance(value, bool), path, field, f"{value!r} is not an integer")
        return value
    if kind == "number":
        if from_csv:
            low = value.strip().lower()
            if low in ("true", "false"):
                return 1.0 if low == "true" else 0.0
            try:
                value = float(value)
            except ValueError:
                raise BadResultFile(path, field, f"{value!r} is not a number") from None
        return to_score(value, path, field)
    if kind == "boolean":
        if from_csv:
            low = value.strip().lower()
            require(low in ("true", "false", "1", "0"), path, field, f"{value!r} is not true or false")
            return low in ("true", "1")
        require(isinstance(value, bool), path, field, f"{value!r} is not true or false")
        return value
    if kind == "time":
        return parse_time(value, path, field)
    # object: a JSON object (in CSV, its JSON text)
    if from_csv:
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise BadResultFile(path, field, "is not JSON text") from None
    require(isinstance(value, dict), path, field, "expected a JSON object")
    depth = nesting(value, source.limits.depth)
    if depth > source.limits.depth:
        raise source.limits.over(path, field, "depth", f"{depth}+ levels of nesting")
    return dumps(value)


def read(source: Source) -> list[RunBuilder]:
    path = source.path
    runs: dict[str, RunBuilder] = {}
    # answer key -> (record, {metric: score}, {metric: higher}) in order of first appearance
    answers: dict[tuple[Any, ...], tuple[dict[str, Any], dict[str, float], dict[str, bool]]] = {}
    for where, raw, from_csv in _records(source):
        unknown = sorted(set(raw) - _FIELDS.keys())
        require(not unknown, path, f"{where}.{unknown[0] if unknown else ''}",
                f"unknown column (see `evalhouse schema`); known: {', '.join(_FIELDS)}")  # fmt: skip
        for name in sorted(_REQUIRED - raw.keys()):
            raise BadResultFile(path, f"{where}.{name}", "missing (required)")
        rec = {k: _convert(_FIELDS[k].kind, v, from_csv, source, f"{where}.{k}") for k, v in raw.items()}
        key = rec.get("run", rec["model"])
        run = runs.get(key)
        if run is None:
            run = runs[key] = RunBuilder(
                key, rec["model"], harness=rec.get("harness"), status=rec.get("status"),
                started_at=rec.get("started_at"),
            )  # fmt: skip
        for name, have in (("model", run.model), ("harness", run.harness), ("status", run.status),
                           ("started_at", run.started_at)):  # fmt: skip
            require(
                rec.get(name, have) == have, path, f"{where}.{name}", f"differs from the run's earlier value {have!r}"
            )
        answer_key = (key, *(rec.get(k, 0 if k == "epoch" else None) for k in _ANSWER_KEY))
        entry = answers.setdefault(answer_key, (rec, {}, {}))
        metric = rec.get("metric", "score")
        require(metric not in entry[1], path, f"{where}.metric", f"{metric!r} given twice for the same answer")
        entry[1][metric] = rec["score"]
        if "higher_is_better" in rec:
            entry[2][metric] = rec["higher_is_better"]
    for (key, *_), (rec, scores, higher) in answers.items():
        runs[key].add_answer(
            rec["item_id"],
            scores,
            benchmark=rec.get("benchmark"),
            category=rec.get("category"),
            task=rec.get("task"),
            epoch=rec.get("epoch", 0),
            filter=rec.get("filter"),
            split=rec.get("split"),
            higher=higher or None,
            response_time_s=rec.get("response_time_s"),
            tokens_per_sec=rec.get("tokens_per_sec"),
            timestamp=rec.get("timestamp"),
            attributes=rec.get("attributes"),
            question=rec.get("question"),
            response=rec.get("response"),
            expected=rec.get("expected"),
            item_hash=rec.get("item_hash"),
        )
    return list(runs.values())
