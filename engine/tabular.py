"""Render a result (column names + rows) as a text table, CSV, JSON or Markdown.

One output choice, applied the same way by every read command and by the reports.

>>> print(render(["model", "mean"], [("a", 0.5), ("b", None)], "markdown"))
| model | mean |
|---|---|
| a | 0.5000 |
| b |  |
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import orjson

FORMATS = ("table", "csv", "json", "markdown")


def render(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str) -> str:
    """The rows in the chosen format (``table``, ``csv``, ``json`` or ``markdown``)."""
    if fmt == "json":
        records = [dict(zip(columns, (_json_value(v) for v in row), strict=True)) for row in rows]
        return orjson.dumps(records, option=orjson.OPT_INDENT_2).decode()
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(columns)
        w.writerows([["" if v is None else _plain(v) for v in row] for row in rows])
        return buf.getvalue().rstrip("\n")
    cells = [[_cell(v) for v in row] for row in rows]
    if fmt == "markdown":
        lines = ["| " + " | ".join(_md_escape(c) for c in columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in cells]
        return "\n".join(lines)
    if fmt == "table":
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
        numeric = [all(_is_number(row[i]) for row in rows) and bool(rows) for i in range(len(columns))]

        def line(vals: Sequence[str]) -> str:
            return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(vals, widths, numeric, strict=True))

        out = [line(columns), "  ".join("-" * w for w in widths)] + [line(r) for r in cells]
        return "\n".join(s.rstrip() for s in out)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _is_number(v: Any) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def _plain(v: Any) -> str:
    if isinstance(v, float):
        return repr(v)
    return str(v)


def _cell(v: Any) -> str:
    """Display text: floats to 4 decimals, control characters made visible, long text cut."""
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        return f"{v:.4f}"
    text = str(v)
    # Names come from user files: show newlines, tabs and other control characters escaped so a
    # hostile model name cannot forge extra lines or move the cursor.
    if any(ord(ch) < 32 or ord(ch) == 127 or ch in _BIDI_CONTROLS for ch in text):
        text = "".join(_escape(ch) for ch in text)
    return text if len(text) <= 200 else text[:199] + "…"


# Bidirectional overrides can make a name display as a different one ("Trojan source").
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _escape(ch: str) -> str:
    if ord(ch) < 32 or ord(ch) == 127 or ch in _BIDI_CONTROLS:
        return ch.encode("unicode_escape").decode("ascii")
    return ch


def _md_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|")


def _json_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    return v
