"""lm-evaluation-harness 0.4.x aggregate results: ``results_<time>.json`` (``results.json`` before 0.4.3).

``results`` maps each task and group to an entry of scores, ``"<metric>,<filter>": value`` and
``"<metric>_stderr,<filter>": value or "N/A"``, beside keys that are not scores: ``alias`` (every
version), ``name``, ``sample_len`` and, for groups, ``sample_count`` (0.4.12+, ``lm_eval/api/group.py``
and ``evaluator_utils.py``), ``samples`` (a count some 0.4.x wrappers leave in). Only the score keys
are read; the others go to the run's metadata (``task_info``), and a file is rejected only when a
score key holds something that is not a score.

Every leaf task becomes rows of ``metrics`` (aggregate-only: the per-item rows come from the
``samples_*.jsonl`` files, read by ``lm_eval_samples``), each ``metric,filter`` keeping its filter,
with ``n`` from ``n-samples`` (``effective``, else ``sample_len``) and the direction from the
``higher_is_better`` block, else from the metric name.

Hierarchy comes from ``group_subtasks`` (0.4.2+): the benchmark is the top-level group (``mmlu``),
the category is the leaf task without the benchmark's prefix (``mmlu_abstract_algebra`` ->
``abstract_algebra``), and the task is the leaf task name. A top-level group's own aggregate (the
file's ``mmlu`` value, never a mean evalhouse computes) is stored too, with benchmark = category =
task = the group, its stderr, and ``n`` from ``sample_count`` (0.4.12+) where the file has it.
Subgroup aggregates (``mmlu_stem``) stay in the run's metadata (``groups``): as rows they would count
their subtasks again. Files without ``group_subtasks`` (0.4.0, 0.4.1) tell a top-level group by its
alias, which the harness indents below the top level. Group entries without an aggregation
(``{" ": " ", "alias": ...}``) contribute nothing; an ``"N/A"`` stderr is NULL.

An inline ``samples`` block (what ``simple_evaluate`` returns with ``log_samples``: the harness's own
CLI pops it before writing, wrappers that dump the returned dict keep it) is read as per-item rows
like a samples file, one run per task; any other ``samples`` value is noted in the metadata.

The run settings that decide comparability go to ``metadata["settings"]`` (see :func:`run_settings`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson

from evalhouse.adapters.base import RunBuilder, Source, obj, parse_time, require, to_value
from evalhouse.errors import BadResultFile

NAME = "lm-eval"
HARNESS = "lm-evaluation-harness"

# Keys only 0.4.x results files have (0.3 files have results, versions and config alone).
_V04_KEYS = ("configs", "n-shot", "group_subtasks", "higher_is_better", "n-samples", "lm_eval_version")
# results_2024-05-29T10-20-30.123456.json: ISO time with "-" for ":".
TIME_RE = r"(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:\.\d+)?)"
# Keys of a results entry that are not scores (lm_eval/result_schema.py `_TaskMetrics`, and the
# per-entry `samples` count of 0.4.0-0.4.11's consolidate_results).
INFO_KEYS = frozenset(("alias", "name", "sample_len", "sample_count", "samples"))
# The model_args keys the harness names a model by, in its order (GeneralConfigTracker._get_model_name:
# an adapter given with its base model is the model evaluated).
MODEL_KEYS = ("peft", "delta", "pretrained", "model", "path", "engine")
# What the model name leaves out of a run's settings: the model itself (and its revision, kept in
# the name), which differs between any two models compared.
_IDENTITY_KEYS = frozenset((*MODEL_KEYS, "revision"))
# 0.4.10+ names a run whose model_args name no model with random_name_id(): 8 characters.
_RANDOM_NAME = re.compile(r"^[a-z0-9]{8}$")
# Task-config fields that say which data was scored.
_DATASET_KEYS = ("dataset_path", "dataset_name", "dataset_kwargs", "test_split", "validation_split")


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


def model_args(value: Any) -> dict[str, Any]:
    """``config.model_args`` as a dict: the object as written, or the ``k=v,...`` string parsed.

    Values of the string form are typed as the harness types them (``simple_parse_args_string``).

    >>> model_args("pretrained=org/m,dtype=float16,trust_remote_code=True,max_length=2048")
    {'pretrained': 'org/m', 'dtype': 'float16', 'trust_remote_code': True, 'max_length': 2048}
    >>> model_args({"pretrained": "org/m"}), model_args(""), model_args(None)
    ({'pretrained': 'org/m'}, {}, {})
    """
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        return {}
    out: dict[str, Any] = {}
    for part in value.split(","):
        key, eq, raw = part.partition("=")
        if key.strip() and eq:
            out[key.strip()] = _typed(raw.strip())
    return out


def _typed(text: str) -> Any:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def model_of(doc: dict[str, Any], path: str) -> str:
    """The model: ``model_name``, else the first of ``MODEL_KEYS`` in ``config.model_args``, else ``config.model``.

    ``model_args`` is a ``k=v`` string or (0.4.9+ ``--model_args '{...}'``, the Python API) an object.
    The harness writes ``model_name: ""`` (0.4.3-0.4.9) or a random 8-character name (0.4.10+) when
    ``model_args`` names no model; ``config.model`` is then the backend (``hf``, ``vllm``), which would
    merge different models, so the file is rejected unless it has no ``model_args`` at all (a model
    object passed to the Python API: ``config.model`` is its name). A ``revision`` other than ``main``
    is part of the model (``org/m@step1000``): two checkpoints are two models.

    >>> model_of({"model_name": "", "config": {"model": "vllm", "model_args": {"pretrained": "org/m"}}}, "f")
    'org/m'
    >>> model_of({"config": {"model": "hf-causal", "model_args": "pretrained=org/m,revision=step1"}}, "f")
    'org/m@step1'
    """
    config = doc.get("config")
    args = model_args(config.get("model_args")) if isinstance(config, dict) else {}
    named = next((str(args[k]) for k in MODEL_KEYS if args.get(k) not in (None, "")), None)
    name = doc.get("model_name")
    if isinstance(name, str) and name and (named is not None or not _RANDOM_NAME.match(name)):
        model = name
    elif named is not None:
        model = named
    else:
        if not isinstance(config, dict):
            raise BadResultFile(path, "config", "missing or not an object (needed for the model name)")
        backend = config.get("model")
        require(isinstance(backend, str) and bool(backend), path, "config.model", "missing: no model name in the file")
        reason = (
            f"the file names no model: config.model_args has none of {', '.join(MODEL_KEYS)} (lm-eval then "
            f"leaves model_name empty or random), and config.model {backend!r} is the backend, not a model"
        )
        require(not args, path, "(model)", reason)
        model = str(backend)
    revision = args.get("revision")
    return f"{model}@{revision}" if isinstance(revision, str) and revision not in ("", "main") else model


def run_settings(doc: dict[str, Any], tasks: Iterable[str] | None = None) -> dict[str, Any]:
    """The settings of a run that decide whether its scores compare with another run's.

    Harness version (``lm_eval_version``, ``git_hash``), per task: ``versions``, ``n-shot``,
    ``generation_kwargs`` and the dataset (path, name, kwargs such as a revision, split) from
    ``configs``; the chat template (its SHA, ``fewshot_as_multiturn``, ``system_instruction_sha``),
    ``model_args`` without the model's own name and revision, ``batch_size``, ``limit`` and the
    command line's ``gen_kwargs``. Only what the file has (None values are left out); ``tasks``
    narrows the per-task parts (a samples file's run).

    >>> run_settings({"n-shot": {"a": 5, "b": 0}, "config": {"model_args": "pretrained=m,dtype=bf16"}}, ["a"])
    {'n_shot': {'a': 5}, 'model_args': {'dtype': 'bf16'}}
    """
    wanted = None if tasks is None else set(tasks)
    configs = {t: c for t, c in obj(doc.get("configs")).items() if isinstance(c, dict)}

    def per_task(block: Any) -> dict[str, Any]:
        return {t: v for t, v in obj(block).items() if v is not None and (wanted is None or t in wanted)}

    config = obj(doc.get("config"))
    out: dict[str, Any] = {
        "lm_eval_version": doc.get("lm_eval_version"),
        "git_hash": doc.get("git_hash"),
        "versions": per_task(doc.get("versions")),
        "n_shot": per_task(doc.get("n-shot")),
        "generation_kwargs": per_task({t: c.get("generation_kwargs") for t, c in configs.items()}),
        "dataset": per_task(
            {t: {k: c[k] for k in _DATASET_KEYS if c.get(k) is not None} or None for t, c in configs.items()}
        ),
        "chat_template_sha": doc.get("chat_template_sha"),
        # The template itself only when the file has no hash of it (the hash says the same, shorter).
        "chat_template": None if doc.get("chat_template_sha") else doc.get("chat_template"),
        # False (0.4.3-0.4.9) and null (0.4.10+) both mean "not used": only true is a setting.
        "fewshot_as_multiturn": doc.get("fewshot_as_multiturn") or None,
        "system_instruction_sha": doc.get("system_instruction_sha"),
        "model_args": {k: v for k, v in model_args(config.get("model_args")).items() if k not in _IDENTITY_KEYS},
        "batch_size": config.get("batch_size"),
        "limit": config.get("limit"),
        "gen_kwargs": config.get("gen_kwargs") or None,
    }
    return {k: v for k, v in out.items() if v is not None and v != {}}


class Hierarchy:
    """Where each task sits: its top-level group (the benchmark) and its direct parent group."""

    def __init__(self, group_subtasks: Any, groups: Any = None) -> None:
        self.parent: dict[str, str] = {}
        self.groups: set[str] = set(groups) if isinstance(groups, dict) else set()
        self.known = isinstance(group_subtasks, dict)
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

    def is_top(self, group: str, entry: dict[str, Any]) -> bool:
        """Whether a group is a top-level one (a benchmark), not a subgroup.

        Without ``group_subtasks`` the harness's alias says it: 0.4.0-0.4.11 indent a nested entry's
        alias (``" - stem"``).

        >>> Hierarchy(None, {"mmlu": {}}).is_top("mmlu_stem", {"alias": " - stem"})
        False
        """
        if self.known:
            return group not in self.parent
        alias = entry.get("alias")
        return not (isinstance(alias, str) and alias[:1].isspace() and alias.lstrip().startswith("- "))


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

    The harness gives both the same time (``EvaluationTracker.date_id``): ``results_<time>.json``
    beside ``samples_<task>_<time>.jsonl``, or, with ``--output_path <dir>/<name>.json`` (0.4.9+),
    ``<name>_<time>.json``. A results file of another time is another run (maybe of another model)
    and is not used. Without a time (the layout before 0.4.3) it is ``results.json``. A broken
    sibling is ignored here (it is rejected when it is ingested itself). The file read is recorded
    as a dependency of ``source``.
    """
    folder = os.path.dirname(source.path)
    if time is None:
        return _first_results(source, folder, ["results.json"])
    found = _first_results(source, folder, [f"results_{time}.json"])
    if found is not None:
        return found
    try:  # listed only when the usual name is missing: a flat folder may hold thousands of files
        names = sorted(os.listdir(folder))
    except OSError:
        return None
    return _first_results(source, folder, [n for n in names if n.endswith(f"_{time}.json")])


def _first_results(source: Source, folder: str, names: list[str]) -> dict[str, Any] | None:
    for name in names:
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


def split_entry(entry: dict[str, Any], path: str, where: str) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """An entry's score keys, its other keys, and the score keys whose value is not a scalar.

    A ``metric,filter`` key is a score: a number, ``"N/A"`` or a numeric string, else the file is
    rejected; a list or object there (a metric the harness could not reduce) is set aside. A key
    without a filter is a score only when it holds a number.

    >>> split_entry({"name": "t", "alias": "t", "sample_len": 4, "acc,none": 0.5, " ": " "}, "f", "results.t")
    ({'acc,none': 0.5}, {'name': 't', 'alias': 't', 'sample_len': 4}, [])
    """
    scores: dict[str, Any] = {}
    info: dict[str, Any] = {}
    unread: list[str] = []
    for key, value in entry.items():
        if not key.strip():
            continue  # {" ": " "}: a group without an aggregation
        if key in INFO_KEYS:
            info[key] = value
        elif "," in key:
            if isinstance(value, (list, dict)):
                unread.append(key)
            else:
                to_value(value, path, f"{where}.{key}")  # raises on what is not a score
                scores[key] = value
        elif value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            scores[key] = value
        else:
            info[key] = value
    return scores, info, unread


def _kept(value: Any) -> Any:
    """A non-score value as the metadata keeps it: scalars and small flat objects whole, else a note.

    >>> _kept({"acc,none": 14042}), _kept([{"doc_id": 0}] * 3)
    ({'acc,none': 14042}, '(an array of 3, not kept)')
    """
    if not isinstance(value, (list, dict)):
        return value
    if isinstance(value, dict) and len(value) <= 64 and not any(isinstance(v, (list, dict)) for v in value.values()):
        return value
    return f"({'an array' if isinstance(value, list) else 'an object'} of {len(value)}, not kept)"


def _count(value: Any, path: str, field: str) -> int | None:
    require(value is None or (isinstance(value, int) and not isinstance(value, bool)), path, field,
            f"{value!r} is not a count")  # fmt: skip
    return value  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Place:
    """Where an entry's rows go, with what the file says about their direction and size."""

    benchmark: str
    category: str
    task: str
    higher: dict[str, Any]  # the task's higher_is_better block
    n: int | None  # items behind every value
    counts: dict[str, Any] = field(default_factory=dict)  # per-key n (a group's sample_count)


def add_scores(run: RunBuilder, scores: dict[str, Any], place: Place, path: str, where: str) -> None:
    """Add an entry's ``metric[,filter]`` values, each with its stderr, as ``metrics`` rows."""
    for key, raw in scores.items():
        metric, filt = split_metric_key(key)
        if metric.endswith("_stderr"):
            continue
        value = to_value(raw, path, f"{where}.{key}")
        if value is None:
            continue
        stderr_key = f"{metric}_stderr,{filt}" if filt is not None else f"{metric}_stderr"
        stderr = to_value(scores.get(stderr_key), path, f"{where}.{stderr_key}")
        direction = place.higher.get(metric)
        run.add_metric(metric, value, benchmark=place.benchmark, category=place.category, task=place.task,
                       filter=filt, stderr=stderr, n=place.counts.get(key, place.n),
                       higher=direction if isinstance(direction, bool) else None)  # fmt: skip


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
            "settings": run_settings(doc),
            "config": {k: v for k, v in config.items() if isinstance(v, (str, int, float, bool))} or None,
            "group_subtasks": doc.get("group_subtasks"),
        }.items()
        if v
    }
    run = RunBuilder("results", model, started_at=started, harness=HARNESS, metadata=metadata)
    # A group the "groups" block alone reports is read from there.
    entries = {**{g: e for g, e in obj(doc.get("groups")).items() if g not in doc["results"]}, **doc["results"]}
    group_values: dict[str, dict[str, Any]] = {}
    task_info: dict[str, dict[str, Any]] = {}
    unread_keys: dict[str, list[str]] = {}
    for task, entry in entries.items():
        where = f"results.{task}"
        require(isinstance(entry, dict), path, where, "expected an object")
        scores, info, unread = split_entry(entry, path, where)
        info = {k: _kept(v) for k, v in info.items() if not (k == "name" and v == task)}
        if info:
            task_info[task] = info
        if unread:
            unread_keys[task] = unread
        higher = obj(higher_block.get(task))
        if task in hierarchy.groups:
            if scores:
                group_values[task] = scores
            if scores and hierarchy.is_top(task, entry):
                counts = obj(info.get("sample_count"))
                for key, count in counts.items():
                    _count(count, path, f"{where}.sample_count.{key}")
                samples = info.get("samples")  # 0.4.0-0.4.11's count of a group's docs, where left in
                n = samples if isinstance(samples, int) and not isinstance(samples, bool) else None
                add_scores(run, scores, Place(task, task, task, higher, n, counts), path, where)
            continue
        benchmark, category, _parent = hierarchy.place(task)
        sizes = n_samples.get(task)
        n = _count(sizes.get("effective") if isinstance(sizes, dict) else None, path, f"n-samples.{task}.effective")
        if n is None:
            n = _count(info.get("sample_len"), path, f"{where}.sample_len")
        add_scores(run, scores, Place(benchmark, category, task, higher, n), path, where)
    for key, value in (("groups", group_values), ("task_info", task_info), ("unread", unread_keys)):
        if value:
            run.metadata[key] = value
    if "samples" not in doc:
        return [run]
    # Imported here: lm_eval_samples builds on this module.
    from evalhouse.adapters.lm_eval_samples import inline_samples

    return [run, *inline_samples(doc, run, path)]
