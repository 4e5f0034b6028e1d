"""lighteval: ``results_<time>.json`` (aggregates) and ``details_<task>_<time>.parquet`` (per item).

Written by ``EvaluationTracker.save`` (``src/lighteval/logging/evaluation_tracker.py``) as
``<output_dir>/results/<model_name>/results_<time>.json`` and
``<output_dir>/details/<model_name>/<time>/details_<task>_<time>.parquet``.

Task keys are ``suite|task|fewshot`` up to 0.12 (``lighteval|mmlu:anatomy|5``) and ``task|fewshot``
from 0.13 (``mmlu:anatomy|5``). The benchmark is the task before ``:`` (``mmlu``), the category the
part after it (else the benchmark), the task the whole key (the suite told apart prompt variants).

Results: ``config_general`` (``model_name``, ...) and ``results`` {task key: {metric,
metric_stderr}} -> ``metrics`` rows. ``"all"`` and ``..._average`` entries are averages of other
tasks: they go to the run's metadata, not rows. Bare ``NaN`` (Python's json writes it) is missing.

Details, in three layouts of ``DetailsLogger.Detail``:

- 0.11+: struct columns ``doc`` (``query``, ``choices``, ``gold_index``, ``id`` = the doc's index in
  its split), ``model_response`` (``text``, ...) and ``metric`` ({name: value});
- 0.8-0.10: flat columns ``example``, ``predictions``, ``gold``, ``choices``, ``gold_index``,
  ``metrics`` ({name: value}), ...; no doc id;
- 0.4-0.7: the same columns, each written as ``str(value)`` (Python literals, read back with
  ``ast.literal_eval``).

Rows are in the order the model answered, not the dataset's, so an item is ``doc.id`` where the file
has one, else a key made from the item's content (query, choices, golds). ``item_hash`` is a SHA-256
of that content. The model comes from the folder layout; the run settings from the results file of
the same run when it lies where lighteval writes it.
"""

from __future__ import annotations

import ast
import hashlib
import io
import math
import os
import re
from collections.abc import Iterator
from typing import Any

from evalhouse.adapters.base import RunBuilder, Source, dumps, obj, parse_time, question_key, require, to_value
from evalhouse.errors import BadResultFile

NAME = "lighteval"
HARNESS = "lighteval"
_PARQUET = b"PAR1"
_TIME = r"\d{4}-\d{2}-\d{2}T[0-9\-.:]+"
_DETAILS_NAME = re.compile(rf"^details_(.+)_({_TIME})\.parquet$")
_NEW_COLUMNS = ("doc", "model_response", "metric")  # 0.11+
_OLD_COLUMNS = ("example", "metrics")  # 0.1-0.10
_OLD_TEXT = ("predictions", "gold", "choices", "gold_index")
# Generation parameters and model settings that change what is measured (not who is measured).
_MODEL_IDENTITY = frozenset(
    ("model_name", "model", "pretrained", "revision", "cache_dir", "model_definition_file_path")
)
_TASK_SETTINGS = ("hf_repo", "hf_subset", "hf_revision", "evaluation_splits", "few_shots_split", "few_shots_select",
                  "generation_size", "stop_sequence", "num_samples")  # fmt: skip
_NAN = re.compile(r"\b(nan|inf)\b")


def detect(source: Source) -> bool:
    if source.data[:4] == _PARQUET:
        return _layout(source) is not None
    if not source.name.endswith(".json") or not source.looks_like_json():
        return False
    doc = source.json_lenient
    return (
        isinstance(doc, dict) and isinstance(doc.get("config_general"), dict) and isinstance(doc.get("results"), dict)
    )


def _layout(source: Source) -> str | None:
    """``"doc"`` (0.11+ structs), ``"flat"`` (0.1-0.10 columns) or None for other Parquet files."""
    import pyarrow.parquet as pq

    try:
        names = set(pq.read_schema(io.BytesIO(source.data)).names)
    except Exception:
        return None
    if names.issuperset(_NEW_COLUMNS):
        return "doc"
    return "flat" if names.issuperset(_OLD_COLUMNS) else None


def split_task(key: str) -> tuple[str, str]:
    """(benchmark, category) of a ``suite|task|fewshot`` (to 0.12) or ``task|fewshot`` (0.13+) key.

    >>> split_task("lighteval|mmlu:college_chemistry|5"), split_task("mmlu:anatomy|0"), split_task("gsm8k")
    (('mmlu', 'college_chemistry'), ('mmlu', 'anatomy'), ('gsm8k', 'gsm8k'))
    """
    parts = key.split("|")
    name = parts[1] if len(parts) >= 3 else parts[0]
    benchmark, _, sub = name.partition(":")
    return benchmark, sub or benchmark


def num_fewshot(key: str) -> int | None:
    """The few-shot count of a task key (its last numeric part), None when it has none.

    >>> num_fewshot("lighteval|mmlu:anatomy|5"), num_fewshot("gsm8k|0"), num_fewshot("all")
    (5, 0, None)
    """
    parts = key.split("|")
    return int(parts[-1]) if len(parts) >= 2 and parts[-1].isdigit() else None


def _is_average(key: str) -> bool:
    return key == "all" or "_average" in key


def _compact(value: Any) -> Any:
    """The value without None entries at any depth (unset options), or None when nothing is left."""
    if isinstance(value, dict):
        kept = {k: c for k, c in ((k, _compact(v)) for k, v in value.items()) if c is not None}
        return kept or None
    return value


def run_settings(doc: dict[str, Any], tasks: list[str] | None = None) -> dict[str, Any]:
    """The settings of a results file that decide whether two runs compare (only what the file holds).

    ``lighteval_sha`` (lighteval's git commit, ``?`` for an installed package), ``num_fewshot_seeds``,
    ``max_samples``, the generation parameters and the model config without the model's own name
    (``model_config`` from 0.11, ``generation_parameters`` in 0.8-0.10, ``override_batch_size`` before),
    and per task: few-shot count (from its key), version and dataset (``config_tasks``).
    ``tasks`` narrows the per-task parts (a details file's run).

    >>> run_settings({"config_general": {"lighteval_sha": "?", "model_name": "m"},
    ...               "results": {"a|5": {}, "b|0": {}, "all": {}}}, ["a|5"])
    {'lighteval_sha': '?', 'num_fewshot': {'a|5': 5}}
    """
    general = obj(doc.get("config_general"))
    keys = [k for k in obj(doc.get("results")) if not _is_average(k) and (tasks is None or k in tasks)]
    model_config = {k: v for k, v in obj(general.get("model_config")).items() if k not in _MODEL_IDENTITY}
    configs = obj(doc.get("config_tasks"))

    def task_config(key: str) -> Any:  # config_tasks is keyed without the few-shot part before 0.13
        config = obj(configs.get(key) or configs.get(key.rpartition("|")[0]))
        return _compact({k: config.get(k) for k in _TASK_SETTINGS})

    out = {
        "lighteval_sha": general.get("lighteval_sha"),
        "num_fewshot_seeds": general.get("num_fewshot_seeds"),
        "max_samples": general.get("max_samples"),
        "override_batch_size": general.get("override_batch_size"),
        "generation_parameters": _compact(general.get("generation_parameters")),
        "model_config": _compact(model_config),
        "num_fewshot": {k: num_fewshot(k) for k in keys if num_fewshot(k) is not None},
        "task_versions": {k: v for k, v in obj(doc.get("versions")).items() if k in keys},
        "task_config": _compact({k: task_config(k) for k in keys}),
    }
    return {k: v for k, v in out.items() if v is not None and v != {}}


def read(source: Source) -> list[RunBuilder]:
    if source.data[:4] == _PARQUET:
        return [_read_details(source)]
    path, doc = source.path, source.json_lenient
    general = doc["config_general"]
    model = general.get("model_name") or obj(general.get("model_config")).get("model_name")
    require(isinstance(model, str) and model != "", path, "config_general.model_name", "missing or not text")
    assert isinstance(model, str)
    start = general.get("start_time")
    # start_time is a monotonic clock reading (time.perf_counter) in most versions: only plausible Unix
    # times are dates.
    started = (
        parse_time(start, path, "config_general.start_time")
        if isinstance(start, (int, float)) and start > 1e9
        else None
    )
    identity = {k: general[k] for k in ("lighteval_sha", "model_sha", "model_dtype", "num_fewshot_seeds",
                                        "max_samples") if general.get(k) is not None}  # fmt: skip
    run = RunBuilder("results", model, started_at=started, harness=HARNESS,
                     metadata={**identity, "settings": run_settings(doc)})  # fmt: skip
    averages: dict[str, Any] = {}
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


def _sibling_results(source: Source, model: str, time: str) -> dict[str, Any] | None:
    """The results file lighteval wrote with a details file: ``<out>/results/<model>/results_<time>.json``."""
    parts = os.path.normpath(source.path).split(os.sep)
    depth = 4 + model.count("/")  # details/<model parts>/<time>/<file>
    if len(parts) <= depth or parts[-depth] != "details":
        return None
    out = os.sep.join(parts[:-depth])
    data = source.sibling(os.path.join(out, "results", *model.split("/"), f"results_{time}.json"))
    if data is None:
        return None
    try:
        doc = Source(source.path, data, "", source.limits).json_lenient
    except BadResultFile:
        return None
    return doc if isinstance(doc, dict) else None


def _literal(value: Any, path: str, field: str) -> Any:
    """A 0.4-0.7 cell (``str(value)`` of a Python value) as the value; other cells unchanged."""
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        pass
    try:  # str() writes float("nan") as a bare nan: missing, like lighteval's json NaN
        return ast.literal_eval(_NAN.sub("None", value))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise BadResultFile(path, field, f"{value[:60]!r} is not a Python literal") from None


def _read_details(source: Source) -> RunBuilder:
    import pyarrow.parquet as pq

    path = source.path
    m = _DETAILS_NAME.match(source.name)
    require(m is not None, path, "(file name)", "lighteval details must be named details_<task>_<time>.parquet")
    assert m is not None
    task, time = m.group(1), m.group(2)
    model = _model_from_path(path)
    require(bool(model), path, "(file name)", "cannot tell the model from the folder layout")
    layout = _layout(source)
    try:
        pf = pq.ParquetFile(io.BytesIO(source.data))
        names = pf.schema_arrow.names
    except Exception as exc:
        raise BadResultFile(path, "(file)", f"not a readable Parquet file: {exc}") from None
    columns = list(_NEW_COLUMNS) if layout == "doc" else [*_OLD_COLUMNS, *(c for c in _OLD_TEXT if c in names)]
    batch_rows = _check_size(source, pf.metadata)
    benchmark, category = split_task(task)
    date, _, clock = time.partition("T")
    started = parse_time(f"{date}T{clock.replace('-', ':')}", path, "(file name)") if clock else None
    results = _sibling_results(source, model, time)
    settings = run_settings(results, [task]) if results else {"num_fewshot": {task: num_fewshot(task)}}
    run = RunBuilder(f"details:{task}", model, started_at=started, harness=HARNESS,
                     metadata={"task": task, "layout": layout, "settings": _compact(settings) or {}})  # fmt: skip
    seen: dict[str, int] = {}
    for i, row in enumerate(_rows(source, pf, columns, batch_rows)):
        where = f"row {i}"
        item = _doc_item(row, path, where) if layout == "doc" else _flat_item(row, path, where)
        scores = _scores(item.pop("metric"), path, f"{where}.{'metric' if layout == 'doc' else 'metrics'}")
        if not scores:
            continue
        content = {k: item[k] for k in ("query", "choices", "gold_index", "gold")}
        item_id = item["id"] or question_key(dumps(content))
        seen[item_id] = seen.get(item_id, 0) + 1
        if seen[item_id] > 1:  # the same content twice in one task: keep both apart
            item_id = f"{item_id}#{seen[item_id]}"
        run.add_answer(
            item_id,
            scores,
            benchmark=benchmark,
            category=category,
            task=task,
            question=item["query"],
            response=item["response"],
            expected=_gold_text(item),
            item_hash=hashlib.sha256(dumps(content).encode()).hexdigest(),
        )
    return run


# One decoded batch of a details file stays under this many bytes (see _check_size).
_BATCH_BYTES = 64 * 2**20
_MAX_BATCH_ROWS = 4096


def _check_size(source: Source, meta: Any) -> int:
    """Check a details file's declared rows and decoded size against ``source.limits``; returns the
    rows per batch to decode at a time.

    Parquet compresses and dictionary-encodes, so a 240 KB file can hold five million rows, or one
    long text repeated in every row. The declared rows and uncompressed sizes are checked first;
    the batches are then sized so that a repeated dictionary value (at most its column chunk's
    size) cannot make one batch large, and :func:`_rows` counts what each batch really decodes to.
    """
    limits = source.limits
    if meta.num_rows > limits.rows:
        raise limits.over(source.path, "(file)", "rows", f"{meta.num_rows:,} rows")
    groups = [meta.row_group(g) for g in range(meta.num_row_groups)]
    declared = sum(g.total_byte_size for g in groups)
    if declared > limits.unpacked_bytes:
        raise limits.over(source.path, "(file)", "unpacked_bytes", f"{declared:,} bytes decoded")
    per_row = max(
        (sum(c.total_uncompressed_size for c in map(g.column, range(g.num_columns)) if c.has_dictionary_page)
         for g in groups),
        default=0,
    )  # fmt: skip
    return max(1, min(_MAX_BATCH_ROWS, _BATCH_BYTES // max(per_row, 1)))


def _rows(source: Source, pf: Any, columns: list[str], batch_rows: int) -> Iterator[dict[str, Any]]:
    """The rows of ``columns``, a batch at a time, counting the bytes each batch decodes to."""
    try:
        for batch in pf.iter_batches(batch_size=batch_rows, columns=columns):
            source.unpack(batch.nbytes, "(file)")
            yield from batch.to_pylist()
    except BadResultFile:
        raise
    except Exception as exc:
        raise BadResultFile(source.path, "(file)", f"not a readable Parquet file: {exc}") from None


def _doc_item(row: dict[str, Any], path: str, where: str) -> dict[str, Any]:
    """One 0.11+ row: ``doc`` and ``model_response`` structs, ``metric``."""
    doc, response = obj(row.get("doc")), obj(row.get("model_response"))
    doc_id = doc.get("id")
    return {
        "id": str(doc_id) if doc_id not in (None, "") else None,
        "query": doc.get("query") if isinstance(doc.get("query"), str) else None,
        "choices": doc.get("choices") if isinstance(doc.get("choices"), list) else [],
        "gold_index": _as_list(doc.get("gold_index")),
        "gold": [],
        "response": _response_text(response.get("text")),
        "metric": row.get("metric"),
    }


def _flat_item(row: dict[str, Any], path: str, where: str) -> dict[str, Any]:
    """One 0.1-0.10 row (0.4-0.7: every cell a ``str()``): ``example``, ``predictions``, ``gold``, ..."""
    cell = {k: _literal(row.get(k), path, f"{where}.{k}") if k != "example" else row.get(k) for k in row}
    predictions = cell.get("predictions")
    # generative tasks predict text; loglikelihood tasks a (logprob, is_greedy) pair per choice
    texts = predictions if isinstance(predictions, list) and all(isinstance(p, str) for p in predictions) else None
    return {
        "id": None,
        "query": cell.get("example") if isinstance(cell.get("example"), str) else None,
        "choices": cell.get("choices") if isinstance(cell.get("choices"), list) else [],
        "gold_index": _as_list(cell.get("gold_index")),
        "gold": cell.get("gold") if isinstance(cell.get("gold"), list) else [],
        "response": _response_text(texts) if texts else None,
        "metric": cell.get("metrics"),
    }


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    return list(value) if isinstance(value, (list, tuple)) else []


def _scores(metric: Any, path: str, where: str) -> dict[str, float]:
    require(isinstance(metric, dict), path, where, "expected a struct of metric values")
    scores = {}
    for name, raw in metric.items():
        value = None if isinstance(raw, float) and math.isnan(raw) else to_value(raw, path, f"{where}.{name}")
        if value is not None:
            scores[str(name)] = value
    return scores


def _response_text(text: Any) -> str | None:
    if isinstance(text, list) and text:
        return text[0] if len(text) == 1 and isinstance(text[0], str) else dumps(text)
    return text if isinstance(text, str) else None


def _gold_text(item: dict[str, Any]) -> str | None:
    golds = item["gold"] or [
        item["choices"][g] for g in item["gold_index"] if isinstance(g, int) and 0 <= g < len(item["choices"])
    ]
    if golds and all(isinstance(g, str) for g in golds):
        return golds[0] if len(golds) == 1 else dumps(golds)
    return None
