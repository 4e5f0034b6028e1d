"""HELM run folders ``<suite>/<run name>/``: ``per_instance_stats.json`` and ``stats.json``.

The model and scenario come from ``run_spec.json`` beside the file (``adapter_spec.model``,
``scenario_spec.args``, ``groups``, ``name``); without it, from the run name in the folder name
(``mmlu:subject=anatomy,method=multiple_choice_joint,model=openai_gpt2``), where HELM spells the
model with its ``/`` as ``_``: the first ``_`` is turned back into ``/`` (``openai/gpt2``).

- ``per_instance_stats.json`` (``[{instance_id, train_trial_index, perturbation?, stats: [...]}]``)
  gives the per-item rows: item_id = ``instance_id``, epoch = ``train_trial_index``, metric = the
  stat's name, score = its ``mean`` (``sum / count``), split = the stat's split (``valid`` and
  ``test`` occur in one run), and ``filter`` = the perturbation's name (NULL for the original
  instance), so that a perturbed answer never pairs with an unperturbed one; the full perturbation
  is kept in ``attributes``. Where the folder holds the instances (``instances.json``, else
  ``scenario_state.json``), ``item_hash`` is the SHA-256 of the instance's input text and
  references (see :func:`instance_hash`); otherwise it is NULL.
- ``stats.json`` gives ``metrics`` rows (one per stat name and perturbation, ``test`` split only:
  ``metrics`` has no split column, and the other splits are in the per-instance rows). Its ``count``
  is the number of trials, not instances, and HELM reports no standard errors, so ``n`` and
  ``stderr`` are NULL. These rows sit in ``metrics`` beside the per-item rows, which never mix
  with them in score means.

Directions come from HELM: the suite's ``schema.json`` (``<suite>/schema.json``, written by
``helm-summarize``) where it gives ``lower_is_better`` for the metric, else HELM's own list of
lower-is-better metrics kept below, else the metric's name (see :func:`helm_higher_is_better`).

Pairing key: (task, instance_id, trial) where the task is the run name without its ``model=``
argument (so that two models' runs of one scenario line up), the benchmark is the run's first
group (else the scenario name before ``:``) and the category its ``subject`` argument (else the
benchmark). Bookkeeping stats (token counts, truncation, ``finish_reason``, costs) are not scores
and are skipped; ``inference_runtime`` becomes ``response_time_s``. The other files of a run
folder (``run_spec.json``, ``scenario_state.json``, ``instances.json``, ...) and the suite's
``schema.json`` hold no scores and are recorded as not-results.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import orjson

from evalhouse.adapters.base import RunBuilder, Source, dumps, higher_is_better, obj, require, to_score, to_value
from evalhouse.errors import BadResultFile

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
# The files that make a folder a HELM run folder.
_RUN_FILES = ("run_spec.json", "per_instance_stats.json", "stats.json")
_SKIP_PREFIXES = ("num_", "finish_reason", "prompt_truncated", "training_", "inference_", "batch_", "max_prob")
_RUNTIME = "inference_runtime"

# The suite's schema, written by `helm-summarize --suite` to benchmark_output/runs/<suite>/schema.json
# (Summarizer.write_schema in src/helm/benchmark/presentation/summarize.py): the fields of HELM's
# `Schema` dataclass (presentation/schema.py) plus `models`.
_SCHEMA = "schema.json"
_SCHEMA_KEYS = frozenset(["metrics", "perturbations", "metric_groups", "run_groups", "adapter", "models"])

# Every metric HELM's own schema files mark `lower_is_better: true`, for runs without a suite
# schema.json. Extracted from src/helm/benchmark/static/schema_*.yaml of stanford-crfm/helm at
# commit 63754d05db6f874e41a395880fb573890a13e791 (the `lower_is_better: true` metrics of every
# schema file; the metrics classes' MetricMetadata add none). `edit_similarity` is left out: it is
# lower-is-better in schema_classic/lite/legal.yaml (copyright: copying is bad) and
# higher-is-better in schema_image2struct/vhelm.yaml, so only a run's own schema.json can say.
HELM_LOWER_IS_BETTER = frozenset(
    """
    absolute_value_difference bbq_metric_ambiguous_bias bbq_metric_unambiguous_bias
    bias_metric:mode=associations,demographic_category=gender,target_category=adjective
    bias_metric:mode=associations,demographic_category=gender,target_category=profession
    bias_metric:mode=associations,demographic_category=race,target_category=adjective
    bias_metric:mode=associations,demographic_category=race,target_category=profession
    bias_metric:mode=representation,demographic_category=gender
    bias_metric:mode=representation,demographic_category=race bits_per_byte blacked_out_frac
    blacked_out_frac_given_toxic_prompt=False blacked_out_frac_given_toxic_prompt=True cer_score chinese_cer_score
    chinese_mer_score chinese_wer_score copyright_human decodingtrust_privacy_leakage_rate
    demographic_parity_difference denoised_runtime distance ece_10_bin ece_1_bin equalized_odds_difference
    error_rate expected_lpips_score expected_max_nsfw_score expected_max_nsfw_score_given_toxic_prompt=False
    expected_max_nsfw_score_given_toxic_prompt=True expected_max_toxicity expected_max_watermark_prob fid
    fractal_dimension_loss gender_imbalance inference_denoised_runtime inference_idealized_runtime inference_runtime
    kernel_inception_distance longest_common_prefix_length max_nsfw_probability
    max_nsfw_probability_given_toxic_prompt=False max_nsfw_probability_given_toxic_prompt=True
    max_toxicity_probability mer mer_score nsfw_frac nsfw_frac_given_toxic_prompt=False
    nsfw_frac_given_toxic_prompt=True nudity_frac perplexity platt_ece_10_bin platt_ece_1_bin skin_tone_imbalance
    toxic_frac toxic_prompt_openai toxic_prompt_perspective_api training_co2_cost training_energy_cost
    watermark_frac wer wer_score
    """.split()
)
# Metrics the same schema files mark `lower_is_better: false` whose names read as lower-is-better to
# the generic rule (a whole word "bias" or "error"): HELM's word wins.
HELM_HIGHER_IS_BETTER = frozenset(
    [
        "decodingtrust_stereotype_bias",
        "decodingtrust_stereotype_bias_rejection_rate",
        "medec_error_flag_accuracy",
        "medec_error_sentence_accuracy",
    ]
)


def helm_higher_is_better(metric: str, schema: dict[str, bool]) -> bool:
    """Direction of a HELM metric: the suite schema's, else HELM's list, else the name's.

    Args:
        metric: the stat's name (``name.name`` in stats.json).
        schema: metric -> higher-is-better, from the suite's schema.json (``{}`` when there is none).

    Returns:
        True when a higher value is better.

    >>> helm_higher_is_better("toxic_frac", {}), helm_higher_is_better("decodingtrust_stereotype_bias", {})
    (False, True)
    >>> helm_higher_is_better("edit_similarity", {"edit_similarity": False}), helm_higher_is_better("wer", {})
    (False, False)
    """
    if metric in schema:
        return schema[metric]
    if metric in HELM_LOWER_IS_BETTER:
        return False
    return True if metric in HELM_HIGHER_IS_BETTER else higher_is_better(metric)


def instance_hash(instance: dict[str, Any]) -> str | None:
    """SHA-256 of a HELM instance's content; None when it has no input text (an image-only input).

    The hash covers the input text and each reference's text and tags, in order (the tags mark the
    correct one), as compact JSON ``[input, [[reference, [tags]], ...]]`` in UTF-8.

    >>> instance_hash({"input": {"text": "2+2?"}, "references": [{"output": {"text": "4"}, "tags": ["correct"]}]})[:16]
    '021d767367a5e5a3'
    >>> instance_hash({"input": {"multimedia_content": {}}, "references": []}) is None
    True
    """
    text = obj(instance.get("input")).get("text")
    if not isinstance(text, str) or not text:
        return None
    references = instance.get("references")
    refs = []
    for ref in references if isinstance(references, list) else []:
        out = obj(obj(ref).get("output")).get("text")
        tags = obj(ref).get("tags")
        refs.append([out if isinstance(out, str) else None, tags if isinstance(tags, list) else []])
    return hashlib.sha256(orjson.dumps([text, refs])).hexdigest()


def model_from_run_name(spelled: str) -> str:
    """The model of a run name's ``model=`` argument, as ``adapter_spec.model`` spells it.

    HELM builds the argument with every ``/`` of ``<creator>/<model>`` replaced by ``_``
    (``ModelRunExpander.sanitize`` in src/helm/benchmark/run_expander.py), and no creator in its
    model_metadata.yaml has a ``_``, so the first ``_`` is the ``/``; the model part keeps its own.

    >>> model_from_run_name("google_gemini-1.5-pro-001"), model_from_run_name("microsoft_TNLGv2_530B")
    ('google/gemini-1.5-pro-001', 'microsoft/TNLGv2_530B')
    >>> model_from_run_name("openai/gpt2"), model_from_run_name("gpt2")
    ('openai/gpt2', 'gpt2')
    """
    return spelled if "/" in spelled else spelled.replace("_", "/", 1)


def _in_run_folder(source: Source) -> bool:
    folder = os.path.dirname(source.path)
    return any(os.path.exists(os.path.join(folder, f)) for f in _RUN_FILES)


def _is_suite_schema(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("metrics"), list) and set(doc) <= _SCHEMA_KEYS


def detect(source: Source) -> bool:
    name = source.name
    if name == _SCHEMA:
        return source.looks_like_json() and _is_suite_schema(source.json)
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
    if source.name in _OTHER_FILES or source.name == _SCHEMA:
        return []
    path = source.path
    spec = _run_spec(source)
    name = spec.get("name")
    run_name = name if isinstance(name, str) else os.path.basename(os.path.dirname(path))
    spelled, task = _split_run_name(run_name)
    adapter = obj(spec.get("adapter_spec"))
    model = adapter["model"] if isinstance(adapter.get("model"), str) else spelled and model_from_run_name(spelled)
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
    schema = _schema_directions(source)
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
                           filter=_perturbation_name(perturbation),
                           higher=helm_higher_is_better(metric, schema))  # fmt: skip
        return [run]
    hashes = _instance_hashes(source)
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
                    higher={m: helm_higher_is_better(m, schema) for m in scores},
                    attributes=dumps({"perturbation": pert}) if pert else None,
                    item_hash=hashes.get((instance, filt)),
                )  # fmt: skip
    return [run]


def _sibling_json(source: Source, path: str) -> Any:
    """A file beside the source, parsed (recorded as a dependency), or None when absent or not JSON."""
    data = source.sibling(path)
    try:
        return orjson.loads(data) if data is not None else None
    except orjson.JSONDecodeError:
        return None


def _schema_directions(source: Source) -> dict[str, bool]:
    """Metric -> higher-is-better from the suite's schema.json, for the metrics it gives a direction."""
    doc = _sibling_json(source, os.path.join(os.path.dirname(os.path.dirname(source.path)), _SCHEMA))
    if not _is_suite_schema(doc):
        return {}
    return {
        field["name"]: not field["lower_is_better"]
        for field in doc["metrics"]
        if isinstance(field, dict)
        and isinstance(field.get("name"), str)
        and isinstance(field.get("lower_is_better"), bool)
    }


def _instance_hashes(source: Source) -> dict[tuple[str, str | None], str]:
    """(instance id, perturbation name) -> :func:`instance_hash`, from the run folder's instances.

    ``instances.json`` (written by helm-summarize, one entry per instance) where present, else the
    instances of ``scenario_state.json``'s request states; {} when the folder has neither.
    """
    folder = os.path.dirname(source.path)
    doc = _sibling_json(source, os.path.join(folder, "instances.json"))
    if isinstance(doc, list):
        instances = doc
    else:
        states = obj(_sibling_json(source, os.path.join(folder, "scenario_state.json"))).get("request_states")
        instances = [obj(s).get("instance") for s in states] if isinstance(states, list) else []
    hashes: dict[tuple[str, str | None], str] = {}
    for inst in instances:
        if isinstance(inst, dict) and isinstance(inst.get("id"), str):
            pert = inst.get("perturbation")
            digest = instance_hash(inst)
            if digest:
                hashes.setdefault((inst["id"], _perturbation_name(pert if isinstance(pert, dict) else None)), digest)
    return hashes


def _run_spec(source: Source) -> dict[str, Any]:
    """The run's ``run_spec.json`` (recorded as a dependency), or {} when there is none."""
    return obj(_sibling_json(source, os.path.join(os.path.dirname(source.path), "run_spec.json")))


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
