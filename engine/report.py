"""Reports: the statistics, comparisons and charts of a warehouse as Markdown and/or one HTML file.

A report is built once as a list of blocks (headings, paragraphs, tables, figures) and then written
by two small renderers, so the Markdown and the HTML always say the same thing. Statistics are
computed once (``engine.stats.describe``, ``engine.compare.compare``); tables too long to read are
capped in the document with a note, and written whole as CSV files beside it (``data/``).

Layout of ``--out DIR``::

    DIR/report.md            links figures/*.png
    DIR/report.html          one self-contained file: SVG inline, CSS inline, no scripts
    DIR/figures/*.png        (Markdown only)
    DIR/data/*.csv           every table in full
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from engine import __version__, charts
from engine.errors import EvalhouseError, ReportError
from engine.settings import Settings
from engine.tabular import render as render_table

if TYPE_CHECKING:
    import duckdb

    from engine.warehouse import Warehouse

FORMATS = ("md", "html", "both")
# Rows shown in a document table before it is capped (the CSV beside it has them all).
MAX_TABLE_ROWS = 60
# Significant results named in words in the executive summary, per direction.
MAX_NAMED = 3

TEST_NAMES = {
    "paired": "paired t-test on the items both models answered",
    "sign-flip": "exact sign-flip test on the items both models answered",
    "mcnemar": "exact McNemar test on paired 0/1 scores",
    "score": "score test of two proportions (no items in common)",
    "permutation": "two-group permutation test (no items in common)",
    "fisher": "Fisher's exact test on 0/1 scores (no items in common)",
    "welch": "Welch's t-test (unequal variances; no items in common)",
    "student": "the original scripts' Student t-test (every answer counted as independent)",
    "z": "z-test on reported aggregates (value and standard error)",
}


# ---------------------------------------------------------------------------------------------
# The document model
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Code:
    """A name (model, category, metric) shown verbatim: `code` in Markdown, <code> in HTML."""

    text: str


Inline = str | Code


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Para:
    parts: list[Inline]


@dataclass
class Bullets:
    items: list[list[Inline]]


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass
class Figure:
    name: str
    chart: Any
    caption: str


Block = Heading | Para | Bullets | Table | Figure


@dataclass
class ReportResult:
    """What ``build_report`` wrote."""

    out: Path
    markdown: Path | None = None
    html: Path | None = None
    figures: list[Path] = field(default_factory=list)
    data: list[Path] = field(default_factory=list)
    charts: int = 0


# ---------------------------------------------------------------------------------------------
# Statistics: computed once, through the engine's own functions
# ---------------------------------------------------------------------------------------------


def describe_frame(con: duckdb.DuckDBPyConnection, by: Sequence[str]) -> pl.DataFrame:
    """``engine.stats.describe`` with 95 % intervals (t, or Wilson for 0/1 scores)."""
    from engine.stats import describe

    return describe(con, list(by), level=0.95, method="auto")


def compare_frame(con: duckdb.DuckDBPyConnection, settings: Settings) -> tuple[pl.DataFrame | None, str]:
    """``engine.compare.compare`` overall and per category (unless the settings name scopes), as
    ``evalhouse compare`` runs it.

    Returns:
        The comparison, or None and why when no pair was asked for and none was found (asking for
        pairs that do not exist raises).
    """
    from engine.compare import compare

    try:
        return compare(con, settings, default_by=["category"]), ""
    except EvalhouseError as exc:
        if settings.pair_rules:  # pairs asked for by name: failing to find them is an error
            raise
        hint = f" ({exc.hint})" if exc.hint else ""
        return None, f"{exc}{hint}"


# ---------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------


def build_report(
    wh: Warehouse,
    out: str | os.PathLike[str],
    *,
    fmt: str = "both",
    metric: str | None = None,
    settings: Settings | None = None,
) -> ReportResult:
    """Compute the statistics and comparisons of a warehouse and write the report into ``out``.

    Args:
        wh: An open warehouse.
        out: Folder to write into (created if missing).
        fmt: ``md`` (Markdown + PNG), ``html`` (one self-contained file) or ``both``.
        metric: Metric the charts show (default: the one with the most scores).
        settings: The comparison's settings (``engine.settings``; default: every variant against its
            base model).

    Returns:
        The paths written.
    """
    from engine.warehouse import connect

    settings = settings or Settings()
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out_dir = Path(out)
    result = ReportResult(out=out_dir)
    wh = wh.pinned()  # the version it reads, and records, whatever commits meanwhile
    con = connect(wh)
    try:
        facts = _facts(con)
        if not facts["items"]:
            raise ReportError(f"the warehouse {wh.root} has no scores to report on", hint="ingest results first")
        by_model = describe_frame(con, ["model"])
        by_category = describe_frame(con, ["category"])
        by_model_category = describe_frame(con, ["model", "category"])
        metric = metric or _primary_metric(by_model)
        if metric not in set(by_model["metric"].to_list()):
            raise ReportError(f"no scores for metric {metric!r}", hint="`evalhouse summary` lists the metrics")
        comparison, why_none = compare_frame(con, settings)
        box = charts.box_stats(con, metric)
        models = con.sql("SELECT model, model_base, quantization FROM models").pl()
    finally:
        con.close()

    provenance = {
        "warehouse": str(wh.root),
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "evalhouse": __version__,
        "warehouse version": _version(wh),
        "pairs": _pairs_asked(settings),
        "comparison": f"test {settings.test}; alpha {settings.alpha:g}; category rows {settings.adjust_name} "
        f"within their pair and metric; overlap {settings.overlap:.0%}",
        "chart metric": metric,
    }
    if settings.exclude_sources:
        provenance["excluded sources"] = ", ".join(settings.exclude_sources)
    blocks = _document(
        facts, provenance, metric, by_model, by_category, by_model_category, comparison, why_none, settings, box, models
    )

    result.charts = sum(isinstance(b, Figure) for b in blocks)
    out_dir.mkdir(parents=True, exist_ok=True)
    result.data = _write_data(out_dir / "data", by_model, by_category, by_model_category, comparison)
    if fmt in ("md", "both"):
        fig_dir = out_dir / "figures"
        fig_dir.mkdir(exist_ok=True)
        for block in blocks:
            if isinstance(block, Figure):
                result.figures.append(charts.render(block.chart, fig_dir / f"{block.name}.png"))
        result.markdown = out_dir / "report.md"
        result.markdown.write_text(to_markdown(blocks), encoding="utf-8")
    if fmt in ("html", "both"):
        result.html = out_dir / "report.html"
        result.html.write_text(to_html(blocks), encoding="utf-8")
    return result


def _version(wh: Warehouse) -> str:
    """The warehouse version the report reads (`evalhouse report --as-of` it to reproduce the report)."""
    v = wh.version()
    batch = f", batch {v.batch_id}" if v.batch_id else ""
    return f"{v.number} ({v.kind}{batch}{', as of' if wh.as_of is not None else ''})"


def _pairs_asked(settings: Settings) -> str:
    if settings.baseline or settings.candidate:
        return f"baseline {', '.join(settings.baseline) or 'any'}; candidate {', '.join(settings.candidate) or 'any'}"
    if settings.rules:
        return "the pair rules of evalhouse.toml"
    return "each variant against its base model (default)"


def _facts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    row = con.execute(
        """
        SELECT (SELECT count(*) FROM models) AS models,
               (SELECT count(*) FROM runs) AS runs,
               (SELECT count(*) FROM scores) AS rows,
               (SELECT count(*) FROM (SELECT DISTINCT run_id, sample_id FROM scores)) AS items,
               (SELECT count(DISTINCT category) FROM scores) AS categories,
               (SELECT count(DISTINCT benchmark) FROM scores) AS benchmarks,
               (SELECT count(DISTINCT metric) FROM scores) AS metrics
        """
    ).fetchall()[0]
    return dict(zip(("models", "runs", "rows", "items", "categories", "benchmarks", "metrics"), row, strict=True))


def _primary_metric(by_model: pl.DataFrame) -> str:
    counts = by_model.group_by("metric").agg(pl.col("n").sum()).sort(["n", "metric"], descending=[True, False])
    return str(counts["metric"][0])


def _document(
    facts: dict[str, int],
    provenance: dict[str, str],
    metric: str,
    by_model: pl.DataFrame,
    by_category: pl.DataFrame,
    by_model_category: pl.DataFrame,
    comparison: pl.DataFrame | None,
    why_none: str,
    settings: Settings,
    box: pl.DataFrame,
    models: pl.DataFrame,
) -> list[Block]:
    m_model = by_model.filter(pl.col("metric") == metric)
    blocks: list[Block] = [
        Heading("evalhouse report", 1),
        Para(
            [
                "From the warehouse ",
                Code(provenance["warehouse"]),
                f", {provenance['generated']}, evalhouse {provenance['evalhouse']}. Pairs compared: "
                f"{provenance['pairs']}. Charts show the metric ",
                Code(metric),
                "; tables show every metric.",
            ]
        ),
    ]
    blocks += _summary(facts, metric, by_model, comparison, why_none, settings)

    blocks.append(Heading("Models"))
    blocks.append(
        Para(["Mean score per model and metric with its 95 % confidence interval (", *_ci_methods(by_model), ")."])
    )
    blocks.append(_stats_table(by_model, ["model", "metric"], sort=["metric", "mean"]))
    blocks.append(Figure("mean_by_model", charts.mean_by_model(m_model, metric=metric), f"Mean {metric} per model"))
    if box.height:
        box = box.join(m_model.select("model", "ci_low", "ci_high"), on="model", how="left")
        blocks.append(Figure("distribution", charts.distribution(box, metric=metric), f"Distribution of {metric}"))

    blocks.append(Heading("Categories"))
    blocks.append(Para(["Scores of all models together, per category."]))
    blocks.append(_stats_table(by_category, ["category", "metric"], sort=["metric", "category"], descending=False))
    m_cat = by_model_category.filter(pl.col("metric") == metric)
    blocks.append(
        Figure(
            "category_heatmap", charts.category_heatmap(m_cat, metric=metric), f"Mean {metric} by model and category"
        )
    )
    blocks.append(Para(["Every model × category × metric row is in ", Code("data/model_category_summary.csv"), "."]))

    quant = m_model.join(models, on="model", how="left")
    has_levels = quant.group_by("model_base").agg(pl.col("quantization").n_unique()).filter(pl.col("quantization") >= 2)
    if has_levels.height:
        blocks.append(Heading("Quantization"))
        blocks.append(
            Figure("quantization", charts.quantization(quant, metric=metric), f"Mean {metric} by quantization level")
        )

    blocks.append(Heading("Comparisons"))
    if comparison is None or comparison.height == 0:
        blocks.append(Para([f"No comparison: {why_none or 'no pairs'}."]))
    else:
        blocks += _comparison_blocks(comparison, metric, settings)
    blocks.append(Heading("Provenance"))
    blocks.append(Table(["", ""], [[k, v] for k, v in provenance.items()]))
    blocks.append(Para(["Every table in full, as CSV: ", Code("data/"), "."]))
    return blocks


def _summary(
    facts: dict[str, int],
    metric: str,
    by_model: pl.DataFrame,
    comparison: pl.DataFrame | None,
    why_none: str,
    settings: Settings,
) -> list[Block]:
    items: list[list[Inline]] = [
        [
            f"{_count(facts['models'], 'model')}, {_count(facts['runs'], 'run')}, "
            f"{_count(facts['items'], 'scored answer')} ({_count(facts['rows'], 'score row')} over "
            f"{_count(facts['metrics'], 'metric')}), {_count(facts['categories'], 'category', 'categories')}."
        ]
    ]
    best = by_model.filter(pl.col("metric") == metric).sort("mean", descending=True, nulls_last=True).head(1)
    if best.height:
        r = best.row(0, named=True)
        items.append([f"Highest mean {metric}: ", Code(r["model"]), f" {_f(r['mean'])} {_ci(r)} (n = {r['n']})."])
    blocks: list[Block] = [Heading("Summary"), Bullets(items)]
    if comparison is None or comparison.height == 0:
        items.append([f"No comparison: {why_none or 'no pairs'}."])
        return blocks
    overall = comparison.filter(pl.col("scope") == "overall")
    sig = comparison.filter(pl.col("significant").fill_null(False))
    pairs = overall.select("baseline", "candidate").unique().height
    not_comparable = overall.filter(~pl.col("comparable").fill_null(True)).select("baseline", "candidate").unique()
    n_deg = sig.filter(pl.col("direction") == "degraded").height
    n_imp = sig.filter(pl.col("direction") == "improved").height
    items.append(
        [
            f"{_count(pairs, 'pair')} compared, overall and per category ({_count(comparison.height, 'row')}; "
            f"overall rows at alpha {settings.alpha:g}, category rows {settings.adjust_name} within their pair "
            f"and metric): "
            f"{_count(n_deg, 'significant degradation')} and "
            f"{_count(n_imp, 'significant improvement')}; {_count(not_comparable.height, 'pair')} not comparable."
        ]
    )
    for direction, word in (("degraded", "degradations"), ("improved", "improvements")):
        # Overall results first (what a reader acts on), then per-category ones; largest first.
        rows = sig.filter(pl.col("direction") == direction).sort(
            [pl.col("scope") != "overall", pl.col("diff").abs()], descending=[False, True]
        )
        if rows.height == 0:
            blocks.append(Para([f"No significant {word}."]))
            continue
        shown = min(rows.height, MAX_NAMED)
        blocks.append(Para([f"Largest significant {word} ({shown} of {rows.height}):"]))
        blocks.append(Bullets([_in_words(r) for r in rows.head(MAX_NAMED).iter_rows(named=True)]))
    return blocks


def _in_words(r: dict[str, Any]) -> list[Inline]:
    """One comparison row as a sentence, e.g. ``b`` vs ``a`` (score), category ``x``: 0.1 vs 0.5 ..."""
    scope: list[Inline] = []
    if r["scope"] != "overall":
        scope = [f", {r['scope']} ", Code(r.get(r["scope"]) or "")]
    rel = f", {r['rel_change_pct']:+.1f} %" if r["rel_change_pct"] is not None else ""
    p = r["p_adjusted"]
    p_text = "p < 0.0001" if p is not None and p < 1e-4 else f"p = {_p(p)}"
    return [
        Code(r["candidate"]),
        " vs ",
        Code(r["baseline"]),
        f" ({r['metric']})",
        *scope,
        f": {_f(r['mean_candidate'])} vs {_f(r['mean_baseline'])}, difference {_f(r['diff'], sign=True)} "
        f"{_ci(r)}{rel}; {'' if r.get('adjusted_over') == 'primary' else 'adjusted '}{p_text} "
        f"({TEST_NAMES.get(r['test'], r['test'])}).",
    ]


def _comparison_blocks(comparison: pl.DataFrame, metric: str, settings: Settings) -> list[Block]:
    overall = comparison.filter(pl.col("scope") == "overall")
    by_cat = comparison.filter(pl.col("scope") == "category")
    blocks: list[Block] = [
        Para(
            [
                f"Difference = candidate − baseline over items (repeated answers averaged per item first), with "
                f"the interval of the same test. Overall rows are the primary results at alpha "
                f"{settings.alpha:g} (not adjusted); category rows are {settings.adjust_name} within their pair "
                "and metric, and their intervals are Bonferroni-adjusted to match. Relative change is n/a where "
                "the baseline mean is 0 (undefined). Where the models answered the same items, the test is "
                "paired and the means are over those items only; a pair whose shared items cover too little of "
                "either side is marked partial overlap in the notes."
            ]
        ),
        _compare_table(overall.sort(["metric", "diff"]), scope=False),
    ]
    if overall.height:
        blocks.append(Figure("degradation", charts.degradation(overall), "Difference per pair"))
    cat = by_cat.filter(pl.col("metric") == metric)
    if cat.height:
        blocks.append(Heading("Per category", 3))
        blocks.append(
            Figure(
                "baseline_vs_candidate",
                charts.baseline_vs_candidate(cat),
                f"Baseline vs candidate per category ({metric})",
            )
        )
        blocks.append(
            Figure("relative_change", charts.relative_change_heatmap(cat), f"Relative change per category ({metric})")
        )
        ranked = by_cat.sort(
            [pl.col("significant").fill_null(False), pl.col("p_adjusted"), pl.col("diff").abs()],
            descending=[True, False, True],
            nulls_last=True,
        )
        blocks.append(_compare_table(ranked, scope=True))
    blocks += _notes(comparison)
    return blocks


def _pair(row: dict[str, Any]) -> list[Any]:
    """``baseline → candidate (metric)`` as inline pieces."""
    return [Code(row["baseline"]), " → ", Code(row["candidate"]), f" ({row['metric']})"]


def _notes(comparison: pl.DataFrame) -> list[Block]:
    blocks: list[Block] = [Heading("Notes", 3)]
    overall = comparison.filter(pl.col("scope") == "overall")
    nc = overall.filter(~pl.col("comparable").fill_null(True))
    if nc.height:
        blocks.append(Para(["Pairs that are not comparable (no item, category or benchmark in common; no test run):"]))
        blocks.append(Bullets([_pair(r) for r in nc.iter_rows(named=True)]))
    else:
        blocks.append(Para(["Every pair shares items, categories or benchmarks."]))
    tests = comparison.filter(pl.col("test").is_not_null()).group_by("test").len().sort("len", descending=True)
    blocks.append(Para(["Tests used (chosen per row: paired when the models answered the same items):"]))
    blocks.append(Bullets([[f"{TEST_NAMES.get(t, t)}: {n} rows"] for t, n in tests.iter_rows()]))
    notes = overall.filter(pl.col("note").is_not_null())
    if notes.height:
        blocks.append(Para(["Notes on the overall comparisons:"]))
        blocks.append(Bullets([[*_pair(r), f": {r['note']}"] for r in notes.iter_rows(named=True)]))
    return blocks


def _stats_table(frame: pl.DataFrame, keys: list[str], *, sort: list[str], descending: bool = True) -> Table:
    frame = frame.sort(sort, descending=[False, descending] if len(sort) == 2 else descending, nulls_last=True)
    rows = [
        [*(str(r[k]) for k in keys), str(r["n"]), _f(r["mean"]), _ci(r), _f(r["std"]), _f(r["median"])]
        for r in frame.iter_rows(named=True)
    ]
    return _capped(Table([*keys, "n", "mean", "95 % CI", "std", "median"], rows))


def _compare_table(frame: pl.DataFrame, *, scope: bool) -> Table:
    cols = [
        "baseline",
        "candidate",
        "metric",
        *(["category"] if scope else []),
        "n (b / c / paired)",
        "mean b",
        "mean c",
        "diff [CI]",
        "rel %",
        "test",
        "p adj",
        "result",
    ]
    rows = []
    for r in frame.iter_rows(named=True):
        result = (
            "not comparable"
            if not r["comparable"]
            else (f"{r['direction']}{', significant' if r['significant'] else ''}" if r["direction"] else "")
        )
        rows.append(
            [
                r["baseline"],
                r["candidate"],
                r["metric"] or "(none in common)",
                *([r["category"] or ""] if scope else []),
                f"{r['n_baseline']} / {r['n_candidate']} / {r['n_paired']}",
                _f(r["mean_baseline"]),
                _f(r["mean_candidate"]),
                f"{_f(r['diff'], sign=True)} {_ci(r)}".strip(),
                "n/a" if r["rel_change_pct"] is None else f"{r['rel_change_pct']:+.1f}",
                r["test"] or "",
                _p(r["p_adjusted"]),
                result,
            ]
        )
    return _capped(Table(cols, rows))


def _capped(table: Table) -> Table:
    if len(table.rows) > MAX_TABLE_ROWS:
        table.note = f"First {MAX_TABLE_ROWS} of {len(table.rows)} rows; all are in data/."
        table.rows = table.rows[:MAX_TABLE_ROWS]
    return table


def _ci_methods(frame: pl.DataFrame) -> list[Inline]:
    names = {"t": "Student t", "wilson": "Wilson score interval for 0/1 scores", "cluster-t": "cluster-robust t"}
    used = sorted(set(frame["ci_method"].drop_nulls().to_list()))
    return [", ".join(names.get(m, m) for m in used) or "no interval"]


def _count(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` with its noun, singular or plural, thousands separated.

    >>> _count(1, "run"), _count(10000, "run"), _count(2, "category", "categories")
    ('1 run', '10,000 runs', '2 categories')
    """
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def _f(v: float | None, *, sign: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return f"{v:+.3f}" if sign else f"{v:.3f}"


def _ci(r: dict[str, Any]) -> str:
    if r.get("ci_low") is None or r.get("ci_high") is None:
        return ""
    return f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]"


def _p(p: float | None) -> str:
    if p is None:
        return ""
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}"


def _write_data(
    folder: Path,
    by_model: pl.DataFrame,
    by_category: pl.DataFrame,
    by_mc: pl.DataFrame,
    comparison: pl.DataFrame | None,
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    tables = {"model_summary": by_model, "category_summary": by_category, "model_category_summary": by_mc}
    if comparison is not None:
        tables["comparison"] = comparison
    paths = []
    for name, frame in tables.items():
        path = folder / f"{name}.csv"
        frame.write_csv(path)
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------------------------
# Renderers
# ---------------------------------------------------------------------------------------------


_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _visible(text: str) -> str:
    r"""A name from a user file with control characters and bidi overrides shown escaped.

    They could otherwise forge lines or make one name display as another (as in ``engine.tabular``).

    >>> _visible("a" + chr(10) + "b" + chr(0x202E))
    'a\\nb\\u202e'
    """
    return "".join(
        ch.encode("unicode_escape").decode("ascii") if ord(ch) < 32 or ord(ch) == 127 or ch in _BIDI_CONTROLS else ch
        for ch in text
    )


def _md_inline(parts: Sequence[Inline]) -> str:
    out = []
    for p in parts:
        if isinstance(p, Code):
            text = _visible(p.text)
            # A name with a backtick needs a longer fence (and spaces) to stay one code span.
            out.append(f"`` {text} ``" if "`" in text else f"`{text}`")
        else:
            out.append(p)
    return "".join(out)


def to_markdown(blocks: Sequence[Block]) -> str:
    """The report as Markdown; figures link ``figures/NAME.png``."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append("#" * b.level + " " + b.text)
        elif isinstance(b, Para):
            out.append(_md_inline(b.parts))
        elif isinstance(b, Bullets):
            out.append("\n".join("- " + _md_inline(item) for item in b.items))
        elif isinstance(b, Table):
            out.append(render_table(b.columns, b.rows, "markdown") + (f"\n\n{b.note}" if b.note else ""))
        elif isinstance(b, Figure):
            out.append(f"![{b.caption}](figures/{b.name}.png)")
    return "\n\n".join(out) + "\n"


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", "Noto Sans", "Noto Sans JP", sans-serif;
       max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { background: #f4f4f4; padding: 0 0.2em; border-radius: 3px; }
figure { margin: 1.5em 0; overflow-x: auto; }
figcaption { color: #555; font-size: 0.9em; }
p.note { color: #555; font-size: 0.9em; }
"""


def _html_inline(parts: Sequence[Inline]) -> str:
    return "".join(
        f"<code>{html.escape(_visible(p.text))}</code>" if isinstance(p, Code) else html.escape(p) for p in parts
    )


def _is_numeric(text: str) -> bool:
    return bool(text) and text.lstrip("+-−<[ ").replace(".", "", 1)[:1].isdigit()


def to_html(blocks: Sequence[Block]) -> str:
    """The report as one self-contained HTML document: SVG figures inline, no external resources."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>evalhouse report</title>",
        f"<style>{_CSS}</style></head><body>",
    ]
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            out.append(f"<p>{_html_inline(b.parts)}</p>")
        elif isinstance(b, Bullets):
            out.append("<ul>" + "".join(f"<li>{_html_inline(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{html.escape(c)}</th>" for c in b.columns)
            body = "".join(
                "<tr>"
                + "".join(
                    f'<td class="num">{html.escape(v)}</td>'
                    if _is_numeric(v)
                    else f"<td>{html.escape(_visible(v))}</td>"
                    for v in row
                )
                + "</tr>"
                for row in b.rows
            )
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            if b.note:
                out.append(f'<p class="note">{html.escape(b.note)}</p>')
        elif isinstance(b, Figure):
            svg = charts.to_svg(b.chart)
            out.append(f"<figure>{svg}<figcaption>{html.escape(b.caption)}</figcaption></figure>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
