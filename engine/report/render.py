"""Renderers: the blocks of a report as Markdown or as one self-contained HTML file.

Every piece of text goes through ``evalhouse.escape`` for its output (Markdown prose and code spans,
HTML text and attributes, JSON inside a script), so a hostile name renders as text everywhere.
The HTML comes in two kinds: static (SVG figures inline, no script) and interactive (the charts as
live Vega-Lite with tooltips, drawn by the Vega libraries inlined in the page: it works offline).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from evalhouse import charts
from evalhouse.escape import html_text, json_for_script, md_code, md_text, name
from evalhouse.report.blocks import Block, Bullets, Cell, Code, Figure, Heading, Inline, Para, Table
from evalhouse.report.fonts import font_face

# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------


def _md_inline(parts: Sequence[Inline], *, in_table: bool = False) -> str:
    out = []
    for p in parts:
        text = md_code(name(p.text)) if isinstance(p, Code) else md_text(p)
        out.append(text.replace("|", "\\|") if in_table and isinstance(p, Code) else text)
    return "".join(out)


def _md_cell(cell: Cell) -> str:
    return _md_inline(cell if isinstance(cell, list) else [cell], in_table=True)


def to_markdown(blocks: Sequence[Block]) -> str:
    """The report as Markdown; figures link ``figures/NAME.png``."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append("#" * b.level + " " + md_text(b.text))
        elif isinstance(b, Para):
            text = _md_inline(b.parts)
            out.append(f"> **Note:** {text}" if b.kind == "note" else text)
        elif isinstance(b, Bullets):
            out.append("\n".join("- " + _md_inline(item) for item in b.items))
        elif isinstance(b, Table):
            lines = ["| " + " | ".join(md_text(c) for c in b.columns) + " |", "|" + "---|" * len(b.columns)]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
            out.append("\n".join(lines) + (f"\n\n{md_text(b.note)}" if b.note else ""))
        elif isinstance(b, Figure):
            out.append(f"![{md_text(b.caption)}](figures/{b.name}.png)" + (f"\n\n{md_text(b.note)}" if b.note else ""))
    return "\n\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", "Noto Sans", evalhouse-cjk, sans-serif;
       max-width: 1100px; margin: 1.5em auto; padding: 0 1em; color: #222; line-height: 1.45; }
svg text { font-family: system-ui, "Noto Sans", evalhouse-cjk, sans-serif; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.regressed td:first-child { background: #f8d7d3; font-weight: 600; }
tr.pass td:first-child { background: #d6e6f5; font-weight: 600; }
tr.inconclusive td:first-child { background: #eee; font-weight: 600; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace, evalhouse-cjk;
       background: #f4f4f4; padding: 0 0.2em; border-radius: 3px; overflow-wrap: anywhere; }
td code { white-space: nowrap; }
#verdict-table { width: 100%; }
#verdict-table td:last-child { font-size: 0.8em; color: #444; width: 26%; }
#verdict-table td.num { white-space: normal; }
.wide { overflow-x: auto; max-width: 100%; }
figure { margin: 1.5em 0; overflow-x: auto; }
figure svg, .chart { width: 100%; height: auto; }
figcaption { color: #555; font-size: 0.9em; }
p.note { background: #fff7e0; border-left: 4px solid #e0a800; padding: 0.3em 0.6em; font-size: 0.92em; }
p.small { color: #555; font-size: 0.9em; }
"""


def _html_inline(parts: Sequence[Inline]) -> str:
    return "".join(f"<code>{html_text(name(p.text))}</code>" if isinstance(p, Code) else html_text(p) for p in parts)


_NUMERIC = re.compile(r"[-+−<\[\]\d.,/→ ]+")


def _is_numeric(cell: Cell) -> bool:
    """A cell of numbers only (a value, an interval, "a → b"): right-aligned."""
    return isinstance(cell, str) and any(c.isdigit() for c in cell) and bool(_NUMERIC.fullmatch(cell))


def _html_cell(cell: Cell) -> str:
    if _is_numeric(cell):
        return f'<td class="num">{html_text(cell)}</td>'  # type: ignore[arg-type]
    return f"<td>{_html_inline(cell if isinstance(cell, list) else [cell])}</td>"


def to_html(blocks: Sequence[Block], *, interactive: bool = False, title: str = "evalhouse report") -> str:
    """The report as one HTML document with no external resources.

    Static: figures as inline SVG, no script. Interactive: figures as Vega-Lite specs drawn in the
    browser by the Vega libraries inlined in the page, with tooltips; a font covering the page's
    CJK characters is embedded, so names render without system fonts.
    """
    body: list[str] = []
    specs: dict[str, Any] = {}
    for b in blocks:
        if isinstance(b, Heading):
            anchor = f' id="{html_text(b.anchor)}"' if b.anchor else ""
            body.append(f"<h{b.level}{anchor}>{html_text(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            body.append(
                f'<p class="note">{_html_inline(b.parts)}</p>'
                if b.kind == "note"
                else f"<p>{_html_inline(b.parts)}</p>"
            )
        elif isinstance(b, Bullets):
            body.append("<ul>" + "".join(f"<li>{_html_inline(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Table):
            header = "".join(f"<th>{html_text(c)}</th>" for c in b.columns)
            rows = []
            for i, row in enumerate(b.rows):
                kind = b.row_kinds[i] if i < len(b.row_kinds) else ""
                cls = f' class="{html_text(kind)}"' if kind else ""
                rows.append(f"<tr{cls}>" + "".join(_html_cell(c) for c in row) + "</tr>")
            ident = f' id="{html_text(b.id)}"' if b.id else ""
            table = f"<table{ident}><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            body.append(f'<div class="wide">{table}</div>')
            if b.note:
                body.append(f'<p class="small">{html_text(b.note)}</p>')
        elif isinstance(b, Figure):
            note = f'<p class="small">{html_text(b.note)}</p>' if b.note else ""
            if interactive:
                specs[b.name] = json.loads(json.dumps(charts.to_spec(b.chart), default=str))
                drawing = f'<div class="chart" id="chart-{html_text(b.name)}"></div>'
            else:
                drawing = charts.to_svg(b.chart)
            body.append(f"<figure>{drawing}<figcaption>{html_text(b.caption)}</figcaption>{note}</figure>")
    page = "\n".join(body)
    head = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html_text(title)}</title>",
        f"<style>{font_face(page + json.dumps(specs, ensure_ascii=False))}{_CSS}</style>",
    ]
    tail = [_script(specs)] if interactive else []
    return "\n".join([*head, "</head><body>", page, *tail, "</body></html>"]) + "\n"


def _script(specs: dict[str, Any]) -> str:
    """The Vega libraries, the specs as JSON, and the code that draws them.

    When drawing is done the page records it on ``<body>``: ``data-charts`` (charts drawn),
    ``data-errors`` (script errors) and ``data-first-screen`` (whether the verdict table starts in
    the first screenful); a headless browser reads them (tests/test_report_browser.py).
    """
    import vl_convert as vlc

    bundle = vlc.javascript_bundle().replace("</script", "<\\/script")  # type: ignore[call-arg]
    data = json_for_script(json.dumps(specs, ensure_ascii=False))
    return f"""<script>{bundle}</script>
<script id="evalhouse-specs" type="application/json">{data}</script>
<script>
(function () {{
  var errors = [];
  window.addEventListener("error", function (e) {{ errors.push(String(e.message)); }});
  var specs = JSON.parse(document.getElementById("evalhouse-specs").textContent);
  var names = Object.keys(specs);
  var jobs = names.map(function (name) {{
    var spec = specs[name];
    if (!(spec.facet || spec.hconcat || spec.vconcat || spec.concat || spec.repeat)) spec.width = "container";
    return vegaEmbed("#chart-" + name, spec, {{renderer: "svg", actions: false, tooltip: true}});
  }});
  Promise.allSettled(jobs).then(function (results) {{
    results.forEach(function (r) {{ if (r.status === "rejected") errors.push(String(r.reason)); }});
    var drawn = document.querySelectorAll(".chart svg").length;
    var verdict = document.getElementById("verdict-table");
    document.body.dataset.charts = String(drawn) + "/" + names.length;
    document.body.dataset.errors = String(errors.length) + (errors.length ? ": " + errors.join("; ") : "");
    var top = verdict ? verdict.getBoundingClientRect().top : null;
    document.body.dataset.firstScreen = top === null ? "none" : String(top < window.innerHeight);
  }});
}})();
</script>"""
