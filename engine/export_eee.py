"""Every Eval Ever (schema 0.3.0): ``evalhouse export --format eee OUT``.

Runs are written as the Every Eval Ever datastore lays files out:
``OUT/data/<collection>/<developer>/<model>/<uuid>.json`` per run and, for a run with per-item
scores, ``<uuid>_samples.jsonl`` beside it. The collection is the dataset of the file's first
result (the upstream publisher's rule); developer and model come from ``org/name`` (a name without
an organisation goes under ``unknown``), made safe as path components. The uuid is derived from
the run id, so exporting again rewrites the same files.

Each run's ``metrics`` rows are results as reported. Its per-item scores also get a result per
(benchmark, category, task, filter, metric) that has no reported row: their mean, with the
standard error std / sqrt(n) and n as in ``model_summary``; every samples line points at its
result through ``evaluation_result_id``. Columns with no home in the schema (category where it is
not the evaluation name, a NULL task, filter, split, epoch, attributes) go into the free string
maps ``score_details.details`` and the line's ``metadata``, where the ``every-eval-ever`` adapter
reads them back.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from evalhouse.errors import ExportError
from evalhouse.export import ExportReport

if TYPE_CHECKING:
    import duckdb

SCHEMA_VERSION = "0.3.0"
_SOURCE_TYPES = ("documentation", "evaluation_run")
_RELATIONSHIPS = ("first_party", "third_party", "collaborative", "other")
_DEPLOYMENT = {"deployment_type": ("self_deployed", "externally_managed", "unknown"),
               "model_availability": ("open_weights", "closed_weights", "unknown")}  # fmt: skip
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
_UNSAFE = re.compile(r"[^\w.+-]+")
_FETCH = 10_000


# A result's key: the metrics row it stands for.
Key = tuple[str | None, str | None, str | None, str | None, str]


@dataclass
class _Result:
    key: Key
    value: float
    stderr: float | None
    n: int | None
    higher: bool
    derived: bool

    @property
    def name(self) -> str:
        benchmark, category, task, _, _ = self.key
        return task or category or benchmark or "unknown"

    @property
    def id(self) -> str:
        # Readable and unique within the file: the key itself.
        return json.dumps([*self.key], ensure_ascii=False, separators=(",", ":"))

    def document(self) -> dict[str, Any]:
        benchmark, category, task, filt, metric = self.key
        config: dict[str, Any] = {"metric_id": metric, "metric_name": metric, "lower_is_better": not self.higher}
        if self.derived:
            config["evaluation_description"] = f"Mean of the per-item {metric} scores in the samples file"
        score: dict[str, Any] = {"score": self.value}
        uncertainty: dict[str, Any] = {}
        if self.stderr is not None:
            uncertainty["standard_error"] = {"value": self.stderr, **({"method": "analytic"} if self.derived else {})}
        if self.n is not None:
            uncertainty["num_samples"] = self.n
        if uncertainty:
            score["uncertainty"] = uncertainty
        details = {"category": category if category != self.name else None, "task": "" if task is None else None,
                   "filter": filt}  # fmt: skip
        if any(v is not None for v in details.values()):
            score["details"] = {k: v for k, v in details.items() if v is not None}
        return {
            "evaluation_result_id": self.id,
            "evaluation_name": self.name,
            "source_data": {"dataset_name": benchmark or "unknown", "source_type": "other"},
            "metric_config": config,
            "score_details": score,
        }


def write_eee(con: duckdb.DuckDBPyConnection, out: Path, run_ids: list[str]) -> ExportReport:
    """Write each run as an Every Eval Ever aggregate JSON (and samples JSONL) under ``out/data``."""
    from evalhouse.adapters.every_eval_ever import NAME as EEE_ADAPTER
    from evalhouse.adapters.every_eval_ever import SAMPLES_SUFFIX

    report = ExportReport(out)
    params = {"runs": run_ids}
    runs = con.execute(
        "SELECT run_id, source_format, model, harness, status, started_at, epoch(ingested_at), metadata "
        "FROM runs WHERE list_contains($runs, run_id) ORDER BY run_id", params
    ).fetchall()  # fmt: skip
    results: dict[str, dict[Key, _Result]] = {r[0]: {} for r in runs}
    for run_id, *key, value, stderr, n, higher in con.execute(
        "SELECT run_id, benchmark, category, task, filter, metric, value, stderr, n, higher_is_better "
        "FROM metrics WHERE list_contains($runs, run_id) ORDER BY ALL", params
    ).fetchall():  # fmt: skip
        if tuple(key) in results[run_id]:
            raise ExportError(f"run {run_id} has two metrics rows for {key}: Every Eval Ever cannot tell them apart")
        results[run_id][tuple(key)] = _Result(tuple(key), value, stderr, n, higher, derived=False)  # type: ignore[arg-type]
    for run_id, *key, value, stderr, n, higher in con.execute(
        "SELECT run_id, benchmark, category, task, filter, metric, avg(score), stddev_samp(score) / sqrt(count(*)), "
        "count(*), bool_and(higher_is_better) FROM scores WHERE list_contains($runs, run_id) GROUP BY ALL ORDER BY ALL",
        params,
    ).fetchall():  # fmt: skip
        results[run_id].setdefault(tuple(key), _Result(tuple(key), value, stderr, n, higher, derived=True))  # type: ignore[arg-type]
    samples = _samples_by_run(con, params)
    pending = next(samples, None)
    for run_id, source_format, model, harness, status, started_at, retrieved, metadata in runs:
        lines: list[tuple[Any, ...]] = []
        if pending is not None and pending[0] == run_id:
            lines, pending = pending[1], next(samples, None)
        ordered = sorted(results[run_id].values(), key=lambda r: tuple("" if v is None else v for v in r.key))
        if not ordered:
            report.skipped += 1
            continue
        meta = orjson.loads(metadata) if metadata else {}
        if not isinstance(meta, dict):
            meta = {"metadata": meta}
        preserved = meta if source_format == EEE_ADAPTER else {}
        collection = ordered[0].key[0] or "unknown"
        folder = (
            out / "data" / _component(collection) / _developer(model, preserved) / _component(model.split("/", 1)[-1])
        )
        name = str(uuid.UUID(bytes=hashlib.sha256(run_id.encode()).digest()[:16], version=4))
        evaluation_id = f"{collection}/{model}/{run_id}"
        doc: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "evaluation_id": evaluation_id,
            **({"evaluation_timestamp": started_at.isoformat()} if started_at is not None else {}),
            "retrieved_timestamp": repr(retrieved),
            "source_metadata": _source_metadata(preserved, run_id, source_format, status),
            "eval_library": _eval_library(harness, meta, preserved),
            "model_info": _model_info(model, preserved),
            "evaluation_results": [r.document() for r in ordered],
        }
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if lines:
                samples_path = folder / f"{name}{SAMPLES_SUFFIX}"
                link = {r.key: r for r in ordered}
                checksum, count = _write_samples(samples_path, lines, evaluation_id, model, link)
                doc["detailed_evaluation_results"] = {
                    "format": "jsonl",
                    "file_path": samples_path.relative_to(out).as_posix(),
                    "hash_algorithm": "sha256",
                    "checksum": checksum,
                    "total_rows": count,
                }
                report.files.append(samples_path)
                report.lines += count
            aggregate_path = folder / f"{name}.json"
            _replace(aggregate_path, orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
        except OSError as exc:
            from evalhouse.warehouse import os_reason

            raise ExportError(f"cannot write {folder}: {os_reason(exc)}") from None
        report.files.append(aggregate_path)
        report.runs += 1
    return report


_SAMPLE_COLUMNS = ("run_id", "sample_id", "benchmark", "category", "task", "filter", "metric", "item_id", "epoch",
                   "split", "score", "higher_is_better", "response_time_s", "attributes", "item_hash", "question",
                   "response", "expected")  # fmt: skip


def _samples_by_run(con: duckdb.DuckDBPyConnection, params: dict[str, Any]) -> Iterator[tuple[str, list[Any]]]:
    """(run_id, its sample rows) in run_id order, read in batches so a large warehouse is never whole in memory."""
    cur = con.execute(
        f"SELECT {', '.join(_SAMPLE_COLUMNS)} FROM samples WHERE list_contains($runs, run_id) "
        "ORDER BY run_id, sample_id, metric", params
    )  # fmt: skip
    run_id: str = ""
    rows: list[tuple[Any, ...]] = []
    while batch := cur.fetchmany(_FETCH):
        for row in batch:
            if row[0] != run_id and rows:
                yield run_id, rows
                rows = []
            run_id = row[0]
            rows.append(row)
    if rows:
        yield run_id, rows


def _write_samples(path: Path, rows: list[tuple[Any, ...]], evaluation_id: str, model: str,
                   link: dict[Key, _Result]) -> tuple[str, int]:  # fmt: skip
    """Write one instance line per score row; returns the file's SHA-256 and its line count."""
    digest = hashlib.sha256()
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            for (_, _, benchmark, category, task, filt, metric, item_id, epoch, split, score, higher, seconds,
                 attributes, item_hash, question, response, expected) in rows:  # fmt: skip
                result = link[(benchmark, category, task, filt, metric)]
                meta = {k: v if isinstance(v, str) else orjson.dumps(v).decode()
                        for k, v in (orjson.loads(attributes) if attributes else {}).items()}  # fmt: skip
                meta["category"] = category
                if task is None:
                    meta["task"] = ""
                for k, v in (("filter", filt), ("split", split), ("epoch", epoch or None)):
                    if v is not None:
                        meta[k] = str(v)
                line: dict[str, Any] = {
                    "schema_version": SCHEMA_VERSION,
                    "evaluation_id": evaluation_id,
                    "model_id": model,
                    "evaluation_name": result.name,
                    "evaluation_result_id": result.id,
                    "sample_id": item_id,
                    **({"sample_hash": item_hash} if item_hash is not None else {}),
                    "interaction_type": "single_turn",
                    "input": {"raw": question or "", "reference": [] if expected is None else [expected]},
                    "output": {"raw": [] if response is None else [response]},
                    "answer_attribution": [],
                    # is_correct is required; like upstream's lm-eval converter: the best score on a 0/1 scale.
                    "evaluation": {"score": score, "is_correct": score == (1.0 if higher else 0.0)},
                    **({"performance": {"latency_ms": seconds * 1000}} if seconds is not None else {}),
                    "metadata": meta,
                }
                data = orjson.dumps(line) + b"\n"
                digest.update(data)
                f.write(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return digest.hexdigest(), len(rows)


def _replace(path: Path, data: bytes) -> None:
    """Write a file whole or not at all (a reader never sees half of it)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _strings(value: Any) -> dict[str, str]:
    """A JSON object as the schema's string map (``additional_details``): other values as JSON text."""
    if not isinstance(value, dict):
        return {}
    return {str(k): v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in value.items()}


def _source_metadata(preserved: dict[str, Any], run_id: str, source_format: str, status: str | None) -> dict[str, Any]:
    source = preserved.get("source_metadata")
    source = source if isinstance(source, dict) else {}
    details = _strings(source.get("additional_details"))
    details.update(evalhouse_run_id=run_id, evalhouse_source_format=source_format)
    if status:
        details["evalhouse_status"] = status
    kind, relationship = source.get("source_type"), source.get("evaluator_relationship")
    organisation = source.get("source_organization_name")
    return {
        **{k: source[k] for k in ("source_name", "source_organization_url") if isinstance(source.get(k), str)},
        "source_type": kind if kind in _SOURCE_TYPES else "evaluation_run",
        "source_organization_name": organisation if isinstance(organisation, str) else "unknown",
        "evaluator_relationship": relationship if relationship in _RELATIONSHIPS else "other",
        "additional_details": details,
    }


def _eval_library(harness: str | None, meta: dict[str, Any], preserved: dict[str, Any]) -> dict[str, Any]:
    version = preserved.get("eval_library_version")
    library: dict[str, Any] = {
        "name": harness or "unknown",
        "version": version if isinstance(version, str) else "unknown",
    }
    if not preserved and meta:  # another adapter's run fields
        library["additional_details"] = _strings(meta)
    return library


def _model_info(model: str, preserved: dict[str, Any]) -> dict[str, Any]:
    details = _strings(preserved.get("model_details"))
    for key, allowed in _DEPLOYMENT.items():
        if details.get(key) not in allowed:
            details[key] = "unknown"
    info: dict[str, Any] = {"name": model, "id": model}
    for key, source in (("name", "model_name"), ("developer", "model_developer"),
                        ("inference_platform", "inference_platform")):  # fmt: skip
        if isinstance(preserved.get(source), str):
            info[key] = preserved[source]
    engine = preserved.get("inference_engine")
    if isinstance(engine, dict):
        info["inference_engine"] = {k: v for k, v in engine.items() if k in ("name", "version") and isinstance(v, str)}
    info["additional_details"] = details
    return info


def _developer(model: str, preserved: dict[str, Any]) -> str:
    if "/" in model:
        return _component(model.split("/", 1)[0])
    developer = preserved.get("model_developer")
    return _component(developer if isinstance(developer, str) else "unknown")


def _component(name: str) -> str:
    """A name from the warehouse as one portable path component (names are never trusted as paths).

    Runs of characters other than letters, digits and ``.+-_`` become ``_``; ``/`` is flattened the
    same way; leading and trailing dots go; long names are cut and keep a hash of the whole.

    >>> _component("org/model:q4"), _component(".."), _component("日本語 モデル"), _component("data"), _component("CON")
    ('org_model_q4', 'unknown', '日本語_モデル', 'data_', '_CON')
    """
    text = _UNSAFE.sub("_", name).strip("._ ")
    if not text:
        return "unknown"
    if text == "data":  # the datastore's root name is reserved as a component
        return "data_"
    if text.split(".", 1)[0].upper() in _WINDOWS_RESERVED:
        text = "_" + text
    if len(text.encode()) > 120:
        text = text.encode()[:100].decode(errors="ignore") + "-" + hashlib.sha256(name.encode()).hexdigest()[:12]
    return text
