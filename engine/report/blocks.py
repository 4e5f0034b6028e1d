"""The document model of a report: blocks built once, written by each renderer (engine/report/render.py).

Text from input files enters a block only as a :class:`Code` (a name shown verbatim) or inside a
plain string; the renderers escape both for their output, so no section needs to think about it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Code:
    """A name (model, category, metric) shown verbatim: a code span in Markdown, <code> in HTML."""

    text: str


Inline = str | Code


@dataclass
class Heading:
    text: str
    level: int = 2
    anchor: str = ""


@dataclass
class Para:
    parts: list[Inline]
    # "" for prose; "note" for a warning that qualifies the block before it.
    kind: str = ""


@dataclass
class Bullets:
    items: list[list[Inline]]


# A table cell: plain text, a name, or several pieces.
Cell = str | Code | list[Inline]


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Cell]]
    note: str = ""
    # Per row, a class the HTML colours it by (e.g. the verdict); empty for none.
    row_kinds: list[str] = field(default_factory=list)
    # The HTML element's id (the verdict table's is what a reader's first screen must show).
    id: str = ""


@dataclass
class Figure:
    name: str
    chart: Any
    caption: str
    # Shown under the figure: which items the chart is computed on, what it leaves out.
    note: str = ""


Block = Heading | Para | Bullets | Table | Figure
