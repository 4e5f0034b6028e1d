"""A report on hostile names: no live HTML in the Markdown (rendered by a CommonMark library) or the
HTML, formula cells neutralised in its CSV, and a 100 KB name costs about what a short one does."""

from __future__ import annotations

import time
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest
from markdown_it import MarkdownIt

from evalhouse.report import build_report

HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(2)</script>",
    "a``b` <b>bold</b>",
    "=cmd|' /C calc'!A0",
    "[link](javascript:alert(3))",
    "x\u202eevil\nforged line",
]
# Tags a report may contain; anything else came from a name.
ALLOWED = {
    "html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "ul", "li", "table", "thead",
    "tbody", "tr", "th", "td", "code", "figure", "figcaption", "div", "img", "em", "strong", "blockquote",
    "svg", "g", "path", "text", "rect", "line", "circle", "defs", "clippath", "tspan", "desc", "a",
    "lineargradient", "stop", "pattern", "symbol", "use", "polygon", "polyline", "ellipse", "mask", "image", "br",
}  # fmt: skip


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.handlers: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.handlers += [k for k, _v in attrs if k.startswith("on")]
        self.hrefs += [v or "" for k, v in attrs if k in ("href", "src")]


def pairs_of(names: list[str]) -> list[dict]:
    """Each name as a baseline and a degraded candidate, on 20 shared 0/1 items."""
    rows = []
    for name in names:
        for i in range(20):
            rows.append({"model": name, "category": name, "benchmark": "b", "item_id": f"q{i}", "score": float(i % 2)})
            rows.append({"model": name + "-q4_0", "category": name, "benchmark": "b", "item_id": f"q{i}",
                         "score": float(i % 4 == 0)})  # fmt: skip
    return rows


def report(put_scores, out: Path, names: list[str]):
    wh = put_scores(pairs_of(names))  # each name-q4_0 is compared with its base model, the name
    return build_report(wh, out, outputs=("md", "html"))


def test_hostile_names_never_become_markup(put_scores, tmp_path: Path) -> None:
    result = report(put_scores, tmp_path / "r", HOSTILE)
    md = result.markdown.read_text(encoding="utf-8")
    for name, doc in (
        ("markdown", MarkdownIt("commonmark").enable("table").render(md)),
        ("html", result.html.read_text("utf-8")),
    ):
        parser = Tags()
        parser.feed(doc)
        assert set(parser.tags) <= ALLOWED, (name, set(parser.tags) - ALLOWED)
        assert parser.handlers == [], name
        assert not [h for h in parser.hrefs if h.startswith("javascript")], name
        assert "\u202e" not in doc and "forged line" not in doc.split("\n")[0]
    # Each name is still there to read, escaped.
    assert "&lt;img src=x onerror=alert(1)&gt;" in result.html.read_text("utf-8")
    csv = (tmp_path / "r" / "data" / "comparison.csv").read_text(encoding="utf-8")
    assert "\n=cmd" not in csv and ",=cmd" not in csv and "'=cmd" in csv
    frame = pl.read_csv(tmp_path / "r" / "data" / "comparison.csv")
    assert frame["diff"].dtype == pl.Float64  # numbers stay numbers


def test_a_long_metric_name_is_cut_before_the_charts_are_laid_out(put_scores, tmp_path: Path) -> None:
    rows = [{**r, "metric": "m" * 5_000} for r in pairs_of(["model-a"])]
    result = build_report(put_scores(rows), tmp_path / "r", outputs=("md",))
    for png in result.figures:  # the width of a PNG follows its longest title
        width = int.from_bytes(png.read_bytes()[16:20], "big")
        assert width < 5_000, png.name


@pytest.mark.slow
def test_a_100_kb_name_costs_about_what_a_short_one_does(put_scores, tmp_path: Path) -> None:
    t0 = time.perf_counter()
    report(put_scores, tmp_path / "short", ["model-a"])
    short = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = report(put_scores, tmp_path / "long", ["m" * 100_000])
    long = time.perf_counter() - t0
    # Not a timing target: a guard against cost growing with the name (it was 200 s at 100 KB).
    assert long < 3 * short + 5, (short, long)
    assert max(len(line) for line in result.markdown.read_text(encoding="utf-8").splitlines()) < 5_000
