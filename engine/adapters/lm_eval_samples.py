"""lm-evaluation-harness per-item samples: ``samples_<task>_<time>.jsonl`` (0.4.3+), one JSON object a line.

Each line has ``doc_id``, ``doc``, ``target``, ``arguments``, ``resps``, ``filtered_resps``,
``filter`` and ``metrics`` (0.4.7+), ``doc_hash``, ``prompt_hash`` and ``target_hash`` (0.4.3+), and
one key per metric (``"acc": 1.0``) (``lm_eval/evaluator.py``, written by
``EvaluationTracker.save_results_samples``). A doc appears once per filter, so the pairing key is
(task, doc_id, filter): ``item_id`` is ``str(doc_id)``; ``item_hash`` is ``<doc_hash>:<target_hash>``
(the item's content: pairing skips a doc whose data changed), and ``prompt_hash``, which depends on
the chat template and the few-shot examples, is kept in ``attributes`` only. Only scalar metric
values are per-item scores; list values (the pieces of corpus-level metrics such as BLEU or
perplexity) are left to the aggregate results file.

The lines do not name the model. It is taken from the results file the harness wrote with them,
which has the same time in its name: ``results_<time>.json``, or ``<name>_<time>.json`` when
``--output_path`` named a file (0.4.9+). That file also gives the task hierarchy (benchmark,
category), the metric directions, the filter names of files that predate the ``filter`` key, and
the run settings. Without one, the model is the folder's name with lm-eval's sanitising undone
(``EleutherAI__pythia-160m`` -> ``EleutherAI/pythia-160m``) and the benchmark and category are the
task name; a folder whose name is no sanitised model name (``results``, ``outputs``) rejects the file.

Before 0.4.3 samples were ``<model_args>_<task>.jsonl`` holding one JSON array, beside
``results.json``; they are read the same way, the task being the longest task of ``results.json``
that ends the file name. Without ``results.json`` the model is the one the file name's
``model_args`` names (``pretrained__org__m`` is ``pretrained=org/m``).

Only the text that reports need is kept: the question (from the doc, else the prompt), the response
(the first filtered response, or all of them as JSON when they are not text) and the target.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import orjson

from evalhouse.adapters.base import RunBuilder, Source, dumps, require, to_value
from evalhouse.adapters.lm_eval_results import (
    HARNESS,
    MODEL_KEYS,
    TIME_RE,
    Hierarchy,
    file_time,
    model_of,
    run_settings,
    sibling_results,
)
from evalhouse.errors import BadResultFile

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
_DETECT_KEYS = ("doc_id",)
_JSON_TYPES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}
# Fields of a doc that hold the question, most specific first.
_QUESTION_KEYS = ("question", "query", "problem", "prompt", "input", "ctx", "sentence", "text", "goal", "premise")


def looks_like_sample(obj: Any) -> bool:
    """Whether an object is one per-doc sample (``doc_id`` and the model's responses)."""
    return isinstance(obj, dict) and "doc_id" in obj and ("resps" in obj or "filtered_resps" in obj)


def detect(source: Source) -> bool:
    first = source.first_line
    if first[:1] == b"{":
        if source.one_line_lacks(_DETECT_KEYS) or b'"doc_id"' not in first:  # before parsing the line
            return False
        try:
            return looks_like_sample(orjson.loads(first))
        except orjson.JSONDecodeError:
            return False
    if first[:1] == b"[" and b'"doc_id"' in source.data[:4096] and source.looks_like_json():
        doc = source.json
        return isinstance(doc, list) and len(doc) > 0 and looks_like_sample(doc[0])
    return False


def read(source: Source) -> list[RunBuilder]:
    path, name = source.path, source.name
    old_layout = source.first_line[:1] != b"{"
    if not old_layout:
        m = _SAMPLES_NAME.match(name)
        require(m is not None, path, "(file name)", "lm-eval samples must be named samples_<task>_<time>.jsonl")
        assert m is not None
        task, time = m.group(1), m.group(2)
        results = sibling_results(source, time)
        lines: Iterator[tuple[int, Any]] = source.jsonl(nan_as_missing=True)
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
        named = _old_layout_model(name, task) if old_layout else None
        model = named or folder_model(path)
    return [samples_run(path, task, model, results, file_time(name), lines, label)]


def folder_model(path: str) -> str:
    """The model named by a samples file's folder, for a file with no results file beside it.

    lm-eval writes into ``<output_path>/<model_name_sanitized>/``: the model's name with ``/`` (and
    the other characters a path cannot hold) as ``__``. A folder without ``__`` (``results``,
    ``outputs``, ``evals``, ...) is where files were put, not a model's name: the file is rejected.

    >>> folder_model("/x/EleutherAI__pythia-160m/s.jsonl")
    'EleutherAI/pythia-160m'
    """
    folder = os.path.basename(os.path.dirname(path))
    require("__" in folder and bool(folder.strip("_")), path, "(model)",
            f"no results file beside it and the folder name {folder!r} names no model")  # fmt: skip
    return folder.replace("__", "/")


def samples_run(
    path: str,
    task: str,
    model: str,
    results: dict[str, Any] | None,
    started: datetime | None,
    lines: Iterable[tuple[int, Any]],
    label: str,
    *,
    inline: bool = False,
) -> RunBuilder:
    """One task's per-doc samples as a run: one answer per doc and filter, one score per scalar metric.

    ``results`` (the results file written with them, or None) gives the hierarchy, the directions,
    the filter names of files that predate the ``filter`` key, and the settings; ``label`` formats
    a line's position for error messages. ``inline`` marks samples read from the results file itself.
    """
    hierarchy = Hierarchy(results.get("group_subtasks"), results.get("groups")) if results else Hierarchy(None)
    benchmark, category, parent = hierarchy.place(task)
    higher = _task_block(results, "higher_is_better", task)
    filter_names = [f.get("name") for f in _task_block(results, "configs", task).get("filter_list") or []
                    if isinstance(f, dict)]  # fmt: skip
    metadata: dict[str, Any] = {"task": task, "from_results_file": results is not None}
    if inline:
        metadata["inline"] = True
    if results is not None and (settings := run_settings(results, [task])):
        metadata["settings"] = settings
    run = RunBuilder(f"samples:{task}", model, started_at=started, harness=HARNESS, metadata=metadata)
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
        # 0.4.3+: SHA-256 of the doc, the prompt and the target. The doc and target hashes name the
        # item's content; the prompt's includes the chat template and few-shot examples, so it
        # differs between runs of the same doc and is kept only as an attribute.
        doc_hash, target_hash, prompt_hash = obj.get("doc_hash"), obj.get("target_hash"), obj.get("prompt_hash")
        item_hash = doc_hash if isinstance(doc_hash, str) else None
        if item_hash is not None and isinstance(target_hash, str):
            item_hash = f"{doc_hash}:{target_hash}"
        attrs = {**group, "prompt_hash": prompt_hash} if isinstance(prompt_hash, str) else group
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
            item_hash=item_hash,
        )
    return run


def inline_samples(doc: dict[str, Any], run: RunBuilder, path: str) -> list[RunBuilder]:
    """Runs for the ``samples`` block of a results file (``run``), one a task, when it has the per-doc layout.

    ``simple_evaluate`` returns the samples under ``samples`` when ``log_samples`` is on; the CLI pops
    them before writing, but a wrapper that dumps the returned dict keeps them, with the unsanitised
    ``arguments`` (a list of argument lists). Anything else is noted in ``run``'s metadata, unread.
    """
    block = doc["samples"]
    problem = None
    if not isinstance(block, dict):
        problem = f"a JSON {_JSON_TYPES.get(type(block), 'value')}, not an object of per-task lists"
    elif not any(isinstance(v, list) and v for v in block.values()):
        problem = "no task has samples in it"
    else:
        bad = [t for t, v in block.items() if not (isinstance(v, list) and all(looks_like_sample(s) for s in v))]
        if bad:
            problem = f"{', '.join(map(repr, bad[:3]))}: not lists of per-doc samples (doc_id, resps)"
    if problem:
        run.metadata["samples"] = f"present but not read: {problem}"
        return []
    return [
        samples_run(path, task, run.model, doc, run.started_at, enumerate(lines), f"samples.{task}[{{}}]", inline=True)
        for task, lines in block.items()
        if lines
    ]


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


def _old_layout_model(name: str, task: str) -> str | None:
    """The model named in a pre-0.4.3 file name: ``<model_args>_<task>.jsonl``, model_args with ``=`` and
    ``/`` written ``__`` (``re.sub("/|=", "__", args.model_args)`` in 0.4.0-0.4.2's ``__main__.py``).

    >>> _old_layout_model("pretrained__org__m-1b,revision__step1,dtype__f16_mmlu_anatomy.jsonl", "mmlu_anatomy")
    'org/m-1b@step1'
    """
    stem = name.removesuffix(".jsonl").removesuffix(".json").removesuffix("_" + task)
    args = {k: v.replace("__", "/") for k, _, v in (part.partition("__") for part in stem.split(","))}
    return (
        model_of({"config": {"model": "", "model_args": args}}, name) if any(args.get(k) for k in MODEL_KEYS) else None
    )


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
