"""HELM metric directions: the suite's schema.json, else HELM's lower-is-better list, else the name.

Fixture ``helm_bbq/v1`` (see its README.txt): a BBQ run folder in HELM's layout beside the suite's
``schema.json``, whose metric entries are HELM's schema_classic.yaml entries serialized the way
``helm-summarize`` writes them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evalhouse.adapters.base import higher_is_better
from evalhouse.adapters.helm import HELM_HIGHER_IS_BETTER, HELM_LOWER_IS_BETTER, helm_higher_is_better
from evalhouse.warehouse import Warehouse
from tests._harness import FIXTURES, load, metrics, rows, samples

SUITE = FIXTURES / "helm_bbq" / "v1"
RUN = "bbq:subject=all,method=multiple_choice_joint,model=openai_gpt2"
HEAD = ("openai/gpt2", "bbq", "all", "bbq:subject=all,method=multiple_choice_joint")


def _metrics(ambiguous: bool, unambiguous: bool) -> list[tuple[object, ...]]:
    return [
        (*HEAD, "bbq_accuracy", None, 0.4, None, None, True),  # not in this schema.json: by its name
        (*HEAD, "bbq_metric_ambiguous_bias", None, 0.2, None, None, ambiguous),
        (*HEAD, "bbq_metric_unambiguous_bias", None, 0.1, None, None, unambiguous),
        (*HEAD, "exact_match", None, 0.4, None, None, True),
        (*HEAD, "quasi_exact_match", None, 0.4, None, None, True),
    ]


def _copy(tmp_path: Path) -> Path:
    suite = tmp_path / "v1"
    shutil.copytree(SUITE, suite)
    return suite


def test_directions_from_the_suite_schema_value_by_value(wh: Warehouse) -> None:
    report = load(wh, SUITE)
    assert sorted((Path(o.path).name, o.format, o.status) for o in report.offers) == [
        ("per_instance_stats.json", "helm", "ingested"),
        ("run_spec.json", "helm", "not-results"),
        ("schema.json", "helm", "not-results"),
        ("stats.json", "helm", "ingested"),
    ]
    # a bias going up is a regression: lower is better, as HELM's schema says
    assert metrics(wh) == _metrics(ambiguous=False, unambiguous=False)
    assert samples(wh) == [
        (*HEAD, item, 0, None, "test", metric, score, True, runtime, None, None, None, None, None, None)
        for item, score, runtime in (("id0", 1.0, 0.25), ("id1", 0.0, 0.5))
        for metric in ("exact_match", "quasi_exact_match")
    ]  # fmt: skip
    meta = json.dumps({"groups": ["bbq"], "run_name": RUN, "suite": "v1"}, separators=(",", ":"))
    assert rows(wh, "SELECT model, harness, n_items, metadata FROM runs ORDER BY n_items") == [
        ("openai/gpt2", "helm", 0, meta), ("openai/gpt2", "helm", 2, meta)]  # fmt: skip
    deps = {Path(o.path).name: [str(Path(d["path"]).relative_to(SUITE)) for d in o.depends_on or []]
            for o in report.offers}  # fmt: skip
    assert deps["stats.json"] == deps["per_instance_stats.json"] == [f"{RUN}/run_spec.json", "schema.json"]


def test_the_suite_schema_wins_over_helm_list(tmp_path: Path, wh: Warehouse) -> None:
    suite = _copy(tmp_path)
    schema = json.loads((suite / "schema.json").read_text())
    for field in schema["metrics"]:
        if field["name"] == "bbq_metric_unambiguous_bias":
            field["lower_is_better"] = False  # this suite says so
        if field["name"] == "bbq_metric_ambiguous_bias":
            del field["lower_is_better"]  # "no meaningful ordering": HELM's list decides
    (suite / "schema.json").write_text(json.dumps(schema, indent=2))
    load(wh, suite)
    assert metrics(wh) == _metrics(ambiguous=False, unambiguous=True)


def test_without_a_suite_schema_helm_list_decides(tmp_path: Path, wh: Warehouse) -> None:
    suite = _copy(tmp_path)
    (suite / "schema.json").unlink()
    report = load(wh, suite)
    assert metrics(wh) == _metrics(ambiguous=False, unambiguous=False)
    stats = next(o for o in report.offers if o.path.endswith("stats.json") and "per_instance" not in o.path)
    assert [Path(d["path"]).name for d in stats.depends_on or []] == ["run_spec.json"]


@pytest.mark.parametrize(
    ("metric", "higher"),
    [
        # HELM says lower is better; the words of the name do not
        ("toxic_frac", False),
        ("longest_common_prefix_length", False),
        ("max_nsfw_probability", False),
        ("bias_metric:mode=associations,demographic_category=race,target_category=adjective", False),
        # HELM says higher is better; the name has "bias" or "error" in it
        ("decodingtrust_stereotype_bias", True),
        ("medec_error_flag_accuracy", True),
        # not in HELM's lists: the name decides
        ("exact_match", True),
        ("word_perplexity", False),
    ],
)
def test_helm_list_where_the_name_misleads(metric: str, higher: bool) -> None:
    assert helm_higher_is_better(metric, {}) is higher


def test_helm_lists_are_disjoint_and_exclude_disputed_names() -> None:
    assert not HELM_LOWER_IS_BETTER & HELM_HIGHER_IS_BETTER
    # HELM's schema files disagree on edit_similarity; only a run's own schema.json can say
    assert "edit_similarity" not in HELM_LOWER_IS_BETTER | HELM_HIGHER_IS_BETTER
    assert helm_higher_is_better("edit_similarity", {}) is higher_is_better("edit_similarity")
    assert helm_higher_is_better("edit_similarity", {"edit_similarity": False}) is False
    # the exceptions are only there because the generic rule reads them the other way
    assert not any(higher_is_better(m) for m in HELM_HIGHER_IS_BETTER)
