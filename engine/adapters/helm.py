"""HELM run folders ``<suite>/<run name>/``: ``per_instance_stats.json`` and ``stats.json``.

The model and scenario come from ``run_spec.json`` beside the file (``adapter_spec.model``,
``scenario_spec.args``, ``groups``, ``name``); without it, from the run name in the folder name
(``mmlu:subject=anatomy,method=multiple_choice_joint,model=openai_gpt2``).

- ``per_instance_stats.json`` (``[{instance_id, train_trial_index, perturbation?, stats: [...]}]``)
  gives the per-item rows: item_id = ``instance_id``, epoch = ``train_trial_index``, metric = the
  stat's name, score = its ``mean`` (``sum / count``), split = the stat's split (``valid`` and
  ``test`` occur in one run), and ``filter`` = the perturbation's name (NULL for the original
  instance), so that a perturbed answer never pairs with an unperturbed one; the full perturbation
  is kept in ``attributes``.
- ``stats.json`` gives ``metrics`` rows (one per stat name and perturbation, ``test`` split only:
  ``metrics`` has no split column, and the other splits are in the per-instance rows). Its ``count``
  is the number of trials, not instances, and HELM reports no standard errors, so ``n`` and
  ``stderr`` are NULL. These rows sit in ``metrics`` beside the per-item rows, which never mix
  with them in score means.

Pairing key: (task, instance_id, trial) where the task is the run name without its ``model=``
argument (so that two models' runs of one scenario line up), the benchmark is the run's first
group (else the scenario name before ``:``) and the category its ``subject`` argument (else the
benchmark). Bookkeeping stats (token counts, truncation, ``finish_reason``, costs) are not scores
and are skipped; ``inference_runtime`` becomes ``response_time_s``. The other files of a run
folder (``run_spec.json``, ``scenario_state.json``, ``instances.json``, ...) hold no scores and are
recorded as not-results.
"""

from __future__ import annotations

import os
from typing import Any

import orjson

from engine.adapters.base import RunBuilder, Source, dumps, obj, require, to_score, to_value
from engine.errors import BadResultFile

NAME = "helm"
HARNESS = "helm"

# Files of a HELM run folder that hold no scores (recorded as not-results, never parsed).
_OTHER_FILES = frozenset(
    [
        "run_spec.json",
        "scenario.json",
        "scenario_state.json",
        "instances.json",
        "display_predictions.json",
        "display_requests.json",
        "costs.json",
    ]
)
_SKIP_PREFIXES = ("num_", "finish_reason", "prompt_truncated", "training_", "inference_", "batch_", "max_prob")
_RUNTIME = "inference_runtime"


def _in_run_folder(source: Source) -> bool:
    return os.path.exists(os.path.join(os.path.dirname(source.path), "run_spec.json"))


def detect(source: Source) -> bool:
    name = source.name
    if name in _OTHER_FILES:
        return _in_run_folder(source) and source.looks_like_json()
    if name not in ("per_instance_stats.json", "stats.json") or not source.looks_like_json():
        return False
    doc = source.json
    if not isinstance(doc, list) or not doc or not isinstance(doc[0], dict):
        return False
    if name == "stats.json":
        return isinstance(doc[0].get("name"), dict) and "count" in doc[0]
    return "instance_id" in doc[0] and "stats" in doc[0]


def read(source: Source) -> list[RunBuilder]:
    if source.name in _OTHER_FILES:
        return []
    path = source.path
    spec = _run_spec(source)
    name = spec.get("name")
    run_name = name if isinstance(name, str) else os.path.basename(os.path.dirname(path))
    model, task = _split_run_name(run_name)
    adapter = obj(spec.get("adapter_spec"))
    model = adapter["model"] if isinstance(adapter.get("model"), str) else model
    if not model:
        raise BadResultFile(path, "run_spec.json adapter_spec.model", "no model in run_spec.json or the run name")
    args = obj(obj(spec.get("scenario_spec")).get("args"))
    groups = spec.get("groups") if isinstance(spec.get("groups"), list) else []
    benchmark = groups[0] if groups and isinstance(groups[0], str) else task.partition(":")[0]
    subject = args.get("subject") if isinstance(args.get("subject"), str) else _run_arg(task, "subject")
    category = subject or benchmark
    metadata: dict[str, Any] = {"run_name": run_name, "suite": os.path.basename(os.path.dirname(os.path.dirname(path)))}
    if groups:
        metadata["groups"] = groups
    run = RunBuilder(source.name.removesuffix(".json"), str(model), harness=HARNESS, metadata=metadata)
    if source.name == "stats.json":
        for i, stat in enumerate(source.json):
            metric, split, perturbation = _stat_name(stat, path, f"[{i}]")
            value = _mean(stat, path, f"[{i}]")
            # `metrics` has no split column: keep HELM's headline split, the others are in the
            # per-instance rows.
            if value is None or metric.startswith(_SKIP_PREFIXES) or split not in (None, "test"):
                continue
            run.add_metric(metric, value, benchmark=benchmark, category=category, task=task,
                           filter=_perturbation_name(perturbation))  # fmt: skip
        return [run]
    for i, entry in enumerate(source.json):
        where = f"[{i}]"
        require(isinstance(entry, dict), path, where, "expected an object")
        instance = entry.get("instance_id")
        require(isinstance(instance, str) and instance != "", path, f"{where}.instance_id", "missing or not text")
        trial = entry.get("train_trial_index", 0)
        require(isinstance(trial, int) and not isinstance(trial, bool), path, f"{where}.train_trial_index",
                f"{trial!r} is not an integer")  # fmt: skip
        stats = entry.get("stats")
        require(isinstance(stats, list), path, f"{where}.stats", "expected a list")
        # One answer per (split, perturbation): the stats of an instance may mix both.
        answers: dict[tuple[str | None, str | None], tuple[Any, dict[str, float], float | None]] = {}
        for j, stat in enumerate(stats):
            metric, split, perturbation = _stat_name(stat, path, f"{where}.stats[{j}]")
            perturbation = perturbation or entry.get("perturbation")
            value = _mean(stat, path, f"{where}.stats[{j}]")
            key = (split, _perturbation_name(perturbation))
            pert, scores, runtime = answers.get(key, (perturbation, {}, None))
            if metric == _RUNTIME:
                runtime = value
            elif value is not None and not metric.startswith(_SKIP_PREFIXES):
                scores[metric] = value
            answers[key] = (pert, scores, runtime)
        for (split, filt), (pert, scores, runtime) in answers.items():
            if scores:
                run.add_answer(
                    instance, scores, benchmark=benchmark, category=category, task=task, epoch=trial,
                    filter=filt, split=split, response_time_s=runtime,
                    attributes=dumps({"perturbation": pert}) if pert else None,
                )  # fmt: skip
    return [run]


def _run_spec(source: Source) -> dict[str, Any]:
    """The run's ``run_spec.json`` (recorded as a dependency), or {} when there is none."""
    data = source.sibling(os.path.join(os.path.dirname(source.path), "run_spec.json"))
    try:
        spec = orjson.loads(data) if data is not None else {}
    except orjson.JSONDecodeError:
        return {}
    return spec if isinstance(spec, dict) else {}


def _split_run_name(run_name: str) -> tuple[str | None, str]:
    """(model from ``model=``, the run name without it).

    >>> _split_run_name("mmlu:subject=anatomy,method=multiple_choice_joint,model=openai_gpt2")
    ('openai_gpt2', 'mmlu:subject=anatomy,method=multiple_choice_joint')
    """
    scenario, colon, arg_text = run_name.partition(":")
    model = None
    kept = []
    for arg in arg_text.split(",") if arg_text else []:
        key, _, value = arg.partition("=")
        if key == "model":
            model = value
        elif key != "model_deployment":
            kept.append(arg)
    return model, scenario + (colon + ",".join(kept) if kept else "")


def _run_arg(task: str, key: str) -> str | None:
    """One ``key=value`` argument of a run name.

    >>> _run_arg("mmlu:subject=anatomy,method=multiple_choice_joint", "subject")
    'anatomy'
    """
    for arg in task.partition(":")[2].split(","):
        k, eq, value = arg.partition("=")
        if k == key and eq:
            return value
    return None


def _stat_name(stat: Any, path: str, where: str) -> tuple[str, str | None, dict[str, Any] | None]:
    require(isinstance(stat, dict), path, where, "expected an object")
    name = stat.get("name")
    require(isinstance(name, dict) and isinstance(name.get("name"), str), path, f"{where}.name",
            "expected {name, split, ...}")  # fmt: skip
    assert isinstance(name, dict)
    split = name.get("split")
    pert = name.get("perturbation")
    return name["name"], split if isinstance(split, str) else None, pert if isinstance(pert, dict) else None


def _perturbation_name(perturbation: dict[str, Any] | None) -> str | None:
    if not perturbation:
        return None
    name = perturbation.get("name")
    computed_on = perturbation.get("computed_on")
    label = str(name) if name else "perturbed"
    return f"{label}:{computed_on}" if isinstance(computed_on, str) and computed_on != "perturbed" else label


def _mean(stat: dict[str, Any], path: str, where: str) -> float | None:
    count = stat.get("count")
    if "mean" in stat:
        return to_value(stat["mean"], path, f"{where}.mean")
    if isinstance(count, int) and count > 0 and "sum" in stat:
        return to_score(stat["sum"], path, f"{where}.sum") / count
    return None
