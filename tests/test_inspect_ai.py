"""inspect_ai logs (.json and .eval): rows value by value, letter scores, statuses, pairing."""

from __future__ import annotations

import zipfile
from datetime import datetime
from pathlib import Path

import pytest

from evalhouse.errors import BadResultFile
from evalhouse.ingest import read_source
from evalhouse.warehouse import Warehouse
from tests._harness import FIXTURES, SAME, load, metrics, rows, samples

GOOD = FIXTURES / "inspect" / "good"
PARTS = FIXTURES / "inspect" / "eval_parts"
TASK = "inspect_evals/arith"
MINI, HAIKU = "openai/gpt-4o-mini", "anthropic/claude-3-haiku"


def make_eval(dest: Path) -> Path:
    """Zip tests/fixtures/inspect/eval_parts into an .eval log (no binary in the repository)."""
    path = dest / "2024-06-03T08-00-00+00-00_arith_mistral.eval"
    with zipfile.ZipFile(path, "w") as z:
        for part in sorted(PARTS.rglob("*.json")):
            z.write(part, part.relative_to(PARTS).as_posix())
    return path


def test_json_log_value_by_value(wh: Warehouse) -> None:
    load(wh, GOOD / "2024-06-01T10-00-00+00-00_arith_gpt4omini.json")
    row = (MINI, "arith")
    assert sorted(samples(wh), key=repr) == sorted([
        # letters: C=1, P=0.5, N=0, I=0; time: total_time, else output.time
        (*row, "addition", TASK, "1", 1, None, None, "match", 1.0, True, 0.5, None, None, '{"difficulty":1}',
         "What is 2+2?", "4", "4"),
        (*row, "addition", TASK, "1", 2, None, None, "match", 1.0, True, 0.25, None, None, '{"difficulty":1}',
         "What is 2+2?", "4", "4"),
        # chat input: the last user message; content parts joined; a one-element target list
        (*row, "multiplication", TASK, "q-2", 1, None, None, "match", 0.5, True, 1.5, None, None, None,
         "What is 3*3?", "It is 9", "9"),
        (*row, "multiplication", TASK, "q-2", 2, None, None, "match", 0.0, True, 2.0, None, None, None,
         "What is 3*3?", None, "9"),
        # no subject in the metadata: the category is the benchmark
        (*row, "arith", TASK, "3", 1, None, None, "match", 0.0, True, 0.75, None, None, None, "What is 5-2?", "2", "3"),
        (*row, "arith", TASK, "3", 2, None, None, "match", 1.0, True, 0.5, None, None, None, "What is 5-2?", "3", "3"),
    ], key=repr)  # fmt: skip
    assert metrics(wh) == [(MINI, "arith", "arith", TASK, "match", None, 0.5833333333333334, 0.3004626062886658, 3,
                            True)]  # fmt: skip
    assert rows(wh, "SELECT source_format, model_base, harness, status, started_at, n_items, metadata FROM runs") == [
        ("inspect-ai", MINI, "inspect_ai", "success", datetime(2024, 6, 1, 10), 6,
         '{"dataset":"arith","epochs":2,"eval_id":"run-a","log_version":2,"settings":{"config":{"epochs":2},'
         '"dataset":{"name":"arith","samples":3},"task_version":0},"task_version":0}')
    ]  # fmt: skip


def test_booleans_numeric_strings_and_dict_values(wh: Warehouse) -> None:
    load(wh, GOOD / "2024-06-02T09-30-00+00-00_arith_haiku.json")
    got = rows(wh, "SELECT item_id, epoch, category, metric, score FROM scores ORDER BY item_id, epoch, metric")
    assert got == [
        ("1", 1, "addition", "match", 1.0),  # true
        ("1", 1, "addition", "rubric/accuracy", 1.0),  # {"accuracy": 1, "style": "0.5"}
        ("1", 1, "addition", "rubric/style", 0.5),
        ("1", 2, "addition", "match", 0.0),  # false
        ("3", 1, "arith", "match", 1.0),  # 1
        ("3", 2, "arith", "match", 1.0),  # 1.0
        ("q-2", 1, "multiplication", "match", 1.0),  # "1"
        ("q-2", 2, "multiplication", "match", 0.5),  # "0.5"
    ]
    assert metrics(wh) == [
        (HAIKU, "arith", "arith", TASK, "match", None, 0.75, 0.25, 3, True),
        (HAIKU, "arith", "arith", TASK, "rubric", None, 0.5, None, 3, True),  # `mean` when there is no accuracy
    ]
    # "+02:00" is converted to local time by parse_time
    local = datetime.fromisoformat("2024-06-02T11:30:00+02:00").astimezone().replace(tzinfo=None)
    assert rows(wh, "SELECT started_at FROM runs") == [(local,)]


def test_eval_zip_of_an_unfinished_log(tmp_path: Path, wh: Warehouse) -> None:
    """An .eval with status error is ingested with its status; an errored sample has no rows."""
    report = load(wh, make_eval(tmp_path))
    assert [o.format for o in report.offers] == ["inspect-ai"]
    assert samples(wh) == [("mistral/mistral-small", "arith", "addition", TASK, "1", 1, None, None, "match", 1.0, True,
                            3.0, None, None, None, "What is 2+2?", "4", "4")]  # fmt: skip
    assert metrics(wh) == []
    assert rows(wh, "SELECT status, n_items FROM runs") == [("error", 1)]


def test_two_logs_of_one_task_pair(wh: Warehouse) -> None:
    load(wh, GOOD)
    # per (item, epoch): both models have the `match` row
    assert rows(wh, f"""
        SELECT count(*) FROM scores a JOIN scores b ON {SAME}
        WHERE a.model = $a AND b.model = $b""", {"a": MINI, "b": HAIKU}) == [(6,)]  # fmt: skip
    # per item, epochs averaged (what a paired test over items uses)
    assert rows(wh, """
        SELECT count(*) FROM (SELECT item_id, avg(score) AS s FROM scores WHERE model = $a AND metric = 'match'
                              GROUP BY ALL) a
        JOIN (SELECT item_id, avg(score) AS s FROM scores WHERE model = $b AND metric = 'match' GROUP BY ALL) b
        USING (item_id)""", {"a": MINI, "b": HAIKU}) == [(3,)]  # fmt: skip


def test_unknown_score_value_rejects_the_log() -> None:
    path = FIXTURES / "inspect" / "bad" / "letter_not_a_score.json"
    with pytest.raises(BadResultFile) as err:
        read_source(str(path), "0" * 64)
    assert (err.value.field, err.value.reason) == (
        "samples[1].scores.match.value", "'maybe' is not a score (a number, true/false or C/I/P/N)")  # fmt: skip


def test_corrupt_eval_zip_is_rejected(tmp_path: Path) -> None:
    path = make_eval(tmp_path)
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("samples/3_epoch_1.json", "{not json")
    with pytest.raises(BadResultFile) as err:
        read_source(str(path), "0" * 64)
    assert err.value.field == "samples/3_epoch_1.json"
    assert err.value.reason.startswith("not valid JSON")
