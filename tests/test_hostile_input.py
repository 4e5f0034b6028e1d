"""Hostile input, round 2 (issue 14): whatever one file does, it alone is rejected with
``path: field: reason`` and the rest lands; no file may cost more than the [limits] allow, counted
after decompression; unreadable folders are in the ledger; every failure is an ``Error:`` line;
everything printed from input is escaped; ``evalhouse sql`` only reads.

The cases the earlier round covered (broken JSON, special files, symlink loops, ...) are in
tests/test_bad_input.py and tests/test_hostile_names.py.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import evalhouse.ingest as ingest_module
from evalhouse.cli import main
from evalhouse.ingest import ingest
from evalhouse.limits import Limits
from evalhouse.warehouse import Warehouse, connect
from tests.conftest import FIXTURES, ROOT

GOOD = FIXTURES / "so8t" / "good"
# What GOOD holds: 5 files of scores (21 score rows) and one file of run metadata only.
GOOD_COUNTS = {"ingested": 5, "not-results": 1}
GOOD_SCORES = 21
ITEM = {"model": "m", "category": "c", "test_name": "t", "question": "q", "response": "r", "score": 0.5}
DETAILS_TIME = "2024-05-01T12-00-00.000000"


def cli(*args: str) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args])


def scores(wh: Warehouse) -> int:
    con = connect(wh)
    try:
        return con.execute("SELECT count(*) FROM scores").fetchone()[0]  # type: ignore[index]
    finally:
        con.close()


def corpus_with(tmp_path: Path, name: str | bytes, content: bytes) -> tuple[Path, str]:
    """A copy of the good SO8T corpus with one more file; returns (folder, the file's path as Python names it)."""
    folder = tmp_path / "corpus"
    shutil.copytree(GOOD, folder)
    path = os.path.join(os.fsencode(folder), name) if isinstance(name, bytes) else str(folder / name)
    with open(path, "wb") as f:
        f.write(content)
    return folder, os.fsdecode(path)


def outcome(report: Any) -> tuple[dict[str, int], dict[str, str | None]]:
    """(offers per status, reason of every rejected file by path)."""
    counts: dict[str, int] = {}
    for o in report.offers:
        counts[o.status] = counts.get(o.status, 0) + 1
    return counts, {o.path: o.reason for o in report.offers if o.status == "rejected"}


def results_json(**changes: Any) -> bytes:
    # json, not orjson: orjson writes no more than 254 levels
    return json.dumps({"metadata": {"timestamp": "2025-01-01T00:00:00"}, "results": [ITEM], **changes}).encode()


def nested(levels: int) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for _ in range(levels):
        doc = {"a": doc}
    return doc


def lm_eval_results(n: int = 5, model_args: str = "pretrained=org/m") -> bytes:
    """An lm-eval results file with a bare NaN (read on the tolerant path, Python's json)."""
    return (
        '{"results": {"arc_easy": {"alias": "arc_easy", "acc,none": 0.5, "acc_stderr,none": NaN}}, '
        f'"n-samples": {{"arc_easy": {{"effective": {n}, "original": 5}}}}, '
        f'"config": {{"model": "hf", "model_args": "{model_args}"}}}}'
    ).encode()


def eval_zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """An inspect .eval log of these members."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


HEADER = orjson.dumps(
    {"version": 2, "status": "success", "eval": {"created": "2024-06-03T08:00:00", "task": "arith", "model": "m"}}
)


def sample(epoch: int = 1, text: str = "What is 2+2?") -> bytes:
    return orjson.dumps({"id": 1, "epoch": epoch, "input": text, "target": "4", "scores": {"match": {"value": "C"}}})


# ---------------------------------------------------------------------------------------------
# 1. One file never aborts the ingest: values an adapter accepts but no table can store
# ---------------------------------------------------------------------------------------------

UNSTORABLE = [
    # (file name, content, "field: reason" it is rejected with)
    ("epoch.jsonl", b'{"model": "m", "item_id": "1", "score": 1, "epoch": 1099511627776}\n',
     "scores.epoch: 1099511627776 is beyond the range of a 32-bit integer"),
    ("results_2024-01-01T00-00-00.json", lm_eval_results(n=2**70),
     "metrics.n: 1180591620717411303424 is beyond the range of a 64-bit integer"),
    ("results_2024-01-02T00-00-00.json", lm_eval_results(model_args="pretrained=org/m\\ud800"),
     "metadata: cannot be stored as JSON (str is not valid UTF-8: surrogates not allowed)"),
    ("surrogate.jsonl", b'{"model": "m", "item_id": "1", "score": 1}\n'
     b'{"model": "m", "item_id": "2", "score": 1, "response_time_s": NaN, "response": "\\ud800"}\n',
     "texts.response: '\\ud800' is not valid Unicode text (a lone surrogate)"),
    ("deep_results.json", results_json(metadata={"timestamp": "2025-01-01T00:00:00", "extra": nested(300)}),
     "metadata: 65+ levels of nesting, over the limit of 64 ([limits] depth in evalhouse.toml)"),
    # inspect's epoch is the same 32-bit column; one 300-byte .eval cost 426 good files
    ("tiny.eval", eval_zip({"header.json": HEADER, "samples/1_epoch_1.json": sample(epoch=2**40)}),
     "scores.epoch: 1099511627776 is beyond the range of a 32-bit integer"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "content", "reason"), UNSTORABLE, ids=[c[0] for c in UNSTORABLE])
def test_a_value_no_table_can_store_rejects_that_file_alone(
    wh: Warehouse, tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    folder, path = corpus_with(tmp_path, name, content)
    counts, rejected = outcome(ingest(wh, [folder], workers=1))
    assert rejected == {path: f"{path}: {reason}"}
    assert counts == {**GOOD_COUNTS, "rejected": 1}
    assert scores(wh) == GOOD_SCORES
    # The ledger holds the reason, and a second ingest meets the file again without failing.
    ledger = cli("files", "-w", wh.root, "--status", "rejected", "--format", "json")
    assert [(r["path"], r["reason"]) for r in orjson.loads(ledger.stdout)] == [(path, f"{path}: {reason}")]
    counts, rejected = outcome(ingest(wh, [folder], workers=1))
    assert (counts, rejected) == ({"unchanged": 6, "rejected": 1}, {path: f"{path}: {reason}"})


def test_isolation_holds_in_worker_processes(wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder, path = corpus_with(tmp_path, "epoch.jsonl", UNSTORABLE[0][1])
    monkeypatch.setattr(ingest_module, "PARALLEL_MIN_FILES", 1)
    counts, rejected = outcome(ingest(wh, [folder], workers=2))
    assert rejected == {path: f"{path}: {UNSTORABLE[0][2]}"} and counts == {**GOOD_COUNTS, "rejected": 1}
    assert scores(wh) == GOOD_SCORES


def test_metadata_orjson_cannot_write_is_rejected_by_field(wh: Warehouse, tmp_path: Path) -> None:
    # With the depth bound raised past orjson's own limit (254 levels), the write is what refuses.
    deep = next(content for name, content, _ in UNSTORABLE if name == "deep_results.json")
    folder, path = corpus_with(tmp_path, "deep_results.json", deep)
    counts, rejected = outcome(ingest(wh, [folder], workers=1, limits=Limits(depth=1000)))
    assert rejected == {path: f"{path}: metadata: cannot be stored as JSON (Recursion limit reached)"}
    assert counts == {**GOOD_COUNTS, "rejected": 1}


@pytest.mark.parametrize("content", [b"", results_json()], ids=["empty", "good content"])
def test_a_file_name_that_is_not_utf8(wh: Warehouse, tmp_path: Path, content: bytes) -> None:
    folder, path = corpus_with(tmp_path, b"mod\xe8le_results.json", content)
    counts, rejected = outcome(ingest(wh, [folder], workers=1))
    assert rejected == {path: f"{path}: (file name): not valid UTF-8; rename the file"}
    assert counts == {**GOOD_COUNTS, "rejected": 1}
    # The ledger stores the name with the byte escaped; the terminal shows it so.
    shown = f"{folder}/mod\\xe8le_results.json"
    result = cli("files", "-w", wh.root, "--status", "rejected", "--format", "csv")
    assert result.stdout.splitlines()[1].startswith(f"{shown},rejected,,0,{shown}: (file name): not valid UTF-8")


# ---------------------------------------------------------------------------------------------
# 2. Bounds on what one file may cost, counted after decompression
# ---------------------------------------------------------------------------------------------


def overlapping_zip(copies: int) -> bytes:
    """A zip whose central directory lists one member ``copies`` times under different names (the
    bytes of one 2 MB member read ``copies`` times)."""
    data = eval_zip({"header.json": HEADER, "samples/1.json": sample(text="x" * 2_000_000)})
    cd_start = data.index(b"PK\x01\x02", data.index(b"samples/1.json") + 14)
    eocd = data.rindex(b"PK\x05\x06")
    entries = data[cd_start:eocd]
    second = entries.index(b"PK\x01\x02", 4)
    header_entry, sample_entry = entries[:second], entries[second:]
    extra = []
    for i in range(2, copies + 1):
        name = f"samples/{i}.json".encode()
        fixed = bytearray(sample_entry[:46])
        fixed[28:30] = struct.pack("<H", len(name))
        extra.append(bytes(fixed) + name + sample_entry[46 + 14 :])
    directory = header_entry + sample_entry + b"".join(extra)
    end = bytearray(data[eocd:])
    struct.pack_into("<HHII", end, 8, copies + 1, copies + 1, len(directory), cd_start)
    return data[:cd_start] + directory + bytes(end)


def parquet_bytes(table: pa.Table, **options: Any) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, **options)
    return buf.getvalue()


def details(rows: int, query: str = "q") -> pa.Table:
    """A lighteval 0.11+ details table of ``rows`` identical rows (it compresses to almost nothing)."""
    row = {"doc": {"query": query, "choices": [" a", " b"], "gold_index": [0], "id": ""},
           "model_response": {"text": [" a"]}, "metric": {"acc": 1.0}}  # fmt: skip
    return pa.Table.from_arrays([pa.repeat(pa.scalar(row[c]), rows) for c in row], names=list(row))


DETAILS = f"details/openai/gpt2/{DETAILS_TIME}/details_lighteval|mmlu:anatomy|0_{DETAILS_TIME}.parquet"

BOMB_SAMPLE = sample(text="x" * 3_000_000)
BOUNDS = [
    # (file name, content, limits, "field: reason")
    ("bomb.eval", eval_zip({"header.json": HEADER, "samples/1.json": BOMB_SAMPLE}), Limits(unpacked_bytes=2**20),
     f"(archive): {len(HEADER) + len(BOMB_SAMPLE):,} bytes after decompression, over the limit of 1,048,576 "
     "([limits] unpacked_bytes in evalhouse.toml)"),
    ("many.eval", eval_zip({"header.json": HEADER, **{f"samples/{i}.json": sample() for i in range(5)}}),
     Limits(members=4), "(archive): 6 members, over the limit of 4 ([limits] members in evalhouse.toml)"),
    ("overlap.eval", overlapping_zip(50), Limits(),
     "(archive): members 'samples/1.json' and 'samples/2.json' share bytes"),
    ("lines.jsonl", b"".join(b'{"model": "m", "item_id": "%d", "score": 1}\n' % i for i in range(6)),
     Limits(rows=5), "(file): 6 lines, over the limit of 5 ([limits] rows in evalhouse.toml)"),
    ("rows_results.json", orjson.dumps({"metadata": {}, "results": [ITEM] * 6}), Limits(rows=5),
     "(file): 6 rows, over the limit of 5 ([limits] rows in evalhouse.toml)"),
    ("values.json", lambda: b"[" + b"0," * 5_999_999 + b"0]", Limits(),
     "(file): 6,000,000 JSON values, over the limit of 5,000,000 ([limits] json_values in evalhouse.toml)"),
    ("big_results.json", results_json(), Limits(file_bytes=100),
     f"(file): {len(results_json()):,} bytes, over the limit of 100 ([limits] file_bytes in evalhouse.toml)"),
    (DETAILS, lambda: parquet_bytes(details(5_000_000)), Limits(),
     "(file): 5,000,000 rows, over the limit of 1,000,000 ([limits] rows in evalhouse.toml)"),
    (DETAILS, lambda: parquet_bytes(details(40, query="x" * 2**20), dictionary_pagesize_limit=2**22),
     Limits(unpacked_bytes=8 * 2**20), "(file): "),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "content", "limits", "reason"), BOUNDS,
    ids=["zip-bytes", "zip-members", "zip-overlap", "jsonl-lines", "rows", "json-values", "file-bytes",
         "parquet-rows", "parquet-decoded"],
)  # fmt: skip
def test_a_file_past_a_bound_is_rejected_with_the_bound(
    wh: Warehouse, tmp_path: Path, name: str, content: Any, limits: Limits, reason: str
) -> None:
    folder = tmp_path / "corpus"
    path = folder / name
    path.parent.mkdir(parents=True)
    path.write_bytes(content() if callable(content) else content)
    (folder / "ok.jsonl").write_bytes(b'{"model": "m", "item_id": "1", "score": 1}\n')  # within every bound
    counts, rejected = outcome(ingest(wh, [folder], workers=1, limits=limits))
    assert list(rejected) == [str(path)] and counts == {"ingested": 1, "rejected": 1}, rejected
    assert (rejected[str(path)] or "").startswith(f"{path}: {reason}")
    if name == DETAILS and reason == "(file): ":  # decoded size: counted batch by batch
        assert "bytes after decompression, over the limit of 8,388,608 ([limits] unpacked_bytes" in str(rejected)
    assert scores(wh) == 1


def test_duplicate_zip_entries_are_rejected(wh: Warehouse, tmp_path: Path) -> None:
    buf = io.BytesIO()
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(buf, "w") as z:
        z.writestr("header.json", HEADER)
        z.writestr("samples/1.json", sample())
        z.writestr("samples/1.json", sample(epoch=2))
    folder, path = corpus_with(tmp_path, "dup.eval", buf.getvalue())
    _, rejected = outcome(ingest(wh, [folder], workers=1))
    assert rejected == {path: f"{path}: (archive): member 'samples/1.json' appears more than once"}


def test_within_the_bounds_is_read(wh: Warehouse, tmp_path: Path) -> None:
    # The bounds must not refuse what they allow: the same shapes, a little smaller.
    folder = tmp_path / "ok"
    folder.mkdir()
    (folder / "a.eval").write_bytes(eval_zip({"header.json": HEADER, "samples/1.json": sample(text="x" * 900_000)}))
    (folder / "lines.jsonl").write_bytes(
        b"".join(b'{"model": "m", "item_id": "%d", "score": 1}\n' % i for i in range(5))
    )
    prose = "Yes, no, maybe, [1], {2}, " * 300_000  # 7.8 MB of commas and brackets inside a string
    (folder / "prose_results.json").write_bytes(results_json(results=[dict(ITEM, response=prose)]))
    limits = Limits(unpacked_bytes=2**20, rows=5, json_values=1000)
    counts, rejected = outcome(ingest(wh, [folder], workers=1, limits=limits))
    assert (counts, rejected) == ({"ingested": 3}, {})


def test_limits_from_evalhouse_toml(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "lines.jsonl").write_bytes(b'{"model": "m", "item_id": "1", "score": 1}\n' * 3)
    config = tmp_path / "evalhouse.toml"
    config.write_text("[limits]\nrows = 2\n")
    result = cli("ingest", folder, "-w", tmp_path / "wh", "--config", config)
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        f"rejected: {folder}/lines.jsonl: (file): 3 lines, over the limit of 2 ([limits] rows in evalhouse.toml)"
    ]
    config.write_text("[limits]\nrow = 2\n")
    bad = cli("ingest", folder, "-w", tmp_path / "wh", "--config", config)
    assert (bad.exit_code, bad.stderr.splitlines()[0]) == (
        1, f"Error: {config}: [limits] has unknown key(s) row; known: file_bytes, unpacked_bytes, members, rows, "
           "json_values, depth")  # fmt: skip
    broken = [
        ("[limits]\nrows = -1\n", "limits.rows must be a positive integer, not -1"),
        (bytes(range(256)).decode("latin-1"), "not a valid UTF-8 TOML file (UnicodeDecodeError)"),
        ("a = " + "[" * 5000 + "]" * 5000, "not a valid UTF-8 TOML file (RecursionError)"),
    ]
    for text, error in broken:
        config.write_bytes(text.encode("latin-1"))
        bad = cli("ingest", folder, "-w", tmp_path / "wh", "--config", config)
        assert (bad.exit_code, bad.stderr) == (1, f"Error: {config}: {error}\n")


# Peak memory of one hostile file's ingest, in a process of its own (ru_maxrss of that process).
PEAK_DRIVER = r"""
import sys, time
from evalhouse.ingest import ingest
from evalhouse.warehouse import open_warehouse
t0 = time.perf_counter()
report = ingest(open_warehouse(sys.argv[1], create=True), [sys.argv[2]], workers=1)
(offer,) = report.offers
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent through fork and exec.
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(offer.status, peak // 1024, round(time.perf_counter() - t0, 1))
print(offer.reason)
"""


def write_zip_bomb(path: Path, expanded: int) -> None:
    """An .eval of ~1 MB whose sample expands to ``expanded`` bytes (written without holding them)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("header.json", HEADER)
        with z.open("samples/1_epoch_1.json", "w", force_zip64=True) as f:
            f.write(b'{"id": 1, "epoch": 1, "target": "4", "scores": {"match": {"value": "C"}}, "input": "')
            chunk = b"x" * 2**24
            for _ in range(expanded // len(chunk)):
                f.write(chunk)
            f.write(b'"}')


@pytest.mark.slow
@pytest.mark.parametrize("case", ["zip-bomb", "tiny-items"])
def test_peak_memory_of_a_hostile_file_stays_under_1_gb(tmp_path: Path, case: str) -> None:
    path = tmp_path / ("bomb.eval" if case == "zip-bomb" else "items.json")
    if case == "zip-bomb":
        write_zip_bomb(path, 2**30)  # 1 GB from ~1 MB: took 66 s and 9.6 GB
        assert path.stat().st_size < 2 * 2**20
    else:
        with path.open("wb") as f:  # ten million tiny items (80 MB) parsed took several GB
            f.write(b"[" + b'{"a":1},' * 9_999_999 + b'{"a":1}]')
    out = subprocess.run([sys.executable, "-c", PEAK_DRIVER, str(tmp_path / "wh"), str(path)], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr
    status, peak_mb, seconds = out.stdout.split("\n")[0].split()
    assert status == "rejected", out.stdout
    assert int(peak_mb) < 1024, f"peak {peak_mb} MB"
    assert float(seconds) < 60
    bound = "unpacked_bytes" if case == "zip-bomb" else "json_values"
    assert f"([limits] {bound} in evalhouse.toml)" in out.stdout


# ---------------------------------------------------------------------------------------------
# 3. Unreadable folders are in the ledger
# ---------------------------------------------------------------------------------------------


def test_an_unreadable_folder_is_rejected_with_the_os_reason(
    wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "corpus"
    shutil.copytree(GOOD, folder)
    locked = folder / "locked"
    locked.mkdir()
    (locked / "x_results.json").write_bytes(results_json())
    real_scandir = os.scandir

    def scandir(path: Any = ".") -> Any:  # root reads a chmod-000 folder: refuse as the OS would
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(locked))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    counts, rejected = outcome(ingest(wh, [folder], workers=1))
    assert rejected == {str(locked): f"{locked}: (folder): cannot read: Permission denied"}
    assert counts == {**GOOD_COUNTS, "rejected": 1}
    listed = cli("files", "-w", wh.root, "--status", "rejected", "--format", "json")
    assert [r["path"] for r in orjson.loads(listed.stdout)] == [str(locked)]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads folders whatever their mode")
def test_a_chmod_000_folder_for_real(wh: Warehouse, tmp_path: Path) -> None:
    locked = tmp_path / "c" / "sub"
    locked.mkdir(parents=True)
    (locked / "x_results.json").write_bytes(results_json())
    locked.chmod(0)
    try:
        _, rejected = outcome(ingest(wh, [tmp_path / "c"], workers=1))
    finally:
        locked.chmod(0o755)
    assert rejected == {str(locked): f"{locked}: (folder): cannot read: Permission denied"}


# ---------------------------------------------------------------------------------------------
# 4. Every failure is an Error: line
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def synth_wh(tmp_path: Path) -> Path:
    """A warehouse of a small synthetic corpus (pairs to compare, repeated runs for noise)."""
    from evalhouse import synth
    from evalhouse.warehouse import open_warehouse

    synth.generate(tmp_path / "corpus", 12, seed=3)
    ingest(open_warehouse(tmp_path / "wh", create=True), [tmp_path / "corpus"], workers=1)
    return tmp_path / "wh"


READERS = [
    ["files"], ["models"], ["summary"], ["sql", "SELECT count(*) FROM scores"], ["compare"], ["gate", "--margin", "2%"],
    ["flips", "-b", "basem"], ["noise"], ["power", "-b", "basem", "-c", "basem-q4km", "--delta", "0.05"],
    ["export", "--format", "parquet", "OUT"], ["export", "--format", "eee", "OUT"], ["report", "--out", "OUT"],
]  # fmt: skip


@pytest.mark.parametrize("damage", ["zeros", "truncated"])
def test_a_damaged_parquet_file_is_an_error_line_for_every_reader(synth_wh: Path, tmp_path: Path, damage: str) -> None:
    for f in synth_wh.glob("tables/*/part-*.parquet"):
        data = bytearray(f.read_bytes())
        if damage == "zeros":
            data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
        f.write_bytes(bytes(data) if damage == "zeros" else bytes(data[: len(data) // 2]))
    for command in READERS:
        args = [str(tmp_path / "out") if a == "OUT" else a for a in command]
        result = cli(*args, "-w", synth_wh)
        assert result.exit_code == 1, (command, result.output)
        lines = result.stderr.splitlines()
        assert lines[0].startswith("Error: cannot read the warehouse's files: "), (command, result.stderr)
        assert lines[1:] == ["Hint: run `evalhouse doctor` on the warehouse"], command
    ledger = next(synth_wh.glob("tables/files/part-*.parquet"))
    again = cli("ingest", tmp_path / "corpus", "-w", synth_wh)
    assert again.exit_code == 1 and again.stderr.startswith(f"Error: {ledger}: cannot read this file of the warehouse")
    assert "doctor --fix" in again.stderr


def test_a_full_disk_during_compare_and_gate(synth_wh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from evalhouse import tables

    def full(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tables, "parquet_writer", full)
    for command in (["compare"], ["gate", "--margin", "2%"]):
        result = cli(*command, "-w", synth_wh)
        assert (result.exit_code, result.stderr.splitlines()) == (
            1, ["Error: No space left on device", "Hint: free some disk space and run it again"]), command  # fmt: skip


def test_a_full_disk_for_real_during_compare_gate_and_report(synth_wh: Path, mount_tmpfs: Any) -> None:
    disk = mount_tmpfs("8m")
    shutil.copytree(synth_wh, disk / "wh")
    filler = disk / "filler"
    with filler.open("wb") as f:  # leave a few KB: the views file and the comparisons do not fit
        f.write(bytes(shutil.disk_usage(disk).free - 16 * 1024))
    for command in (["compare"], ["gate", "--margin", "2%"], ["report", "--out", str(disk / "report")]):
        result = cli(*command, "-w", disk / "wh")
        assert result.exit_code == 1, (command, result.output)
        assert "Traceback" not in result.output
        assert result.stderr.splitlines()[-1] == "Hint: free some disk space and run it again", command
        assert "No space left on device" in result.stderr.splitlines()[0]
    filler.unlink()
    # What the full disk left (the views file of the copied warehouse, stale, and its temporary file):
    # the next command, or doctor --fix, finishes it.
    assert cli("doctor", "--fix", "-w", disk / "wh").stdout.splitlines()[-1] == "healthy"


def test_a_config_nested_too_deeply(synth_wh: Path, tmp_path: Path) -> None:
    config = tmp_path / "deep.toml"
    config.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    for command in (["compare"], ["gate", "--margin", "2%"]):
        result = cli(*command, "--config", config, "-w", synth_wh)
        assert (result.exit_code, result.stderr) == (1, f"Error: {config}: not valid TOML (nested too deeply)\n")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(bytes(range(256)) * 8)
    result = cli("compare", "--config", binary, "-w", synth_wh)
    assert (result.exit_code, result.stderr.splitlines()[0]) == (
        1, f"Error: {binary}: not a text file (evalhouse.toml must be UTF-8 TOML)")  # fmt: skip


@pytest.mark.parametrize("damage", ["{", "[]", '{"schema_version": "4"}', "\x00\xff binary", None])
def test_doctor_fix_rebuilds_evalhouse_json(synth_wh: Path, damage: str | None) -> None:
    before = cli("files", "-w", synth_wh, "--format", "csv").stdout
    meta = synth_wh / "evalhouse.json"
    if damage is None:
        meta.unlink()
    else:
        meta.write_bytes(damage.encode("latin-1"))
    broken = cli("summary", "-w", synth_wh)
    assert broken.exit_code == 1 and broken.stderr.startswith("Error: ")
    assert "rebuilds it from the tables" in cli("doctor", "-w", synth_wh).stdout
    fixed = cli("doctor", "--fix", "-w", synth_wh)
    assert fixed.exit_code == 0, fixed.output
    assert fixed.stdout.startswith(f"rebuilt {meta} from the tables and versions (it was ")
    assert fixed.stdout.splitlines()[-1] == "healthy"
    assert json.loads(meta.read_text())["schema_version"] == 4
    assert cli("files", "-w", synth_wh, "--format", "csv").stdout == before


def test_doctor_fix_leaves_a_newer_warehouse_alone(synth_wh: Path) -> None:
    meta = synth_wh / "evalhouse.json"
    meta.write_text(json.dumps(json.loads(meta.read_text()) | {"schema_version": 99}))
    result = cli("doctor", "--fix", "-w", synth_wh)
    assert result.exit_code == 1 and "99" in result.output
    assert json.loads(meta.read_text())["schema_version"] == 99


# ---------------------------------------------------------------------------------------------
# 5. Terminal injection: everything printed from input is escaped
# ---------------------------------------------------------------------------------------------


def test_ingest_output_is_escaped(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    evil = "x\x1b[2J\nrejected: forged\u202e.json"
    (folder / evil).write_bytes(b"{not json")
    key = "a\nrejected: /etc/passwd: forged\x1b[31m"
    (folder / "k.jsonl").write_bytes(orjson.dumps({"model": "m", "item_id": "1", "score": 1, key: 1}) + b"\n")
    result = cli("ingest", folder, "-w", tmp_path / "wh")
    assert "\x1b" not in result.output and "\u202e" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(
        f"rejected: {folder}/k.jsonl: line 1.a\\nrejected: /etc/passwd: forged\\x1b[31m: unknown column"
    )
    assert lines[1].startswith(f"rejected: {folder}/x\\x1b[2J\\nrejected: forged\\u202e.json: (file): not valid JSON")
    strict = cli("ingest", "--strict", folder, "-w", tmp_path / "wh2")
    assert strict.exit_code == 1 and "\x1b" not in strict.output and len(strict.stderr.splitlines()) == 3
    missing = cli("ingest", str(tmp_path / "no\x1b[2Jthing"), "-w", tmp_path / "wh3")
    assert missing.stderr == f"Error: no such file or folder: {tmp_path}/no\\x1b[2Jthing\n"


# ---------------------------------------------------------------------------------------------
# 6. Copies of rejected files; CSV headers and long fields
# ---------------------------------------------------------------------------------------------


def test_a_copy_of_a_rejected_file_is_rejected_for_the_same_reason(wh: Warehouse, tmp_path: Path) -> None:
    name, content, reason = UNSTORABLE[0]
    folder, path = corpus_with(tmp_path, name, content)
    copy = folder / "sub" / "copy.jsonl"
    copy.parent.mkdir()
    copy.write_bytes(content)
    counts, rejected = outcome(ingest(wh, [folder], workers=1))
    assert rejected == {path: f"{path}: {reason}", str(copy): f"{copy}: {reason}"}
    assert counts == {**GOOD_COUNTS, "rejected": 2}
    later = folder / "later.jsonl"  # a copy offered in a later ingest
    later.write_bytes(content)
    counts, rejected = outcome(ingest(wh, [later], workers=1))
    assert rejected == {str(later): f"{later}: {reason}"}
    listed = cli("files", "-w", wh.root, "--status", "rejected", "--format", "json")
    assert len(orjson.loads(listed.stdout)) == 3


def test_a_copy_of_a_rejected_file_is_never_its_duplicate(wh: Warehouse, tmp_path: Path) -> None:
    # The same bytes are no known shape as a.json and eval_set's bookkeeping (no scores) as logs.json:
    # the copy was recorded as a `duplicate` of the rejected file, so `files --status rejected` and
    # `not-results` both missed what it is.
    folder = tmp_path / "c"
    folder.mkdir()
    content = orjson.dumps({"a.eval": {"eval": {"task": "t", "model": "m"}, "status": "success"}})
    (folder / "a.json").write_bytes(content)
    (folder / "logs.json").write_bytes(content)
    got = {Path(o.path).name: (o.status, o.reason) for o in ingest(wh, [folder], workers=1).offers}
    assert got == {
        "a.json": ("rejected", f"{folder}/a.json: (file): no adapter recognises this content (a JSON object with keys "
                               "a.eval)"),
        "logs.json": ("not-results", f"{folder}/logs.json: holds no scores"),
    }  # fmt: skip


CSV_HEADER = "model,item_id,score"


def test_csv_duplicate_header_columns_are_rejected(wh: Warehouse, tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text(f"{CSV_HEADER},score\nm,1,0.25,0.75\n")
    (offer,) = ingest(wh, [path], workers=1).offers
    assert (offer.status, offer.reason) == ("rejected", f"{path}: header: column 'score' appears more than once")


def test_csv_long_fields_are_read(wh: Warehouse, tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    long = "y" * 300_000  # over the csv module's default 128 KB field limit
    path.write_text(f"{CSV_HEADER},response\nm,1,1,{long}\n")
    (offer,) = ingest(wh, [path], workers=1).offers
    assert (offer.status, offer.reason) == ("ingested", None)
    con = connect(wh)
    assert con.execute("SELECT length(response) FROM samples").fetchall() == [(300_000,)]
    con.close()


# ---------------------------------------------------------------------------------------------
# 8. `evalhouse sql` only reads
# ---------------------------------------------------------------------------------------------


REFUSED = [
    ("COPY (SELECT * FROM scores) TO '{tables}/scores/more.parquet'", "COPY"),
    ("ATTACH '{tmp}/other.duckdb' AS other", "ATTACH"),
    ("INSTALL httpfs", "INSTALL"),
    ("LOAD httpfs", "LOAD"),
    ("SET enable_external_access = true", "SET"),
    ("CREATE TABLE t AS SELECT 1", "CREATE"),
    ("SELECT 1; DROP VIEW scores", "DROP"),
    ("EXPLAIN ANALYZE COPY (SELECT 1) TO '{tmp}/x.csv'", "COPY"),
    ("PRAGMA enable_profiling", "PRAGMA"),
    ("EXPORT DATABASE '{tmp}/export'", "EXPORT"),
]


@pytest.mark.parametrize(("statement", "word"), REFUSED, ids=[w for _, w in REFUSED])
def test_sql_refuses_what_writes(synth_wh: Path, tmp_path: Path, statement: str, word: str) -> None:
    before = cli("sql", "-w", synth_wh, "SELECT count(*) AS n, sum(score) AS s FROM scores", "--format", "csv").stdout
    statement = statement.format(tables=synth_wh / "tables", tmp=tmp_path)
    result = cli("sql", "-w", synth_wh, statement)
    assert (result.exit_code, result.stderr.splitlines()) == (1, [
        f"Error: {word} is not run: `evalhouse sql` runs read-only statements only",
        "Hint: `evalhouse sql --unsafe` (or `evalhouse shell`) runs any statement, with nothing guarding the warehouse",
    ])  # fmt: skip
    assert not list(tmp_path.glob("other.duckdb")) and not (synth_wh / "tables" / "scores" / "more.parquet").exists()
    after = cli("sql", "-w", synth_wh, "SELECT count(*) AS n, sum(score) AS s FROM scores", "--format", "csv").stdout
    assert after == before


@pytest.mark.parametrize(
    "reader", ["read_csv('/etc/passwd')", "read_text('/etc/hostname')", "glob('/*')", "read_parquet('/x.parquet')"]
)
def test_sql_reads_nothing_outside_the_warehouse(synth_wh: Path, reader: str) -> None:
    result = cli("sql", "-w", synth_wh, f"SELECT * FROM {reader}")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: query failed: Permission Error: Cannot access ")
    assert "file system operations are disabled by configuration" in result.stderr


def test_sql_reads_the_warehouse(synth_wh: Path) -> None:
    one_file = next(synth_wh.glob("tables/scores/*.parquet"))
    for statement in ("WITH s AS (SELECT * FROM scores) SELECT count(*) FROM s", "DESCRIBE scores", "SHOW TABLES",
                      "SUMMARIZE runs", "EXPLAIN SELECT * FROM scores", "FROM models LIMIT 1", "CALL pragma_version()",
                      f"SELECT count(*) FROM read_parquet('{one_file}')"):  # fmt: skip
        result = cli("sql", "-w", synth_wh, statement)
        assert result.exit_code == 0, (statement, result.output)


def test_sql_reads_a_warehouse_whose_path_has_glob_characters(tmp_path: Path) -> None:
    root = tmp_path / "st*r?" / "wh"
    assert cli("ingest", GOOD, "-w", root).exit_code == 0
    result = cli("sql", "-w", root, "SELECT count(*) AS n FROM scores", "--format", "csv")
    assert (result.exit_code, result.stdout) == (0, f"n\n{GOOD_SCORES}\n")


def test_sql_unsafe_lifts_it(synth_wh: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.csv"
    result = cli("sql", "--unsafe", "-w", synth_wh, f"COPY (SELECT * FROM scores) TO '{out}'")
    assert result.exit_code == 0, result.output
    assert out.read_text().count("\n") > 100


def test_the_readme_lists_every_bound() -> None:
    from evalhouse.limits import describe

    readme = (ROOT / "README.md").read_text()
    for name, default, _what in describe():
        assert f"| `{name}` | {default:,} |" in readme, name
