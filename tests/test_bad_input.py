"""Bad input, fuzzed: every broken file is rejected with a reason naming the file and the field.

Never a traceback, never a hang, never half a file: each case below ends up `ingested` or
`rejected` in the ledger, and a rejected file adds no rows.
"""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evalhouse.errors import BadResultFile
from evalhouse.ingest import ingest, read_source
from evalhouse.warehouse import Warehouse, connect

GOOD_ITEM = {
    "model": "m",
    "category": "c",
    "test_name": "t",
    "question": "q",
    "response": "r",
    "expected_answer": "e",
    "score": 0.5,
    "response_time": 1.0,
    "timestamp": "2025-01-01T00:00:00",
}


def results_doc(**item_changes: Any) -> dict[str, Any]:
    item = {**GOOD_ITEM, **item_changes}
    return {"metadata": {"timestamp": "2025-01-01T00:00:00"}, "results": [dict(GOOD_ITEM, test_name="ok"), item]}


GOOD_BYTES = orjson.dumps(results_doc())

NO_ADAPTER = "(file): no adapter recognises this content"
# (file name, content, expected status, how its "field: reason" begins)
CASES: list[tuple[str, bytes, str, str]] = [
    ("empty.json", b"", "rejected", "(file): is empty"),
    ("blank.json", b"  \n\t ", "rejected", "(file): is empty"),
    ("garbage.json", bytes(random.Random(1).randrange(256) for _ in range(4096)), "rejected",
     f"{NO_ADAPTER} (not JSON, JSONL or a known table)"),
    ("latin1.json", '{"metadata": {}, "results": [{"model": "é", "score": 1}]}'.encode("latin-1"), "rejected",
     "(file): not valid JSON: str is not valid UTF-8"),
    ("bom.json", b"\xef\xbb\xbf" + GOOD_BYTES, "ingested", ""),
    ("list_of_numbers.json", b"[1, 2, 3]", "rejected", f"{NO_ADAPTER} (a JSON list)"),
    ("string.json", b'"results"', "rejected", f"{NO_ADAPTER} (not JSON, JSONL or a known table)"),
    ("null.json", b"null", "rejected", f"{NO_ADAPTER} (not JSON, JSONL or a known table)"),
    ("nested.json", b"[" * 100_000 + b"]" * 100_000, "rejected", "(file): not valid JSON: depth limit exceeded"),
    ("nan.json", GOOD_BYTES.replace(b'"score":0.5', b'"score":NaN', 1), "rejected",
     "(file): not valid JSON: unexpected character"),
    ("inf.json", GOOD_BYTES.replace(b'"score":0.5', b'"score":Infinity', 1), "rejected",
     "(file): not valid JSON: unexpected character"),
    ("huge.json", orjson.dumps(results_doc(score=1e308)), "rejected",
     "results[1].score: 1e+308 is outside the score range 0..1"),
    ("above.json", orjson.dumps(results_doc(score=1.5)), "rejected",
     "results[1].score: 1.5 is outside the score range"),
    ("below.json", orjson.dumps(results_doc(score=-0.1)), "rejected", "results[1].score: -0.1 is outside the score"),
    ("negzero.json", orjson.dumps(results_doc(score=-0.0)), "ingested", ""),
    ("results_not_list.json", b'{"metadata": {}, "results": {"a": 1}}', "rejected",
     f"{NO_ADAPTER} (a JSON object with keys metadata, results)"),
    ("metadata_list.json", b'{"metadata": [], "results": []}', "rejected", "metadata: expected an object"),
    ("item_not_object.json", b'{"metadata": {}, "results": [1]}', "rejected", "results[0]: expected an object"),
    ("ab_unequal.json", orjson.dumps({"baseline": {"model": "a", "results": [{"question": "q"}], "evaluations": []},
                                      "improved": {"model": "b"}}), "rejected",
     "baseline.evaluations: has 0 entries for 1 results"),
    ("tasks_bad_bool.json", orjson.dumps([{"task": "t", "is_correct": "yes", "question": "q"}]), "rejected",
     "[0].is_correct: 'yes' is not true or false"),
]  # fmt: skip

# Wrong types in every field of an item: (field, bad value, the reason's text).
WRONG_TYPES = [
    ("model", 5, "results[1].model: missing or not text"),
    ("model", "", "results[1].model: missing or not text"),
    ("score", "high", "results[1].score: 'high' is not a number"),
    ("score", None, "results[1].score: None is not a number"),
    ("score", [1], "results[1].score: [1] is not a number"),
    ("category", ["c"], "results[1].category: expected text, got list"),
    ("test_name", {"a": 1}, "results[1].test_name: expected text, got dict"),
    ("question", True, "results[1].question: expected text, got bool"),
    ("response", [], "results[1].response: expected text, got list"),
    ("expected_answer", {}, "results[1].expected_answer: expected text, got dict"),
    ("response_time", "slow", "results[1].response_time: 'slow' is not a number"),
    ("timestamp", "yesterday", "results[1].timestamp: 'yesterday' is not a time"),
    ("timestamp", [2025], "results[1].timestamp: [2025] is not a time"),
    ("benchmark", {"b": 1}, "results[1].benchmark: expected text, got dict"),
]

# Truncations of a good file at seeded random offsets.
TRUNCATIONS = sorted(random.Random(7).sample(range(1, len(GOOD_BYTES) - 1), 25))


def _ingest_one(wh: Warehouse, tmp_path: Path, name: str, content: bytes) -> tuple[str, str]:
    """Ingest one file; returns (status, "field: reason" of a rejected file, else "").

    A rejection is checked where it lands: the ledger holds it with no rows, and no run of the
    file is stored.
    """
    path = tmp_path / name
    path.write_bytes(content)
    report = ingest(wh, [path], workers=1)
    (offer,) = report.offers
    if offer.status != "rejected":
        return offer.status, ""
    con = connect(wh)
    try:
        ledger = con.execute("SELECT status, reason, rows FROM files WHERE path = ?", [str(path)]).fetchall()
        runs = con.execute("SELECT count(*) FROM runs WHERE source_path = ?", [str(path)]).fetchone()
    finally:
        con.close()
    assert ledger == [("rejected", offer.reason, 0)] and runs == (0,)
    prefix = f"{path}: "
    assert (offer.reason or "").startswith(prefix), offer.reason
    return offer.status, (offer.reason or "")[len(prefix) :]


@pytest.mark.parametrize(("name", "content", "status", "reason"), CASES, ids=[c[0] for c in CASES])
def test_broken_file(wh: Warehouse, tmp_path: Path, name: str, content: bytes, status: str, reason: str) -> None:
    got_status, got_reason = _ingest_one(wh, tmp_path, name, content)
    assert got_status == status, got_reason
    assert got_reason.startswith(reason), got_reason
    rows = connect(wh).execute("SELECT count(*), sum(score) FROM scores").fetchone()
    assert rows == ((2, 1.0) if status == "ingested" and name != "negzero.json" else (2, 0.5) if status == "ingested"
                    else (0, None))  # fmt: skip
    if name == "negzero.json":
        # Each stored value (not min(), which DuckDB may answer from the Parquet statistics, where a
        # writer records a zero's lower bound as -0.0 as the Parquet format asks).
        stored = connect(wh).execute("SELECT list(score::VARCHAR ORDER BY score) FROM scores").fetchone()
        assert stored == (["0.0", "0.5"],)


@pytest.mark.parametrize(("field", "value", "reason"), WRONG_TYPES, ids=[f"{f}={v!r}" for f, v, _ in WRONG_TYPES])
def test_wrong_type_in_a_field(wh: Warehouse, tmp_path: Path, field: str, value: Any, reason: str) -> None:
    status, got = _ingest_one(wh, tmp_path, "wrong.json", orjson.dumps(results_doc(**{field: value})))
    assert status == "rejected"
    assert got.startswith(reason), got


@pytest.mark.parametrize("offset", TRUNCATIONS)
def test_truncated_at_random_offsets(wh: Warehouse, tmp_path: Path, offset: int) -> None:
    status, reason = _ingest_one(wh, tmp_path, "cut.json", GOOD_BYTES[:offset])
    assert status == "rejected" and reason.startswith("(file): not valid JSON: "), reason


def test_special_files_and_links(wh: Warehouse, tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "good.json").write_bytes(GOOD_BYTES)
    os.mkfifo(corpus / "pipe.json")  # reading it would block forever
    os.symlink(corpus / "loop_b.json", corpus / "loop_a.json")
    os.symlink(corpus / "loop_a.json", corpus / "loop_b.json")
    os.symlink(corpus / "missing.json", corpus / "dangling.json")
    os.symlink(corpus, corpus / "self")  # a folder loop
    (corpus / "notes.txt").write_text("not results")
    report = ingest(wh, [corpus], workers=1)
    got = {Path(o.path).name: (o.status, (o.reason or "").split(": ", 2)[-1]) for o in report.offers}
    assert got == {
        "good.json": ("ingested", ""),
        "pipe.json": ("rejected", "not a regular file"),
        "loop_a.json": ("rejected", "cannot read: Too many levels of symbolic links"),
        "loop_b.json": ("rejected", "cannot read: Too many levels of symbolic links"),
        "dangling.json": ("rejected", "cannot read: No such file or directory"),
    }
    assert sorted(s.rsplit("/", 1)[1] for s in report.skipped) == [
        "notes.txt: not a result file by its extension",
        "self: symlinked folder not followed",
    ]


def test_file_vanishing_during_ingest(wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import evalhouse.ingest as ingest_mod

    path = tmp_path / "gone.json"
    path.write_bytes(GOOD_BYTES)
    real_walk = ingest_mod.walk

    def walk_then_delete(*args: Any) -> Any:
        result = real_walk(*args)
        path.unlink()
        return result

    monkeypatch.setattr(ingest_mod, "walk", walk_then_delete)
    (offer,) = ingest(wh, [path], workers=1).offers
    assert (offer.status, offer.reason) == ("rejected", f"{path}: (file): cannot read: No such file or directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(wh: Warehouse, tmp_path: Path) -> None:
    path = tmp_path / "secret.json"
    path.write_bytes(GOOD_BYTES)
    path.chmod(0)
    (offer,) = ingest(wh, [path], workers=1).offers
    assert offer.status == "rejected" and "Permission denied" in (offer.reason or "")


@pytest.mark.slow
def test_200_mb_file(wh: Warehouse, tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    doc = results_doc(response="x" * (200 * 1024 * 1024))
    path.write_bytes(orjson.dumps(doc))
    (offer,) = ingest(wh, [path], workers=1).offers
    assert offer.status == "ingested"
    length = connect(wh).execute("SELECT max(length(response)) FROM samples").fetchone()
    assert length == (200 * 1024 * 1024,)


# --- property-based: any JSON value, any bytes ---------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
item_values = st.fixed_dictionaries(
    {},
    optional={k: json_values | st.just(v) for k, v in GOOD_ITEM.items()},
)

CASE_COUNTER = {"n": 0}


# Fields that name the whole file rather than a place in it.
WHOLE_FILE = ("(file)", "(file name)", "(archive)", "header")
_STEP = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


def _names_a_place(doc: Any, field: str) -> bool:
    """Whether ``field`` (``results[1].score``, ``[0].is_correct``, ``line 3``) names a place in ``doc``:
    every step but the last exists (the last may be what is missing)."""
    if field in WHOLE_FILE or re.fullmatch(r"line \d+(\..+)?", field):
        return True
    steps = [(key, int(index) if index else None) for key, index in _STEP.findall(field)]
    node = doc
    for key, index in steps[:-1]:
        if index is not None and isinstance(node, list) and index < len(node):
            node = node[index]
        elif key and isinstance(node, dict) and key in node:
            node = node[key]
        else:
            return False
    return True


def _read_or_reject(path: Path, data: bytes) -> None:
    """Read one file: it is read, or rejected with a field naming a place in it and a reason."""
    CASE_COUNTER["n"] += 1
    path.write_bytes(data)
    try:
        read_source(str(path), "0" * 64)
    except BadResultFile as exc:
        assert exc.path == str(path) and exc.reason.strip(), exc
        try:
            doc = json.loads(data)
        except ValueError:
            doc = None
        assert _names_a_place(doc, exc.field), (exc.field, str(exc))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=json_values)
def test_any_json_is_read_or_rejected(tmp_path: Path, doc: Any) -> None:
    _read_or_reject(tmp_path / "any.json", json.dumps(doc).encode())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(item_values, min_size=1, max_size=4))
def test_any_item_fields_are_read_or_rejected(tmp_path: Path, items: list[dict[str, Any]]) -> None:
    _read_or_reject(tmp_path / "items.json", json.dumps({"metadata": {}, "results": items}).encode())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=512))
def test_any_bytes_are_read_or_rejected(tmp_path: Path, data: bytes) -> None:
    _read_or_reject(tmp_path / "bytes.json", data)
