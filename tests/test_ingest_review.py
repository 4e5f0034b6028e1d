"""Ingest edge cases: a file rewritten between its stat and its read, and the so8t-results column
reader against the item reader on empty names."""

from __future__ import annotations

import gc
import shutil
from pathlib import Path

import pytest

from evalhouse import ingest as ingest_module
from evalhouse.adapters import so8t_results
from evalhouse.ingest import ingest
from evalhouse.warehouse import Warehouse, connect
from tests.conftest import FIXTURES
from tests.test_so8t_results_columns import _state

_ITEM = {"model": "m1", "score": 0.5, "test_name": "t", "question": "q", "benchmark": "b", "category": "c"}


@pytest.mark.parametrize(
    "change",
    [
        {"benchmark": "", "domain": ""},
        {"benchmark": None, "domain": ""},
        {"benchmark": "", "domain": None},
        {"benchmark": "", "domain": "", "test_name": None, "task_index": 2},
        {"benchmark": None, "domain": "", "category": None},
    ],
)
@pytest.mark.parametrize("every", [True, False])
def test_column_reader_keeps_empty_benchmark_as_item_reader(change: dict[str, object], every: bool) -> None:
    items = [dict(_ITEM), dict(_ITEM, test_name="u")]
    for item in items if every else items[1:]:
        item.update(change)
    fast = so8t_results._read_columns([dict(i) for i in items], None, {})
    slow = so8t_results._read_items("f.json", [dict(i) for i in items], None, {})
    assert fast is not None
    assert _state(fast) == _state(slow)


def test_copy_of_file_rewritten_after_its_stat_is_a_duplicate(
    wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = sorted((FIXTURES / "so8t" / "good").glob("2025*.json"))[0]
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    shutil.copy(src, first / src.name)
    walk = ingest_module.walk

    def stat_before_rewrite(paths: list[Path], limits: object = ingest_module.DEFAULT) -> object:
        offers, skipped = walk(paths)
        for o in offers:  # stat'ed one byte short: the file was still being written
            o.size = (o.size or 1) - 1
        return offers, skipped

    monkeypatch.setattr(ingest_module, "walk", stat_before_rewrite)
    assert [o.status for o in ingest(wh, [first], workers=1).offers] == ["ingested"]
    monkeypatch.setattr(ingest_module, "walk", walk)
    shutil.copy(src, second / src.name)
    assert [o.status for o in ingest(wh, [second], workers=1).offers] == ["duplicate"]
    con = connect(wh)
    runs, distinct = con.execute("SELECT count(*), count(DISTINCT run_id) FROM runs").fetchone()  # type: ignore[misc]
    assert runs == distinct


def test_collector_back_on_when_the_ledger_cannot_be_read(
    wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_wh: Warehouse) -> object:
        raise RuntimeError("ledger")

    monkeypatch.setattr(ingest_module.LedgerState, "load", broken)
    assert gc.isenabled()
    with pytest.raises(RuntimeError, match="ledger"):
        ingest(wh, [tmp_path], workers=1)
    assert gc.isenabled()
