"""BI tools on evalhouse.duckdb: SQLAlchemy through duckdb-engine, read-only (the path Superset takes).

Listing the views, selecting from them and the information schema work with any SQLAlchemy.
Reflection depends on SQLAlchemy's version, not on evalhouse: duckdb-engine (0.17) runs the
PostgreSQL dialect's catalogue queries against DuckDB's pg_catalog emulation, and

- SQLAlchemy 1.4 (which Superset pins) and 2.0.44 reflect everything (columns, tables);
- later 2.0 releases (2.0.58 seen) reflect columns, but constraint reflection, and so
  ``Table(..., autoload_with=...)``, casts to ``REGCLASS``, a type DuckDB does not have;
- SQLAlchemy 2.1 also asks, for each column, for its collation's schema
  (``pg_collation.collnamespace``); DuckDB's ``pg_collation`` is a stub of ``oid`` and ``collname``
  (enough for 2.0.45's collation subquery), so the query does not bind ("Referenced table
  pg_catalog.pg_collation not found") and ``get_columns`` fails too (duckdb-engine issues #1379,
  #1391; a fix is proposed in #1393).

Each fails on a plain in-memory DuckDB table as well: the reflection tests are expected to fail
exactly where such a table cannot be reflected, and must pass everywhere else.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from evalhouse.cli import main
from evalhouse.export_parquet import sql_type
from evalhouse.schema import VIEWS
from evalhouse.warehouse import Warehouse, connect, open_warehouse
from tests._harness import FIXTURES, load


def _reflection_error(reflect: Callable[[sa.Connection], object]) -> str | None:
    """The error this SQLAlchemy and duckdb-engine give reflecting a plain in-memory table, if any."""
    probe = sa.create_engine("duckdb:///:memory:")
    try:
        with probe.connect() as c, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # duckdb-engine warns that it reflects no indexes
            c.execute(sa.text("CREATE TABLE t (x INTEGER)"))
            reflect(c)
    except sa.exc.DBAPIError as exc:
        return str(exc.orig).splitlines()[0]
    finally:
        probe.dispose()
    return None


def _fails_for_any_table(reflect: Callable[[sa.Connection], object]) -> pytest.MarkDecorator:
    error = _reflection_error(reflect)
    return pytest.mark.xfail(
        error is not None,
        reason=f"SQLAlchemy {sa.__version__} with duckdb-engine cannot do this for any DuckDB table: {error}",
        raises=sa.exc.DBAPIError,
        strict=True,
    )


column_reflection = _fails_for_any_table(lambda c: sa.inspect(c).get_columns("t"))
table_reflection = _fails_for_any_table(lambda c: sa.Table("t", sa.MetaData(), autoload_with=c))

# The Python type SQLAlchemy reflects each declared SQL type as.
_PYTHON = {"VARCHAR": str, "INTEGER": int, "BIGINT": int, "DOUBLE": float, "BOOLEAN": bool,
           "TIMESTAMP": datetime, "TIMESTAMP WITH TIME ZONE": datetime}  # fmt: skip


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """SO8T and lm-eval fixtures with a stored comparison."""
    wh = open_warehouse(tmp_path_factory.mktemp("bi") / "wh", create=True)
    load(wh, FIXTURES / "so8t" / "good", FIXTURES / "lm_eval" / "out")
    result = CliRunner().invoke(main, ["compare", "-w", str(wh.root)], catch_exceptions=False)
    assert result.exit_code == 0
    return wh


@pytest.fixture
def engine(wh: Warehouse) -> Iterator[sa.Engine]:
    eng = sa.create_engine("duckdb:///" + str(wh.db_path), connect_args={"read_only": True})
    yield eng
    eng.dispose()


def view_rows(wh: Warehouse, view: str, order: str) -> list[tuple[object, ...]]:
    con = connect(wh)
    try:
        return con.execute(f"SELECT * FROM {view} ORDER BY {order}").fetchall()
    finally:
        con.close()


def test_every_view_is_listed(engine: sa.Engine) -> None:
    inspector = sa.inspect(engine)
    assert sorted(inspector.get_view_names()) == sorted(VIEWS)
    assert inspector.get_table_names() == []  # only views: the data stay in the Parquet files


@column_reflection
@pytest.mark.parametrize("view", VIEWS)
def test_get_columns_gives_each_view_as_declared(engine: sa.Engine, view: str) -> None:
    got = sa.inspect(engine).get_columns(view)
    declared = VIEWS[view].columns
    assert [c["name"] for c in got] == [c.name for c in declared]
    for col, decl in zip(got, declared, strict=True):
        # Names, Python types and integer widths. Not the time-zone flag: pg_catalog's format_type
        # says `timestamptz`, which the PostgreSQL dialect reads as TIMESTAMP without it; the values
        # still arrive as aware datetimes (test_select_through_sqlalchemy_returns_the_rows).
        kind = sql_type(decl)
        assert col["type"].python_type is _PYTHON[kind], (decl.name, col["type"])
        assert isinstance(col["type"], sa.BigInteger) == (kind == "BIGINT"), decl.name


@table_reflection
@pytest.mark.filterwarnings("ignore:duckdb-engine doesn't yet support reflection on indices")
def test_a_reflected_table_selects(engine: sa.Engine, wh: Warehouse) -> None:
    with engine.connect() as c:
        summary = sa.Table("model_summary", sa.MetaData(), autoload_with=c)
        got = c.execute(sa.select(summary).order_by(summary.c.model, summary.c.metric)).fetchall()
    assert [tuple(r) for r in got] == view_rows(wh, "model_summary", "model, metric")


def test_information_schema_gives_each_view_as_declared(engine: sa.Engine) -> None:
    """The catalogue a BI tool can read whatever SQLAlchemy's version: names and types as declared."""
    query = sa.text(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position"
    )
    with engine.connect() as c:
        got: dict[str, list[tuple[str, str]]] = {}
        for table, column, kind in c.execute(query):
            got.setdefault(table, []).append((column, kind))
    assert got == {name: [(c.name, sql_type(c)) for c in view.columns] for name, view in VIEWS.items()}


@pytest.mark.parametrize(("view", "order"), [("model_summary", "model, metric"),
                                             ("comparisons", "baseline, candidate, metric")])  # fmt: skip
def test_select_through_sqlalchemy_returns_the_rows(engine: sa.Engine, wh: Warehouse, view: str, order: str) -> None:
    """A Core select on the declared columns (no reflection needed) returns what the CLI's views return."""
    table = sa.table(view, *(sa.column(c.name) for c in VIEWS[view].columns))
    with engine.connect() as c:
        got = c.execute(sa.select(table).order_by(*(sa.text(o) for o in order.split(", ")))).fetchall()
    want = view_rows(wh, view, order)
    assert want and [tuple(r) for r in got] == want


def test_read_only_connections_see_the_files_of_their_moment(tmp_path: Path) -> None:
    """A BI connection cannot change anything and does not block an ingest.

    Each commit replaces evalhouse.duckdb (its views name exact files), so an open connection keeps
    reading what was committed when it opened. While any connection to the file is open in a
    process, DuckDB gives that process's new connections the same database, so they lag too; once
    all are closed, the next one sees the new rows. Hence NullPool (Superset's default for queries)
    rather than a pool that keeps connections open."""
    wh = open_warehouse(tmp_path / "wh", create=True)
    load(wh, FIXTURES / "so8t" / "good" / "tiny-model_q8_0_results.json")
    eng = sa.create_engine("duckdb:///" + str(wh.db_path), connect_args={"read_only": True}, poolclass=sa.NullPool)
    count = sa.text("SELECT count(*) FROM runs")
    try:
        with eng.connect() as held:
            assert held.execute(count).scalar_one() == 1
            with pytest.raises(sa.exc.DBAPIError, match="read-only"):
                held.execute(sa.text("CREATE TABLE notes (x INTEGER)"))
            held.rollback()
            extra = tmp_path / "extra.jsonl"
            extra.write_text('{"model": "late-model", "item_id": "q1", "score": 1}\n', encoding="utf-8")
            load(wh, extra)  # not blocked by the open connection
            assert held.execute(count).scalar_one() == 1
            with eng.connect() as meanwhile:
                assert meanwhile.execute(count).scalar_one() == 1  # the same database while one is open
        with eng.connect() as later:
            assert later.execute(count).scalar_one() == 2
    finally:
        eng.dispose()


def test_views_name_absolute_paths_until_evalhouse_reopens_a_moved_warehouse(wh: Warehouse, tmp_path: Path) -> None:
    """A copied or moved warehouse's views file still reads the old paths; any evalhouse command rewrites it."""
    moved = tmp_path / "moved"
    shutil.copytree(wh.root, moved)

    def view_sql() -> str:
        con = duckdb.connect(str(moved / "evalhouse.duckdb"), read_only=True)
        try:
            return con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'runs'").fetchone()[0]  # type: ignore[index]
        finally:
            con.close()

    old, new = str(wh.root / "tables" / "runs"), str(moved / "tables" / "runs")
    assert old in view_sql()
    open_warehouse(moved)
    assert new in view_sql() and old not in view_sql()


def test_declared_types_cover_every_view_column() -> None:
    """Every view column's declared type has a SQL name (what the BI catalogue shows)."""
    kinds = {sql_type(c) for view in VIEWS.values() for c in view.columns}
    assert kinds <= set(_PYTHON)
