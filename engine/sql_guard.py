"""`evalhouse sql` is read-only: statements that only read, on a connection that can only read the warehouse.

Two guards, each enough for what it covers:

- :func:`check_read_only` parses the text with DuckDB's own parser and lets through only statements
  that read: ``SELECT`` (``WITH``, ``DESCRIBE``, ``SHOW``, ``SUMMARIZE``, ``FROM x`` are SELECTs to
  DuckDB), ``CALL`` of a table function, and ``EXPLAIN`` of one of those (``EXPLAIN ANALYZE``
  runs its statement). ``COPY ... TO`` (which once wrote straight into a table's folder behind the
  lock), ``ATTACH``, ``INSTALL``, ``LOAD``, ``SET``, ``PRAGMA``, ``EXPORT`` and every statement
  that changes something are refused.
- :func:`lock_down` then configures the connection so that DuckDB itself opens no file outside
  the warehouse's ``tables/`` folder (``enable_external_access = false`` with that folder as
  ``allowed_directories``: no ``read_csv('/etc/passwd')``), loads no extension, and locks the
  configuration so no statement can undo it.

``evalhouse sql --unsafe`` lifts both, as the DuckDB shell (``evalhouse shell``) is there for anything else.
"""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING

from evalhouse import tables
from evalhouse.errors import EvalhouseError
from evalhouse.warehouse import Warehouse, sql_literal

if TYPE_CHECKING:
    import duckdb

# DuckDB's statement types that only read.
READ_ONLY = ("SELECT", "CALL")
_EXPLAIN = re.compile(r"^\s*EXPLAIN\s+(?:\([^()]*\)\s*)?(?:ANALYZE\s+|ANALYSE\s+)?", re.IGNORECASE)
_HINT = "`evalhouse sql --unsafe` (or `evalhouse shell`) runs any statement, with nothing guarding the warehouse"


class RefusedStatement(EvalhouseError):
    """A statement ``evalhouse sql`` does not run without ``--unsafe``."""

    hint = _HINT


def check_read_only(sql: str) -> None:
    """Raise :class:`RefusedStatement` unless every statement of ``sql`` only reads.

    >>> check_read_only("SELECT 1; FROM scores; DESCRIBE runs; EXPLAIN SELECT 2")
    >>> check_read_only("COPY (SELECT 1) TO 'x.csv'")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    evalhouse.sql_guard.RefusedStatement: COPY is not run: `evalhouse sql` runs read-only statements only
    """
    import duckdb

    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise EvalhouseError(f"query failed: {exc}") from None
    for statement in statements:
        text, kinds = statement.query, [statement.type.name]
        if kinds == ["EXPLAIN"]:
            text = _EXPLAIN.sub("", statement.query, count=1)
            # What it explains must itself only read (EXPLAIN ANALYZE runs it); unparsed: refused.
            with contextlib.suppress(duckdb.Error):
                kinds = [s.type.name for s in duckdb.extract_statements(text)] if text != statement.query else kinds
        if any(kind not in READ_ONLY for kind in kinds):
            word = (text.split() or ["an empty statement"])[0].upper()
            raise RefusedStatement(f"{word} is not run: `evalhouse sql` runs read-only statements only")


def lock_down(con: duckdb.DuckDBPyConnection, wh: Warehouse) -> None:
    """Let ``con`` open no file but those under the warehouse's tables, load no extension, and
    lock its configuration (see the module docstring). The views must already be created."""
    folder = str(wh.root / tables.TABLES_DIR) + "/"
    # Views name files with * ? [ escaped as [*] (evalhouse.warehouse.file_literal): DuckDB checks the
    # name as written, and then the files it matches.
    escaped = "".join(f"[{c}]" if c in "*?[" else c for c in folder)
    allowed = ", ".join(sql_literal(f) for f in dict.fromkeys((folder, escaped)))
    for statement in (
        # DuckDB allows its temporary folder on its own (./.tmp/ for an in-memory database): none.
        "SET temp_directory = ''",
        f"SET allowed_directories = [{allowed}]",
        "SET enable_external_access = false",
        "SET autoinstall_known_extensions = false",
        "SET autoload_known_extensions = false",
        "SET lock_configuration = true",
    ):
        con.execute(statement)
