"""lm-evaluation-harness per-item samples: ``samples_<task>_<time>.jsonl`` (0.4.3+), one JSON object a line.

Each line has ``doc_id``, ``doc``, ``target``, ``arguments``, ``resps``, ``filtered_resps``,
``filter`` and ``metrics`` (0.4.7+), hashes, and one key per metric (``"acc": 1.0``). A doc appears
once per filter, so the pairing key is (task, doc_id, filter): ``item_id`` is ``str(doc_id)``.
Only scalar metric values are per-item scores; list values (the pieces of corpus-level metrics such
as BLEU or perplexity) are left to the aggregate results file.

The lines do not name the model. It is taken from the results file written beside the samples
(``results_<same time>.json``, else another ``results_*.json`` or ``results.json`` in the folder),
which also gives the task hierarchy (benchmark, category), the metric directions and the filter
names of files that predate the ``filter`` key; without one, the model is the folder name with
lm-eval's sanitising undone (``EleutherAI__pythia-160m`` -> ``EleutherAI/pythia-160m``) and the
benchmark and category are the task name.

Before 0.4.3 samples were ``<model_args>_<task>.jsonl`` holding one JSON array; they are read the
same way, the task being the longest task of the sibling ``results.json`` that ends the file name.

Only the text that reports need is kept: the question (from the doc, else the prompt), the response
(the first filtered response, or all of them as JSON when they are not text) and the target.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import Any

import orjson

from engine.adapters.base import RunBuilder, Source, dumps, require, to_value
from engine.adapters.lm_eval_results import HARNESS, TIME_RE, Hierarchy, file_time, model_of, sibling_results
from engine.errors import BadResultFile

NAME = "lm-eval-samples"

_SAMPLES_NAME = re.compile(rf"^samples_(.+)_{TIME_RE}\.jsonl$")
# Keys of a samples line that are not metrics (used when the line has no ``metrics`` list).
_NOT_METRICS = frozenset(
    [
        "doc_id",
        "doc",
        "target",
        "arguments",
        "resps",
        "filtered_resps",
        "filter",
        "metrics",
        "doc_hash",
        "prompt_hash",
        "target_hash",
        "task_name",
        "task",
    ]
)
# Fields of a doc that hold the question, most specific first.
_QUESTION_KEYS = ("question", "query", "problem", "prompt", "input", "ctx", "sentence", "text", "goal", "premise")


def _looks_like_sample(obj: Any) -> bool:
    return isinstance(obj, dict) and "doc_id" in obj and ("resps" in obj or "filtered_resps" in obj)


def detect(source: Source) -> bool:
    first = source.first_line
    if first[:1] == b"{":
        if b'"doc_id"' not in first:  # cheap test before parsing what may be a whole one-line file
            return False
        try:
            return _looks_like_sample(orjson.loads(first))
        except orjson.JSONDecodeError:
            return False
    if first[:1] == b"[" and b'"doc_id"' in source.data[:4096] and source.looks_like_json():
        doc = source.json
        return isinstance(doc, list) and len(doc) > 0 and _looks_like_sample(doc[0])
    return False


def read(source: Source) -> list[RunBuilder]:
    path, name = source.path, source.name
    m = _SAMPLES_NAME.match(name)
    if source.first_line[:1] == b"{":
        require(m is not None, path, "(file name)", "lm-eval samples must be named samples_<task>_<time>.jsonl")
        assert m is not None
        task, time = m.group(1), m.group(2)
        results = sibling_results(source, time)
        lines: Iterator[tuple[int, Any]] = _jsonl(source)
        label = "line {}"
    else:
        results = sibling_results(source, None)
        task = _old_layout_task(name, results)
        require(bool(task), path, "(file name)", "cannot tell the task from <model_args>_<task>.jsonl")
        lines = enumerate(source.json)
        label = "[{}]"
    if results is not None:
        model = model_of(results, path)
    else:
        model = os.path.basename(os.path.dirname(path)).replace("__", "/")
        require(bool(model), path, "(file name)", "no results file beside it and no folder naming the model")
    hierarchy = Hierarchy(results.get("group_subtasks"), results.get("groups")) if results else Hierarchy(None)
    benchmark, category, parent = hierarchy.place(task)
    higher = _task_block(results, "higher_is_better", task)
    filter_names = [f.get("name") for f in _task_block(results, "configs", task).get("filter_list") or []
                    if isinstance(f, dict)]  # fmt: skip
    run = RunBuilder(
        f"samples:{task}",
        model,
        started_at=file_time(name),
        harness=HARNESS,
        metadata={"task": task, "from_results_file": results is not None},
    )
    seen: dict[str, int] = {}
    group = {"group": parent} if parent else {}
    # The hot loop of the largest inputs: field names for errors are built only when one occurs.
    for i, obj in lines:
        if not isinstance(obj, dict):
            raise BadResultFile(path, label.format(i), "expected an object")
        doc_id = obj.get("doc_id")
        if not isinstance(doc_id, (int, str)) or doc_id is True or doc_id is False:
            raise BadResultFile(path, f"{label.format(i)}.doc_id", f"{doc_id!r} is not an id")
        item_id = str(doc_id)
        filt = obj.get("filter")
        if filt is None:
            # Files before 0.4.7 repeat a doc once per filter without naming it; the results file's
            # filter_list gives the order.
            k = seen.get(item_id, 0)
            seen[item_id] = k + 1
            filt = filter_names[k] if k < len(filter_names) else ("none" if k == 0 else f"filter#{k}")
        if not isinstance(filt, str):
            raise BadResultFile(path, f"{label.format(i)}.filter", "not text")
        scores = _scores(obj, path, label.format(i))
        if not scores:
            continue
        doc_hash = obj.get("doc_hash")
        attrs = {**group, "doc_hash": doc_hash} if isinstance(doc_hash, str) else group
        run.add_answer(
            item_id,
            scores,
            benchmark=benchmark,
            category=category,
            task=task,
            filter=filt,
            higher=higher,
            attributes=dumps(attrs) if attrs else None,
            question=_question(obj),
            response=_text(_first(obj.get("filtered_resps"))),
            expected=_text(obj.get("target")),
        )
    return [run]


def _jsonl(source: Source) -> Iterator[tuple[int, Any]]:
    loads = orjson.loads
    for i, line in enumerate(source.data.split(b"\n"), start=1):
        if not line or line.isspace():
            continue
        try:
            yield i, loads(line)
        except orjson.JSONDecodeError as exc:
            # Python's json writes bare NaN (a metric that failed); read it as missing.
            try:
                yield i, json.loads(line, parse_constant=lambda _: None)
            except ValueError:
                raise BadResultFile(source.path, f"line {i}", f"not valid JSON: {exc}") from None


def _scores(obj: dict[str, Any], path: str, where: str) -> dict[str, float]:
    listed = obj.get("metrics")
    names = (
        [m for m in listed if isinstance(m, str)]
        if isinstance(listed, list)
        else [k for k in obj if k not in _NOT_METRICS]
    )
    scores: dict[str, float] = {}
    for metric in names:
        raw = obj.get(metric)
        if type(raw) is float and raw - raw == 0:  # the common case: a finite float (not NaN, not inf)
            scores[metric] = raw
            continue
        if isinstance(raw, (list, dict)) or (isinstance(raw, str) and not isinstance(listed, list)):
            continue  # corpus-level metric pieces, or an unknown text field
        value = to_value(raw, path, f"{where}.{metric}")
        if value is not None:
            scores[metric] = value
    return scores


def _task_block(results: dict[str, Any] | None, block: str, task: str) -> dict[str, Any]:
    section = results.get(block) if results else None
    value = section.get(task) if isinstance(section, dict) else None
    return value if isinstance(value, dict) else {}


def _old_layout_task(name: str, results: dict[str, Any] | None) -> str:
    """The task of a pre-0.4.3 ``<model_args>_<task>.jsonl`` file name.

    >>> _old_layout_task("pretrained__org__m-1b,dtype__f16_mmlu_anatomy.jsonl", None)
    'mmlu_anatomy'
    """
    stem = name.removesuffix(".jsonl").removesuffix(".json")
    tasks = results.get("configs") or results.get("results") if results else None
    if isinstance(tasks, dict):
        matches = [t for t in tasks if stem.endswith("_" + t)]
        if matches:
            return max(matches, key=len)
    # No results file: model_args were sanitised with "=" and "/" -> "__", so the task starts after
    # the first single "_" that follows the last "__".
    tail = stem.rpartition("__")[2]
    return tail.partition("_")[2]


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return dumps(value)


def _question(obj: dict[str, Any]) -> str | None:
    doc = obj.get("doc")
    if isinstance(doc, dict):
        for key in _QUESTION_KEYS:
            if isinstance(doc.get(key), str):
                return str(doc[key])
    args = obj.get("arguments")
    if isinstance(args, dict) and args:  # 0.4.x: {"gen_args_0": {"arg_0": prompt, "arg_1": ...}}
        first = next(iter(args.values()))
        prompt = first.get("arg_0") if isinstance(first, dict) else None
    elif isinstance(args, list) and args:  # older: [[prompt, continuation], ...]
        prompt = args[0][0] if isinstance(args[0], list) and args[0] else args[0]
    else:
        prompt = None
    return prompt if isinstance(prompt, str) else None
