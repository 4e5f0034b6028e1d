"""The offers as columns (``Offers``) answer as the list of ``Offer`` objects they replaced, and the
ingest around them decides, records and reports as it did (checked against the list version, the
parent of the change, on the same files).

- ``report.offers`` equals and shows as a list, takes negative indexes, counts any status;
- every field of an ``Offer`` survives its row, rare values included (no size, a hash that is not
  lower-case hex, a key of its own, dependencies, a reason set and cleared);
- the ledger built from buffers holds what ``pa.table`` made of the same values, in slices;
- files whose ends tell them apart are read once, and copies are still found, at every size;
- hashing tells progress per file.
"""

from __future__ import annotations

import array
import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evalhouse import ingest as ingest_module
from evalhouse.ingest import IngestReport, Offer, Offers, ingest
from evalhouse.schema import FILES
from evalhouse.warehouse import Warehouse, connect


def _doc(i: int, items: int = 1, size: int | None = None) -> bytes:
    """An so8t-results document of model ``m{i}``, padded with blanks to ``size`` bytes."""
    doc = orjson.dumps({
        "metadata": {"timestamp": "2025-03-01T09:00:00"},
        "results": [{"model": f"m{i}", "category": "math", "test_name": f"t{j}", "question": f"q{j}?",
                     "response": f"r{j}", "expected_answer": f"e{j}", "score": 0.5} for j in range(items)],
    })  # fmt: skip
    if size is None:
        return doc
    assert len(doc) <= size
    return doc[:-1] + b" " * (size - len(doc)) + b"}"


def _offers(*offers: Offer) -> Offers:
    out = Offers()
    for o in offers:
        out.append(o)
    return out


# ---------------------------------------------------------------------------------------------
# report.offers reads as the list it was
# ---------------------------------------------------------------------------------------------


def test_a_report_counts_a_status_no_file_can_have_as_none(wh: Warehouse, tmp_path: Path) -> None:
    (tmp_path / "a_results.json").write_bytes(_doc(1))
    report = ingest(wh, [tmp_path / "a_results.json"], workers=1)
    # list.count answered 0; the status codes have no entry for these.
    assert [report.count(s) for s in ("ingested", "skipped", "new", "INGESTED")] == [1, 0, 0, 0]


def test_offers_equal_and_show_as_a_list(wh: Warehouse, tmp_path: Path) -> None:
    data = _doc(1)
    path = tmp_path / "a_results.json"
    path.write_bytes(data)
    st = path.stat()
    report = ingest(wh, [path], workers=1)
    sha = hashlib.sha256(data).hexdigest()
    expected = [Offer(str(path), len(data), st.st_mtime_ns, sha, "so8t-results", "ingested", rows=1, key=sha)]
    assert report.offers == expected and expected == report.offers
    assert report.offers != expected + expected and report.offers != [] and report.offers != tuple(expected)
    assert repr(report.offers) == repr(expected)
    assert report == IngestReport(report.batch_id, expected, [], 0, True, report.version, 1)
    again = ingest(wh, [path], workers=1)
    assert again.offers != report.offers  # (unchanged now)
    assert again.offers == [Offer(str(path), len(data), st.st_mtime_ns, sha, status="unchanged", seen_before=True)]


def test_an_offer_written_at_a_negative_index_lands_in_its_row() -> None:
    offers = Offers()
    offers.extend(["/r/a.json", "/r/b.json", "/r/c.json"], [1, 2, 3], [10, 20, 30])
    c = Offer("/r/c.json", 3, 30, "cd" * 32, "so8t-results", "ingested", rows=2, key="cd" * 32)
    b = Offer("/r/b.json", None, 20, "AB" * 32, None, "rejected", "/r/b.json: (file): x")
    offers[-1] = c
    offers[-2] = b
    assert len(offers.digests) == 3 * 32 and set(offers.rare) <= {0, 1, 2}
    assert offers[2] == offers[-1] == c and offers[1] == b and offers[0] == Offer("/r/a.json", 1, 10)
    offers.append(Offer("/r/d.json", 4, 40, "ef" * 32, status="duplicate", reason="same content as /r/c.json"))
    assert [o.sha256 for o in offers] == [None, "AB" * 32, "cd" * 32, "ef" * 32]
    for bad in (4, -5):
        with pytest.raises(IndexError):
            offers[bad] = c


# ---------------------------------------------------------------------------------------------
# Every field through a row
# ---------------------------------------------------------------------------------------------

RARE = [
    Offer("/r/none.json", status="rejected", reason="/r/none.json: (folder): cannot read: Permission denied"),
    Offer("/r/upper.json", 5, 6, "AB" * 32, "so8t-results", "ingested", rows=1, key="AB" * 32),
    Offer("/r/short.json", 5, 6, "abc", key="abc"),
    Offer("/r/empty.json", 0, 0, "", "", "rejected", ""),
    Offer("/r/salted.json", 7, 8, "ab" * 32, "so8t-results", "ingested", rows=3, key="cd" * 32),
    Offer("/r/nosha.json", 7, 8, None, "lm-eval", "ingested", rows=3, key="cd" * 32),
    Offer("/r/deps.json", 9, 10, "ab" * 32, "lm-eval-samples", "unchanged",
          depends_on=[{"path": "/r/res.json", "sha256": "ef" * 32, "size": 1, "mtime_ns": 2}], seen_before=True),
    Offer("/r/é/ü.json", 2**40, -1, "00" * 32, "so8t-results", "duplicate", "same content as /r/a.json"),
    Offer(os.fsdecode(b"/r/mod\xe8le.json"), 1, 1, status="rejected", reason="x: (file name): not valid UTF-8"),
]  # fmt: skip


def test_every_field_of_an_offer_survives_its_row() -> None:
    offers = _offers(*RARE)
    assert list(offers) == RARE and offers[:] == RARE and offers[-3:] == RARE[-3:] and offers[::-2] == RARE[::-2]
    assert [offers.sha(i) for i in range(len(RARE))] == [o.sha256 for o in RARE]
    assert [offers.size(i) for i in range(len(RARE))] == [o.size for o in RARE]
    # A reason set, then cleared: nothing of it is left aside.
    o = offers[1]
    o.reason = "r"
    offers[1] = o
    assert offers[1].reason == "r"
    o.reason, o.sha256, o.key = None, "ab" * 32, "ab" * 32
    offers[1] = o
    assert offers[1] == o and 1 not in offers.rare


def test_a_parse_result_replaces_what_was_aside() -> None:
    offers = _offers(Offer("/r/a.json", None, 1, "ab" * 32), Offer("/r/b.json", 4, 2, "ab" * 32))
    # (format, status, reason, rows, dependencies, models, sha256 parsed, key, size parsed)
    offers.parsed(0, ("so8t-results", "ingested", None, 2, None, ["m"], "cd" * 32, "cd" * 32, 9))
    offers.parsed(1, ("so8t-results", "rejected", "/r/b.json: x", 0, None, [], None, None, None))
    assert offers[0] == Offer("/r/a.json", 9, 1, "cd" * 32, "so8t-results", "ingested", rows=2, key="cd" * 32)
    assert 0 not in offers.rare  # (its size is known now)
    assert offers[1] == Offer("/r/b.json", 4, 2, "ab" * 32, "so8t-results", "rejected", "/r/b.json: x")
    offers.parsed(1, ("so8t-results", "ingested", None, 1, None, ["m"], "ef" * 32, "01" * 32, None))
    assert offers[1] == Offer("/r/b.json", 4, 2, "ef" * 32, "so8t-results", "ingested", rows=1, key="01" * 32)


# ---------------------------------------------------------------------------------------------
# The ledger, from buffers
# ---------------------------------------------------------------------------------------------


class _Batch:
    """What _write_ledger asks of a commit: where to write, and what was written."""

    batch_id = "20260101T000000-abcdef"

    def __init__(self, folder: Path) -> None:
        self.folder, self.added = folder, []

    def path(self, table: str, part: str) -> Path:
        return self.folder / f"{table}-{part}.parquet"

    def add(self, table: str, path: Path, rows: int) -> None:
        self.added.append((table, path, rows))


@pytest.mark.parametrize("n", [1, ingest_module.LEDGER_BATCH_ROWS, ingest_module.LEDGER_BATCH_ROWS + 1])
def test_the_ledger_holds_what_pa_table_made_of_the_offers(tmp_path: Path, n: int) -> None:
    rows = [RARE[i % len(RARE)] for i in range(n)]
    batch = _Batch(tmp_path)
    before = datetime.now(UTC)
    ingest_module._write_ledger(_offers(*rows), batch)  # type: ignore[arg-type]
    after = datetime.now(UTC)
    ((table, path, written),) = batch.added
    got = pq.read_table(path)
    assert table == "files" and written == got.num_rows == sum(not o.seen_before for o in rows)
    assert got.schema.equals(FILES.arrow_schema()) and pq.ParquetFile(path).num_row_groups == -(-written // 16_384)
    expected = [
        {"path": p, "sha256": o.sha256, "size": o.size, "mtime_ns": o.mtime_ns, "format": o.format,
         "status": o.status, "reason": o.reason, "rows": o.rows, "depends_on": None}
        for o in rows if not o.seen_before
        for p in [o.path.replace("\udce8", "\\xe8")]
    ]  # fmt: skip
    assert got.drop_columns(["batch_id", "time"]).to_pylist() == expected
    assert set(got.column("batch_id").to_pylist()) == {batch.batch_id}
    (time,) = set(got.column("time").to_pylist())
    assert before <= time <= after and got.schema.field("time").type == pa.timestamp("us", tz="UTC")


def test_a_column_from_buffers() -> None:
    values: list[Any] = ["", None, "é", "a\\xe8", "日本", None]
    assert ingest_module._column(values, pa.string()).to_pylist() == values
    assert ingest_module._column([None] * 9, pa.string()).to_pylist() == [None] * 9
    ints = [None, 0, -1, 2**62, None, 7, 8, 9, 10]
    column = ingest_module._column(ints, pa.int64())
    column.validate(full=True)
    assert column.to_pylist() == ints and column.null_count == 2


# ---------------------------------------------------------------------------------------------
# Read once by their ends; copies still found
# ---------------------------------------------------------------------------------------------


def test_files_under_8_kb_are_told_apart_by_their_ends(wh: Warehouse, tmp_path: Path, hashed_files: list[str]) -> None:
    # Worked out by hand. 1,000 bytes: the ends are the whole file, s0..s2 differ (read once), s0
    # and its copy match (hashed; the copy a duplicate). 6,000 bytes: the first and last 4 KB
    # overlap and cover the whole file, so t0 and tmid (one byte apart in the middle) differ too:
    # read once. Empty files: one size, the same ends: hashed, both rejected (a copy of a rejected
    # file is read as a file of its own).
    folder = tmp_path / "in"
    folder.mkdir()
    t0 = _doc(20, items=2, size=6000)
    tmid = bytearray(t0)
    tmid[3000] = ord("\t")
    files = {
        "s0_results.json": _doc(10, size=1000), "s1_results.json": _doc(11, size=1000),
        "s2_results.json": _doc(12, size=1000), "s_copy_results.json": _doc(10, size=1000),
        "t0_results.json": t0, "t1_results.json": _doc(21, items=2, size=6000), "tmid_results.json": bytes(tmid),
        "e1.json": b"", "e2.json": b"",
    }  # fmt: skip
    for name, data in files.items():
        (folder / name).write_bytes(data)
    report = ingest(wh, [folder], workers=1)
    assert sorted(hashed_files) == ["e1.json", "e2.json", "s0_results.json", "s_copy_results.json"]
    assert {Path(o.path).name: (o.status, o.rows) for o in report.offers} == {
        "s0_results.json": ("ingested", 1), "s1_results.json": ("ingested", 1), "s2_results.json": ("ingested", 1),
        "s_copy_results.json": ("duplicate", 0), "t0_results.json": ("ingested", 2),
        "t1_results.json": ("ingested", 2), "tmid_results.json": ("ingested", 2),
        "e1.json": ("rejected", 0), "e2.json": ("rejected", 0),
    }  # fmt: skip
    # Read once or hashed first, each has the hash and size of its bytes.
    assert {Path(o.path).name: (o.sha256, o.size) for o in report.offers} == {
        name: (hashlib.sha256(data).hexdigest(), len(data)) for name, data in files.items()
    }
    assert report.rows == 3 + 6 and {o.reason for o in report.rejected} == {
        f"{folder}/e1.json: (file): is empty", f"{folder}/e2.json: (file): is empty"}  # fmt: skip
    # Read again: nothing hashed, nothing new but the empty files (rejected files are read again).
    hashed_files.clear()
    again = ingest(wh, [folder], workers=1)
    assert sorted(hashed_files) == ["e1.json", "e2.json"]
    assert sorted(o.status for o in again.offers) == ["rejected"] * 2 + ["unchanged"] * 7


def test_a_copy_of_content_read_before_is_found_at_a_new_path(
    wh: Warehouse, tmp_path: Path, hashed_files: list[str]
) -> None:
    # a and b read in a first ingest; then a changes, b2 gets a's old bytes and c b2's (a chain),
    # n is new with the size of both and its own ends. The ledger has that size: all are hashed.
    # a's old content is live when the decisions are made (a's ledger row): b2 and c are its
    # copies, and hold it, so its runs stay.
    folder = tmp_path / "in"
    folder.mkdir()
    size = 3 * ingest_module.ENDS_BYTES
    old_a = _doc(1, size=size)
    (folder / "a_results.json").write_bytes(old_a)
    (folder / "b_results.json").write_bytes(_doc(2, size=size))
    ingest(wh, [folder], workers=1)
    (folder / "a_results.json").write_bytes(_doc(1, items=2, size=size))
    (folder / "b2_results.json").write_bytes(old_a)
    (folder / "c_results.json").write_bytes(old_a)
    (folder / "n_results.json").write_bytes(_doc(9, size=size))
    report = ingest(wh, [folder], workers=1)
    assert sorted(hashed_files) == ["a_results.json", "b2_results.json", "c_results.json", "n_results.json"]
    assert {Path(o.path).name: (o.status, o.reason) for o in report.offers} == {
        "a_results.json": ("ingested", None), "b_results.json": ("unchanged", None),
        "b2_results.json": ("duplicate", f"same content as {folder}/a_results.json"),
        "c_results.json": ("duplicate", f"same content as {folder}/a_results.json"),
        "n_results.json": ("ingested", None),
    }  # fmt: skip
    # a's old content stays live through its copies: a's new runs are added, none replaced.
    assert report.rows == 2 + 1 and report.retired_runs == 0
    models = connect(wh).execute("SELECT model, count(*) FROM runs GROUP BY model ORDER BY model").fetchall()
    assert models == [("m1", 2), ("m2", 1), ("m9", 1)]


def test_the_prefixes_of_repeated_hashes_are_found_as_the_decisions_read_them() -> None:
    # Hashes whose first byte has its high bit set: NumPy's unsigned view and int.from_bytes agree.
    shas = [bytes([0xFF] * 8 + [i] * 24) for i in range(3)] + [bytes([0x80] + [0] * 31)]
    digests = bytearray(b"".join(shas))
    repeats = ingest_module._repeated_prefixes(digests, array.array("q", [0, 1, 2, 3]))
    assert repeats == {int.from_bytes(digests[0:8], "little")} == {2**64 - 1}
    assert ingest_module._repeated_prefixes(digests, array.array("q", [0, 3])) == set()


# ---------------------------------------------------------------------------------------------
# Progress
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_hashing_tells_progress_per_file(
    wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    # n files of one size, all with the same ends (copies): every one hashed, one ingested. With 2
    # workers and 64 files or more, in the pool.
    n = 70 if workers > 1 else 3
    folder = tmp_path / "in"
    folder.mkdir()
    for k in range(n):
        (folder / f"c{k:02d}_results.json").write_bytes(_doc(1, size=5000))
    calls: list[tuple[str, int, int]] = []
    report = ingest(wh, [folder], workers=workers, progress=lambda *a: calls.append(a))
    assert [c for c in calls if c[0] == "hash"] == [("hash", k, n) for k in range(1, n + 1)]
    assert [c for c in calls if c[0] == "parse"][-1] == ("parse", n - 1, n - 1)  # (the copies, second)
    assert report.count("ingested") == 1 and report.count("duplicate") == n - 1
