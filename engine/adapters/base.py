"""What every adapter shares: the source file it reads and the run it builds.

An adapter module has ``NAME`` (its ``source_format``), ``detect(source) -> bool`` and
``read(source) -> list[RunBuilder]``. ``read`` raises ``BadResultFile`` naming the field at fault;
it returns an empty list for a file that holds no scores (recorded as ``not-results``).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import json
import math
import os
import re
import stat
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, BinaryIO

import orjson

from evalhouse.errors import BadResultFile
from evalhouse.limits import DEFAULT, Limits, json_values
from evalhouse.modelname import split_model
from evalhouse.names import OWN_NAMES_HARNESSES, canonical_row
from evalhouse.schema import SCORES, TEXTS

# A CSV field may be as long as its file (bounded by Limits.file_bytes): the csv module's own limit,
# 128 KB, rejected a long model answer. The setting is the process's; raising it harms no reader.
csv.field_size_limit(2**31 - 1)

# Per-sample columns the builder fills (run_id and model are filled in when the run is written).
SCORE_FIELDS = [c for c in SCORES.names if c not in ("run_id", "model")]
TEXT_FIELDS = [c for c in TEXTS.names if c != "run_id"]
METRIC_FIELDS = ["benchmark", "category", "task", "metric", "filter", "value", "stderr", "n", "higher_is_better"]

# Words that make a metric lower-is-better when they stand as whole words of its name (split on
# anything not a letter or digit, and at camelCase humps): `eval_loss`, `word_perplexity`, `wer`,
# `ErrorRate`; but not `answer_accuracy` or `correct_answer`, which merely contain `wer`/`err`.
# Anything else is higher-is-better unless the source says otherwise or evalhouse.toml's
# [metrics] section sets it.
LOWER_IS_BETTER_WORDS = frozenset(
    ("loss", "nll", "perplexity", "ppl", "error", "errors", "wer", "cer", "ter", "mer", "bpb", "latency",
     "mse", "mae", "rmse", "brier", "ece", "toxicity", "bias")
)  # fmt: skip
# Multi-word names, matched as consecutive words.
LOWER_IS_BETTER_PHRASES = (("bits", "per", "byte"), ("error", "rate"))
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
# A byte that is not a blank of a JSON text (what strip(b" \t\r\n") removes).
_NOT_BLANK = re.compile(rb"[^ \t\r\n]")


def metric_words(metric: str) -> list[str]:
    """The lower-case words of a metric name.

    >>> metric_words("answer_accuracy"), metric_words("EvalLoss"), metric_words("bits_per_byte,none")
    (['answer', 'accuracy'], ['eval', 'loss'], ['bits', 'per', 'byte', 'none'])
    """
    return [w.lower() for w in _WORDS.findall(metric)]


@functools.lru_cache(maxsize=4096)
def higher_is_better(metric: str) -> bool:
    """Direction of a metric judged from the whole words of its name.

    >>> higher_is_better("acc"), higher_is_better("word_perplexity"), higher_is_better("eval_loss")
    (True, False, False)
    >>> higher_is_better("answer_accuracy"), higher_is_better("correct_answer"), higher_is_better("wer")
    (True, True, False)
    """
    words = metric_words(metric)
    if LOWER_IS_BETTER_WORDS.intersection(words):
        return False
    return not any(
        tuple(words[i : i + len(phrase)]) == phrase for phrase in LOWER_IS_BETTER_PHRASES for i in range(len(words))
    )


@contextlib.contextmanager
def open_regular(path: str) -> Iterator[tuple[int, os.stat_result]]:
    """A descriptor of the regular file at ``path`` and its stat, closed after; raises OSError, and
    BadResultFile for anything else found there (opened without blocking: a FIFO put in a file's
    place would block its reader, and the ingest's lock with it, for ever).

    >>> with open_regular("/dev/null") as (fd, st):  # doctest: +ELLIPSIS
    ...     pass
    Traceback (most recent call last):
    evalhouse.errors.BadResultFile: /dev/null: (file): not a regular file
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BadResultFile(path, "(file)", "not a regular file")
        yield fd, st
    finally:
        os.close(fd)


def read_at_most(f: BinaryIO, size: int, limit: int) -> bytes:
    """The bytes of an open file of ``size`` bytes (when stat'ed), at most ``limit + 1`` of them.

    Asking for ``limit + 1`` bytes at once would allocate that much for every file (512 MB); the
    size read first is asked for instead, and more only if the file grew since.

    >>> import io
    >>> read_at_most(io.BytesIO(b"abcdef"), 3, 4), read_at_most(io.BytesIO(b"abc"), 3, 100)
    (b'abcde', b'abc')
    """
    data = f.read(min(size, limit) + 1)
    if len(data) > size and len(data) <= limit:  # it grew: read on, up to the bound
        data += f.read(limit + 1 - len(data))
    return data


def parse_json(data: bytes, path: str, field: str, limits: Limits = DEFAULT) -> Any:
    """``data`` parsed as strict JSON, within ``limits.json_values`` (see engine/limits.py).

    Raises BadResultFile naming ``field`` for text that is not JSON or holds too many values.

    >>> parse_json(b'{"a": [1, 2]}', "f.json", "(file)")
    {'a': [1, 2]}
    >>> parse_json(b'[1, 2, 3]', "f.json", "(file)", Limits(json_values=2))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    evalhouse.errors.BadResultFile: f.json: (file): 3 JSON values, over the limit of 2 ([limits] json_values ...)
    """
    check_json_values(data, path, field, limits)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadResultFile(path, field, f"not valid JSON: {exc}") from None


def check_json_values(data: bytes, path: str, field: str, limits: Limits) -> None:
    """Raise BadResultFile when the JSON text ``data`` holds more values than ``limits`` allow.

    Parsed JSON takes up to ~100 bytes per value (a 490 MB file of ten million tiny items took 8 GB),
    so this bounds a parse's memory; it costs nothing for a file shorter than the bound itself.
    """
    budget = limits.json_values
    if len(data) > budget:
        n = json_values(data, budget)
        if n > budget:
            raise limits.over(path, field, "json_values", f"{n:,} JSON values")


class Source:
    """A file offered to ingest: its path and bytes, parsed lazily, within ``limits``.

    ``dependencies`` records every other file an adapter read to interpret this one (through
    :meth:`sibling`), so that the ledger can re-read this file when one of them changes.
    ``unpacked`` counts the bytes decompressed or decoded from it so far (archive members, Parquet
    columns), held to ``limits.unpacked_bytes`` by :meth:`unpack`.
    """

    def __init__(self, path: str, data: bytes, sha256: str, limits: Limits = DEFAULT) -> None:
        self.path, self.data, self.sha256, self.limits = path, data, sha256, limits
        self.dependencies: dict[str, dict[str, Any]] = {}
        self.unpacked = 0
        self.over_limit = False  # the file itself is past a bound: no adapter may parse it

    def unpack(self, nbytes: int, field: str) -> None:
        """Count ``nbytes`` more decompressed from this file; raise BadResultFile past the bound.

        >>> s = Source("a.eval", b"", "", Limits(unpacked_bytes=100))
        >>> s.unpack(60, "header.json"); s.unpack(60, "samples/1.json")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        evalhouse.errors.BadResultFile: a.eval: samples/1.json: 120 bytes after decompression, over the limit of 100 ...
        """
        self.unpacked += nbytes
        if self.unpacked > self.limits.unpacked_bytes:
            raise self.limits.over(self.path, field, "unpacked_bytes", f"{self.unpacked:,} bytes after decompression")

    def parse_json(self, data: bytes, field: str) -> Any:
        """JSON text from within this file (an archive member), parsed as :func:`parse_json` does."""
        return parse_json(data, self.path, field, self.limits)

    def check_lines(self, text: bytes | str) -> None:
        """Raise BadResultFile when a line-per-row file (JSONL, CSV) has more lines than ``limits.rows``."""
        rows = self.limits.rows
        if len(text) > rows:  # a shorter text cannot hold more lines
            n = (
                text.count(b"\n") + (not text.endswith(b"\n"))
                if isinstance(text, bytes)
                else (text.count("\n") + (not text.endswith("\n")))
            )
            if n > rows:
                raise self.limits.over(self.path, "(file)", "rows", f"{n:,} lines")

    def sibling(self, path: str) -> bytes | None:
        """The bytes of another file this one is read with; None when it is not there or not usable.

        The same checks as a file offered to ingest: a regular file (not a FIFO, a device or a link
        to one: ``/dev/zero`` would grow memory without bound), at most ``limits.file_bytes``, readable,
        and not vanished. Each file read is recorded in ``dependencies`` with its SHA-256, size and
        modification time.

        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> (d / "spec.json").write_bytes(b"{}")
        2
        >>> s = Source(str(d / "x.json"), b"{}", "0" * 64)
        >>> s.sibling(str(d / "spec.json")), s.sibling(str(d / "missing.json")), list(s.dependencies)[0][-9:]
        (b'{}', None, 'spec.json')
        """
        full = os.path.abspath(path)
        limit = self.limits.file_bytes
        try:
            with open_regular(full) as (fd, st):
                if st.st_size > limit:
                    return None
                with os.fdopen(fd, "rb", closefd=False) as f:
                    data = read_at_most(f, st.st_size, limit)
        except (OSError, BadResultFile):
            return None
        if len(data) > limit:
            return None
        self.dependencies[full] = {
            "path": full, "sha256": hashlib.sha256(data).hexdigest(), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
        }  # fmt: skip
        return data

    @cached_property
    def _parsed(self) -> tuple[Any, BadResultFile | None]:
        data = self.data[3:] if self.data.startswith(b"\xef\xbb\xbf") else self.data
        try:
            check_json_values(data, self.path, "(file)", self.limits)
        except BadResultFile as exc:
            self.over_limit = True
            return None, exc
        try:
            return orjson.loads(data), None
        except orjson.JSONDecodeError as exc:
            return None, BadResultFile(self.path, "(file)", f"not valid JSON: {exc}")

    @property
    def json(self) -> Any:
        """The file parsed as strict JSON (a UTF-8 BOM is tolerated); raises BadResultFile.

        The outcome is cached, so every adapter's ``detect`` can ask without parsing again.
        """
        doc, error = self._parsed
        if error is not None:
            raise error
        return doc

    @cached_property
    def json_lenient(self) -> Any:
        """The file as JSON, also when it holds the bare ``NaN``/``Infinity`` Python's json writes.

        For the harnesses known to write them (lm-eval, lighteval): the bare constants become None
        ("missing"), so a NaN can never become a score. Only files strict parsing rejects pay for the
        second parse; anything else raises as :attr:`json` does.
        """
        doc, error = self._parsed
        if error is None:
            return doc
        data = self.data[3:] if self.data.startswith(b"\xef\xbb\xbf") else self.data
        if not self.over_limit and (b"NaN" in data or b"Infinity" in data):
            try:
                return json.loads(data, parse_constant=lambda _: None)
            except (ValueError, RecursionError):
                pass
        raise error

    def jsonl(self, *, nan_as_missing: bool = False) -> Iterator[tuple[int, Any]]:
        """(line number, value) of every non-blank line of a JSON Lines file.

        A line that is not JSON raises BadResultFile naming it. With ``nan_as_missing``, the bare
        ``NaN``/``Infinity`` Python's json writes (a metric that failed) read as None.

        >>> list(Source("x.jsonl", b'{"a": 1}\\n\\n{"a": NaN}\\n', "").jsonl(nan_as_missing=True))
        [(1, {'a': 1}), (3, {'a': None})]
        """
        data = self.data
        self.check_lines(data)
        start, end, i = 0, 0, 0
        while end < len(data):
            # One line at a time (a split would copy the whole file at once).
            end = data.find(b"\n", start)
            end = len(data) if end < 0 else end
            line, start, i = data[start:end], end + 1, i + 1
            if not line or line.isspace():
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                if not nan_as_missing:
                    raise BadResultFile(self.path, f"line {i}", f"not valid JSON: {exc}") from None
                value = self._lenient_line(line, i, exc)
            yield i, value

    def _lenient_line(self, line: bytes, i: int, exc: Exception) -> Any:
        try:
            return json.loads(line, parse_constant=lambda _: None)
        except ValueError:
            raise BadResultFile(self.path, f"line {i}", f"not valid JSON: {exc}") from None

    @cached_property
    def _first_span(self) -> tuple[int, int]:
        """Where the first line starts (past a BOM and blanks) and ends (its newline, or the end)."""
        data = self.data
        start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
        while start < len(data) and data[start] in b" \t\r\n":
            start += 1
        end = data.find(b"\n", start)
        return start, len(data) if end < 0 else end

    @cached_property
    def first_line(self) -> bytes:
        """The first line, without a BOM or leading blanks (found without copying the whole file)."""
        start, end = self._first_span
        return self.data[start:end]

    def one_line_lacks(self, keys: Iterable[str]) -> bool:
        """Whether the file is one line of JSON that does not parse as an object holding all ``keys``.

        The JSONL formats look for their keys in the first line's bytes, and a JSON writer without
        indentation puts a whole file on that line: scanning it for each key cost more than parsing it
        (0.15 s per 1,000 files of 100 KB). Here the parse :attr:`json` caches answers instead, and a
        key missing from the object is missing however its bytes are spelt. False (ask the bytes) for
        a file of more lines, or too large to parse before its values are counted.

        >>> one, two = Source("a.json", b'{"a": 1}\\n', ""), Source("b.json", b'{"a": 1}\\n{"a": 2}', "")
        >>> one.one_line_lacks(["a"]), one.one_line_lacks(["b"]), two.one_line_lacks(["b"])
        (False, True, False)
        """
        data = self.data
        end = self._first_span[1]
        # (searched in place: stripping the rest would copy a JSONL file whole, for each adapter that asks)
        if len(data) > self.limits.json_values or _NOT_BLANK.search(data, end):
            return False
        # Only blanks around the line: the file parses exactly as its first line does.
        doc, error = self._parsed
        return error is not None or not isinstance(doc, dict) or not all(k in doc for k in keys)

    @property
    def name(self) -> str:
        """The file's base name (adapters may use it as a hint, never as the only evidence)."""
        return os.path.basename(self.path)

    def looks_like_json(self) -> bool:
        head = self.data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
        return head[:1] in (b"{", b"[")


def parse_time(value: Any, path: str, field: str) -> datetime | None:
    """An ISO-8601 string or Unix seconds as a naive datetime; None for None/''."""
    if value is None or value == "":
        return None
    if type(value) is str:
        try:
            ts = datetime.fromisoformat(value)
            if ts.tzinfo is None:  # the common case: naive local time, kept as given
                return ts
        except ValueError:
            pass
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, (int, float)):
            return datetime.fromtimestamp(value, tz=UTC).replace(tzinfo=None) if math.isfinite(value) else None
        ts = datetime.fromisoformat(str(value))
        return ts.replace(tzinfo=None) if ts.tzinfo is None else ts.astimezone(tz=None).replace(tzinfo=None)
    except (TypeError, ValueError, OverflowError, OSError):
        raise BadResultFile(path, field, f"{value!r} is not a time (ISO 8601 or Unix seconds)") from None


def to_score(value: Any, path: str, field: str) -> float:
    """A finite float from a number or a bool; anything else is a BadResultFile."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        score = float(value)
        if math.isfinite(score):
            return score
        raise BadResultFile(path, field, f"{value!r} is not a finite number")
    raise BadResultFile(path, field, f"{value!r} is not a number")


# inspect_ai's letter grades: correct, incorrect, partial, no answer.
_LETTERS = {"C": 1.0, "I": 0.0, "P": 0.5, "N": 0.0}


def to_value(value: Any, path: str, field: str) -> float | None:
    """A score from the many spellings harnesses use; None means "missing" (never NaN).

    Numbers and booleans as in :func:`to_score`; inspect letters C=1, I=0, P=0.5, N=0; numeric
    strings; None, NaN and "N/A" are missing. Anything else is a BadResultFile.

    >>> [to_value(v, "f", "x") for v in ("C", "P", "0.25", True, None, float("nan"), "N/A")]
    [1.0, 0.5, 0.25, 1.0, None, None, None]
    """
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, str):
        text = value.strip()
        if text in _LETTERS:
            return _LETTERS[text]
        if text.lower() in ("true", "false"):
            return 1.0 if text.lower() == "true" else 0.0
        if text in ("", "N/A", "NaN", "nan", "-"):
            return None
        try:
            number = float(text)
        except ValueError:
            raise BadResultFile(path, field, f"{value!r} is not a score (a number, true/false or C/I/P/N)") from None
        return number if math.isfinite(number) else None
    return to_score(value, path, field)


def unit_score(value: Any, path: str, field: str) -> float:
    """A score that must lie in 0..1 (the SO8T shapes' documented range).

    >>> unit_score(-0.0, "f", "score"), unit_score(True, "f", "score")
    (0.0, 1.0)
    """
    score = to_score(value, path, field)
    if not 0.0 <= score <= 1.0:
        raise BadResultFile(path, field, f"{value!r} is outside the score range 0..1")
    return score + 0.0


def to_float_or_none(value: Any, path: str, field: str) -> float | None:
    if value is None:
        return None
    return to_score(value, path, field) if not isinstance(value, bool) else float(value)


def question_key(text: str) -> str:
    """Item key for sources that only have the question text."""
    return "q:" + hashlib.sha1(text.strip().encode("utf-8")).hexdigest()[:16]


def scalar_attributes(item: dict[str, Any], used: frozenset[str]) -> str | None:
    """The item's leftover scalar fields as JSON text (None if there are none)."""
    rest = {k: v for k, v in item.items() if k not in used and (v is None or isinstance(v, (str, int, float, bool)))}
    return orjson.dumps(rest, option=orjson.OPT_SORT_KEYS).decode() if rest else None


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY).decode()


class RunBuilder:
    """Collects one run's rows column by column (cheaper than a dict per row).

    Every row's benchmark and category are made canonical here (``evalhouse.names.canonical_row``:
    ``hendrycksTest-anatomy`` is mmlu/anatomy whatever the adapter), the source's spelling kept in
    ``task``; a harness in ``OWN_NAMES_HARNESSES`` keeps its names as given.
    """

    def __init__(
        self,
        key: str,
        model: str,
        *,
        started_at: datetime | None = None,
        metadata: dict[str, Any] | None = None,
        harness: str | None = None,
        status: str | None = None,
        model_base: str | None = None,
        quantization: str | None = None,
    ) -> None:
        self.key, self.model = key, model
        base, quant = split_model(model)
        self.model_base = model_base or base
        self.quantization = quantization if model_base else quant
        self.started_at, self.harness, self.status = started_at, harness, status
        self.metadata = metadata or {}
        self.scores: dict[str, list[Any]] = {f: [] for f in SCORE_FIELDS}
        self.texts: dict[str, list[Any]] = {f: [] for f in TEXT_FIELDS}
        self.metrics: dict[str, list[Any]] = {f: [] for f in METRIC_FIELDS}
        self._answers = 0
        self._canonical = harness not in OWN_NAMES_HARNESSES

    def _names(
        self, benchmark: str | None, category: str | None, task: str | None
    ) -> tuple[str | None, str, str | None]:
        """(benchmark, category, task) of a row as stored: canonical, the category never NULL."""
        if self._canonical:
            benchmark, category, task = canonical_row(benchmark, category, task)
        return benchmark, category or benchmark or "unknown", task

    def add_answer(
        self,
        item_id: str,
        scores: dict[str, float],
        *,
        benchmark: str | None = None,
        category: str | None = None,
        task: str | None = None,
        epoch: int = 0,
        filter: str | None = None,
        split: str | None = None,
        higher: dict[str, bool] | None = None,
        response_time_s: float | None = None,
        tokens_per_sec: float | None = None,
        timestamp: datetime | None = None,
        attributes: str | None = None,
        question: str | None = None,
        response: str | None = None,
        expected: str | None = None,
        item_hash: str | None = None,
    ) -> None:
        """Add one answer (one item, one epoch) with one score per metric.

        ``item_hash`` is the item's content hash where the source gives one (see the schema).
        """
        sample_id = self._answers
        self._answers += 1
        benchmark, cat, task = self._names(benchmark, category, task)
        s = self.scores
        for metric, value in scores.items():
            s["sample_id"].append(sample_id)
            s["benchmark"].append(benchmark)
            s["category"].append(cat)
            s["task"].append(task)
            s["item_id"].append(item_id)
            s["epoch"].append(epoch)
            s["filter"].append(filter)
            s["split"].append(split)
            s["metric"].append(metric)
            s["score"].append(value)
            s["higher_is_better"].append(higher[metric] if higher and metric in higher else higher_is_better(metric))
            s["response_time_s"].append(response_time_s)
            s["tokens_per_sec"].append(tokens_per_sec)
            s["timestamp"].append(timestamp)
            s["attributes"].append(attributes)
            s["item_hash"].append(item_hash)
        if question is not None or response is not None or expected is not None:
            t = self.texts
            t["sample_id"].append(sample_id)
            t["question"].append(question)
            t["response"].append(response)
            t["expected"].append(expected)

    def add_answers(
        self,
        item_ids: list[str],
        metric: str,
        scores: list[float],
        *,
        benchmark: list[str | None],
        category: list[str | None],
        response_time_s: list[float | None],
        timestamp: list[datetime | None],
        attributes: list[str | None],
        question: list[str | None],
        response: list[str | None],
        expected: list[str | None],
    ) -> None:
        """Add many answers with one metric each, a column at a time: what ``add_answer`` does per item.

        Adapters whose files are well-formed in bulk use this to avoid a Python call per item.
        """
        n = len(item_ids)
        start = self._answers
        self._answers += n
        nones: list[None] = [None] * n
        s = self.scores
        tasks: list[str | None] = [None] * n
        if self._canonical:
            # A run has few distinct (benchmark, category) pairs: each is made canonical once, and the
            # columns are looked up in C (a Python call per item was a fifth of this adapter's time).
            pairs = list(zip(benchmark, category, strict=True))
            names = {pair: self._names(pair[0], pair[1], None) for pair in set(pairs)}
            benchmark, category, tasks = (
                list(map({p: n[k] for p, n in names.items()}.__getitem__, pairs)) for k in range(3)
            )
        else:
            category = [c or b or "unknown" for c, b in zip(category, benchmark, strict=True)]
        s["sample_id"].extend(range(start, start + n))
        s["benchmark"].extend(benchmark)
        s["category"].extend(category)
        s["task"].extend(tasks)
        s["item_id"].extend(item_ids)
        s["epoch"].extend([0] * n)
        s["filter"].extend(nones)
        s["split"].extend(nones)
        s["metric"].extend([metric] * n)
        s["score"].extend(scores)
        s["higher_is_better"].extend([higher_is_better(metric)] * n)
        s["response_time_s"].extend(response_time_s)
        s["tokens_per_sec"].extend(nones)
        s["timestamp"].extend(timestamp)
        s["attributes"].extend(attributes)
        s["item_hash"].extend(nones)
        t = self.texts
        # Every answer has text when one of its columns has no gap (checked in C, not per item).
        every = None not in question or None not in response or None not in expected
        keep = [] if every else [i for i in range(n) if question[i] is not None or response[i] is not None
                                 or expected[i] is not None]  # fmt: skip
        if every or len(keep) == n:
            t["sample_id"].extend(range(start, start + n))
            t["question"].extend(question)
            t["response"].extend(response)
            t["expected"].extend(expected)
        else:
            t["sample_id"].extend([start + i for i in keep])
            t["question"].extend([question[i] for i in keep])
            t["response"].extend([response[i] for i in keep])
            t["expected"].extend([expected[i] for i in keep])

    def add_metric(
        self,
        metric: str,
        value: float,
        *,
        benchmark: str | None,
        category: str | None = None,
        task: str | None = None,
        filter: str | None = None,
        stderr: float | None = None,
        n: int | None = None,
        higher: bool | None = None,
    ) -> None:
        """Add one aggregate-only result."""
        benchmark, category, task = self._names(benchmark, category, task)
        m = self.metrics
        m["benchmark"].append(benchmark)
        m["category"].append(category)
        m["task"].append(task)
        m["metric"].append(metric)
        m["filter"].append(filter)
        m["value"].append(value)
        m["stderr"].append(stderr)
        m["n"].append(n)
        m["higher_is_better"].append(higher if higher is not None else higher_is_better(metric))

    def add_metric_entry(
        self,
        entry: dict[str, Any],
        path: str,
        where: str,
        *,
        benchmark: str | None,
        category: str | None = None,
        task: str | None = None,
    ) -> None:
        """Add every ``{metric: value, metric_stderr: value}`` pair of a harness's per-task entry.

        Missing values ("N/A", NaN, None) are skipped; a metric's stderr is read from its twin key.
        """
        for metric, raw in entry.items():
            if metric.endswith("_stderr"):
                continue
            value = to_value(raw, path, f"{where}.{metric}")
            if value is None:
                continue
            stderr = to_value(entry.get(f"{metric}_stderr"), path, f"{where}.{metric}_stderr")
            self.add_metric(metric, value, benchmark=benchmark, category=category, task=task, stderr=stderr)

    @property
    def n_answers(self) -> int:
        return self._answers

    @property
    def n_scores(self) -> int:
        return len(self.scores["sample_id"])

    @property
    def n_metrics(self) -> int:
        return len(self.metrics["metric"])


def obj(value: Any) -> dict[str, Any]:
    """The value if it is a JSON object, else an empty one (for optional nested sections).

    >>> obj({"a": 1}), obj(None), obj([1])
    ({'a': 1}, {}, {})
    """
    return value if isinstance(value, dict) else {}


def require(cond: bool, path: str, field: str, reason: str) -> None:
    """Raise BadResultFile(path, field, reason) unless cond holds."""
    if not cond:
        raise BadResultFile(path, field, reason)


def opt_str(value: Any, path: str, field: str) -> str | None:
    """A string field that may be missing; numbers are accepted and written as text."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise BadResultFile(path, field, f"expected text, got {type(value).__name__}")
