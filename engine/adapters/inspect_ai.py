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
metric, ``n`` = its ``scored_samples`` (0.3.113+), else distinct sample ids (or ``completed_samples`` /
epochs when the log has no samples).
Incomplete ``.eval`` logs without ``header.json`` are read from ``_journal/start.json``. Since
0.3.206 the zip's members are zstd-compressed (method 93, which Python's ``zipfile`` cannot read
before 3.14): they are decompressed with pyarrow's zstd codec.

``item_hash`` is the SHA-256 of the sample's content as canonical JSON: ``{"input": <the input text,
or the list of its chat messages' contents>, "target": <target>}`` (message ids, which inspect draws
at random per run, and roles are left out), so that two runs whose sample ids agree but whose dataset
changed do not pair. Samples invalidated after the run (``invalidation``, 0.3.154+) are skipped like
errored ones; their count goes to the run's metadata. With several epoch reducers a score appears in
``results.scores`` once per reducer: the reducer is then its ``filter``.

Run settings (``metadata.settings``): the generate config (``eval.model_generate_config``, else
``plan.config`` before 0.3.86), ``model_args``, task version and args, ``epochs``/``epochs_reducer``/
``limit``/``sample_id`` and other limits, the dataset (name, location, sample count, shuffle), the
task's git revision and the versions of ``inspect_ai`` (and ``lighteval``) from ``eval.packages``.

``eval_set``'s ``eval-set.json`` and ``logs.json`` (copies of its logs' headers) are recognised and hold
no scores (``not-results``).

lighteval's inspect backend (``lighteval eval``, ``main_inspect.py``) names its task after the
lighteval task, ``<name>`` or ``<name>_<n>_shots`` (registry name ``lighteval/get_inspect_ai_task``):
such logs get lighteval's benchmark and category (``mmlu:anatomy`` -> ``mmlu``, ``anatomy``) and the
few-shot count in the settings.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from evalhouse.adapters.base import RunBuilder, Source, dumps, obj, opt_str, parse_time, require, to_value
from evalhouse.errors import BadResultFile

NAME = "inspect-ai"
HARNESS = "inspect_ai"
_ZIP = b"PK\x03\x04"
_CENTRAL = b"PK\x01\x02"  # starts every central directory entry
_METADATA_CATEGORY = ("subject", "category")
_ZSTD = 93  # zip compression method of zstd
_LIGHTEVAL_TASK = "lighteval/get_inspect_ai_task"
_LIGHTEVAL_SHOTS = re.compile(r"^(.+)_(\d+)_shots$")
# EvalConfig fields that change which samples were scored or how (not where the run went).
_CONFIG_SETTINGS = ("epochs", "epochs_reducer", "limit", "sample_id", "sample_shuffle", "message_limit",
                    "token_limit", "time_limit", "working_limit", "cost_limit")  # fmt: skip


def detect(source: Source) -> bool:
    if source.data[:4] == _ZIP:
        if source.data.count(_CENTRAL) > source.limits.members:
            return source.name.endswith(".eval")  # read() rejects it, naming the bound
        try:
            with zipfile.ZipFile(io.BytesIO(source.data)) as z:
                names = set(z.namelist())
        except (zipfile.BadZipFile, ValueError, OSError):
            return False
        return "header.json" in names or "_journal/start.json" in names
    if not source.name.endswith(".json") or not source.looks_like_json():
        return False
    doc = source.json
    return _is_log(doc) or _is_eval_set_file(source.name, doc)


def _is_log(doc: Any) -> bool:
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("eval"), dict)
        and "task" in doc["eval"]
        and "model" in doc["eval"]
        and "status" in doc
    )


def _is_eval_set_file(name: str, doc: Any) -> bool:
    """The bookkeeping ``eval_set`` writes beside its logs: ``eval-set.json`` and ``logs.json`` (log headers).

    They hold no scores of their own (``logs.json`` repeats the headers of logs read on their own).
    """
    if not isinstance(doc, dict) or not doc:
        return False
    if name == "eval-set.json":
        return isinstance(doc.get("eval_set_id"), str) and isinstance(doc.get("tasks"), list)
    return name == "logs.json" and all(k.endswith((".eval", ".json")) and _is_log(v) for k, v in doc.items())


def read(source: Source) -> list[RunBuilder]:
    if source.data[:4] != _ZIP and _is_eval_set_file(source.name, source.json):
        return []  # not-results: eval_set's bookkeeping, its logs are read themselves
    samples: Iterable[Any]
    if source.data[:4] == _ZIP:
        header, samples = _read_zip(source)
    else:
        header = source.json
        samples = header.get("samples") or []
        require(isinstance(samples, list), source.path, "samples", "expected a list")
    return [_build(source.path, header, samples)]


def _read_zip(source: Source) -> tuple[dict[str, Any], Iterator[Any]]:
    """The header and the samples (parsed one at a time, as ``_build`` reads them) of a ``.eval`` zip.

    Held to ``source.limits`` before anything is decompressed: the members (every central directory
    entry starts with ``PK\\x01\\x02``, so their count is bounded before zipfile parses them), the
    sum of their declared sizes (each member is then read to exactly its declared size and CRC), and
    no two entries may name the same member or share its bytes (50 entries of one member would be
    read 50 times).
    """
    path, limits = source.path, source.limits
    entries = source.data.count(_CENTRAL)
    if entries > limits.members:
        raise limits.over(path, "(archive)", "members", f"{entries:,} members")
    try:
        z = zipfile.ZipFile(io.BytesIO(source.data))
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise BadResultFile(path, "(file)", f"not a valid .eval zip: {exc}") from None
    infos = z.infolist()
    _check_entries(path, infos)
    source.unpack(sum(i.file_size for i in infos), "(archive)")
    names = z.namelist()
    header_name = "header.json" if "header.json" in names else "_journal/start.json"

    def load(name: str) -> Any:
        try:
            data = _member(z, source.data, name)
        except (zipfile.BadZipFile, KeyError, OSError, NotImplementedError, ValueError, EOFError) as exc:
            raise BadResultFile(path, name, f"cannot be read from the zip: {exc}") from None
        return source.parse_json(data, name)

    header = load(header_name)
    require(isinstance(header, dict), path, header_name, "expected an object")
    header.setdefault("status", "started")
    sample_names = sorted(n for n in names if n.startswith("samples/") and n.endswith(".json"))
    if not sample_names and "summaries.json" in names:
        summaries = load("summaries.json")
        require(isinstance(summaries, list), path, "summaries.json", "expected a list")
        return header, iter(summaries)
    return header, (load(n) for n in sample_names)


def _check_entries(path: str, infos: list[zipfile.ZipInfo]) -> None:
    """Reject a zip with two entries of one name, or entries whose bytes overlap (a zip bomb's trick).

    A member's local header (30 bytes and more) and its compressed bytes must end before the next
    member begins.
    """
    seen: set[str] = set()
    for info in infos:
        if info.filename in seen:
            raise BadResultFile(path, "(archive)", f"member {info.filename!r} appears more than once")
        seen.add(info.filename)
    ordered = sorted(infos, key=lambda i: i.header_offset)
    for a, b in itertools.pairwise(ordered):
        if a.header_offset + 30 + a.compress_size > b.header_offset:
            raise BadResultFile(path, "(archive)", f"members {a.filename!r} and {b.filename!r} share bytes")


def _member(z: zipfile.ZipFile, data: bytes, name: str) -> bytes:
    """A zip member's bytes; zstd members (inspect 0.3.206+) are decompressed with pyarrow.

    Raises ValueError (or zipfile's own errors) for a member that is damaged or fails its CRC.
    """
    info = z.getinfo(name)
    if info.compress_type != _ZSTD:
        return z.read(name)
    import pyarrow as pa

    start = info.header_offset
    if data[start : start + 4] != b"PK\x03\x04":
        raise ValueError("bad local file header")
    name_len, extra_len = struct.unpack("<HH", data[start + 26 : start + 30])
    begin = start + 30 + name_len + extra_len
    raw = data[begin : begin + info.compress_size]
    try:
        out = pa.Codec("zstd").decompress(raw, decompressed_size=info.file_size, asbytes=True)
    except (pa.ArrowException, OSError) as exc:  # pyarrow's errors subclass both
        raise ValueError(f"zstd data is damaged: {exc}") from None
    assert isinstance(out, bytes)
    if zlib.crc32(out) != info.CRC:
        raise ValueError("CRC check failed")
    return out


def item_hash(input: Any, target: Any) -> str:
    """SHA-256 of a sample's content: its input (text, or its messages' contents) and target.

    >>> item_hash("What is 2+2?", "4") == item_hash([{"id": "x1", "role": "user", "content": "What is 2+2?"}], "4")
    False
    >>> item_hash([{"id": "a", "role": "user", "content": "Hi"}], ["4"]) == item_hash(
    ...     [{"id": "b", "role": "user", "content": "Hi"}], ["4"])
    True
    """
    content = [m.get("content") if isinstance(m, dict) else m for m in input] if isinstance(input, list) else input
    canonical = orjson.dumps({"input": content, "target": target}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def _resolve(value: Any, attachments: dict[str, Any]) -> Any:
    """The value with ``attachment://<hash>`` strings (condensed images) replaced by their content."""
    if isinstance(value, str):
        if value.startswith("attachment://"):
            found = attachments.get(value[len("attachment://") :])
            return found if isinstance(found, str) else value
        return value
    if isinstance(value, list):
        return [_resolve(v, attachments) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, attachments) for k, v in value.items()}
    return value


def run_settings(header: dict[str, Any]) -> dict[str, Any]:
    """The settings of a log that decide whether its scores compare with another run's (what the log has).

    >>> run_settings({"eval": {"task_version": 1, "model_generate_config": {"temperature": 0.0},
    ...               "config": {"epochs": 2, "fail_on_error": True}, "packages": {"inspect_ai": "0.3.99"}}})
    {'generate_config': {'temperature': 0.0}, 'task_version': 1, 'config': {'epochs': 2}, 'inspect_ai': '0.3.99'}
    """
    ev, plan = obj(header.get("eval")), obj(header.get("plan"))
    config, dataset, packages = obj(ev.get("config")), obj(ev.get("dataset")), obj(ev.get("packages"))
    generate = ev.get("model_generate_config") if "model_generate_config" in ev else plan.get("config")
    task = ev.get("task")
    shots = _LIGHTEVAL_SHOTS.match(task) if isinstance(task, str) and _is_lighteval(ev) else None
    out = {
        "generate_config": {k: v for k, v in obj(generate).items() if v is not None},
        "model_args": obj(ev.get("model_args")),
        "task_version": ev.get("task_version"),
        "task_args": obj(ev.get("task_args")),
        "task_revision": {k: v for k, v in obj(ev.get("revision")).items() if k in ("origin", "commit", "dirty")},
        "config": {k: config[k] for k in _CONFIG_SETTINGS if config.get(k) is not None},
        "dataset": {k: dataset[k] for k in ("name", "location", "samples", "shuffled") if dataset.get(k) is not None},
        "inspect_ai": packages.get("inspect_ai"),
        "lighteval": packages.get("lighteval"),
        "num_fewshot": (int(shots.group(2)) if shots else 0) if _is_lighteval(ev) else None,
    }
    return {k: v for k, v in out.items() if v is not None and v != {}}


def _is_lighteval(ev: dict[str, Any]) -> bool:
    return ev.get("task_registry_name") == _LIGHTEVAL_TASK


def _task_names(ev: dict[str, Any], task: str) -> tuple[str, str | None]:
    """(benchmark, category or None) of a task: lighteval's split for its logs, else the task's name.

    >>> _task_names({"task_registry_name": _LIGHTEVAL_TASK,
    ...              "task_args": {"lighteval_task_config": "mmlu:anatomy"}}, "mmlu:anatomy_5_shots")
    ('mmlu', 'anatomy')
    >>> _task_names({}, "inspect_evals/gpqa_diamond")
    ('gpqa_diamond', None)
    """
    if _is_lighteval(ev):
        name = obj(ev.get("task_args")).get("lighteval_task_config")
        if not isinstance(name, str) or not name:
            shots = _LIGHTEVAL_SHOTS.match(task)
            name = shots.group(1) if shots else task
        benchmark, _, sub = name.partition(":")
        return benchmark, sub or None
    return task.rsplit("/", 1)[-1], None


def _build(path: str, header: dict[str, Any], samples: Iterable[Any]) -> RunBuilder:
    ev = header.get("eval")
    if not isinstance(ev, dict):
        raise BadResultFile(path, "eval", "missing or not an object")
    task, model = ev.get("task"), ev.get("model")
    if not isinstance(task, str) or not task:
        raise BadResultFile(path, "eval.task", "missing or not text")
    if not isinstance(model, str) or not model:
        raise BadResultFile(path, "eval.model", "missing or not text")
    status = opt_str(header.get("status"), path, "status")
    benchmark, task_category = _task_names(ev, task)
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
    metadata["settings"] = run_settings(header)
    run = RunBuilder(
        "log", model, started_at=parse_time(ev.get("created"), path, "eval.created"), harness=HARNESS,
        status=status, metadata=metadata,
    )  # fmt: skip
    ids: set[str] = set()
    invalidated = 0
    for i, sample in enumerate(samples):
        where = f"samples[{i}]"
        require(isinstance(sample, dict), path, where, "expected an object")
        sid = sample.get("id")
        require(isinstance(sid, (int, str)) and not isinstance(sid, bool), path, f"{where}.id",
                f"{sid!r} is not an id")  # fmt: skip
        epoch = sample.get("epoch", 1)
        require(isinstance(epoch, int) and not isinstance(epoch, bool), path, f"{where}.epoch",
                f"{epoch!r} is not an integer")  # fmt: skip
        if sample.get("invalidation") is not None:
            invalidated += 1
            continue  # invalidated after the run: inspect retries it as it does an error
        scores = _scores(sample.get("scores"), path, f"{where}.scores")
        if not scores:
            continue  # an errored or unscored sample
        ids.add(str(sid))
        meta = obj(sample.get("metadata"))
        category = task_category or next(
            (meta[k] for k in _METADATA_CATEGORY if isinstance(meta.get(k), str) and meta[k]), None
        )
        attachments = obj(sample.get("attachments"))
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
            item_hash=item_hash(_resolve(sample.get("input"), attachments), sample.get("target")),
        )
    if invalidated:
        run.metadata["invalidated_samples"] = invalidated
    results = header.get("results")
    if isinstance(results, dict):
        epochs = config.get("epochs")
        per_epoch = max(epochs, 1) if isinstance(epochs, int) else 1
        completed = results.get("completed_samples")
        n = len(ids) if ids else (completed // per_epoch if isinstance(completed, int) else None)
        entries = results.get("scores") or []
        names = [e.get("name") for e in entries if isinstance(e, dict)]
        for j, entry in enumerate(entries):
            _add_aggregate(run, entry, benchmark, task_category, task, n, names, path, f"results.scores[{j}]")
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


def _add_aggregate(run: RunBuilder, entry: Any, benchmark: str, category: str | None, task: str, n: int | None,
                   names: list[Any], path: str, where: str) -> None:  # fmt: skip
    """One ``results.scores`` entry as a ``metrics`` row: its headline metric, stderr and sample count.

    ``n`` is the entry's ``scored_samples`` (0.3.113+) where given. A score listed once per epoch
    reducer gets the reducer as its ``filter``.
    """
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
    scored = entry.get("scored_samples")
    if isinstance(scored, int) and not isinstance(scored, bool):
        n = scored
    reducer = entry.get("reducer")
    variant = reducer if isinstance(reducer, str) and names.count(name) > 1 else None
    run.add_metric(name, values[headline], benchmark=benchmark, category=category, task=task, filter=variant,  # type: ignore[arg-type]
                   stderr=values.get("stderr"), n=n)  # fmt: skip


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
