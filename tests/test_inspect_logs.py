"""Real inspect_ai logs of 0.3.58 and 0.3.285 (and one written by lighteval's inspect backend).

Written by inspect_ai itself (``tests/fixtures/inspect/generators/``, README there): the task ``arith``
(5 samples, 2 epochs, scorers ``match(numeric=True)`` and ``includes()``, version 2) run on a local
model API ``arithbot`` whose ``model-a`` answers 4, 13, 2, "It is 9", 20 and ``model-b`` 4, 12, 2, 6, 20.

- ``v0_3_285/same``: model-a and model-b, ``.eval`` (members zstd-compressed, inspect 0.3.206+);
- ``v0_3_285/changed``: model-b as ``.json`` on the dataset with sample ``add-2``'s input changed,
  then sample (mul-2, epoch 1) invalidated with ``inspect_ai.log.invalidate_samples``;
- ``v0_3_285/reducers``: model-b with epoch reducers ``mean`` and ``pass_at_2``;
- ``v0_3_58``: model-a as ``.eval`` (deflate) and model-b as ``.json`` with inspect_ai 0.3.58;
- ``lighteval``: lighteval 0.13.0's ``main_inspect.get_inspect_ai_task`` for the lighteval task
  ``arith:addition`` with 1 few-shot example, run through ``inspect_ai.eval_set`` (which also wrote
  ``eval-set.json`` and ``logs.json`` there).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from evalhouse.adapters.inspect_ai import item_hash
from evalhouse.errors import BadResultFile
from evalhouse.ingest import read_source
from evalhouse.warehouse import Warehouse
from tests._harness import FIXTURES, SAME, load, metrics, rows, samples
from tests.test_lighteval_layouts import claimants

ROOT = FIXTURES / "inspect"
SAME_A = ROOT / "v0_3_285" / "same" / "2026-11-29T23-12-29-00-00_arith_8MQ7gkKnr97WhcqHdGuUJz.eval"
SAME_B = ROOT / "v0_3_285" / "same" / "2026-11-29T23-12-34-00-00_arith_7z5G7a6AfbS7bcjiMxFJyg.eval"
CHANGED_B = ROOT / "v0_3_285" / "changed" / "2026-11-29T23-12-37-00-00_arith_BNRWnwoE5ybcQSXT2BtHt7.json"
REDUCERS_B = ROOT / "v0_3_285" / "reducers" / "2026-11-29T23-14-30-00-00_arith_DDjHqDKQJHMa6qzbYWM8Kt.eval"
OLD_A = ROOT / "v0_3_58" / "2026-11-29T23-13-18+00-00_arith_4uemMCDX6MA2B5HGPJXzou.eval"
OLD_B = ROOT / "v0_3_58" / "2026-11-29T23-13-19+00-00_arith_SxWcZ6yXVY6KktHxw5GD49.json"
LIGHTEVAL = ROOT / "lighteval" / "2026-11-29T23-13-33-00-00_arith-addition-1-shots_9TCapVkHY9xXX3zJepeVtq.eval"
A, B = "arithbot/model-a", "arithbot/model-b"
BOOKS = ("eval-set.json", "logs.json")
CHAT = [{"content": "Réponds brièvement.", "role": "system"}, {"content": "Wie viel ist 1+1? ÄÖÜ", "role": "user"}]


def sha(input: object, target: object) -> str:
    """The documented recipe, spelled out: canonical JSON of the input (or its messages' contents) and target."""
    text = json.dumps({"input": input, "target": target}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def test_every_log_is_claimed_by_inspect_alone() -> None:
    logs = [SAME_A, SAME_B, CHANGED_B, REDUCERS_B, OLD_A, OLD_B, LIGHTEVAL, *(LIGHTEVAL.parent / n for n in BOOKS)]
    assert {p.name: claimants(p) for p in logs} == {p.name: ["inspect-ai"] for p in logs}


def test_zstd_eval_log_value_by_value(wh: Warehouse) -> None:
    """0.3.285 `.eval`: zstd members; every column of the `match` rows; `includes` mirrors them."""
    load(wh, SAME_A)
    row = (A, "arith")
    add, mul = "addition", "multiplication"
    expected = [  # (category, item, epoch, score, total_time, attributes, question, response, target)
        (add, "1", 1, 1.0, 0.038, '{"difficulty":1}', "What is 2+2?", "4", "4"),
        (add, "1", 2, 1.0, 0.037, '{"difficulty":1}', "What is 2+2?", "4", "4"),
        (add, "add-2", 1, 0.0, 0.038, None, "What is 7+5?", "13", '["12","twelve"]'),
        (add, "add-2", 2, 0.0, 0.036, None, "What is 7+5?", "13", '["12","twelve"]'),
        # chat input: the last user message is the question
        (add, "add-3", 1, 1.0, 0.037, None, "Wie viel ist 1+1? ÄÖÜ", "2", "2"),
        (add, "add-3", 2, 1.0, 0.036, None, "Wie viel ist 1+1? ÄÖÜ", "2", "2"),
        (mul, "mul-1", 1, 1.0, 0.037, None, "What is 3*3?", "It is 9", "9"),
        (mul, "mul-1", 2, 1.0, 0.035, None, "What is 3*3?", "It is 9", "9"),
        # no subject: the category is the benchmark
        ("arith", "mul-2", 1, 1.0, 0.037, None, "What is 4*5?", "20", "20"),
        ("arith", "mul-2", 2, 1.0, 0.035, None, "What is 4*5?", "20", "20"),
    ]
    assert samples(wh, "metric = 'match'") == sorted(
        (*row, cat, "arith", item, epoch, None, None, "match", score, True, time, None, None, attrs, q, r, t)
        for cat, item, epoch, score, time, attrs, q, r, t in expected
    )
    assert rows(wh, "SELECT item_id, epoch, score FROM scores WHERE metric = 'includes' ORDER BY ALL") == [
        (e[1], e[2], e[3]) for e in expected
    ]
    assert metrics(wh) == [
        (*row, "arith", "arith", "includes", None, 0.8, 0.20000000000000004, 5, True),
        (*row, "arith", "arith", "match", None, 0.8, 0.20000000000000004, 5, True),
    ]
    [(status, started, n_items, meta)] = rows(wh, "SELECT status, started_at, n_items, metadata FROM runs")
    assert (status, started, n_items) == ("success", datetime(2026, 11, 29, 23, 12, 29), 10)
    assert json.loads(meta) == {
        "task_version": 2,
        "dataset": "arith",
        "epochs": 2,
        "log_version": 2,
        "eval_id": "APFRAuto5caH7QmtXXKUHo",
        "settings": {
            "generate_config": {"max_tokens": 64, "temperature": 0.0, "seed": 7},
            "task_version": 2,
            "task_args": {"changed": False},
            "config": {"epochs": 2, "epochs_reducer": ["mean"]},
            "dataset": {"name": "arith", "samples": 5, "shuffled": False},
            "inspect_ai": "0.3.285",
        },
    }


def test_item_hash_is_the_same_across_models_and_differs_where_the_input_changed(wh: Warehouse) -> None:
    load(wh, SAME_A, SAME_B, CHANGED_B)
    got = rows(
        wh,
        """SELECT DISTINCT s.model, r.source_path LIKE '%changed%', s.item_id, s.item_hash
                      FROM scores s JOIN runs r USING (run_id) ORDER BY ALL""",
    )
    hashes: dict[tuple[str, bool], dict[str, str]] = {}
    for model, changed, item, h in got:
        assert hashes.setdefault((model, changed), {}).setdefault(item, h) == h  # one hash per item and run
    a, b, b2 = hashes[A, False], hashes[B, False], hashes[B, True]
    assert (
        a
        == b
        == {
            "1": sha("What is 2+2?", "4"),
            "add-2": sha("What is 7+5?", ["12", "twelve"]),
            "add-3": sha([m["content"] for m in CHAT], "2"),  # message ids (random per run) and roles left out
            "mul-1": sha("What is 3*3?", "9"),
            "mul-2": sha("What is 4*5?", "20"),
        }
    )
    assert b2 == {**b, "add-2": sha("What is 7+5 (in base 10)?", ["12", "twelve"])}
    assert item_hash(CHAT, "2") == a["add-3"]
    # pairing on (key, hash) skips the changed item: 4 items x 2 epochs x 2 scorers, less invalidated (mul-2, 1)
    changed = "SELECT run_id FROM runs WHERE source_path LIKE '%changed%'"
    assert rows(wh, f"""
        SELECT count(*) FROM scores a JOIN scores b ON {SAME} AND a.item_hash = b.item_hash
        WHERE a.model = $a AND b.model = $b AND b.run_id IN ({changed})""", {"a": A, "b": B}) == [(14,)]  # fmt: skip


def test_invalidated_sample_is_left_out(wh: Warehouse) -> None:
    """(mul-2, epoch 1) was invalidated after the run: no rows, counted in the metadata; epoch 2 stays."""
    load(wh, CHANGED_B)
    assert rows(wh, "SELECT epoch, metric, score FROM scores WHERE item_id = 'mul-2' ORDER BY ALL") == [
        (2, "includes", 1.0),
        (2, "match", 1.0),
    ]
    [(n_items, meta)] = rows(wh, "SELECT n_items, metadata FROM runs")
    assert (n_items, json.loads(meta)["invalidated_samples"]) == (9, 1)
    assert json.loads(meta)["settings"]["task_args"] == {"changed": True}
    assert (
        rows(wh, "SELECT question, expected FROM samples WHERE item_id = 'add-2' AND metric = 'match'")
        == [("What is 7+5 (in base 10)?", '["12","twelve"]')] * 2
    )


def test_one_score_per_reducer_has_the_reducer_as_filter(wh: Warehouse) -> None:
    load(wh, REDUCERS_B)
    head = (B, "arith", "arith", "arith")
    assert metrics(wh) == [
        (*head, "includes", "mean", 0.8, 0.19999999999999998, 5, True),
        (*head, "includes", "pass_at_2", 0.8, 0.19999999999999998, 5, True),
        (*head, "match", "mean", 0.8, 0.19999999999999998, 5, True),
        (*head, "match", "pass_at_2", 0.8, 0.19999999999999998, 5, True),
    ]
    [(meta,)] = rows(wh, "SELECT metadata FROM runs")
    assert json.loads(meta)["settings"]["config"] == {"epochs": 2, "epochs_reducer": ["mean", "pass_at_2"]}


def test_0_3_58_logs_read_like_current_ones(wh: Warehouse) -> None:
    """0.3.58 has no eval.model_generate_config (the plan's config says it) and no total_time."""
    load(wh, OLD_A, OLD_B)
    got = rows(wh, "SELECT model, item_id, epoch, score, response_time_s > 0 FROM scores WHERE metric = 'match' "
                   "AND epoch = 1 ORDER BY ALL")  # fmt: skip
    assert got == [
        (A, "1", 1, 1.0, True), (A, "add-2", 1, 0.0, True), (A, "add-3", 1, 1.0, True), (A, "mul-1", 1, 1.0, True),
        (A, "mul-2", 1, 1.0, True),
        (B, "1", 1, 1.0, True), (B, "add-2", 1, 1.0, True), (B, "add-3", 1, 1.0, True), (B, "mul-1", 1, 0.0, True),
        (B, "mul-2", 1, 1.0, True),
    ]  # fmt: skip
    settings = [json.loads(m)["settings"] for (m,) in rows(wh, "SELECT metadata FROM runs ORDER BY model")]
    assert settings == [{
        "generate_config": {"max_tokens": 64, "temperature": 0.0, "seed": 7},
        "task_version": 2,
        "task_args": {"changed": False},
        "config": {"epochs": 2, "epochs_reducer": ["mean"]},
        "dataset": {"name": "arith", "samples": 5, "shuffled": False},
        "inspect_ai": "0.3.58",
    }] * 2  # fmt: skip
    assert rows(wh, "SELECT DISTINCT model, response FROM samples WHERE item_id = 'mul-1' ORDER BY ALL") == [
        (A, "It is 9"), (B, "6")
    ]  # fmt: skip


def test_item_hash_agrees_across_inspect_versions(wh: Warehouse) -> None:
    """0.3.58 chat messages have no ids, 0.3.285's have random ones: the same hash."""
    load(wh, OLD_A, SAME_A)
    assert rows(wh, "SELECT count(DISTINCT item_hash), count(DISTINCT run_id) FROM scores WHERE item_id = 'add-3'") == [
        (1, 2)
    ]


def test_log_of_lighteval_inspect_backend(wh: Warehouse) -> None:
    """lighteval's task name `arith:addition` with 1 shot: benchmark and category as lighteval splits them."""
    load(wh, LIGHTEVAL)
    task = "arith:addition_1_shots"
    assert rows(wh, "SELECT DISTINCT model, benchmark, category, task, metric FROM scores") == [
        (A, "arith", "addition", task, "exact")
    ]
    assert rows(wh, "SELECT item_id, score FROM scores ORDER BY ALL") == [
        ("add-1", 1.0), ("add-2", 0.0), ("add-3", 1.0), ("mul-1", 0.0), ("mul-2", 1.0)
    ]  # fmt: skip
    assert metrics(wh) == [(A, "arith", "addition", task, "exact", None, 0.6, 0.24494897427831783, 5, True)]
    [(meta,)] = rows(wh, "SELECT metadata FROM runs")
    assert json.loads(meta)["settings"] == {
        "generate_config": {"temperature": 0.0},
        "task_version": 0,
        "task_args": {"lighteval_task_config": "arith:addition", "epochs": 1, "epochs_reducer": None},
        "config": {"epochs": 1},
        "dataset": {"name": "arith", "location": "/tmp/gen/data/arith", "samples": 5, "shuffled": False},
        "inspect_ai": "0.3.285",
        "lighteval": "0.13.0",
        "num_fewshot": 1,
    }


def test_eval_set_bookkeeping_holds_no_scores(wh: Warehouse) -> None:
    """A folder written by eval_set (here through lighteval): its eval-set.json and logs.json are not results."""
    report = load(wh, LIGHTEVAL.parent)
    assert sorted((Path(o.path).name, o.format, o.status) for o in report.offers) == [
        (LIGHTEVAL.name, "inspect-ai", "ingested"),
        ("eval-set.json", "inspect-ai", "not-results"),
        ("logs.json", "inspect-ai", "not-results"),
    ]
    assert rows(wh, "SELECT count(*) FROM runs") == [(1,)]


def _corrupt_member(src: Path, dest: Path, name: str) -> Path:
    """A copy of an .eval whose member `name` has one byte of its compressed data flipped."""
    shutil.copy(src, dest)
    data = bytearray(dest.read_bytes())
    with zipfile.ZipFile(src) as z:
        info = z.getinfo(name)
    start = info.header_offset
    begin = start + 30 + int.from_bytes(data[start + 26 : start + 28], "little")
    begin += int.from_bytes(data[start + 28 : start + 30], "little")
    data[begin + info.compress_size // 2] ^= 0xFF
    dest.write_bytes(bytes(data))
    return dest


def test_damaged_zstd_member_rejects_the_log(tmp_path: Path) -> None:
    path = _corrupt_member(SAME_A, tmp_path / SAME_A.name, "samples/add-2_epoch_1.json")
    with pytest.raises(BadResultFile) as err:
        read_source(str(path), "0" * 64)
    assert err.value.field == "samples/add-2_epoch_1.json"
    assert err.value.reason.startswith("cannot be read from the zip: ")


def test_header_member_is_read_when_zstd(tmp_path: Path) -> None:
    """The header decides the model: a zstd header.json is read, not mistaken for a missing one."""
    _fmt, [run], _deps = read_source(str(SAME_B), "0" * 64)
    assert (run.model, run.status) == (B, "success")
    assert orjson.loads(orjson.dumps(run.metadata["settings"]["dataset"])) == {"name": "arith", "samples": 5,
                                                                              "shuffled": False}  # fmt: skip
