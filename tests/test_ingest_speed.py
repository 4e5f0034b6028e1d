"""The shortcuts that make ingest fast answer exactly as the plain code did.

- The JSONL formats' key test on a one-line file answers from the parsed object (``one_line_lacks``)
  as its byte scan did.
- The so8t-results column reader, now reading its columns without a Python step per item, still
  builds the item reader's runs, or declines.
- A new file that cannot repeat any content is read once (no hash pass): the ledger still holds the
  hash of its bytes, and copies are still found.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson
import pytest

from evalhouse.adapters import every_eval_ever, lm_eval_samples, open_format, so8t_results
from evalhouse.adapters.base import Source, parse_time
from evalhouse.ingest import ingest
from evalhouse.warehouse import Warehouse, connect

# ---------------------------------------------------------------------------------------------
# Detection: the byte scans the shortcut replaces, as they were written
# ---------------------------------------------------------------------------------------------


def _lm_eval_samples_by_bytes(source: Source) -> bool:
    first = source.first_line
    if first[:1] == b"{":
        if b'"doc_id"' not in first:
            return False
        try:
            return lm_eval_samples.looks_like_sample(orjson.loads(first))
        except orjson.JSONDecodeError:
            return False
    return lm_eval_samples.detect(source)  # (the other branches are unchanged)


def _open_format_by_bytes(source: Source) -> bool:
    first = source.first_line
    if source.name.lower().endswith(".csv"):
        return open_format.detect(source)
    if first[:1] != b"{" or any(b'"%s"' % key.encode() not in first for key in open_format._REQUIRED):
        return False
    try:
        obj = orjson.loads(first)
    except orjson.JSONDecodeError:
        return False
    return isinstance(obj, dict) and obj.keys() >= open_format._REQUIRED


def _eee_by_bytes(source: Source) -> bool:
    first = source.first_line
    if first[:1] != b"{":
        return False
    keys = every_eval_ever._SAMPLE_KEYS
    if all(b'"%s"' % k.encode() in first for k in keys):
        try:
            line = orjson.loads(first)
        except orjson.JSONDecodeError:
            line = None
        if isinstance(line, dict) and all(k in line for k in keys) and isinstance(line["evaluation"], dict):
            return True
    if b'"evaluation_results"' not in source.data or b'"model_info"' not in source.data:
        return False
    try:
        doc = orjson.loads(source.data.removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError:
        return False
    return isinstance(doc, dict) and isinstance(doc.get("evaluation_results"), list) and "model_info" in doc


ONE_LINE = [
    b'{"doc_id": 0, "resps": [["a"]], "acc": 1.0}',
    b'{"doc_id": 0, "resps": [["a"]], "acc": 1.0}\n',
    b'{"doc_id": 0, "resps": [["a"]], "acc": 1.0}\r\n\n  \n',
    b'\xef\xbb\xbf  {"doc_id": 0, "resps": []}',
    b'{"doc\\u005fid": 0, "resps": []}',  # the key spelt with an escape: the bytes never had it
    b'{"note": "\\"doc_id\\"", "resps": []}',  # the key's bytes inside a string
    b'{"metadata": {"doc_id": 1}, "results": []}',  # a nested key
    b'{"doc_id": NaN, "resps": []}',  # not strict JSON
    b'{"doc_id": 0, "resps": [] ',  # not JSON at all
    b'{"doc_id": 0, "resps": []}\x0b',  # a vertical tab after it: not JSON whitespace
    b'{"doc_id": 0, "resps": []}\n{"doc_id": 1, "resps": []}\n',  # two lines: the bytes decide
    b'{"sample_id": "s", "evaluation_id": "e", "model_id": "m", "evaluation": {"score": 1}}',
    b'{"sample_id": "s", "evaluation_id": "e", "model_id": "m", "evaluation": 1}',
    b'{"evaluation_results": [], "model_info": {"id": "m"}}',
    b'{"evaluation_results": {}, "model_info": {"id": "m"}}',
    b'{"model": "m", "item_id": "q1", "score": 1, "benchmark": "b"}',
    b'{"model": "m", "item_id": "q1", "score": 1, "benchmark": "b", "extra": [1, 2]}',
    b'["doc_id", "model", "item_id"]',
]


@pytest.mark.parametrize("data", ONE_LINE)
@pytest.mark.parametrize("name", ["x.json", "samples_t_2024-05-29T10-20-00.000000.jsonl"])
def test_one_line_detection_answers_as_the_byte_scan_did(data: bytes, name: str) -> None:
    for detect, by_bytes in (
        (lm_eval_samples.detect, _lm_eval_samples_by_bytes),
        (open_format.detect, _open_format_by_bytes),
        (every_eval_ever.detect, _eee_by_bytes),
    ):
        assert detect(Source(name, data, "")) == by_bytes(Source(name, data, "")), (detect.__module__, data)


def test_one_line_lacks_asks_the_bytes_of_a_file_too_large_to_parse_first() -> None:
    from evalhouse.limits import Limits

    data = b'{"a": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}'
    assert Source("x.json", data, "").one_line_lacks(["b"]) is True
    assert Source("x.json", data, "", Limits(json_values=8)).one_line_lacks(["b"]) is False


# ---------------------------------------------------------------------------------------------
# The so8t-results column reader
# ---------------------------------------------------------------------------------------------


def _state(runs: Any) -> list[tuple[object, ...]]:
    return [(r.key, r.model, r.model_base, r.quantization, r.started_at, r.metadata, r.scores, r.texts, r.metrics,
             r.n_answers) for r in runs]  # fmt: skip


def _item(i: int, **change: object) -> dict[str, object]:
    item: dict[str, object] = {"model": "m-7b-q4_k_m", "category": "math", "test_name": f"t{i}",
                               "question": f"q{i}?", "response": f"r{i}", "expected_answer": f"e{i}",
                               "score": 0.5, "response_time": 1.25, "timestamp": f"2025-03-01T10:00:0{i % 10}",
                               "evaluation_type": "exact"}  # fmt: skip
    item.update(change)
    return {k: v for k, v in item.items() if v is not _DROP}


_DROP = object()

ITEMS = {
    "one layout": [_item(i) for i in range(4)],
    "several layouts": [_item(0), _item(1, evaluation_type=_DROP), _item(2, extra=3, flag=True), _item(3)],
    "no leftover keys": [_item(i, evaluation_type=_DROP) for i in range(3)],
    "a leftover that is not a scalar": [_item(0, tags=["a"]), _item(1, tags=None), _item(2, tags="x")],
    "ids from task_index and the question": [
        _item(0, test_name=None, benchmark="b", task_index=4),
        _item(1, test_name="", question="which?"),
        _item(2),
    ],
    "gaps in times": [_item(0, response_time=None, timestamp=None), _item(1, timestamp=""), _item(2, response_time=2)],
    "int and negative-zero scores": [_item(0, score=1), _item(1, score=0), _item(2, score=-0.0)],
    "benchmark, domain and neither": [_item(0, benchmark="", domain="d"), _item(1, benchmark="b"), _item(2)],
    "an empty benchmark and no domain": [_item(0, benchmark=""), _item(1, benchmark="b")],
    "two models": [_item(0), _item(1, model="other"), _item(2)],
    "text with escapes": [_item(0, question='a "quoted"\nline\t\u00e9\u2028'), _item(1, evaluation_type='é"\\')],
}


@pytest.mark.parametrize("items", list(ITEMS.values()), ids=list(ITEMS))
def test_column_reader_builds_the_item_readers_runs(items: list[dict[str, object]]) -> None:
    started = parse_time("2025-03-01T09:00:00", "r.json", "metadata.timestamp")
    fast = so8t_results._read_columns(items, started, {"models": ["m"]})
    slow = so8t_results._read_items("r.json", items, started, {"models": ["m"]})
    assert fast is not None
    assert _state(fast) == _state(slow)


DECLINED = {
    "a NaN score": [_item(0, score=float("nan"))],
    "a score above 1": [_item(0, score=1.5)],
    "a huge int score": [_item(0, score=10**30)],
    "a bool score": [_item(0, score=True)],
    "an infinite time": [_item(0, response_time=float("inf"))],
    "a NaN time beside a gap": [_item(0, response_time=float("nan")), _item(1, response_time=None)],
    "a time as text": [_item(0, response_time="1.5")],
    "an empty model": [_item(0, model="")],
    "no results": [],
}


@pytest.mark.parametrize("items", list(DECLINED.values()), ids=list(DECLINED))
def test_column_reader_declines_what_the_item_reader_must_judge(items: list[dict[str, object]]) -> None:
    assert so8t_results._read_columns(items, None, {}) is None


# ---------------------------------------------------------------------------------------------
# Read once
# ---------------------------------------------------------------------------------------------


def _doc(i: int, items: int = 1) -> bytes:
    return orjson.dumps({"metadata": {"timestamp": "2025-03-01T09:00:00"},
                         "results": [_item(j, model=f"m{i}") for j in range(items)]})  # fmt: skip


def _ledger(wh: Warehouse) -> dict[str, tuple[str, str | None]]:
    rows = connect(wh).execute("SELECT path, status, sha256 FROM files").fetchall()
    return {Path(p).name: (s, h) for p, s, h in rows}


def test_files_read_once_are_recorded_with_the_hash_of_their_bytes(wh: Warehouse, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    files = {
        "a_results.json": _doc(1),
        "b_results.json": _doc(2, items=3),  # sizes no other file has: read once
        "bad_results.json": b'{"metadata": {}, "results": [{"model": "m", "score": "high"}]}',
        "c_results.json": _doc(3, items=2),
        "copy_results.json": _doc(3, items=2),  # the same bytes as c: hashed first, a duplicate
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    report = ingest(wh, [folder], workers=1)
    ledger = _ledger(wh)
    assert {name: status for name, (status, _sha) in ledger.items()} == {
        "a_results.json": "ingested", "b_results.json": "ingested", "bad_results.json": "rejected",
        "c_results.json": "ingested", "copy_results.json": "duplicate",
    }  # fmt: skip
    assert {name: sha for name, (_status, sha) in ledger.items()} == {
        name: hashlib.sha256(data).hexdigest() for name, data in files.items()
    }
    assert report.rows == 1 + 3 + 2
    # Unchanged on the next ingest, whether it was read once or hashed first.
    again = ingest(wh, [folder], workers=1)
    assert sorted(o.status for o in again.offers) == ["rejected"] + ["unchanged"] * 4


def _same_size(doc: bytes, size: int) -> bytes:
    """``doc`` (a JSON object) padded with blanks before its closing brace to ``size`` bytes."""
    assert doc.endswith(b"}") and len(doc) <= size
    return doc[:-1] + b" " * (size - len(doc)) + b"}"


def test_files_of_one_size_are_hashed_first_only_when_their_ends_match(
    wh: Warehouse, tmp_path: Path, hashed_files: list[str]
) -> None:
    # Worked out by hand: a and d differ at their ends (each has its own model and item count in
    # its first 4 KB): read once. c and its copy have the same bytes, and m the same ends as c
    # with one different byte in its middle: all three hashed first; the copy is a duplicate, m is
    # new content.
    from evalhouse import ingest as ingest_module

    folder = tmp_path / "in"
    folder.mkdir()
    size = 3 * ingest_module.ENDS_BYTES
    c = bytearray(_same_size(_doc(3, items=2), size))
    middle = bytearray(c)
    middle[size // 2] = ord("\t")  # (a blank for a blank: the same JSON, other bytes)
    assert middle[size // 2 - 1 : size // 2 + 2] == b" \t " and bytes(middle) != bytes(c)
    files = {
        "a_results.json": _same_size(_doc(1, items=1), size),
        "d_results.json": _same_size(_doc(4, items=2), size),
        "c_results.json": bytes(c),
        "copy_results.json": bytes(c),
        "m_results.json": bytes(middle),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    report = ingest(wh, [folder], workers=1)
    assert sorted(hashed_files) == ["c_results.json", "copy_results.json", "m_results.json"]
    ledger = _ledger(wh)
    assert {name: status for name, (status, _sha) in ledger.items()} == {
        "a_results.json": "ingested", "d_results.json": "ingested", "c_results.json": "ingested",
        "copy_results.json": "duplicate", "m_results.json": "ingested",
    }  # fmt: skip
    assert {name: sha for name, (_status, sha) in ledger.items()} == {
        name: hashlib.sha256(data).hexdigest() for name, data in files.items()
    }
    assert report.rows == 1 + 2 + 2 + 2  # (m's answers are c's, under its own content's runs)


def test_a_new_file_of_a_size_seen_before_is_hashed_first(
    wh: Warehouse, tmp_path: Path, hashed_files: list[str]
) -> None:
    # p was ingested before; it is rewritten and a new file q gets p's new bytes. q's ends differ
    # from every other new file's (there is none), but p, read before, has its size: q is hashed
    # first and found to be p's copy, not stored twice.

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "p_results.json").write_bytes(_doc(1))
    ingest(wh, [folder], workers=1)
    new = _doc(2, items=4)
    (folder / "p_results.json").write_bytes(new)
    (folder / "q_results.json").write_bytes(new)
    report = ingest(wh, [folder], workers=1)
    assert sorted(hashed_files) == ["p_results.json", "q_results.json"]
    assert sorted((Path(o.path).name, o.status) for o in report.offers) == [
        ("p_results.json", "ingested"), ("q_results.json", "duplicate"),
    ]  # fmt: skip
    assert report.rows == 4


def test_a_file_unreadable_at_the_probe_keeps_its_size_in_the_hash_pass(
    wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hashed_files: list[str]
) -> None:
    # a, b and c have one size and ends that differ; a cannot be read when the ends are probed
    # (it may be by the time b is parsed, and hold b's bytes then): b and c are hashed first too.
    from evalhouse import ingest as ingest_module

    folder = tmp_path / "in"
    folder.mkdir()
    size = 3 * ingest_module.ENDS_BYTES
    for i, name in enumerate(("a", "b", "c")):
        (folder / f"{name}_results.json").write_bytes(_same_size(_doc(i, items=1 + i), size))
    plain_ends = ingest_module._ends
    unreadable = str(folder / "a_results.json")
    monkeypatch.setattr(ingest_module, "_ends", lambda path: None if path == unreadable else plain_ends(path))
    phases: list[tuple[str, int, int]] = []
    report = ingest(wh, [folder], workers=1, progress=lambda *p: phases.append(p))
    assert sorted(hashed_files) == ["a_results.json", "b_results.json", "c_results.json"]
    assert report.count("ingested") == 3
    assert ("probe", 3, 3) in phases  # (the probe of the ends tells its progress)


def test_a_fifo_put_in_a_files_place_after_the_walk_is_rejected_not_waited_for(
    wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import threading

    from evalhouse import ingest as ingest_module

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a_results.json").write_bytes(_doc(1))
    (folder / "b_results.json").write_bytes(_doc(2))
    ingest(wh, [folder], workers=1)
    (folder / "b_results.json").write_bytes(_doc(3))  # changed since: hashed before it is parsed
    stat_check = ingest_module._unchanged_by_stat

    def then_a_fifo(offers: Any, state: Any) -> Any:
        to_hash = stat_check(offers, state)
        (folder / "b_results.json").unlink()
        os.mkfifo(folder / "b_results.json")
        return to_hash

    monkeypatch.setattr(ingest_module, "_unchanged_by_stat", then_a_fifo)
    out: list[Any] = []
    worker = threading.Thread(target=lambda: out.append(ingest(wh, [folder], workers=1)), daemon=True)
    worker.start()
    worker.join(60)
    if worker.is_alive():  # (unblock the reader so that the test process can end)
        os.close(os.open(folder / "b_results.json", os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("the ingest waited on a FIFO")
    (report,) = out
    (b,) = [o for o in report.offers if o.path.endswith("b_results.json")]
    assert b.status == "rejected" and b.reason.endswith("b_results.json: (file): not a regular file")
