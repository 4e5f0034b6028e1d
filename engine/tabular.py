"""Render a result (column names + rows) as a text table, CSV, JSON or Markdown.

One output choice, applied the same way by every read command and by the reports.

>>> print(render(["model", "mean"], [("a", 0.5), ("b", None)], "markdown"))
| model | mean |
|---|---|
| a | 0.5000 |
| b |  |

Text tables are measured in terminal columns, not characters (``日本`` takes four), and fit a
width when one is given (``table_width``: the terminal's, or ``COLUMNS``). The widest text cells are
cut first, keeping both ends of a name around an ellipsis (``basemod…q4_k_m``), since names differ
at the end (a quantization) as often as at the start (a family); numbers, booleans and times are
never cut. Text is cut to ``ROOMY_TEXT`` in one table, else the columns are split into a few
tables that each repeat the leading text columns (``model  metric``), then the same down to
``MIN_TEXT``; a table that still does not fit (``compare``'s fifty columns) is shown one row at a
time, a ``column  value`` line per cell, as psql's expanded display does.

>>> print(render(["model", "n"], [("basemodel-instruct-q4_k_m", 1200), ("日本語モデル", 3)], "table", width=20))
model              n
--------------  ----
basemod…q4_k_m  1200
日本語モデル       3

CSV cells that a spreadsheet would run as a formula are neutralised with ``csv_cell`` (OWASP's
rule: a text cell beginning with ``= + - @``, tab or carriage return gets a leading ``'``); every
CSV the tool writes goes through it, from rows here and from frames with ``csv_safe``.
"""

from __future__ import annotations

import csv
import io
import math
import os
import shutil
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from evalhouse.escape import escape_char, md_text, visible

if TYPE_CHECKING:
    import polars as pl

FORMATS = ("table", "csv", "json", "markdown")

# A text cell starting with one of these is a formula (or becomes one) in Excel, LibreOffice and
# Google Sheets: OWASP "CSV Injection".
CSV_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

ROOMY_TEXT = 20  # text is cut below this many terminal columns only when column blocks will not do
MIN_TEXT = 8  # nor ever below this ("abcd…xyz")
MIN_WIDTH = 20  # narrower widths are taken as this
CELL_LIMIT = 200  # the longest text cell shown when no width is given (a 100 KB name stays a line)
ELLIPSIS = "…"  # East Asian width "ambiguous": counted as one column, as Western terminals show it
SEP = "  "
MAX_BLOCKS = 3  # a table needing more column blocks than this is shown one row at a time

T = TypeVar("T")


def render(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str, width: int | None = None) -> str:
    """The rows in the chosen format (``table``, ``csv``, ``json`` or ``markdown``).

    Args:
        columns: the column names.
        rows: the rows, one value per column.
        fmt: one of ``FORMATS``.
        width: for ``table``, the terminal columns to fit (None: as wide as the cells, each cut at
            ``CELL_LIMIT``); ignored by the other formats, which keep every value whole.

    Returns:
        The text, without a trailing newline.

    >>> print(render(["a", "b"], [("=1+1", -3)], "csv"))
    a,b
    '=1+1,-3
    """
    if fmt == "json":
        records = [dict(zip(columns, (_json_value(v) for v in row), strict=True)) for row in rows]
        return orjson.dumps(records, option=orjson.OPT_INDENT_2).decode()
    if fmt == "csv":
        # The writer quotes a field holding any character of its line terminator: with "\r\n" a lone
        # CR in a name is quoted too (with "\n" it was not, and split the row). Lines end with "\n".
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        lines = []
        for row in [[csv_cell(c) for c in columns], *([_csv_text(v) for v in row] for row in rows)]:
            w.writerow(row)
            lines.append(buf.getvalue().removesuffix("\r\n"))
            buf.seek(0)
            buf.truncate()
        return "\n".join(lines)
    if fmt == "markdown":
        cells = [[_cell(v) for v in row] for row in rows]
        lines = ["| " + " | ".join(_md_escape(c) for c in columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in cells]
        return "\n".join(lines)
    if fmt == "table":
        return _table(columns, rows, None if width is None else max(width, MIN_WIDTH))
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def table_width() -> int | None:
    """The width a table on standard output should fit, or None for no limit.

    ``COLUMNS`` when set to a positive number, else the terminal's width when standard output is a
    terminal; piped or redirected output (``| less -S``, ``> file``) keeps every column whole.

    >>> render(["a"], [("x" * 300,)], "table", width=table_width() or 80).count("…")
    1
    """
    env = os.environ.get("COLUMNS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    isatty = getattr(sys.stdout, "isatty", None)
    if isatty is not None and isatty():
        return shutil.get_terminal_size((0, 0)).columns or None
    return None


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: East Asian wide and fullwidth characters two, combining
    marks and other zero-width characters none, the rest one.

    >>> display_width("日本語-q4"), display_width("e\\u0301"), display_width("abc")
    (9, 1, 3)
    """
    if text.isascii():
        return len(text)
    return sum(_char_width(ch) for ch in text)


def shorten(text: str, width: int) -> str:
    """``text`` made to fit ``width`` terminal columns by cutting its middle (``head…tail``).

    Control and bidirectional characters are shown escaped (``\\n``, ``\\x1b``, ``\\u202e``) and an
    escape is never cut in half; a combining mark stays with its letter.

    >>> shorten("basemodel-instruct-q4_k_m", 13)
    'basemo…q4_k_m'
    >>> shorten("日本語モデル-q4km", 10)
    '日本…-q4km'
    """
    return _fit_units(_units(text), width)


def csv_cell(value: T) -> T | str:
    """A CSV cell a spreadsheet shows as text: text starting with ``= + - @``, tab or carriage
    return gets a leading ``'`` (OWASP "CSV Injection"); numbers, including negative ones, and
    every other non-text value are returned unchanged.

    >>> csv_cell("=cmd|' /C calc'!A0"), csv_cell("-2+3"), csv_cell("model-a"), csv_cell(-0.5)
    ("'=cmd|' /C calc'!A0", "'-2+3", 'model-a', -0.5)
    """
    if isinstance(value, str) and value.startswith(CSV_FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with ``csv_cell`` applied to its column names and to every value of its text
    (String, Categorical, Enum) columns, ready for ``write_csv``; text columns come back as String,
    other columns unchanged.

    >>> import polars as pl
    >>> csv_safe(pl.DataFrame({"model": ["@SUM(1)", "a", None], "diff": [-0.5, 0.0, 1.0]})).rows()
    [("'@SUM(1)", -0.5), ('a', 0.0), (None, 1.0)]
    """
    import polars as pl

    exprs = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if isinstance(dtype, (pl.String, pl.Categorical, pl.Enum)):
            text = col.cast(pl.String)
            risky = pl.any_horizontal([text.str.starts_with(p) for p in CSV_FORMULA_PREFIXES])
            col = pl.when(risky).then(pl.concat_str([pl.lit("'"), text])).otherwise(text)
        exprs.append(col.alias(str(csv_cell(name))))
    return frame.select(exprs)


# --- text tables ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Grid:
    """A table's values, their display text, and the widths of its columns' widest cell and name."""

    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    head: list[str]  # the column names as shown
    cells: list[list[str]]  # every value as shown, uncut but for CELL_LIMIT
    numeric: list[bool]  # right-aligned: every value a number or missing
    natural: list[int]  # the widest cell or name
    whole: list[int]  # the widest value that is never cut (number, time)

    @classmethod
    def of(cls, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> _Grid:
        head = [_cell(c) for c in columns]
        cells = [[_cell(v) for v in row] for row in rows]
        n = len(columns)
        numeric = [bool(rows) and all(_is_number(row[i]) for row in rows) for i in range(n)]
        natural = [max([display_width(head[i])] + [display_width(r[i]) for r in cells]) for i in range(n)]
        pairs = list(zip(rows, cells, strict=True))
        whole = [max([0] + [display_width(c[i]) for r, c in pairs if _whole(r[i])]) for i in range(n)]
        return cls(columns, rows, head, cells, numeric, natural, whole)

    def floors(self, min_text: int) -> list[int]:
        """The narrowest each column may be: its widest whole value, and text cut to ``min_text``."""
        return [max(w, min(n, min_text)) for w, n in zip(self.whole, self.natural, strict=True)]


def _span(idx: Sequence[int], sizes: Sequence[int]) -> int:
    """Terminal columns the columns ``idx`` take side by side at ``sizes``."""
    return sum(sizes[i] for i in idx) + len(SEP) * (len(idx) - 1)


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]], width: int | None) -> str:
    """The table fitted to ``width``: text cut to ROOMY_TEXT in one table or in column blocks, then
    to MIN_TEXT likewise, else one row at a time."""
    grid = _Grid.of(columns, rows)
    every = list(range(len(columns)))
    if width is None or _span(every, grid.natural) <= width:
        return _draw(grid, every, grid.natural)
    for min_text in (ROOMY_TEXT, MIN_TEXT):
        floors = grid.floors(min_text)
        if _span(every, floors) <= width:
            return _draw(grid, every, _share(grid, every, floors, width))
        blocks = _blocks(grid, floors, width)
        if blocks:
            widths = [_share(grid, block, floors, width) for block in blocks]
            # The key columns lead every block: the same width in each, the narrowest it got.
            keys = len(set.intersection(*(set(block) for block in blocks)))
            for k in range(keys):
                narrowest = min(w[k] for w in widths)
                for w in widths:
                    w[k] = narrowest
            return "\n\n".join(_draw(grid, block, w) for block, w in zip(blocks, widths, strict=True))
    return _records(grid, width)


def _draw(grid: _Grid, idx: Sequence[int], widths: Sequence[int]) -> str:
    def fit(raw: Any, shown: str, w: int) -> str:
        return shown if display_width(shown) <= w or _whole(raw) else _fit_units(_units(str(raw)), w)

    def line(raw: Sequence[Any], shown: Sequence[str]) -> str:
        vals = [_pad(fit(raw[i], shown[i], w), w, grid.numeric[i]) for i, w in zip(idx, widths, strict=True)]
        return SEP.join(vals).rstrip()

    out = [line(grid.columns, grid.head), SEP.join("-" * w for w in widths)]
    out += [line(raw, shown) for raw, shown in zip(grid.rows, grid.cells, strict=True)]
    return "\n".join(out)


def _share(grid: _Grid, idx: Sequence[int], floor: Sequence[int], width: int) -> list[int]:
    """Widths for the columns ``idx`` that fit ``width``: the widest are cut to a common cap (never
    below their floor), and the terminal columns left over go one each to the cut ones, left to right."""
    natural = [grid.natural[i] for i in idx]
    floors = [floor[i] for i in idx]
    room = width - len(SEP) * (len(idx) - 1)

    def total(cap: int) -> int:
        return sum(max(f, min(n, cap)) for n, f in zip(natural, floors, strict=True))

    lo, hi = 0, max(natural)
    while lo < hi:  # the largest cap that fits
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if total(mid) <= room else (lo, mid - 1)
    widths = [max(f, min(n, lo)) for n, f in zip(natural, floors, strict=True)]
    spare = room - sum(widths)
    for k, n in enumerate(natural):
        if spare > 0 and widths[k] < n:
            widths[k] += 1
            spare -= 1
    return widths


def _blocks(grid: _Grid, floors: Sequence[int], width: int) -> list[list[int]] | None:
    """The columns as up to ``MAX_BLOCKS`` tables within ``width``, each led by the same key columns
    (the first column and the text columns after it, within half the width) so that every line says
    which row it is; None when that cannot be done."""
    n = len(grid.columns)
    keys = [0]
    while len(keys) < n and not grid.numeric[len(keys)] and _span([*keys, len(keys)], floors) <= width // 2:
        keys.append(len(keys))
    if len(keys) == n or _span(keys, floors) > width // 2:
        return None
    blocks: list[list[int]] = [[]]
    for i in range(len(keys), n):
        if blocks[-1] and _span(keys + blocks[-1] + [i], floors) > width:
            blocks.append([])
        if _span([*keys, i], floors) > width:
            return None
        blocks[-1].append(i)
    return [keys + b for b in blocks] if len(blocks) <= MAX_BLOCKS else None


def _records(grid: _Grid, width: int) -> str:
    """One block per row, one ``column  value`` line per cell: for tables too wide for column blocks."""
    if not grid.rows:
        return "(0 rows)"
    label_w = min(max(display_width(h) for h in grid.head), max(MIN_TEXT, width // 3))
    value_w = width - label_w - len(SEP)
    labels = [_pad(_fit_units(_units(str(c)), label_w), label_w, False) for c in grid.columns]
    out = []
    for k, (raw, row) in enumerate(zip(grid.rows, grid.cells, strict=True), 1):
        title = f"-[ row {k} ]"
        out.append(title + "-" * (width - len(title)))
        for label, v, shown in zip(labels, raw, row, strict=True):
            if display_width(shown) > value_w and not _whole(v):
                shown = _fit_units(_units(str(v)), value_w)
            out.append((label + SEP + shown).rstrip())
    return "\n".join(out)


def _pad(text: str, width: int, right: bool) -> str:
    space = " " * max(0, width - display_width(text))
    return space + text if right else text + space


# --- display text --------------------------------------------------------------------------------


def _is_number(v: Any) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def _whole(v: Any) -> bool:
    """Values never shortened: a cut number or time would be a different one."""
    return v is None or isinstance(v, (int, float, Decimal, date, time, timedelta))


def _csv_text(v: Any) -> str:
    if v is None:
        return ""
    v = csv_cell(v)
    return repr(v) if isinstance(v, float) else str(v)


def _cell(v: Any) -> str:
    """Display text: floats to 4 decimals, control characters made visible, long text cut."""
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        return f"{v:.4f}"
    text = str(v)
    if _whole(v) or (len(text) <= CELL_LIMIT and text.isascii() and text.isprintable()):
        return text
    return _fit_units(_units(text), CELL_LIMIT)


def _units(text: str) -> list[str]:
    """``text`` as display units: a control or bidirectional character becomes its escape (shown, so
    a hostile model name cannot forge extra lines, move the cursor or display as another name); a
    zero-width character joins the unit before it, so a cut never separates a mark from its letter."""
    units: list[str] = []
    for ch in text:
        shown = escape_char(ch)
        if units and shown == ch and _char_width(ch) == 0:
            units[-1] += ch
        else:
            units.append(shown)
    return units


def _fit_units(units: list[str], width: int) -> str:
    """The units joined, or if wider than ``width``, the first and last units that fit around an
    ellipsis (the head takes the odd column)."""
    sizes = [display_width(u) for u in units]
    if sum(sizes) <= width:
        return "".join(units)
    if width <= 0:
        return ""
    budget = width - display_width(ELLIPSIS)
    head_end, used = 0, 0
    while head_end < len(units) and used + sizes[head_end] <= budget - budget // 2:
        used += sizes[head_end]
        head_end += 1
    tail_start = len(units)
    while tail_start > head_end and used + sizes[tail_start - 1] <= budget:
        tail_start -= 1
        used += sizes[tail_start]
    return "".join(units[:head_end]) + ELLIPSIS + "".join(units[tail_start:])


def _char_width(ch: str) -> int:
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


# Bidirectional overrides and marks can make a name display as a different one ("Trojan source").
def terminal_text(text: str) -> str:
    r"""``text`` safe to print on a terminal, as every table cell is (``evalhouse.escape.visible``).

    >>> terminal_text("a\nb\x1b[2J\u202ec"), terminal_text("plain é")
    ('a\\nb\\x1b[2J\\u202ec', 'plain é')
    >>> import os; terminal_text(os.fsdecode(b"mod\xe8le.json"))
    'mod\\xe8le.json'
    """
    return visible(text)


def _md_escape(text: str) -> str:
    """A cell of a Markdown table: no HTML, no markup (as the report's cells)."""
    return md_text(text)


def _json_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    return v
