"""lm-evaluation-harness 0.4.x aggregate results: ``results_<time>.json`` (or ``results.json`` before 0.4.3).

``results`` maps each task to ``{"alias", "<metric>,<filter>": value, "<metric>_stderr,<filter>":
value or "N/A"}``. Every leaf task becomes rows of ``metrics`` (aggregate-only: the per-item rows come
from the ``samples_*.jsonl`` files, read by ``lm_eval_samples``), with ``n`` from ``n-samples``
(``effective``) and the direction from the ``higher_is_better`` block, else from the metric name.

Hierarchy comes from ``group_subtasks`` (not from the indented aliases): the benchmark is the
top-level group (``mmlu``), the category is the leaf task without the benchmark's prefix
(``mmlu_abstract_algebra`` -> ``abstract_algebra``), and the task is the leaf task name. Group
aggregates (``mmlu``, ``mmlu_stem``) are not stored as rows, because they would count the leaves a
second time; their values are kept in the run's metadata (``groups``). Group entries without an
aggregation (``{" ": " ", "alias": ...}``) are skipped; an ``"N/A"`` stderr is NULL.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson

from engine.adapters.base import RunBuilder, Source, obj, parse_time, require, to_value
from engine.errors import BadResultFile

NAME = "lm-eval"
HARNESS = "lm-evaluation-harness"

# Keys only 0.4.x results files have (0.3 files have results, versions and config alone).
_V04_KEYS = ("configs", "n-shot", "group_subtasks", "higher_is_better", "n-samples", "lm_eval_version")
# results_2024-05-29T10-20-30.123456.json: ISO time with "-" for ":".
TIME_RE = r"(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:\.\d+)?)"
_RESULTS_NAME = re.compile(rf"^results_{TIME_RE}\.json$")


def detect(source: Source) -> bool:
    if not source.name.endswith(".json") or not source.looks_like_json():
        return False
    doc = source.json_lenient
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("results"), dict)
        and "config_general" not in doc  # lighteval
        and (any(k in doc for k in _V04_KEYS) or _has_filtered_keys(doc["results"]))
    )


def _has_filtered_keys(results: dict[str, Any]) -> bool:
    return any(isinstance(v, dict) and any("," in k for k in v) for v in results.values())


def file_time(name: str) -> datetime | None:
    """The time in an lm-eval output file name (``-`` stands for ``:``), or None.

    >>> file_time("samples_mmlu_anatomy_2024-05-29T10-20-30.123456.jsonl")
    datetime.datetime(2024, 5, 29, 10, 20, 30, 123456)
    """
    m = re.search(TIME_RE, name)
    if not m:
        return None
    date, _, clock = m.group(1).partition("T")
    hms, dot, frac = clock.partition(".")
    return datetime.fromisoformat(f"{date}T{hms.replace('-', ':')}{dot}{frac}")


def model_of(doc: dict[str, Any], path: str) -> str:
    """The model name: ``model_name``, else ``pretrained=`` in ``config.model_args``, else ``config.model``."""
    name = doc.get("model_name")
    if isinstance(name, str) and name:
        return name
    config = doc.get("config")
    if not isinstance(config, dict):
        raise BadResultFile(path, "config", "missing or not an object (needed for the model name)")
    args = config.get("model_args")
    if isinstance(args, str):
        for part in args.split(","):
            key, _, value = part.partition("=")
            if key.strip() in ("pretrained", "model", "engine", "path") and value:
                return value.strip()
    model = config.get("model")
    if not isinstance(model, str) or not model:
        raise BadResultFile(path, "config.model", "missing: no model name in the file")
    return model


class Hierarchy:
    """Where each task sits: its top-level group (the benchmark) and its direct parent group."""

    def __init__(self, group_subtasks: Any, groups: Any = None) -> None:
        self.parent: dict[str, str] = {}
        self.groups: set[str] = set(groups) if isinstance(groups, dict) else set()
        if isinstance(group_subtasks, dict):
            for group, subtasks in group_subtasks.items():
                if isinstance(subtasks, list) and subtasks:
                    self.groups.add(group)
                    for sub in subtasks:
                        if isinstance(sub, str):
                            self.parent[sub] = group

    def root(self, task: str) -> str:
        seen = {task}
        while task in self.parent and self.parent[task] not in seen:
            task = self.parent[task]
            seen.add(task)
        return task

    def place(self, task: str) -> tuple[str, str, str | None]:
        """(benchmark, category, parent group or None) of a leaf task.

        >>> Hierarchy({"mmlu": ["mmlu_stem"], "mmlu_stem": ["mmlu_anatomy"]}).place("mmlu_anatomy")
        ('mmlu', 'anatomy', 'mmlu_stem')
        >>> Hierarchy({"hellaswag": []}).place("hellaswag")
        ('hellaswag', 'hellaswag', None)
        """
        root = self.root(task)
        category = task.removeprefix(root + "_") if task != root else task
        return root, category or task, self.parent.get(task)


@lru_cache(maxsize=16)
def _parse_results(sha256: str, data: bytes) -> dict[str, Any] | None:
    """A results file parsed once per content (many samples files share one)."""
    del sha256  # the cache key: hashing `data` again would cost what the cache saves
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("results"), dict) else None


def sibling_results(source: Source, time: str | None) -> dict[str, Any] | None:
    """The results file written with a samples file, parsed (None if there is none).

    ``results_<same time>.json`` beside it first, then the newest other ``results_*.json`` there,
    then ``results.json`` (the layout before 0.4.3). A broken sibling is ignored here (it is
    rejected when it is ingested itself). The file read is recorded as a dependency of ``source``.
    """
    folder = os.path.dirname(source.path)
    try:
        names = sorted(os.listdir(folder), reverse=True)
    except OSError:
        return None
    candidates = [f"results_{time}.json"] if time else []
    candidates += [n for n in names if _RESULTS_NAME.match(n)] + ["results.json"]
    for name in dict.fromkeys(candidates):
        full = os.path.join(folder, name)
        data = source.sibling(full)
        if data is None:
            continue
        doc = _parse_results(source.dependencies[os.path.abspath(full)]["sha256"], data)
        if doc is not None:
            return doc
        del source.dependencies[os.path.abspath(full)]  # not a results file: nothing depends on it
    return None


def split_metric_key(key: str) -> tuple[str, str | None]:
    """``"acc,none"`` -> ``("acc", "none")``; a key without a filter has None.

    >>> split_metric_key("exact_match,strict-match"), split_metric_key("acc")
    (('exact_match', 'strict-match'), ('acc', None))
    """
    metric, comma, filt = key.partition(",")
    return metric, (filt if comma else None)


def read(source: Source) -> list[RunBuilder]:
    path, doc = source.path, source.json_lenient
    model = model_of(doc, path)
    started = parse_time(doc.get("date"), path, "date") if doc.get("date") is not None else file_time(source.name)
    hierarchy = Hierarchy(doc.get("group_subtasks"), doc.get("groups"))
    higher_block = obj(doc.get("higher_is_better"))
    n_samples = obj(doc.get("n-samples"))
    config = obj(doc.get("config"))
    metadata: dict[str, Any] = {
        k: v
        for k, v in {
            "lm_eval_version": doc.get("lm_eval_version"),
            "config": {k: v for k, v in config.items() if isinstance(v, (str, int, float, bool))} or None,
            "n_shot": doc.get("n-shot"),
            "versions": doc.get("versions"),
            "group_subtasks": doc.get("group_subtasks"),
        }.items()
        if v
    }
    run = RunBuilder("results", model, started_at=started, harness=HARNESS, metadata=metadata)
    group_values: dict[str, dict[str, Any]] = {}
    for task, entry in doc["results"].items():
        where = f"results.{task}"
        require(isinstance(entry, dict), path, where, "expected an object")
        if task in hierarchy.groups:
            values = {k: v for k, v in entry.items() if k != "alias" and k.strip()}
            if values:
                group_values[task] = values
            continue
        benchmark, category, _parent = hierarchy.place(task)
        higher = obj(higher_block.get(task))
        counts = n_samples.get(task)
        n = counts.get("effective") if isinstance(counts, dict) else None
        require(n is None or (isinstance(n, int) and not isinstance(n, bool)), path,
                f"n-samples.{task}.effective", f"{n!r} is not a count")  # fmt: skip
        for key, raw in entry.items():
            if key == "alias" or not key.strip():
                continue
            metric, filt = split_metric_key(key)
            if metric.endswith("_stderr"):
                continue
            value = to_value(raw, path, f"{where}.{key}")
            if value is None:
                continue
            stderr_key = f"{metric}_stderr,{filt}" if filt is not None else f"{metric}_stderr"
            stderr = to_value(entry.get(stderr_key), path, f"{where}.{stderr_key}")
            direction = higher.get(metric)
            run.add_metric(
                metric,
                value,
                benchmark=benchmark,
                category=category,
                task=task,
                filter=filt,
                stderr=stderr,
                n=n,
                higher=direction if isinstance(direction, bool) else None,
            )
    if group_values:
        run.metadata["groups"] = group_values
    return [run]
