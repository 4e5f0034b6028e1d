"""Every Eval Ever: the `every-eval-ever` adapter, `evalhouse export --format eee`, and the round trip."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from click.testing import CliRunner

from evalhouse.adapters.every_eval_ever import NAME
from evalhouse.cli import main
from evalhouse.ingest import ingest
from evalhouse.warehouse import Warehouse, open_warehouse
from tests._harness import FIXTURES, load, metrics, rows, samples
from tests.test_harness_detection import claimants

EEE = FIXTURES / "eee"
UPSTREAM = EEE / "upstream"
TOY_DIR = EEE / "handmade" / "data" / "toy-bench" / "example-org" / "toy-model-7b"
TOY = TOY_DIR / "0b7e4c1a-2f3d-4e5a-9b8c-7d6e5f4a3b2c.json"
TOY_SAMPLES = TOY_DIR / "0b7e4c1a-2f3d-4e5a-9b8c-7d6e5f4a3b2c_samples.jsonl"
DEMO = UPSTREAM / "skill_reference" / "data" / "demo-source" / "demo-org" / "demo-model"
GPT2 = UPSTREAM / "helm_instances" / "None" / "mmlu" / "openai" / "gpt2" / "None_samples.jsonl"
AGGREGATE_SCHEMA = json.loads((EEE / "schema" / "eval.schema.json").read_text())
INSTANCE_SCHEMA = json.loads((EEE / "schema" / "instance_level_eval.schema.json").read_text())
UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
# Inputs of the round trip: every EEE fixture, and other harnesses' files for epochs (inspect),
# filters (lm-eval), splits (HELM), NULL tasks and non-ASCII categories (SO8T), attributes.
OTHER_FORMATS = [
    FIXTURES / p for p in ("lm_eval/out", "inspect/good", "helm/v1", "so8t/good", "open_format/arith.jsonl")
]
TOY_MODEL = "example-org/toy-model-7b"


def run_cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


# ---------------------------------------------------------------------------------------------
# Detection
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", sorted(p for p in EEE.rglob("*") if p.is_file() and "schema" not in p.parts and p.suffix != ".txt")
)
def test_each_eee_fixture_is_claimed_by_this_adapter_only(path: Path) -> None:
    assert claimants(path) == [NAME]


def test_no_other_fixture_is_claimed() -> None:
    others = [p for p in FIXTURES.rglob("*") if p.is_file() and EEE not in p.parents]
    assert others
    assert [p for p in others if NAME in claimants(p)] == []


def test_the_vendored_fixtures_are_valid_upstream() -> None:
    """The 0.3.0 fixtures pass the schema they claim (0.2.x ones predate eval_library and the deployment enums)."""
    jsonschema.Draft7Validator(AGGREGATE_SCHEMA).validate(json.loads(TOY.read_text()))
    for line in TOY_SAMPLES.read_text().splitlines():
        jsonschema.Draft7Validator(INSTANCE_SCHEMA).validate(json.loads(line))
    assert hashlib.sha256(TOY_SAMPLES.read_bytes()).hexdigest() == json.loads(TOY.read_text())[
        "detailed_evaluation_results"]["checksum"]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Reading, value by value
# ---------------------------------------------------------------------------------------------


def test_aggregate_becomes_metrics_value_by_value(wh: Warehouse) -> None:
    load(wh, TOY)
    assert metrics(wh) == [
        # the confidence interval is not a standard error: no stderr
        (TOY_MODEL, "toy-bench", "toy_judge", "toy_judge", "Helpfulness", None, 0.6, None, None, True),
        # standard_error.value and num_samples
        (TOY_MODEL, "toy-bench", "toy_qa", "toy_qa", "accuracy", None, 0.75, 0.25, 4, True),
        # lower_is_better; a standard deviation is not a standard error either
        (TOY_MODEL, "toy-bench", "toy_qa", "toy_qa", "nll", None, 1.5, None, 4, False),
        # neither metric_id nor metric_name: the metric is the evaluation_description
        (TOY_MODEL, "toy-math", "toy_math", "toy_math", "exact_match", None, 1.0, None, None, True),
    ]  # the `levels` result at the unknown level (-1) is missing
    ((fmt, harness, started, meta),) = rows(wh, "SELECT source_format, harness, started_at, metadata FROM runs")
    assert (fmt, harness, str(started)) == (NAME, "toy-harness", "2024-06-01 10:00:00")  # Unix seconds, UTC
    meta = json.loads(meta)
    assert (meta["model_name"], meta["model_developer"], meta["eval_library_version"], meta["evaluation_id"]) == (
        "Toy Model 7B", "example-org", "0.4.8", "toy-bench/example-org/toy-model-7b/1717236000")  # fmt: skip
    assert meta["source_metadata"]["evaluator_relationship"] == "first_party"


def test_samples_become_scores_value_by_value(wh: Warehouse) -> None:
    load(wh, TOY_DIR)
    hashes = {x["sample_id"]: x.get("sample_hash") for x in map(json.loads, TOY_SAMPLES.read_text().splitlines())
              if x["evaluation_name"] == "toy_qa"}  # fmt: skip
    got = rows(wh, "SELECT model, benchmark, category, task, item_id, epoch, filter, split, metric, score, "
                   "higher_is_better, response_time_s, attributes, question, response, expected, item_hash "
                   "FROM samples ORDER BY item_id, metric")  # fmt: skip
    q = {"q1": "What is 2 + 2?", "q2": "Spell the number 4.", "q3": "What is the capital of Japan?",
         "q4": "What is 3 * 3?"}  # fmt: skip
    subject = {"q1": "数学", "q2": "language", "q3": "日本語", "q4": "数学"}
    out = {"q1": ("4", "4"), "q2": ("four", '["4","four"]'), "q3": ("Kyoto", "Tokyo"), "q4": ("9", "9")}
    scores = {"q1": (1.0, 1.0), "q2": (1.0, 2.0), "q3": (0.0, 1.5), "q4": (1.0, 1.5)}
    expected = [
        (TOY_MODEL, "toy-bench", subject[i], "toy_qa", i, 0, None, None, metric, scores[i][k], metric == "accuracy",
         pytest.approx((120 + 2 * n) / 1000), json.dumps({"subject": subject[i]}, ensure_ascii=False,
         separators=(",", ":")), q[i], *out[i], hashes[i])
        for n, i in enumerate(q) for k, metric in enumerate(("accuracy", "nll"))
    ]  # fmt: skip
    # the agentic line: linked by its evaluation_name (toy_math has one result); output null, no hash
    expected.insert(0, (TOY_MODEL, "toy-math", "toy_math", "toy_math", "m1", 0, None, None, "exact_match", 1.0, True,
                     None, None, "Compute 17 * 23 with the calculator.", None, "391", None))  # fmt: skip
    # The two lines of an item (accuracy, nll) are one answer: its text and timing from the first.
    assert got == expected  # the judge's unknown level (-1) is missing
    (dep,) = rows(wh, "SELECT depends_on FROM files WHERE path LIKE '%_samples.jsonl'")[0]
    assert [d["path"] for d in json.loads(dep)] == [str(TOY)]


def test_upstream_skill_reference_value_by_value(wh: Warehouse) -> None:
    load(wh, DEMO)
    assert metrics(wh) == [
        ("demo-org/demo-model", "demo_bench", "demo-source.demo_bench", "demo-source.demo_bench", "accuracy", None,
         0.75, None, None, True),
    ]  # fmt: skip
    assert samples(wh) == [
        ("demo-org/demo-model", "demo_bench", "arithmetic", "demo-source.demo_bench", "demo_0001", 0, None, None,
         "accuracy", 1.0, True, None, None, None, '{"subject":"arithmetic"}', "What is 2 + 2?", "The answer is 4.",
         "4"),
    ]  # fmt: skip
    assert rows(wh, "SELECT item_hash FROM scores") == [
        ("9c94305328f8e70341f9d1880f4eaa6ea7f93b8922e6a03a8cdcf1924d28db0b",)]  # fmt: skip


def test_upstream_leaderboards_value_by_value(wh: Warehouse) -> None:
    load(wh, UPSTREAM / "global-mmlu-lite", UPSTREAM / "mmlu-pro")
    got = rows(wh, "SELECT model, task, metric, value, stderr, n, higher_is_better FROM metrics ORDER BY ALL")
    haiku, command, yi = "anthropic/claude-3-5-haiku-20241022", "cohere/command-a-03-2025", "01-ai/yi-1.5-34b-chat"
    names = ["Arabic", "Culturally Agnostic", "Culturally Sensitive", "English", "Global MMLU Lite"]
    values = {haiku: [0.695, 0.6394, 0.5834, 0.485, 0.6114], command: [0.8425, 0.8778, 0.7993, 0.855, 0.8385]}
    assert got == [
        (yi, "MMLU-Pro (Biology)", "mmlu_pro/biology", 0.7141, None, None, True),
        (yi, "MMLU-Pro (Business)", "mmlu_pro/business", 0.5843, None, None, True),
        (yi, "MMLU-Pro (overall)", "mmlu_pro/overall", 0.5229, None, None, True),
        *sorted((m, name, f"Global MMLU Lite - {name}", v, None, None, True)
                for m in (haiku, command) for name, v in zip(names, values[m], strict=True)),
    ]  # fmt: skip


def test_samples_without_their_aggregate(wh: Warehouse) -> None:
    """HELM converter lines with no aggregate beside: the model from model_id, the metric `score`."""
    load(wh, GPT2)
    got = rows(wh, "SELECT model, task, item_id, metric, score, higher_is_better, response, expected, item_hash "
                   "FROM samples ORDER BY item_id")  # fmt: skip
    assert got == [
        ("openai/gpt2", "mmlu", "id11", "score", 0.0, True, " D",
         "nothing in the experienced world could be or be identified as one determinate thing or another.",
         "a4958d59f2ffd8717c292f6ee3a8fa5efb287469deac1e93fc1cd456ff8f82bd"),
        ("openai/gpt2", "mmlu", "id147", "score", 0.0, True, " D", "internalmeaning",
         "b4b30cbbdf5262d015d22cdebaf954e6f5b79775c5e605dbd67fb6a4d7d13070"),
        ("openai/gpt2", "mmlu", "id65", "score", 0.0, True, " D", "would likewise be destroyed.",
         "fd03608efa801ce6183647e9870727cb744648a6f9929a4798cea507be77c696"),
    ]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Rejections: the file and the field at fault
# ---------------------------------------------------------------------------------------------


def _edit_aggregate(doc: dict[str, Any]) -> None:
    doc["evaluation_results"][0]["score_details"]["score"] = 1.5


def _edit_line(n: int, change: Any) -> Any:
    def edit(lines: list[dict[str, Any]]) -> None:
        change(lines[n - 1])

    return edit


BAD = {
    "aggregate score above max_score": (
        "aggregate", _edit_aggregate,
        "evaluation_results[0].score_details.score: 1.5 is outside [min_score 0, max_score 1] of 'toy_qa' (accuracy)"),
    "min_score above max_score": (
        "aggregate", lambda d: d["evaluation_results"][0]["metric_config"].update(min_score=3),
        "evaluation_results[0].metric_config: min_score 3 is greater than max_score 1"),
    "no lower_is_better": (
        "aggregate", lambda d: d["evaluation_results"][0]["metric_config"].pop("lower_is_better"),
        "evaluation_results[0].metric_config.lower_is_better: missing or not true/false"),
    "two results alike": (
        "aggregate", lambda d: d["evaluation_results"].append(d["evaluation_results"][0]),
        "evaluation_results[5]: the same dataset, evaluation_name and metric as evaluation_results[0]: the two "
        "cannot be told apart"),
    "score true": (
        "aggregate", lambda d: d["evaluation_results"][3]["score_details"].update(score=True),
        "evaluation_results[3].score_details.score: True is not a number"),
    "sample score below min_score": (
        "samples", _edit_line(3, lambda x: x["evaluation"].update(score=-0.5)),
        "line 3.evaluation.score: -0.5 is outside [min_score 0, max_score 1] of 'toy_qa' (accuracy)"),
    "sample of another model": (
        "samples", _edit_line(2, lambda x: x.update(model_id="other/model")),
        "line 2.model_id: 'other/model' is not the model of the evaluation, 'example-org/toy-model-7b'"),
    "sample of another evaluation": (
        "samples", _edit_line(1, lambda x: x.update(evaluation_id="x")),
        "line 1.evaluation_id: 'x' is not the evaluation_id of 0b7e4c1a-2f3d-4e5a-9b8c-7d6e5f4a3b2c.json, "
        "'toy-bench/example-org/toy-model-7b/1717236000'"),
    "unknown evaluation_result_id": (
        "samples", _edit_line(4, lambda x: x.update(evaluation_result_id="toy_qa/f1")),
        "line 4.evaluation_result_id: 'toy_qa/f1' is not an evaluation_result_id of "
        "0b7e4c1a-2f3d-4e5a-9b8c-7d6e5f4a3b2c.json"),
    "metadata that is not text": (
        "samples", _edit_line(1, lambda x: x["metadata"].update(level=3)),
        "line 1.metadata.level: expected text, got int"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD))
def test_broken_files_are_rejected_naming_file_and_field(tmp_path: Path, wh: Warehouse, case: str) -> None:
    which, edit, reason = BAD[case]
    folder = shutil.copytree(TOY_DIR, tmp_path / "toy")
    aggregate, samples_file = folder / TOY.name, folder / TOY_SAMPLES.name
    if which == "aggregate":
        doc = json.loads(aggregate.read_text())
        edit(doc)
        aggregate.write_text(json.dumps(doc))
    else:
        lines = [json.loads(x) for x in samples_file.read_text().splitlines()]
        edit(lines)
        samples_file.write_text("".join(json.dumps(x) + "\n" for x in lines))
    report = ingest(wh, [folder], workers=1)
    # A broken aggregate also rejects the samples read with it, naming the aggregate.
    bad = {o.path: o.reason for o in report.rejected}
    target = aggregate if which == "aggregate" else samples_file
    assert bad[str(target)] == f"{target}: {reason}"
    assert rows(wh, "SELECT DISTINCT format FROM files WHERE status = 'rejected'") == [(NAME,)]


def test_a_line_repeated_is_a_repeated_answer(tmp_path: Path, wh: Warehouse) -> None:
    """Several generations of one item (pass@k) are lines with the same sample_id and result."""
    folder = shutil.copytree(TOY_DIR, tmp_path / "toy")
    lines = (folder / TOY_SAMPLES.name).read_text().splitlines()
    (folder / TOY_SAMPLES.name).write_text("\n".join([*lines, lines[0].replace('"score": 1.0', '"score": 0.0')]))
    load(wh, folder)
    got = rows(wh, "SELECT sample_id, metric, score FROM scores WHERE item_id = 'q1' ORDER BY ALL")
    assert got == [(0, "accuracy", 1.0), (0, "nll", 1.0), (5, "accuracy", 0.0)]


def test_bad_json_line(tmp_path: Path, wh: Warehouse) -> None:
    path = tmp_path / "x_samples.jsonl"
    path.write_bytes(GPT2.read_bytes().splitlines(keepends=True)[0] + b'{"sample_id": \n')
    (offer,) = ingest(wh, [path], workers=1).rejected
    assert offer.reason.startswith(f"{path}: line 2: not valid JSON:")


# ---------------------------------------------------------------------------------------------
# Export and the round trip
# ---------------------------------------------------------------------------------------------


def _validate_export(out: Path) -> tuple[int, int]:
    """Every file valid against the upstream schemas and laid out and linked as the datastore checks."""
    aggregates = sorted(out.rglob("*.json"))
    samples_files = sorted(out.rglob("*.jsonl"))
    aggregate_validator = jsonschema.Draft7Validator(AGGREGATE_SCHEMA)
    instance_validator = jsonschema.Draft7Validator(INSTANCE_SCHEMA)
    for path in [*aggregates, *samples_files]:
        name = path.relative_to(out).as_posix()
        assert re.fullmatch(rf"data/[^/]+/[^/]+/[^/]+/{UUID4}(\.json|_samples\.jsonl)", name), name
    for path in aggregates:
        doc = json.loads(path.read_text())
        assert list(aggregate_validator.iter_errors(doc)) == [], path
        detail = doc.get("detailed_evaluation_results")
        companion = path.with_name(path.stem + "_samples.jsonl")
        assert (detail is not None) == companion.exists()
        if detail is None:
            continue
        data = companion.read_bytes()
        lines = [json.loads(x) for x in data.splitlines()]
        assert detail["file_path"] == companion.relative_to(out).as_posix()
        assert (detail["checksum"], detail["total_rows"]) == (hashlib.sha256(data).hexdigest(), len(lines))
        result_ids = {r["evaluation_result_id"] for r in doc["evaluation_results"]}
        for line in lines:
            assert list(instance_validator.iter_errors(line)) == [], (companion, line)
            assert (line["evaluation_id"], line["model_id"]) == (doc["evaluation_id"], doc["model_info"]["id"])
            assert line["evaluation_result_id"] in result_ids
    return len(aggregates), len(samples_files)


def _attributes(text: str | None) -> str | None:
    """Attributes as EEE metadata carries them back: text values; the keys that are columns dropped."""
    if text is None:
        return None
    kept = {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in json.loads(text).items()
            if k not in ("category", "task", "filter", "split", "epoch")}  # fmt: skip
    return json.dumps(kept, sort_keys=True) if kept else None


SCORE_COLS = ("model, benchmark, category, task, item_id, epoch, filter, split, metric, score, higher_is_better, "
              "item_hash, nullif(question, ''), response, expected, round(response_time_s, 9), attributes")  # fmt: skip
METRIC_COLS = "model, benchmark, category, task, metric, filter, value, stderr, n, higher_is_better"


def _scores(wh: Warehouse) -> Counter[tuple[Any, ...]]:
    return Counter((*r[:-1], _attributes(r[-1])) for r in rows(wh, f"SELECT {SCORE_COLS} FROM samples"))


def test_round_trip(tmp_path: Path) -> None:
    first = open_warehouse(tmp_path / "first", create=True)
    load(first, UPSTREAM, EEE / "handmade", *OTHER_FORMATS)
    out = tmp_path / "out"
    code, stdout, _ = run_cli("export", "--format", "eee", str(out), "-w", str(first.root))
    assert code == 0
    n_aggregates, n_samples = _validate_export(out)
    (n_runs,) = rows(first, "SELECT count(*) FROM runs")[0]
    (n_lines,) = rows(first, "SELECT count(*) FROM scores")[0]
    assert stdout == (f"wrote {n_runs} run(s): {n_aggregates + n_samples} file(s), {n_lines} sample line(s) "
                      f"under {out / 'data'}\n")  # fmt: skip
    assert n_aggregates == n_runs

    second = open_warehouse(tmp_path / "second", create=True)
    report = load(second, out)
    assert report.count("ingested") == n_aggregates + n_samples
    # The same scores, value by value: models, items, metrics, hashes, texts, timings, attributes.
    assert _scores(second) == _scores(first)
    assert rows(second, "SELECT model FROM models ORDER BY model") == rows(first, "SELECT model FROM models ORDER BY 1")
    # The reported metrics as they were, plus a mean (and its standard error) of every group of
    # scores that had no reported row.
    derived = rows(first, f"""
        WITH d AS (
            SELECT run_id, model, benchmark, category, task, metric, filter, avg(score) AS value,
                   stddev_samp(score) / sqrt(count(*)) AS stderr, count(*) AS n, bool_and(higher_is_better) AS hib
            FROM scores GROUP BY ALL
        )
        SELECT {METRIC_COLS.replace("higher_is_better", "hib")} FROM d WHERE NOT EXISTS (
            SELECT 1 FROM metrics AS m WHERE m.run_id = d.run_id AND m.metric = d.metric AND m.category = d.category
            AND m.benchmark IS NOT DISTINCT FROM d.benchmark AND m.task IS NOT DISTINCT FROM d.task
            AND m.filter IS NOT DISTINCT FROM d.filter)
    """)  # fmt: skip
    assert derived
    reported = rows(first, f"SELECT {METRIC_COLS} FROM metrics")
    assert Counter(rows(second, f"SELECT {METRIC_COLS} FROM metrics")) == Counter(reported) + Counter(derived)


def test_export_again_writes_the_same_bytes(tmp_path: Path, wh: Warehouse) -> None:
    load(wh, EEE / "handmade", FIXTURES / "inspect" / "good")
    out = tmp_path / "out"
    assert run_cli("export", "--format", "eee", str(out), "-w", str(wh.root))[0] == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert run_cli("export", "--format", "eee", str(out), "-w", str(wh.root))[0] == 0
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_export_one_model_keeps_what_it_knows(tmp_path: Path, wh: Warehouse) -> None:
    load(wh, UPSTREAM, EEE / "handmade")
    out = tmp_path / "out"
    code, stdout, _ = run_cli("export", "--format", "eee", str(out), "-m", "EXAMPLE-ORG/*", "-w", str(wh.root))
    assert (code, stdout.split(":")[0]) == (0, "wrote 2 run(s)")
    assert _validate_export(out) == (2, 1)
    assert {p.relative_to(out).parts[:4] for p in out.rglob("*.json")} == {
        ("data", "toy-bench", "example-org", "toy-model-7b")}  # fmt: skip
    aggregate = json.loads(next(p for p in out.rglob("*.json") if p.with_name(p.stem + "_samples.jsonl").exists())
                           .read_text())  # fmt: skip
    assert aggregate["model_info"] == {
        "name": "Toy Model 7B", "id": TOY_MODEL, "developer": "example-org",
        "inference_engine": {"name": "vllm", "version": "0.6.0"},
        "additional_details": {"deployment_type": "self_deployed", "model_availability": "open_weights",
                               "params_billions": "7"},
    }  # fmt: skip
    assert aggregate["eval_library"] == {"name": "toy-harness", "version": "0.4.8"}
    assert aggregate["evaluation_timestamp"] == "2024-06-01T10:00:00"
    source = aggregate["source_metadata"]
    assert (source["source_type"], source["evaluator_relationship"], source["source_organization_name"]) == (
        "evaluation_run", "first_party", "evalhouse")  # fmt: skip


def test_hostile_model_names_stay_inside_out(tmp_path: Path, wh: Warehouse) -> None:
    names = ["../../escape", "/abs/path", "CON", "data", "a\x1b[31mb", "..", "x" * 300]
    source = tmp_path / "hostile.jsonl"
    source.write_text("".join(json.dumps({"model": m, "item_id": "q1", "score": 1}) + "\n" for m in names))
    load(wh, source)
    out = tmp_path / "out"
    assert run_cli("export", "--format", "eee", str(out), "-w", str(wh.root))[0] == 0
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p != source and wh.root not in p.parents]
    assert len(written) == 2 * len(names)
    assert all(out / "data" in p.parents and len(p.relative_to(out).parts) == 5 for p in written)
    _validate_export(out)
    ids = {json.loads(p.read_text())["model_info"]["id"] for p in out.rglob("*.json")}
    assert ids == set(names)  # the names themselves are kept exactly, inside the files


def test_export_errors(tmp_path: Path, wh: Warehouse) -> None:
    out = str(tmp_path / "out")
    code, _, err = run_cli("export", "--format", "eee", out, "-w", str(wh.root))
    assert (code, err.splitlines()) == (1, [f"Error: no runs to export in {wh.root}",
                                            "Hint: run `evalhouse ingest PATH` first"])  # fmt: skip
    load(wh, TOY)
    code, _, err = run_cli("export", "--format", "eee", out, "-m", "nobody*", "-w", str(wh.root))
    assert (code, err.splitlines()) == (1, ["Error: no model matches 'nobody*'", "Hint: `evalhouse models` lists them"])
    code, _, err = run_cli("export", out, "-w", str(wh.root))
    assert code == 2 and "Missing option '--format'" in err
    code, _, err = run_cli("export", "--format", "csv", out, "-w", str(wh.root))
    assert code == 2 and "'csv' is not one of 'eee', 'parquet'" in err
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run_cli("export", "--format", "eee", str(blocker / "out"), "-w", str(wh.root))
    assert code == 1 and err.startswith(f"Error: cannot write {blocker / 'out' / 'data'}")
