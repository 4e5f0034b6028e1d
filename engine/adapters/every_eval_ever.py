"""Every Eval Ever (evaleval/every_eval_ever, schema 0.3.0; 0.2.x files read the same way).

Two files make one evaluation: the aggregate ``<uuid>.json`` (``evaluation_results[]``) and, where
per-item data exists, ``<uuid>_samples.jsonl`` beside it (one instance record a line). Each is one
run, as lm-eval's results and samples files are.

Aggregate: the model is ``model_info.id`` (the schema's join key, which every samples line repeats
as ``model_id``); ``model_info.name``, the source and the library version go to run metadata;
``eval_library.name`` is the harness and ``evaluation_timestamp`` started_at. Each result is a
``metrics`` row: benchmark = ``source_data.dataset_name``, task and category = ``evaluation_name``,
metric = ``metric_config.metric_id``, else ``metric_name``, else ``evaluation_description`` (where
the upstream lm-eval, HELM and inspect converters put the metric's name), else ``score``; value =
``score_details.score``, stderr = ``uncertainty.standard_error.value``, n =
``uncertainty.num_samples``, higher_is_better = not ``lower_is_better``. ``unknown`` (EEE's word
for "not known") as a library or dataset name is NULL. A score outside ``min_score``/``max_score``
rejects the file; a ``levels`` score of -1 with ``has_unknown_level`` is missing. The free string
map ``score_details.details`` may name the row's ``category``, ``task`` (``""`` = NULL) and
``filter``, as evalhouse's export writes them.

Samples: one line per item and result. item_id = ``sample_id``, item_hash = ``sample_hash``, score
= ``evaluation.score``; question = ``input.raw``, expected = ``input.reference`` (one: as is;
several: JSON text), response = ``output.raw`` likewise, response_time_s = ``performance.latency_ms``
/ 1000. A line's result is its ``evaluation_result_id`` in the aggregate beside it, else the one
result of its ``evaluation_name``: it gives the benchmark, metric and direction, and its bounds
hold for the line's score too. Without one the benchmark is NULL and the metric ``score``. The
line's ``metadata`` gives ``category`` (else ``subject``, else the evaluation name), ``task``,
``filter``, ``split`` and ``epoch``; its other entries are kept as attributes. The lines of one
answer (the same item, epoch, task, ...) are read as one answer with a score per metric, its text
and timing taken from the first; a line for a metric the answer already has is another answer to
the same item (a repeat, averaged per item like any other).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from typing import Any

import orjson

from evalhouse.adapters.base import RunBuilder, Source, dumps, obj, parse_time, require
from evalhouse.errors import BadResultFile

NAME = "every-eval-ever"
SAMPLES_SUFFIX = "_samples.jsonl"
# The instance record's required keys that tell it apart from any other JSON Lines format.
_SAMPLE_KEYS = ("sample_id", "evaluation_id", "model_id", "evaluation")
_AGGREGATE_KEYS = ("evaluation_results", "model_info")
# Keys of a samples line's metadata that are columns, not attributes ("subject" is kept as both).
_METADATA_COLUMNS = frozenset(("category", "task", "filter", "split", "epoch"))
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def detect(source: Source) -> bool:
    if source.first_line[:1] != b"{":
        return False
    if _is_samples(source):
        return True
    # Look for the keys in the bytes before parsing, and never raise here: a file that is not
    # strict JSON (lighteval's bare NaN) belongs to the adapters after this one.
    if (
        source.one_line_lacks(_AGGREGATE_KEYS)
        or b'"evaluation_results"' not in source.data
        or b'"model_info"' not in source.data
    ):
        return False
    try:
        doc = source.json
    except BadResultFile:
        return False
    return isinstance(doc, dict) and isinstance(doc.get("evaluation_results"), list) and "model_info" in doc


def read(source: Source) -> list[RunBuilder]:
    return _read_samples(source) if _is_samples(source) else _read_aggregate(source)


def _is_samples(source: Source) -> bool:
    """Whether the first line is an instance record (parsed only when its bytes name the keys)."""
    first = source.first_line
    if (
        first[:1] != b"{"
        or source.one_line_lacks(_SAMPLE_KEYS)
        or not all(b'"%s"' % k.encode() in first for k in _SAMPLE_KEYS)
    ):
        return False
    try:
        line = orjson.loads(first)
    except orjson.JSONDecodeError:
        return False
    return isinstance(line, dict) and all(k in line for k in _SAMPLE_KEYS) and isinstance(line["evaluation"], dict)


# ---------------------------------------------------------------------------------------------
# The aggregate file
# ---------------------------------------------------------------------------------------------


class Result:
    """One entry of ``evaluation_results``, as the metrics row and the samples linked to it read it."""

    def __init__(self, doc: dict[str, Any], path: str, where: str) -> None:
        name = _required_text(doc.get("evaluation_name"), path, f"{where}.evaluation_name")
        data = _required_object(doc.get("source_data"), path, f"{where}.source_data")
        dataset = _required_text(data.get("dataset_name"), path, f"{where}.source_data.dataset_name")
        config = _required_object(doc.get("metric_config"), path, f"{where}.metric_config")
        lower = config.get("lower_is_better")
        require(isinstance(lower, bool), path, f"{where}.metric_config.lower_is_better", "missing or not true/false")
        self.id: str | None = _text(doc.get("evaluation_result_id"), path, f"{where}.evaluation_result_id")
        self.name: str = name
        self.benchmark = None if dataset == "unknown" else dataset  # EEE's word for "not known"
        self.metric = next(
            (v for k in ("metric_id", "metric_name", "evaluation_description")
             if (v := _text(config.get(k), path, f"{where}.metric_config.{k}"))),
            "score",
        )  # fmt: skip
        self.higher = not lower
        self.low = _bound(config.get("min_score"), path, f"{where}.metric_config.min_score")
        self.high = _bound(config.get("max_score"), path, f"{where}.metric_config.max_score")
        require(self.low is None or self.high is None or self.low <= self.high, path, f"{where}.metric_config",
                f"min_score {_show(self.low)} is greater than max_score {_show(self.high)}")  # fmt: skip
        self.unknown_level = config.get("score_type") == "levels" and config.get("has_unknown_level") is True
        details = obj(obj(doc.get("score_details")).get("details"))
        self.category = _text(details.get("category"), path, f"{where}.score_details.details.category") or name
        task = _text(details.get("task"), path, f"{where}.score_details.details.task")
        self.task = (task or None) if "task" in details else name
        self.filter = _text(details.get("filter"), path, f"{where}.score_details.details.filter")

    def score(self, value: Any, path: str, field: str) -> float | None:
        """The score checked against the metric's bounds; None for the unknown level."""
        require(isinstance(value, (int, float)) and not isinstance(value, bool), path, field,
                f"{value!r} is not a number")  # fmt: skip
        score = float(value)
        require(math.isfinite(score), path, field, f"{value!r} is not a finite number")
        if self.unknown_level and score == -1:
            return None
        require(
            (self.low is None or score >= self.low) and (self.high is None or score <= self.high), path, field,
            f"{value!r} is outside [min_score {_show(self.low)}, max_score {_show(self.high)}] of "
            f"{self.name!r} ({self.metric})",
        )  # fmt: skip
        return score


def _read_aggregate(source: Source) -> list[RunBuilder]:
    path = source.path
    doc = source.json
    run, results = _aggregate_run(doc, path, "aggregate")
    seen: dict[tuple[Any, ...], int] = {}
    for i, (result, entry) in enumerate(results):
        where = f"evaluation_results[{i}]"
        details = obj(entry.get("score_details"))
        require("score" in details, path, f"{where}.score_details.score", "missing (required)")
        value = result.score(details["score"], path, f"{where}.score_details.score")
        if value is None:
            continue
        key = (result.benchmark, result.category, result.task, result.filter, result.metric)
        require(key not in seen, path, where, f"the same dataset, evaluation_name and metric as "
                f"evaluation_results[{seen.get(key)}]: the two cannot be told apart")  # fmt: skip
        seen[key] = i
        uncertainty = obj(details.get("uncertainty"))
        stderr = _number(obj(uncertainty.get("standard_error")).get("value"), path,
                         f"{where}.score_details.uncertainty.standard_error.value")  # fmt: skip
        n = uncertainty.get("num_samples")
        require(n is None or (isinstance(n, int) and not isinstance(n, bool) and n >= 0), path,
                f"{where}.score_details.uncertainty.num_samples", f"{n!r} is not a count")  # fmt: skip
        run.add_metric(result.metric, value, benchmark=result.benchmark, category=result.category, task=result.task,
                       filter=result.filter, stderr=stderr, n=n, higher=result.higher)  # fmt: skip
    return [run] if run.n_metrics else []


def _aggregate_run(doc: Any, path: str, key: str) -> tuple[RunBuilder, list[tuple[Result, dict[str, Any]]]]:
    """The run an aggregate describes (no rows yet) and its results, checked."""
    doc = _required_object(doc, path, "(file)")
    info = _required_object(doc.get("model_info"), path, "model_info")
    model = _required_text(info.get("id"), path, "model_info.id")
    entries = doc.get("evaluation_results")
    require(isinstance(entries, list), path, "evaluation_results", "missing or not a list")
    results = []
    for i, entry in enumerate(entries):
        require(isinstance(entry, dict), path, f"evaluation_results[{i}]", "expected an object")
        results.append((Result(entry, path, f"evaluation_results[{i}]"), entry))
    library = obj(doc.get("eval_library"))
    harness = _text(library.get("name"), path, "eval_library.name")
    metadata = {
        "evaluation_id": doc.get("evaluation_id"),
        "schema_version": doc.get("schema_version"),
        "retrieved_timestamp": doc.get("retrieved_timestamp"),
        "eval_library_version": library.get("version"),
        "model_name": info.get("name"),
        "model_developer": info.get("developer"),
        "inference_platform": info.get("inference_platform"),
        "inference_engine": info.get("inference_engine"),
        "model_details": info.get("additional_details"),
        "source_metadata": doc.get("source_metadata"),
    }
    run = RunBuilder(
        key,
        model,
        started_at=_time(doc.get("evaluation_timestamp"), path, "evaluation_timestamp"),
        harness=None if harness == "unknown" else harness,
        metadata={k: v for k, v in metadata.items() if v is not None},
    )
    return run, results


# ---------------------------------------------------------------------------------------------
# The samples file
# ---------------------------------------------------------------------------------------------


def _read_samples(source: Source) -> list[RunBuilder]:
    path = source.path
    aggregate, aggregate_path = _sibling_aggregate(source)
    by_id: dict[str, Result] = {}
    by_name: dict[str, list[Result]] = {}
    run: RunBuilder | None = None
    evaluation_id = None
    if aggregate is not None:
        run, results = _aggregate_run(aggregate, aggregate_path, "samples")
        run.metadata = {**run.metadata, "aggregate_file": os.path.basename(aggregate_path)}
        evaluation_id = aggregate.get("evaluation_id")
        for r, _ in results:
            if r.id is not None:
                by_id[r.id] = r
            by_name.setdefault(r.name, []).append(r)
    # answer key -> (line, {metric: score}, {metric: higher}) in order of first appearance
    answers: dict[tuple[Any, ...], tuple[dict[str, Any], dict[str, float], dict[str, bool]]] = {}
    repeats: dict[tuple[Any, ...], int] = {}
    for where, line in _lines(source):
        line_model = _required_text(line.get("model_id"), path, f"{where}.model_id")
        if run is None:
            run = RunBuilder("samples", line_model, metadata={"evaluation_id": line.get("evaluation_id")})
        require(line_model == run.model, path, f"{where}.model_id",
                f"{line_model!r} is not the model of the evaluation, {run.model!r}")  # fmt: skip
        if evaluation_id is not None:
            require(line.get("evaluation_id") == evaluation_id, path, f"{where}.evaluation_id",
                    f"{line.get('evaluation_id')!r} is not the evaluation_id of {os.path.basename(aggregate_path)}, "
                    f"{evaluation_id!r}")  # fmt: skip
        name = _required_text(line.get("evaluation_name"), path, f"{where}.evaluation_name")
        result_id = _text(line.get("evaluation_result_id"), path, f"{where}.evaluation_result_id")
        if result_id is not None and aggregate is not None:
            require(result_id in by_id, path, f"{where}.evaluation_result_id",
                    f"{result_id!r} is not an evaluation_result_id of {os.path.basename(aggregate_path)}")  # fmt: skip
        candidates = [by_id[result_id]] if result_id is not None and result_id in by_id else by_name.get(name, [])
        result: Result | None = candidates[0] if len(candidates) == 1 else None
        benchmarks = {c.benchmark for c in candidates}
        evaluation = _required_object(line.get("evaluation"), path, f"{where}.evaluation")
        require("score" in evaluation, path, f"{where}.evaluation.score", "missing (required)")
        if result is not None:
            score = result.score(evaluation["score"], path, f"{where}.evaluation.score")
        else:
            score = _number(evaluation["score"], path, f"{where}.evaluation.score")
            require(score is not None, path, f"{where}.evaluation.score", "not a number")
        if score is None:
            continue  # the unknown level
        meta = _metadata(line.get("metadata"), path, f"{where}.metadata")
        epoch = meta.get("epoch", "0")
        require(bool(re.fullmatch(r"-?\d+", epoch)), path, f"{where}.metadata.epoch", f"{epoch!r} is not an integer")
        item_id = _required_text(line.get("sample_id"), path, f"{where}.sample_id")
        rec = {
            "item_id": item_id,
            "benchmark": benchmarks.pop() if len(benchmarks) == 1 else None,
            "category": meta.get("category") or meta.get("subject") or name,
            "task": (meta["task"] or None) if "task" in meta else name,
            "epoch": int(epoch),
            "filter": meta.get("filter") or None,
            "split": meta.get("split") or None,
            "where": where,
            "line": line,
            "meta": meta,
        }
        key = tuple(rec[k] for k in ("benchmark", "category", "task", "item_id", "epoch", "filter", "split"))
        metric = result.metric if result is not None else "score"
        # A metric the answer already has starts another answer to the same item (several
        # generations of one item, as pass@k scores them): a repeat, as evalhouse stores repeats.
        repeat = repeats.get(key, 0)
        if metric in answers.get((*key, repeat), ({}, {}, {}))[1]:
            repeat = repeats[key] = repeat + 1
        entry = answers.setdefault((*key, repeat), (rec, {}, {}))
        entry[1][metric] = score
        if result is not None:
            entry[2][metric] = result.higher
    if run is None or not answers:
        return []
    for rec, scores, higher in answers.values():
        _add_answer(run, rec, scores, higher, path)
    return [run]


def _add_answer(run: RunBuilder, rec: dict[str, Any], scores: dict[str, float], higher: dict[str, bool],
                path: str) -> None:  # fmt: skip
    line, where = rec["line"], rec["where"]
    item_hash = line.get("sample_hash")
    require(item_hash is None or isinstance(item_hash, str), path, f"{where}.sample_hash", "not text or null")
    inp = obj(line.get("input"))
    question = _text(inp.get("raw"), path, f"{where}.input.raw")
    latency = _number(obj(line.get("performance")).get("latency_ms"), path, f"{where}.performance.latency_ms")
    attrs = {k: v for k, v in rec["meta"].items() if k not in _METADATA_COLUMNS}
    run.add_answer(
        rec["item_id"],
        scores,
        benchmark=rec["benchmark"],
        category=rec["category"],
        task=rec["task"],
        epoch=rec["epoch"],
        filter=rec["filter"],
        split=rec["split"],
        higher=higher or None,
        response_time_s=latency / 1000 if latency is not None else None,
        attributes=dumps(attrs) if attrs else None,
        question=question or None,
        response=_strings(obj(line.get("output")).get("raw"), path, f"{where}.output.raw"),
        expected=_strings(inp.get("reference"), path, f"{where}.input.reference"),
        item_hash=item_hash,
    )


def _sibling_aggregate(source: Source) -> tuple[dict[str, Any] | None, str]:
    """The aggregate ``<uuid>.json`` beside ``<uuid>_samples.jsonl``, parsed; (None, path) if absent."""
    if not source.name.endswith(SAMPLES_SUFFIX):
        return None, ""
    path = source.path[: -len(SAMPLES_SUFFIX)] + ".json"
    data = source.sibling(path)
    if data is None:
        return None, path
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadResultFile(path, "(file)", f"not valid JSON (the aggregate of {source.name}): {exc}") from None
    require(isinstance(doc, dict), path, "(file)", "expected a JSON object")
    return doc, path


def _lines(source: Source) -> Iterator[tuple[str, dict[str, Any]]]:
    for i, line in source.jsonl():
        require(isinstance(line, dict), source.path, f"line {i}", "expected a JSON object")
        yield f"line {i}", line


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------


def _required_text(value: Any, path: str, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadResultFile(path, field, "missing or not text")
    return value


def _required_object(value: Any, path: str, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadResultFile(path, field, "missing or not an object")
    return value


def _text(value: Any, path: str, field: str) -> str | None:
    require(value is None or isinstance(value, str), path, field, f"expected text, got {type(value).__name__}")
    return value


def _number(value: Any, path: str, field: str) -> float | None:
    if value is None:
        return None
    require(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value), path, field,
            f"{value!r} is not a finite number")  # fmt: skip
    return float(value)


def _bound(value: Any, path: str, field: str) -> float | None:
    """A score bound: a number, ``"Infinity"``/``"-Infinity"`` (unbounded), or None (not given).

    >>> _bound(1, "f", "max_score"), _bound("-Infinity", "f", "min_score"), _bound(None, "f", "min_score")
    (1.0, -inf, None)
    """
    if value in ("Infinity", "-Infinity"):
        return math.inf if value == "Infinity" else -math.inf
    require(value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)
                              and not math.isnan(value)), path, field, f"{value!r} is not a number")  # fmt: skip
    return None if value is None else float(value)


def _show(bound: float | None) -> str:
    return "none" if bound is None else f"{bound:g}"


def _time(value: Any, path: str, field: str) -> Any:
    """A timestamp as EEE writes them: Unix seconds as text (``"1750000000"``) or ISO 8601.

    >>> _time("1750000000", "f", "t"), _time("2024-06-01T10:00:00", "f", "t")
    (datetime.datetime(2025, 6, 15, 15, 6, 40), datetime.datetime(2024, 6, 1, 10, 0))
    """
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        value = float(value)
    return parse_time(value, path, field)


def _metadata(value: Any, path: str, field: str) -> dict[str, str]:
    if value is None:
        return {}
    require(isinstance(value, dict), path, field, "expected an object")
    for k, v in value.items():
        require(isinstance(v, str), path, f"{field}.{k}", f"expected text, got {type(v).__name__}")
    return value  # type: ignore[no-any-return]


def _strings(value: Any, path: str, field: str) -> str | None:
    """A list of strings as one text: none -> None, one -> itself, several -> JSON text.

    >>> _strings(["4"], "f", "x"), _strings([], "f", "x"), _strings(["a", "b"], "f", "x")
    ('4', None, '["a","b"]')
    """
    if value is None:
        return None
    require(isinstance(value, list) and all(isinstance(v, str) for v in value), path, field, "expected a list of text")
    if not value:
        return None
    return value[0] if len(value) == 1 else dumps(value)
