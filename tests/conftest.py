"""Shared fixtures: fresh warehouses, the fixture corpus, the SO8T corpus when present."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.warehouse import Warehouse, open_warehouse

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SO8T = ROOT.parent / "shared" / "corpus" / "so8t"


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    """A new, empty warehouse."""
    return open_warehouse(tmp_path / "wh", create=True)


@pytest.fixture
def so8t_fixtures(tmp_path: Path) -> Path:
    """A private copy of tests/fixtures/so8t (tests may change files in it)."""
    dest = tmp_path / "so8t"
    shutil.copytree(FIXTURES / "so8t", dest)
    return dest


@pytest.fixture
def so8t_corpus() -> Path:
    """The real SO8T corpus beside the repository; skips when it is absent."""
    if not SO8T.is_dir():
        pytest.skip("../shared/corpus/so8t is not present")
    return SO8T
