"""inspect_ai logs: ``.json`` (one object) and ``.eval`` (a zip of ``header.json`` and ``samples/*.json``).

A log is one run: ``eval.model`` on ``eval.task``, started ``eval.created``, with the log's
``status`` recorded (only ``success`` logs are complete; the others are still read so that what
they scored is visible, and ``runs.status`` tells them apart).

Per item, each sample's ``scores`` {scorer: {value, answer, ...}} gives one row per scorer (metric
= scorer name; a dict value gives ``<scorer>/<key>`` rows). Values are normalised: letters C=1,
I=0, P=0.5, N=0, booleans 1/0, numeric strings as numbers; a missing value is skipped, anything
else rejects the file. Pairing key: (task, ``str(id)``, epoch); epochs keep inspect's numbering
(from 1). The category is the sample's ``metadata.subject`` (or ``category``), else the benchmark,
which is the task name without its package (``inspect_evals/gpqa`` -> ``gpqa``).

``results.scores`` become ``metrics`` rows: metric = score name, value = its ``accuracy`` (else
``mean``, else its first metric other than ``stderr``/``std``), ``stderr`` from its ``stderr``
metric, ``n`` = distinct sample ids (or ``completed_samples`` / epochs when the log has no samples).
Incomplete ``.eval`` logs without ``header.json`` are read from ``_journal/start.json``.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

import orjson

from engine.adapters.base import RunBuilder, Source, dumps, obj, opt_str, parse_time, require, to_value
from engine.errors import BadResultFile

NAME = "inspect-ai"
HARNESS = "inspect_ai"
_ZIP = b"PK\x03\x04"
_METADATA_CATEGORY = ("subject", "category")


def detect(source: Source) -> bool:
    if source.data[:4] == _ZIP:
        try:
            with zipfile.ZipFile(io.BytesIO(source.data)) as z:
                names = set(z.namelist())
        except zipfile.BadZipFile:
            return False
        return "header.json" in names or "_journal/start.json" in names
    if not source.name.endswith(".json") or not source.looks_like_json():
        return False
    doc = source.json
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("eval"), dict)
        and "task" in doc["eval"]
        and "model" in doc["eval"]
        and "status" in doc
    )


def read(source: Source) -> list[RunBuilder]:
    if source.data[:4] == _ZIP:
        header, samples = _read_zip(source)
    else:
        header = source.json
        samples = header.get("samples") or []
        require(isinstance(samples, list), source.path, "samples", "expected a list")
    return [_build(source.path, header, samples)]


def _read_zip(source: Source) -> tuple[dict[str, Any], list[Any]]:
    path = source.path
    try:
        z = zipfile.ZipFile(io.BytesIO(source.data))
    except zipfile.BadZipFile as exc:
        raise BadResultFile(path, "(file)", f"not a valid .eval zip: {exc}") from None
    with z:
        names = z.namelist()
        header_name = "header.json" if "header.json" in names else "_journal/start.json"

        def load(name: str) -> Any:
            try:
                return orjson.loads(z.read(name))
            except orjson.JSONDecodeError as exc:
                raise BadResultFile(path, name, f"not valid JSON: {exc}") from None
            except (zipfile.BadZipFile, KeyError, OSError) as exc:
                raise BadResultFile(path, name, f"cannot be read from the zip: {exc}") from None

        header = load(header_name)
        require(isinstance(header, dict), path, header_name, "expected an object")
        header.setdefault("status", "started")
        sample_names = sorted(n for n in names if n.startswith("samples/") and n.endswith(".json"))
        samples = [load(n) for n in sample_names]
        if not samples and "summaries.json" in names:
            samples = load("summaries.json")
            require(isinstance(samples, list), path, "summaries.json", "expected a list")
    return header, samples


def _build(path: str, header: dict[str, Any], samples: list[Any]) -> RunBuilder:
    ev = header.get("eval")
    if not isinstance(ev, dict):
        raise BadResultFile(path, "eval", "missing or not an object")
    task, model = ev.get("task"), ev.get("model")
    if not isinstance(task, str) or not task:
        raise BadResultFile(path, "eval.task", "missing or not text")
    if not isinstance(model, str) or not model:
        raise BadResultFile(path, "eval.model", "missing or not text")
    status = opt_str(header.get("status"), path, "status")
    benchmark = task.rsplit("/", 1)[-1]
    config, dataset = obj(ev.get("config")), obj(ev.get("dataset"))
    metadata = {
        k: v
        for k, v in {
            "task_version": ev.get("task_version"),
            "dataset": dataset.get("name"),
            "epochs": config.get("epochs"),
            "log_version": header.get("version"),
            "eval_id": ev.get("eval_id") or ev.get("run_id"),
        }.items()
        if v is not None
    }
    run = RunBuilder(
        "log", model, started_at=parse_time(ev.get("created"), path, "eval.created"), harness=HARNESS,
        status=status, metadata=metadata,
    )  # fmt: skip
    ids: set[str] = set()
    for i, sample in enumerate(samples):
        where = f"samples[{i}]"
        require(isinstance(sample, dict), path, where, "expected an object")
        sid = sample.get("id")
        require(isinstance(sid, (int, str)) and not isinstance(sid, bool), path, f"{where}.id",
                f"{sid!r} is not an id")  # fmt: skip
        epoch = sample.get("epoch", 1)
        require(isinstance(epoch, int) and not isinstance(epoch, bool), path, f"{where}.epoch",
                f"{epoch!r} is not an integer")  # fmt: skip
        scores = _scores(sample.get("scores"), path, f"{where}.scores")
        if not scores:
            continue  # an errored or unscored sample
        ids.add(str(sid))
        meta = obj(sample.get("metadata"))
        category = next((meta[k] for k in _METADATA_CATEGORY if isinstance(meta.get(k), str) and meta[k]), None)
        attrs = {
            k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool)) and k not in _METADATA_CATEGORY
        }
        output = obj(sample.get("output"))
        elapsed = sample.get("total_time", output.get("time"))
        run.add_answer(
            str(sid),
            scores,
            benchmark=benchmark,
            category=category,
            task=task,
            epoch=epoch,
            response_time_s=to_value(elapsed, path, f"{where}.total_time"),
            attributes=dumps(attrs) if attrs else None,
            question=_input_text(sample.get("input")),
            response=_output_text(output),
            expected=_target_text(sample.get("target")),
        )
    results = header.get("results")
    if isinstance(results, dict):
        epochs = config.get("epochs")
        per_epoch = max(epochs, 1) if isinstance(epochs, int) else 1
        completed = results.get("completed_samples")
        n = len(ids) if ids else (completed // per_epoch if isinstance(completed, int) else None)
        for j, entry in enumerate(results.get("scores") or []):
            _add_aggregate(run, entry, benchmark, task, n, path, f"results.scores[{j}]")
    return run


def _scores(raw: Any, path: str, where: str) -> dict[str, float]:
    if raw is None:
        return {}
    require(isinstance(raw, dict), path, where, "expected an object")
    out: dict[str, float] = {}
    for scorer, score in raw.items():
        require(isinstance(score, dict), path, f"{where}.{scorer}", "expected an object with a value")
        value = score.get("value")
        parts = value.items() if isinstance(value, dict) else [(None, value)]
        for key, v in parts:
            field = f"{where}.{scorer}.value" + (f".{key}" if key else "")
            require(not isinstance(v, (list, dict)), path, field, "a list is not a score")
            number = to_value(v, path, field)
            if number is not None:
                out[f"{scorer}/{key}" if key else scorer] = number
    return out


def _add_aggregate(run: RunBuilder, entry: Any, benchmark: str, task: str, n: int | None, path: str,
                   where: str) -> None:  # fmt: skip
    require(isinstance(entry, dict), path, where, "expected an object")
    name = entry.get("name")
    metrics = entry.get("metrics")
    require(isinstance(name, str) and bool(name), path, f"{where}.name", "missing or not text")
    require(isinstance(metrics, dict), path, f"{where}.metrics", "expected an object")
    values = {}
    for key, m in metrics.items():
        require(isinstance(m, dict) and "value" in m, path, f"{where}.metrics.{key}", "expected {name, value}")
        values[key] = to_value(m["value"], path, f"{where}.metrics.{key}.value")
    headline = next((k for k in ("accuracy", "mean") if k in values), None)
    headline = headline or next((k for k in values if k not in ("stderr", "std")), None)
    if headline is None or values[headline] is None:
        return
    run.add_metric(name, values[headline], benchmark=benchmark, task=task, stderr=values.get("stderr"), n=n)  # type: ignore[arg-type]


def _content_text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        texts = [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return "\n".join(texts) if texts else None
    return None


def _input_text(value: Any) -> str | None:
    if isinstance(value, list):  # chat messages: the last user message is the question
        users = [m for m in value if isinstance(m, dict) and m.get("role") == "user"]
        return _content_text(users[-1].get("content")) if users else None
    return _content_text(value)


def _output_text(output: dict[str, Any]) -> str | None:
    if isinstance(output.get("completion"), str):
        return str(output["completion"])
    choices = output.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        if isinstance(message, dict):
            return _content_text(message.get("content"))
    return None


def _target_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        return value[0]
    return dumps(value)
