"""lm-evaluation-harness 0.3 results: ``{"results": {task: {acc, acc_stderr, ...}}, "versions", "config"}``.

Aggregate-only (0.3 wrote no per-item file we read, and no sample counts, so ``n`` is NULL).
Metric keys have no ``,<filter>`` suffix; ``<metric>_stderr`` is the standard error of ``<metric>``.
MMLU is 57 tasks ``hendrycksTest-<subject>``: benchmark ``mmlu``, category the subject; any other
task is its own benchmark and category.

The model is named as for 0.4 (:func:`lm_eval_results.model_of`): ``pretrained=`` (or ``peft``,
``model``, ...) in ``config.model_args``, with a ``revision`` other than ``main`` appended
(``EleutherAI/pythia-160m@step143000``: EleutherAI's own 0.3 files evaluate one model's checkpoints
by revision). ``config.model`` is the model only when ``model_args`` is empty; gpt-neox's
evaluation writes its whole training config as ``model_args`` (``config.model: "neox"``), which
names no model, and such a file is rejected rather than merging every checkpoint under ``neox``.
The settings (task versions, ``num_fewshot`` per task, ``model_args`` without the model, batch
size, limit) go to ``metadata["settings"]``.
"""

from __future__ import annotations

from typing import Any

from evalhouse.adapters.base import RunBuilder, Source, require
from evalhouse.adapters.lm_eval_results import _V04_KEYS, HARNESS, model_of, run_settings

NAME = "lm-eval-0.3"

_FAMILIES = {"hendrycksTest-": "mmlu"}


def detect(source: Source) -> bool:
    if not source.name.endswith(".json") or not source.looks_like_json():
        return False
    doc = source.json_lenient
    if not (
        isinstance(doc, dict)
        and isinstance(doc.get("results"), dict)
        and isinstance(doc.get("config"), dict)
        and "versions" in doc
    ):
        return False
    if "config_general" in doc or any(k in doc for k in _V04_KEYS):
        return False
    return all(isinstance(v, dict) and not any("," in k for k in v) for v in doc["results"].values())


def place(task: str) -> tuple[str, str]:
    """(benchmark, category) of a 0.3 task name.

    >>> place("hendrycksTest-abstract_algebra"), place("hellaswag")
    (('mmlu', 'abstract_algebra'), ('hellaswag', 'hellaswag'))
    """
    for prefix, benchmark in _FAMILIES.items():
        if task.startswith(prefix):
            return benchmark, task.removeprefix(prefix)
    return task, task


def read(source: Source) -> list[RunBuilder]:
    path, doc = source.path, source.json_lenient
    config: dict[str, Any] = doc["config"]
    shots = config.get("num_fewshot")
    # The 0.4 shape of the same facts, so that a 0.3 run's settings read like a 0.4 run's.
    as_v04 = {"versions": doc.get("versions"), "n-shot": dict.fromkeys(doc["results"], shots), "config": config}
    metadata = {
        "settings": run_settings(as_v04),
        "config": {k: v for k, v in config.items() if isinstance(v, (str, int, float, bool))},
    }
    run = RunBuilder("results", model_of(doc, path), harness=HARNESS, metadata=metadata)
    for task, entry in doc["results"].items():
        benchmark, category = place(task)
        run.add_metric_entry(entry, path, f"results.{task}", benchmark=benchmark, category=category, task=task)
    require(run.n_metrics > 0 or not doc["results"], path, "results", "no metric values")
    return [run]
