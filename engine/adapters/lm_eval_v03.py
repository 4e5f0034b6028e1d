"""lm-evaluation-harness 0.3 results: ``{"results": {task: {acc, acc_stderr, ...}}, "versions", "config"}``.

Aggregate-only (0.3 wrote no per-item file we read, and no sample counts, so ``n`` is NULL).
Metric keys have no ``,<filter>`` suffix; ``<metric>_stderr`` is the standard error of ``<metric>``.
MMLU is 57 tasks ``hendrycksTest-<subject>``: benchmark ``mmlu``, category the subject; any other
task is its own benchmark and category. The model is ``pretrained=`` in ``config.model_args``,
else ``config.model``.
"""

from __future__ import annotations

from typing import Any

from engine.adapters.base import RunBuilder, Source, require
from engine.adapters.lm_eval_results import _V04_KEYS, HARNESS, model_of

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
    metadata = {
        "config": {k: v for k, v in config.items() if isinstance(v, (str, int, float, bool))},
        "versions": doc.get("versions"),
    }
    run = RunBuilder("results", model_of(doc, path), harness=HARNESS, metadata=metadata)
    for task, entry in doc["results"].items():
        benchmark, category = place(task)
        run.add_metric_entry(entry, path, f"results.{task}", benchmark=benchmark, category=category, task=task)
    require(run.n_metrics > 0 or not doc["results"], path, "results", "no metric values")
    return [run]
