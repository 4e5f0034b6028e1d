"""The schema is declared once: README's data dictionary and the live views follow engine/schema.py."""

from __future__ import annotations

import re

from evalhouse.schema import TABLES, VIEWS, data_dictionary
from evalhouse.warehouse import Warehouse, apply_views, connect, view_sql
from tests.conftest import ROOT


def test_readme_data_dictionary_is_generated_from_schema() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- data-dictionary:start -->\n(.*)<!-- data-dictionary:end -->", readme, re.S)
    assert m, "README.md lacks the data-dictionary markers"
    assert m.group(1) == data_dictionary(), "README.md is stale: run `python -m evalhouse.schema`"


def test_every_view_has_the_declared_columns(wh: Warehouse) -> None:
    con = connect(wh)
    defined = [name for name, _ in view_sql(wh)]
    assert sorted(defined) == sorted(VIEWS), "sql/ and engine/schema.py VIEWS disagree"
    for name, view in VIEWS.items():
        cols = [r[0] for r in con.execute(f'DESCRIBE "{name}"').fetchall()]
        assert cols == view.names, name


def test_stored_tables_match_their_arrow_schema(wh: Warehouse) -> None:
    """Each Delta table declares exactly the columns and types of engine/schema.py."""
    import pyarrow as pa
    from deltalake import DeltaTable

    for name, table in TABLES.items():
        declared = DeltaTable(str(wh.root / "tables" / name)).schema().to_arrow()
        assert pa.schema(declared).names == table.names
        assert [str(f.type).replace("large_", "").replace("string_view", "string") for f in pa.schema(declared)] == [
            str(f.type) for f in table.arrow_schema()
        ], name


def test_views_apply_twice_without_change(wh: Warehouse) -> None:
    con = connect(wh)
    before = con.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal ORDER BY 1").fetchall()
    apply_views(con, wh)
    after = con.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal ORDER BY 1").fetchall()
    assert before == after and len(before) == len(VIEWS)
