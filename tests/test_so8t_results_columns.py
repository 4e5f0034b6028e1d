"""The so8t-results column reader builds exactly the runs of the item-by-item reader, or declines."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from evalhouse import synth
from evalhouse.adapters import so8t_results
from evalhouse.adapters.base import RunBuilder, Source, parse_time
from tests.conftest import FIXTURES, SO8T


def _both(path: Path) -> tuple[list[RunBuilder] | None, list[RunBuilder]]:
    doc = orjson.loads(path.read_bytes())
    meta = doc["metadata"]
    started = parse_time(meta.get("timestamp"), str(path), "metadata.timestamp")
    run_meta = {k: v for k, v in meta.items() if k != "timestamp"}
    return (so8t_results._read_columns(doc["results"], started, run_meta),
            so8t_results._read_items(str(path), doc["results"], started, run_meta))  # fmt: skip


def _state(runs: list[RunBuilder]) -> list[tuple[object, ...]]:
    return [(r.key, r.model, r.model_base, r.quantization, r.started_at, r.metadata, r.scores, r.texts, r.metrics,
             r.n_answers) for r in runs]  # fmt: skip


def _files(tmp_path: Path) -> list[Path]:
    synth.generate(tmp_path, 12, shape="so8t-results")
    files = sorted((tmp_path / "so8t-results").glob("*.json"))
    files += sorted(p for p in (FIXTURES / "so8t" / "good").glob("2025*.json"))
    if SO8T.is_dir():
        files += sorted(p for p in SO8T.rglob("*.json") if b'"results"' in p.read_bytes()[:5000])
    return files


def test_column_reader_matches_item_reader(tmp_path: Path) -> None:
    read = 0
    for path in _files(tmp_path):
        source = Source(str(path), path.read_bytes(), "0" * 64)
        if not so8t_results.detect(source):
            continue
        fast, slow = _both(path)
        assert fast is not None, path
        assert _state(fast) == _state(slow), path
        read += 1
    assert read >= 12 + 3


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"score": "high"}, "results[1].score: 'high' is not a number"),
        ({"score": True}, None),  # a bool score is 1.0: accepted by the item reader
        ({"timestamp": "2025-03-01T10:00:00+09:00"}, None),  # a time zone: converted by the item reader
        ({"test_name": 7}, None),  # a number as text
        ({"test_name": None, "task_index": "3", "benchmark": "b"}, "results[1].task_index: '3' is not an integer"),
    ],
)
def test_column_reader_declines_what_it_does_not_check(tmp_path: Path, change: dict[str, object],
                                                        error: str | None) -> None:  # fmt: skip
    doc = {"metadata": {"timestamp": "2025-03-01T00:00:00"}, "results": [
        {"model": "m", "category": "c", "test_name": "a", "score": 0.5},
        {"model": "m", "category": "c", "test_name": "b", "score": 1.0, **change},
    ]}  # fmt: skip
    path = tmp_path / "r.json"
    path.write_bytes(orjson.dumps(doc))
    assert so8t_results._read_columns(doc["results"], None, {}) is None
    source = Source(str(path), path.read_bytes(), "0" * 64)
    if error:
        with pytest.raises(Exception, match=error.replace("[", r"\[").replace("]", r"\]")):
            so8t_results.read(source)
    else:
        assert so8t_results.read(source)[0].n_answers == 2
