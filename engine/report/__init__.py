"""Reports: did the variant get worse, where, and can it be trusted — as Markdown and HTML.

The first screen answers: per pair, the verdict (the gate's rule), the overall difference with its
interval and items, and where it got worse. Then the comparisons in detail, the models and
categories side by side on the items they share, and provenance. A report is built once as a
list of blocks (engine/report/blocks.py) and written by each renderer (engine/report/render.py),
so every output says the same thing; every table is also written whole as CSV (``data/``).

Layout of ``--out DIR``::

    DIR/report.md                  links figures/*.png
    DIR/report.html                one self-contained file: SVG inline, CSS inline, no scripts
    DIR/report-interactive.html    live Vega-Lite charts (tooltips), scripts and font inlined: offline
    DIR/figures/*.png              (Markdown only)
    DIR/data/*.csv                 every table in full
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from evalhouse import __version__, charts
from evalhouse.errors import EvalhouseError, ReportError
from evalhouse.report import models as model_sections
from evalhouse.report.blocks import Block, Code, Figure, Heading, Para
from evalhouse.report.render import to_html, to_markdown
from evalhouse.report.sections import comparison_blocks, notes_blocks, provenance_blocks
from evalhouse.report.verdict import verdict_blocks
from evalhouse.settings import Margin, Settings

if TYPE_CHECKING:
    import duckdb

    from evalhouse.warehouse import Warehouse

# What `--output` may name: the Markdown (with PNGs), the static HTML, the interactive HTML.
OUTPUTS = ("md", "html", "interactive")
# The margin of the verdicts when the settings give none: 1 % of the baseline mean.
DEFAULT_MARGIN = Margin(0.01, True)


@dataclass
class ReportResult:
    """What ``build_report`` wrote."""

    out: Path
    markdown: Path | None = None
    html: Path | None = None
    interactive: Path | None = None
    figures: list[Path] = field(default_factory=list)
    data: list[Path] = field(default_factory=list)
    charts: int = 0


def describe_frame(con: duckdb.DuckDBPyConnection, by: list[str]) -> pl.DataFrame:
    """``evalhouse.stats.describe`` with 95 % intervals (t, or Wilson for 0/1 scores)."""
    from evalhouse.stats import describe

    return describe(con, by, level=0.95, method="auto")


def compare_frame(con: duckdb.DuckDBPyConnection, settings: Settings) -> tuple[pl.DataFrame | None, str]:
    """``evalhouse.compare.compare`` overall, per category and per benchmark (unless the settings name
    scopes).

    Returns:
        The comparison, or None and why when no pair was asked for and none was found (asking for
        pairs that do not exist raises).
    """
    from evalhouse.compare import compare

    try:
        return compare(con, settings, default_by=["category", "benchmark"]), ""
    except EvalhouseError as exc:
        if settings.pair_rules:  # pairs asked for by name: failing to find them is an error
            raise
        hint = f" ({exc.hint})" if exc.hint else ""
        return None, f"{exc}{hint}"


def build_report(
    wh: Warehouse,
    out: str | os.PathLike[str],
    *,
    outputs: tuple[str, ...] = ("md", "html"),
    metric: str | None = None,
    settings: Settings | None = None,
    connect: Callable[[Warehouse], Any] | None = None,
) -> ReportResult:
    """Compute the statistics and comparisons of a warehouse and write the report into ``out``.

    Args:
        wh: An open warehouse.
        out: Folder to write into (created if missing).
        outputs: Any of ``md`` (Markdown + PNG), ``html`` (one static file), ``interactive`` (one
            file with live charts; works offline).
        metric: Metric the charts show (default: the one with the most scores).
        settings: The comparison's settings (``evalhouse.settings``; default: every variant against its
            base model; without a margin, the verdicts use 1 % of the baseline mean).
        connect: Opens the connection the statistics are aggregated on (default
            ``evalhouse.warehouse.connect``, DuckDB; ``evalhouse.spark.connect`` for Spark).

    Returns:
        The paths written.
    """
    from evalhouse.settings import merge
    from evalhouse.warehouse import connect as duckdb_connect

    unknown = [o for o in outputs if o not in OUTPUTS]
    if unknown or not outputs:
        raise ReportError(f"unknown report output {', '.join(unknown) or '(none)'}; choose from {', '.join(OUTPUTS)}")
    settings = settings or Settings()
    if settings.margin is None:
        settings = merge(settings, margin=DEFAULT_MARGIN)
    out_dir = Path(out)
    result = ReportResult(out=out_dir)
    wh = wh.pinned()  # the version it reads, and records, whatever commits meanwhile
    con = (connect or duckdb_connect)(wh)
    try:
        facts = _facts(con)
        if not facts["items"]:
            raise ReportError(f"the warehouse {wh.root} has no scores to report on", hint="ingest results first")
        by_model = describe_frame(con, ["model"])
        metric = metric or _primary_metric(by_model)
        if metric not in set(by_model["metric"].to_list()):
            raise ReportError(f"no scores for metric {metric!r}", hint="`evalhouse summary` lists the metrics")
        comparison, why_none = compare_frame(con, settings)
        side_by_side, tables = model_sections.build(con, metric, by_model)
    finally:
        con.close()

    provenance = {
        "warehouse": str(wh.root),
        "warehouse version": _version(wh),
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "evalhouse": __version__,
        "pairs": _pairs_asked(settings),
        "comparison": f"test {settings.test}; alpha {settings.alpha:g}; category and benchmark rows "
        f"{settings.adjust_name} within their pair and metric; overlap {settings.overlap:.0%}; "
        f"margin {settings.margin}",
        "chart metric": metric,
    }
    if settings.exclude_sources:
        provenance["excluded sources"] = ", ".join(settings.exclude_sources)
    blocks: list[Block] = [
        Heading("evalhouse report", 1),
        Para(
            [
                f"{facts['models']:,} models, {facts['runs']:,} runs, {facts['items']:,} scored answers; warehouse ",
                Code(provenance["warehouse"]),
                f" at version {provenance['warehouse version']}. Pairs: {provenance['pairs']}.",
            ]
        ),
        *verdict_blocks(comparison, why_none, settings),
    ]
    if comparison is not None and comparison.height:
        blocks += comparison_blocks(comparison, metric, settings)
    blocks += side_by_side
    if comparison is not None and comparison.height:
        blocks += notes_blocks(comparison)
    blocks += provenance_blocks(provenance)

    result.charts = sum(isinstance(b, Figure) for b in blocks)
    out_dir.mkdir(parents=True, exist_ok=True)
    if comparison is not None:
        tables["comparison"] = comparison
    result.data = _write_data(out_dir / "data", tables)
    if "md" in outputs:
        fig_dir = out_dir / "figures"
        fig_dir.mkdir(exist_ok=True)
        for block in blocks:
            if isinstance(block, Figure):
                result.figures.append(charts.render(block.chart, fig_dir / f"{block.name}.png"))
        result.markdown = out_dir / "report.md"
        result.markdown.write_text(to_markdown(blocks), encoding="utf-8")
    if "html" in outputs:
        result.html = out_dir / "report.html"
        result.html.write_text(to_html(blocks), encoding="utf-8")
    if "interactive" in outputs:
        result.interactive = out_dir / "report-interactive.html"
        result.interactive.write_text(to_html(blocks, interactive=True), encoding="utf-8")
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
               (SELECT count(*) FROM (SELECT DISTINCT run_id, sample_id FROM scores)) AS items
        """
    ).fetchall()[0]
    return dict(zip(("models", "runs", "items"), row, strict=True))


def _primary_metric(by_model: pl.DataFrame) -> str:
    counts = by_model.group_by("metric").agg(pl.col("n").sum()).sort(["n", "metric"], descending=[True, False])
    return str(counts["metric"][0])


def _write_data(folder: Path, tables: dict[str, pl.DataFrame]) -> list[Path]:
    from evalhouse.tabular import csv_safe

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, frame in tables.items():
        path = folder / f"{name}.csv"
        csv_safe(frame).write_csv(path)  # a name starting with = must not run in a spreadsheet
        paths.append(path)
    return paths
