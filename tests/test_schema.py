"""The schema is declared once: README's data dictionary and the live views follow engine/schema.py."""

from __future__ import annotations

import re

from engine.schema import TABLES, VIEWS, data_dictionary
from engine.warehouse import Warehouse, apply_views, connect, view_sql
from tests.conftest import ROOT


def test_readme_data_dictionary_is_generated_from_schema() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- data-dictionary:start -->\n(.*)<!-- data-dictionary:end -->", readme, re.S)
    assert m, "README.md lacks the data-dictionary markers"
    assert m.group(1) == data_dictionary(), "README.md is stale: run `python -m engine.schema`"


def test_every_view_has_the_declared_columns(wh: Warehouse) -> None:
    con = connect(wh)
    defined = [name for name, _ in view_sql(wh)]
    assert sorted(defined) == sorted(VIEWS), "sql/ and engine/schema.py VIEWS disagree"
    for name, view in VIEWS.items():
        cols = [r[0] for r in con.execute(f'DESCRIBE "{name}"').fetchall()]
        assert cols == view.names, name


def test_stored_tables_match_their_arrow_schema(wh: Warehouse) -> None:
    import pyarrow.parquet as pq

    for name, table in TABLES.items():
        (path,) = wh.table_files(name)
        assert pq.read_schema(path).names == table.names


def test_views_apply_twice_without_change(wh: Warehouse) -> None:
    con = connect(wh)
    before = con.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal ORDER BY 1").fetchall()
    apply_views(con, wh)
    after = con.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal ORDER BY 1").fetchall()
    assert before == after and len(before) == len(VIEWS)
