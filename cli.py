"""The evalhouse command line. Engine errors become ``Error: ...`` lines here and nowhere else.

Heavy modules (duckdb, polars, scipy, pyarrow) are imported inside the commands that use them so
that ``evalhouse --help`` stays instant.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from evalhouse import __version__
from evalhouse.errors import EvalhouseError, WarehouseError

DEFAULT_WAREHOUSE = "./warehouse"

# Exit codes: 0 ok, 1 failure (engine error, rejected input under --strict, a failed gate), 2 usage.


def _fail(exc: EvalhouseError) -> None:
    from evalhouse.tabular import terminal_text

    # Messages quote paths and names from input: each line is escaped (no forged lines, no ESC).
    click.echo("Error: " + "\n".join(terminal_text(line) for line in str(exc).split("\n")), err=True)
    if exc.hint:
        click.echo(f"Hint: {terminal_text(exc.hint)}", err=True)
    sys.exit(1)


def engine_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn engine exceptions into an ``Error:`` line and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EvalhouseError as exc:
            _fail(exc)
        except KeyboardInterrupt:
            click.echo("Interrupted: a commit under way is either whole or undone.", err=True)
            sys.exit(130)
        except BaseException as exc:  # delta-rs panics are BaseExceptions; anything else is re-raised
            failure = _storage_failure(exc)
            if failure is None:
                raise
            _fail(failure)

    return wrapper


_DOCTOR = "run `evalhouse doctor` on the warehouse"


def _storage_failure(exc: BaseException) -> WarehouseError | None:
    """The error for a failure of the storage libraries (delta-rs, DuckDB reading the tables'
    files, Polars or Arrow writing, the operating system) that reached the CLI; None for anything
    else (a bug: traceback)."""
    import errno
    import re

    module, name = type(exc).__module__ or "", type(exc).__name__
    first = (str(exc).strip().splitlines() or [name])[0]
    if module.startswith("deltalake") or name == "PanicException":
        return WarehouseError(f"the Delta tables could not be read or written: {first}", _DOCTOR)
    if module.startswith(("duckdb", "_duckdb")) and _damaged_file(exc):
        return WarehouseError(f"cannot read the warehouse's files: {first}", _DOCTOR)
    code = exc.errno if isinstance(exc, OSError) else None
    if code is None:  # Polars and Arrow name the OS error in their text: "(os error 28)", "[errno 28]"
        m = re.search(r"\(os error (\d+)\)|\[errno (\d+)\]", str(exc), re.IGNORECASE)
        code = int(m.group(1) or m.group(2)) if m else None
        if code is None and not isinstance(exc, OSError):
            return None
    filename = getattr(exc, "filename", None)
    reason = os.strerror(code) if code else first
    hint = "free some disk space and run it again" if code == errno.ENOSPC else _DOCTOR
    return WarehouseError(f"{f'{filename}: ' if filename else ''}{reason}", hint)


def _damaged_file(exc: BaseException) -> bool:
    """Whether a DuckDB error is about a file it could not read (missing, truncated, corrupt Parquet)."""
    text, name = str(exc).lower(), type(exc).__name__
    words = ("parquet", "thrift", "tprotocolexception", "magic bytes")
    return name != "PermissionException" and (name == "IOException" or any(word in text for word in words))


warehouse_option = click.option(
    "--warehouse",
    "-w",
    envvar="EVALHOUSE_WAREHOUSE",
    default=DEFAULT_WAREHOUSE,
    show_default=True,
    type=click.Path(file_okay=False),
    help="Warehouse folder (env EVALHOUSE_WAREHOUSE).",
)
format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json", "markdown"]),
    default="table",
    show_default=True,
    help="Output format.",
)


def emit(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str) -> None:
    from evalhouse.tabular import render, table_width

    click.echo(render(columns, rows, fmt, width=table_width()))


as_of_option = click.option(
    "--as-of", "as_of", metavar="VERSION|TIME", default=None,
    help="Read the warehouse as it was at a version (`evalhouse history`), a batch id or an ISO time.",
)  # fmt: skip


def engine_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--engine: where the per-item and per-group aggregation runs (the statistics run here either way)."""
    from evalhouse.settings import ENGINES

    return click.option(
        "--engine", type=click.Choice(ENGINES), default="duckdb", show_default=True,
        help="spark: aggregate on a SparkSession ([spark] of evalhouse.toml, EVALHOUSE_SPARK_MASTER or "
             "SPARK_REMOTE; default local[*]).",
    )(fn)  # fmt: skip


def connect_engine(wh: Any, engine: str, config: str | None = None) -> Any:
    """A connection with the warehouse's views: DuckDB in process, or Spark (``--engine spark``)."""
    if engine == "spark":
        from evalhouse.settings import load_spark
        from evalhouse.spark import connect as spark_connect

        return spark_connect(wh, load_spark(config))
    from evalhouse.warehouse import connect

    return connect(wh)


def query(
    warehouse: str, sql: str, params: Any = None, as_of: str | None = None, read_only: bool = False
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run ``sql`` on the views; ``read_only`` (user SQL): see engine/sql_guard.py."""
    from evalhouse.warehouse import connect, open_warehouse

    wh = open_warehouse(warehouse, as_of=as_of)
    if read_only:
        from evalhouse.sql_guard import check_read_only

        check_read_only(sql)
    con = connect(wh)
    try:
        if read_only:
            from evalhouse.sql_guard import lock_down

            lock_down(con, wh)
        cur = con.execute(sql, params or [])
        columns = [d[0] for d in cur.description or []]
        return columns, cur.fetchall()
    except Exception as exc:  # duckdb's errors carry the message users need
        if "duckdb" in (type(exc).__module__ or ""):
            if _damaged_file(exc):
                raise WarehouseError(f"cannot read the warehouse's files: {exc}", _DOCTOR) from None
            raise EvalhouseError(f"query failed: {exc}") from None
        raise
    finally:
        con.close()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="evalhouse")
def main() -> None:
    """evalhouse: a columnar analytics warehouse for LLM benchmark results.

    \b
    Example:
      evalhouse ingest results/ && evalhouse summary --by model,category
    """


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@warehouse_option
@click.option("--strict", is_flag=True, help="Any rejected file: write nothing and exit 1.")
@click.option("--no-wait", is_flag=True, help="Fail instead of waiting when another ingest holds the lock.")
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="Processes to use (default: cores).")
@click.option("--quiet", "-q", is_flag=True, help="Print only the summary line.")
@click.option("--config", type=click.Path(dir_okay=False), default=None,
              help="An evalhouse.toml whose [limits] bound what one file may cost "
                   "[default: ./evalhouse.toml if present].")  # fmt: skip
@engine_errors
def ingest(paths: tuple[str, ...], warehouse: str, strict: bool, no_wait: bool, workers: int | None,
           quiet: bool, config: str | None) -> None:  # fmt: skip
    """Ingest result files and folders into the warehouse.

    Unchanged files are skipped, changed files replace their earlier rows, the same content under
    a second path is recorded as a duplicate, and files that cannot be read, or cost more than the
    [limits] allow (512 MB, after decompression too; 1,000,000 rows), are recorded as rejected
    with the reason. The whole run is committed at once.

    \b
    Example:
      evalhouse ingest results/ runs/model-a_q8_0_results.json
    """
    from evalhouse.commit import retrying
    from evalhouse.ingest import ingest as run_ingest
    from evalhouse.limits import load_limits
    from evalhouse.tabular import terminal_text
    from evalhouse.warehouse import open_warehouse

    limits = load_limits(config)
    wh = open_warehouse(warehouse, create=True)
    with _progress(quiet) as progress:
        # On S3, an ingest that another writer beat to the commit is redone on the new state.
        report = retrying(wh, lambda wh: run_ingest(
            wh,
            paths,
            strict=strict,
            workers=workers,
            wait=not no_wait,
            on_wait=lambda: click.echo("Waiting for another ingest to finish...", err=True),
            progress=progress,
            limits=limits,
        ))  # fmt: skip
    if not quiet:
        for o in report.rejected:
            click.echo(f"rejected: {terminal_text(o.reason or '')}", err=True)
        if report.skipped:
            click.echo(f"skipped {len(report.skipped)} file(s) that are not result files by extension", err=True)
    counts = ", ".join(f"{report.count(s)} {s}" for s in ("ingested", "unchanged", "duplicate", "not-results",
                                                          "rejected"))  # fmt: skip
    retired = f", {report.retired_runs} run(s) replaced" if report.retired_runs else ""
    committed = f"version {report.version}, batch {report.batch_id}" if report.committed else "nothing new: no commit"
    click.echo(f"{len(report.offers)} file(s): {counts}; {report.rows} row(s) added{retired} ({committed})")


class _progress:
    """A rich progress bar on a terminal; nothing otherwise."""

    def __init__(self, quiet: bool) -> None:
        self.enabled = not quiet and sys.stderr.isatty()
        self.bar: Any = None
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> Callable[[str, int, int], None] | None:
        if not self.enabled:
            return None
        from rich.progress import Progress

        self.bar = Progress(transient=True)
        self.bar.start()
        return self.update

    def update(self, phase: str, done: int, total: int) -> None:
        if phase not in self.tasks:
            self.tasks[phase] = self.bar.add_task(f"{phase} files", total=total)
        self.bar.update(self.tasks[phase], completed=done)

    def __exit__(self, *exc: object) -> None:
        if self.bar:
            self.bar.stop()


@main.command()
@warehouse_option
@format_option
@click.option("--status", type=click.Choice(["ingested", "unchanged", "duplicate", "not-results", "rejected"]),
              multiple=True, help="Only these statuses (repeatable).")  # fmt: skip
@click.option("--all", "history", is_flag=True, help="Every offer, not only the latest per file.")
@as_of_option
@engine_errors
def files(warehouse: str, fmt: str, status: tuple[str, ...], history: bool, as_of: str | None) -> None:
    """Show the ingest ledger: the latest status of every file offered.

    \b
    Example:
      evalhouse files --status rejected
    """
    latest = "SELECT * FROM files QUALIFY row_number() OVER (PARTITION BY path ORDER BY batch_id DESC) = 1"
    source = "files" if history else f"({latest})"
    where = "WHERE list_contains($statuses, status)" if status else ""
    sql = f"SELECT path, status, format, rows, reason, batch_id FROM {source} AS f {where} ORDER BY path, batch_id"
    emit(*query(warehouse, sql, {"statuses": list(status)} if status else None, as_of), fmt)


@main.command()
@warehouse_option
@format_option
@as_of_option
@engine_errors
def models(warehouse: str, fmt: str, as_of: str | None) -> None:
    """List models with their base, quantization, runs and items.

    \b
    Example:
      evalhouse models --format csv
    """
    emit(*query(warehouse, "SELECT * FROM models ORDER BY model_base, model", None, as_of), fmt)


SUMMARY_BY = {
    "model": ["model"],
    "category": ["category"],
    "benchmark": ["benchmark"],
    "model,category": ["model", "category"],
    "model,benchmark": ["model", "benchmark"],
}


@main.command()
@click.option("--by", type=click.Choice(list(SUMMARY_BY)), default="model", show_default=True,
              help="Grouping.")  # fmt: skip
@click.option("--level", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.95,
              show_default=True, help="Confidence level of the intervals.")  # fmt: skip
@click.option("--interval", type=click.Choice(["auto", "t", "wilson"]), default="auto", show_default=True,
              help="Interval method: auto is Wilson for 0/1 items, t on the logit scale for other scores in "
                   "[0, 1], Student t otherwise; t never uses Wilson (except at 0 or 1); wilson gives no "
                   "interval for groups that are not 0/1.")  # fmt: skip
@click.option("--cluster", metavar="COLUMN", default=None,
              help="Cluster-robust standard errors over the answers, clustered on this scores column "
                   "(item_id, task, category: the full item key; or run_id, epoch, ...).")  # fmt: skip
@click.option("--per-answer", is_flag=True,
              help="Statistics over score rows (n = answers) instead of per-item means.")  # fmt: skip
@warehouse_option
@format_option
@as_of_option
@engine_option
@engine_errors
def summary(
    by: str,
    level: float,
    interval: str,
    cluster: str | None,
    per_answer: bool,
    warehouse: str,
    fmt: str,
    as_of: str | None,
    engine: str,
) -> None:
    """Score statistics with confidence intervals by model, category or benchmark.

    The unit is the item (benchmark, category, task, item_id, filter): a model's repeated answers
    to one item (epochs, runs) are averaged first. Columns: n (items), n_answers (score rows), mean,
    std, sem, median, min, max, ci_low, ci_high, ci_method (wilson, t-logit, t, cluster-t-logit,
    cluster-t) and note (why a group has no interval). --per-answer counts rows instead; with
    --cluster, statistics are over rows and sem is the cluster-robust standard error.

    \b
    Example:
      evalhouse summary --by model,category --format markdown
      evalhouse summary --by model --cluster task --level 0.9
      evalhouse summary --by model,category --engine spark
    """
    from evalhouse.stats import describe
    from evalhouse.warehouse import open_warehouse

    con = connect_engine(open_warehouse(warehouse, as_of=as_of), engine)
    try:
        frame = describe(con, SUMMARY_BY[by], level=level, method=interval, cluster=cluster, per_answer=per_answer)
    finally:
        con.close()
    emit(frame.columns, frame.rows(), fmt)


_BY_CHOICES = {"category": ["category"], "benchmark": ["benchmark"], "category,benchmark": ["category", "benchmark"],
               "none": []}  # fmt: skip


def comparison_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options compare, gate and report share; merged into one Settings by ``_settings``."""
    from evalhouse.settings import ADJUST_METHODS, TESTS

    options = [
        click.option("--baseline", "-b", multiple=True, metavar="PATTERN",
                     help="Baseline models (glob, case-insensitive; repeatable)."),
        click.option("--candidate", "-c", multiple=True, metavar="PATTERN",
                     help="Candidate models (glob, case-insensitive; repeatable)."),
        click.option("--by", type=click.Choice(list(_BY_CHOICES)), default=None,
                     help="Scopes besides overall (category and benchmark rows are secondary, adjusted "
                          "within their pair and metric)."),
        click.option("--test", type=click.Choice(TESTS), default=None,
                     help="Test [default: auto: McNemar, paired t or sign-flip on shared items; score test, "
                          "Welch or permutation otherwise]. student: the original scripts' per-answer t-test."),
        click.option("--adjust", type=click.Choice(ADJUST_METHODS), default=None,
                     help="Adjustment of category/benchmark rows within each pair and metric [default: holm]."),
        click.option("--alpha", type=click.FloatRange(0, 0.5, min_open=True, max_open=True), default=None,
                     help="Significance level; intervals at 1 - alpha [default: 0.05]."),
        click.option("--overlap", type=click.FloatRange(0, 1, min_open=True), default=None,
                     help="Share of either side's items the shared items must cover for a like-for-like "
                          "row [default: 0.9]."),
        click.option("--cluster", metavar="COLUMN", default=None,
                     help="Unit of analysis other than the item: a scores column such as task (within "
                          "its benchmark and category)."),
        click.option("--exclude-source", multiple=True, metavar="GLOB",
                     help="Leave out runs whose source path matches (repeatable)."),
        click.option("--config", type=click.Path(dir_okay=False), default=None,
                     help="An evalhouse.toml with [compare] and [metrics] sections "
                          "[default: ./evalhouse.toml if present]."),
    ]  # fmt: skip
    for option in reversed(options):
        fn = option(fn)
    return fn


def _settings(config: str | None, **options: Any) -> Any:
    """The one Settings of compare, gate and report: defaults < evalhouse.toml < these options."""
    from evalhouse.settings import load, merge

    by = options.pop("by", None)
    exclude = options.pop("exclude_source", ())
    return merge(load(config), by=_BY_CHOICES[by] if by else None, exclude_sources=exclude, **options)


def _run_compare(warehouse: str, settings: Any, no_save: bool, default_by: Sequence[str],
                 as_of: str | None = None, engine: str = "duckdb") -> Any:  # fmt: skip
    from evalhouse.commit import retrying
    from evalhouse.compare import compare as run_compare
    from evalhouse.compare import save
    from evalhouse.warehouse import open_warehouse

    wh = open_warehouse(warehouse, as_of=as_of)
    no_save = no_save or as_of is not None  # a view of the past is read, never written to
    con = connect_engine(wh, engine, settings.source)
    try:
        frame = run_compare(con, settings, default_by=default_by)
    finally:
        con.close()
    if not no_save:
        # On S3 a save that another writer beat to the commit is redone on the new version (the
        # comparisons are this analysis's own rows, whatever else was committed meanwhile).
        analysis = retrying(wh, lambda wh: save(wh, frame))
        click.echo(f"analysis {analysis}: {frame.height} comparison(s) stored "
                   "(views comparisons, category_comparisons)", err=True)  # fmt: skip
    return frame


no_save_option = click.option("--no-save", is_flag=True, help="Do not store the results in the warehouse.")


@main.command()
@comparison_options
@click.option("--margin", metavar="M", default=None,
              help="Also give each row the gate's verdict under this margin (2% or 0.02).")  # fmt: skip
@no_save_option
@warehouse_option
@format_option
@as_of_option
@engine_option
@engine_errors
def compare(config: str | None, no_save: bool, warehouse: str, fmt: str, as_of: str | None, engine: str,
            **options: Any) -> None:  # fmt: skip
    """Compare candidate models with baselines, overall and per category or benchmark.

    Pairs every --baseline match with every --candidate match; with no patterns (and no
    [compare] section in evalhouse.toml), every variant is paired with its base model
    (aegis-q4km with aegis). The item is the unit (repeated answers are averaged per item);
    paired tests run on the shared items, and a pair whose shared items cover less than --overlap
    of either side says `partial overlap` and carries the unpaired result beside. Overall rows are
    the primary results at alpha; category and benchmark rows are adjusted within their pair and
    metric. The results are stored as the views `comparisons` and `category_comparisons`.

    \b
    Example:
      evalhouse compare --baseline modela --candidate 'aegis*' --by category
      evalhouse compare -b model-a -c 'agiasi*' --test student --adjust none --format csv
      evalhouse compare --engine spark --no-save --format json
    """
    frame = _run_compare(warehouse, _settings(config, **options), no_save, ["category"], as_of, engine)
    emit(frame.columns, frame.rows(), fmt)


# Gate exit codes: every row passes, some row regressed, none regressed but some undecided.
GATE_EXIT = {"pass": 0, "regressed": 1, "inconclusive": 3}


@main.command()
@comparison_options
@click.option("--margin", metavar="M", default=None,
              help="Largest tolerated drop: 2% (of the baseline mean) or 0.02 (score units).")  # fmt: skip
@click.option("--max-drop", type=click.FloatRange(min=0), default=None, metavar="PCT",
              help="Same as --margin PCT%.")  # fmt: skip
@no_save_option
@warehouse_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text: one line per row; json: the rows with their verdict.")  # fmt: skip
@as_of_option
@engine_option
@engine_errors
def gate(config: str | None, no_save: bool, warehouse: str, fmt: str, max_drop: float | None, as_of: str | None,
         engine: str, **options: Any) -> None:  # fmt: skip
    """Non-inferiority gate: is each candidate at worst a margin below its baseline?

    Runs the same analysis as `compare` (overall rows only unless --by). Per row, with the
    one-sided (1 - alpha) bounds of candidate - baseline (turned for lower-is-better metrics):
    pass when the lower bound is above -margin; regressed when the upper bound is below -margin;
    inconclusive otherwise, or when the row could not be tested or its shared items cover too
    little of either side. Exit 0 when every row passes, 1 when any regressed, 3 when none
    regressed but some are inconclusive.

    \b
    Example:
      evalhouse gate -b my-model -c my-model-q4km --margin 2%
      evalhouse gate -b my-model -c my-model-q4km --margin 0.01 --by category --format json
    """
    from evalhouse.errors import AnalysisError

    if max_drop is not None:
        if options.get("margin") is not None:
            raise click.UsageError("give --margin or --max-drop, not both")
        options["margin"] = f"{max_drop}%"
    settings = _settings(config, **options)
    if settings.margin is None:
        raise AnalysisError("the gate needs a margin", hint="--margin 2% (of the baseline mean) or --margin 0.02")
    frame = _run_compare(warehouse, settings, no_save, [], as_of, engine)
    verdicts = frame["verdict"].to_list()
    worst = "regressed" if "regressed" in verdicts else ("inconclusive" if "inconclusive" in verdicts else "pass")
    if fmt == "json":
        emit(frame.columns, frame.rows(), "json")
    else:
        from evalhouse.verdict import gate_lines

        for line in gate_lines(frame, settings):
            click.echo(line)
    sys.exit(GATE_EXIT[worst])


def _item_filters(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--metric, --benchmark and --category: which items of a pair flips and power read."""
    options = [
        click.option("--metric", default=None, help="Only this metric, as compare labels it (acc, "
                                                    "exact_match,strict-match)."),
        click.option("--benchmark", default=None, help="Only this benchmark (`unknown` for items without one)."),
        click.option("--category", default=None, help="Only this category."),
    ]  # fmt: skip
    for option in reversed(options):
        fn = option(fn)
    return fn


@main.command()
@click.option("--baseline", "-b", multiple=True, metavar="PATTERN",
              help="Baseline models (glob, case-insensitive; repeatable).")  # fmt: skip
@click.option("--candidate", "-c", multiple=True, metavar="PATTERN",
              help="Candidate models (glob; repeatable); alone, each is paired with its base model.")  # fmt: skip
@_item_filters
@click.option("--limit", type=click.IntRange(1), default=None, metavar="N",
              help="At most N items per pair of models (the largest changes).")  # fmt: skip
@warehouse_option
@format_option
@as_of_option
@engine_errors
def flips(baseline: tuple[str, ...], candidate: tuple[str, ...], metric: str | None, benchmark: str | None,
          category: str | None, limit: int | None, warehouse: str, fmt: str, as_of: str | None) -> None:  # fmt: skip
    """List the items whose score changed between a baseline and a candidate, largest change first.

    Items pair as in `compare` (repeated answers averaged per item; an item whose content hash
    changed is not paired): benchmark, category, task, item_id, both scores, and the question,
    expected answer and both responses where the sources have them. For 0/1 scores these are the
    items behind compare's flips_down and flips_up. Model names as stored (evalhouse.toml's aliases
    do not apply); the same list is the view `flips`.

    \b
    Example:
      evalhouse flips -b basem -c basem-q4km --limit 10
      evalhouse flips -b model-a -c model-a-q4km --metric acc --benchmark mmlu --format json
    """
    from evalhouse.flips import FlipQuery
    from evalhouse.flips import flips as list_flips
    from evalhouse.warehouse import connect, open_warehouse

    if not baseline and not candidate:
        raise click.UsageError("name the models: --baseline PATTERN and/or --candidate PATTERN")
    con = connect(open_warehouse(warehouse, as_of=as_of))
    try:
        frame = list_flips(con, FlipQuery(baseline, candidate, metric, benchmark, category, limit))
    finally:
        con.close()
    emit(frame.columns, frame.rows(), fmt)


# evalhouse.noise.BY, spelled out here so that `--help` does not import numpy.
NOISE_BY = ["overall", "benchmark", "category"]


@main.command()
@click.option("--model", "-m", "models", multiple=True, metavar="PATTERN",
              help="Models (glob, case-insensitive; repeatable). Default: every model with repeated runs.")  # fmt: skip
@click.option("--by", type=click.Choice(NOISE_BY), default="benchmark", show_default=True,
              help="Scope: the model's whole mean, per benchmark, or per category of a benchmark.")  # fmt: skip
@click.option("--metric", default=None, help="Only this metric, as compare labels it.")
@click.option("--level", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.95,
              show_default=True, help="Confidence level of the intervals and of noise_floor.")  # fmt: skip
@warehouse_option
@format_option
@as_of_option
@engine_errors
def noise(models: tuple[str, ...], by: str, metric: str | None, level: float, warehouse: str, fmt: str,
          as_of: str | None) -> None:  # fmt: skip
    """The run-to-run noise floor: how much a model's mean moves between repeated runs of the same items.

    For every model with two or more runs (or epochs) of the same items: n_runs, n_pairs (pairs of
    runs), n_items, mean, sd_run (the standard deviation of the mean from one run to the next)
    with its chi-square interval, noise_floor (the difference two single runs stay within at the
    level) and, for 0/1 scores, flip_rate (answers that differ between two runs) with its Wilson
    interval. `compare` shows the baseline's floor beside each difference.

    \b
    Example:
      evalhouse noise -m basem --by benchmark
      evalhouse noise --by overall --format csv
    """
    from evalhouse.errors import AnalysisError
    from evalhouse.noise import for_scope
    from evalhouse.noise import noise as run_noise
    from evalhouse.warehouse import connect, open_warehouse

    con = connect(open_warehouse(warehouse, as_of=as_of))
    try:
        frame = for_scope(run_noise(con, models=models, metric=metric, alpha=1 - level), by)
    finally:
        con.close()
    if frame.height == 0:
        matching = f" matching {', '.join(models)}" if models else ""
        raise AnalysisError(
            f"no model{matching} has two runs (or epochs) of the same items",
            hint="ingest repeated runs of a model (seeds, batch sizes, backends) to estimate its noise floor",
        )
    emit(frame.columns, frame.rows(), fmt)


@main.command()
@click.option("--baseline", "-b", multiple=True, metavar="PATTERN",
              help="Baseline models (glob; repeatable). Without -b/-c: plan from --sd/--rho alone.")  # fmt: skip
@click.option("--candidate", "-c", multiple=True, metavar="PATTERN",
              help="Candidate models (glob; repeatable); alone, each is paired with its base model.")  # fmt: skip
@click.option("--delta", type=float, default=None, metavar="D",
              help="The difference to detect, in score units (0.01: one point of accuracy).")  # fmt: skip
@click.option("--n", "items", type=click.IntRange(2), default=None, metavar="N",
              help="Items available: the smallest difference they detect (with --delta: the power).")  # fmt: skip
@click.option("--epochs", type=click.IntRange(1), default=1, show_default=True, metavar="K",
              help="Answers per item and model to plan for (rows for 1 and K).")  # fmt: skip
@_item_filters
@click.option("--sd", type=click.FloatRange(0, min_open=True), default=None,
              help="Assume this per-item standard deviation of each model's scores (over the data's).")  # fmt: skip
@click.option("--rho", type=click.FloatRange(-1, 1), default=None,
              help="Assume this correlation of the two models' per-item scores (over the data's).")  # fmt: skip
@click.option("--alpha", type=click.FloatRange(0, 0.5, min_open=True, max_open=True), default=None,
              help="Significance level [default: evalhouse.toml's [compare] alpha, else 0.05].")  # fmt: skip
@click.option("--config", type=click.Path(dir_okay=False), default=None,
              help="An evalhouse.toml (for its alpha) [default: ./evalhouse.toml if present].")  # fmt: skip
@warehouse_option
@format_option
@as_of_option
@engine_errors
def power(baseline: tuple[str, ...], candidate: tuple[str, ...], delta: float | None, items: int | None, epochs: int,
          metric: str | None, benchmark: str | None, category: str | None, sd: float | None, rho: float | None,
          alpha: float | None, config: str | None, warehouse: str, fmt: str, as_of: str | None) -> None:  # fmt: skip
    """Items needed to detect a difference with 80 % power, or the smallest difference N items detect.

    From the pair's shared items: the between-item and within-item variance and the correlation of
    the two models' per-item scores (the paired variance of Miller 2024, "Adding Error Bars to
    Evals"), for the test compare would run (exact McNemar for 0/1 scores with one answer per
    item, else the paired t-test) at the alpha in use. --epochs K adds rows for K answers per item.

    \b
    Example:
      evalhouse power -b basem -c basem-q4km --delta 0.02 --epochs 5
      evalhouse power --sd 0.45 --rho 0.6 --n 500
    """
    from evalhouse.power import Plan, PowerQuery
    from evalhouse.power import power as plan_power
    from evalhouse.settings import load, merge
    from evalhouse.warehouse import connect, open_warehouse

    if delta is None and items is None:
        raise click.UsageError("give --delta D (items needed) or --n N (smallest difference detected)")
    if not baseline and not candidate and sd is None:
        raise click.UsageError("name the models (--baseline/--candidate), or give --sd (and --rho) to assume")
    plan = Plan(delta=None if delta is None else abs(delta), items=items, epochs=epochs,
                alpha=merge(load(config), alpha=alpha).alpha)  # fmt: skip
    query = PowerQuery(baseline, candidate, metric, benchmark, category, sd, rho)
    con = connect(open_warehouse(warehouse, as_of=as_of)) if baseline or candidate else None
    try:
        frame = plan_power(con, query, plan)
    finally:
        if con is not None:
            con.close()
    emit(frame.columns, frame.rows(), fmt)


@main.command()
@click.argument("statement")
@warehouse_option
@format_option
@as_of_option
@click.option("--unsafe", is_flag=True,
              help="Run any statement with DuckDB's full access (writes, ATTACH, extensions, any file), "
                   "as the DuckDB shell does; nothing guards the warehouse then.")  # fmt: skip
@engine_errors
def sql(statement: str, warehouse: str, fmt: str, as_of: str | None, unsafe: bool) -> None:
    """Run a SQL query against the warehouse views.

    Read-only unless --unsafe: SELECT (with WITH, DESCRIBE, SHOW, SUMMARIZE), EXPLAIN and CALL only;
    no COPY, ATTACH, INSTALL, LOAD or SET, and no file read outside the warehouse's tables.

    \b
    Example:
      evalhouse sql "SELECT model, avg(score) FROM scores GROUP BY model"
    """
    emit(*query(warehouse, statement, None, as_of, read_only=not unsafe), fmt)


@main.command()
@warehouse_option
@format_option
@engine_errors
def history(warehouse: str, fmt: str) -> None:
    """List the warehouse's versions: number, batch, time, kind (create, ingest, compare, optimize,
    migrate, repair), and the rows each added and removed per table.

    Any read command takes --as-of VERSION (or a batch id or an ISO time) to read the warehouse as
    it was then; a report records the version it was computed from.

    \b
    Example:
      evalhouse history
      evalhouse summary --as-of 3
    """
    import orjson

    from evalhouse.warehouse import history as commits
    from evalhouse.warehouse import open_warehouse

    def counts(c: dict[str, int]) -> str | None:
        return orjson.dumps(c, option=orjson.OPT_SORT_KEYS).decode() if c else None

    rows = [
        (c["version"], c["batch_id"], c["time"], c["kind"], counts(c["rows"]), counts(c["removed"]))
        for c in commits(open_warehouse(warehouse))
    ]
    emit(["version", "batch_id", "time", "kind", "rows", "removed"], rows, fmt)


@main.command()
@warehouse_option
@click.option(
    "--retention",
    default="7d",
    show_default=True,
    metavar="DURATION",
    help="Keep the files of versions younger than this (`7d`, `12h`, `0` for none) for --as-of.",
)
@click.option("--no-compact", is_flag=True, help="Only delete files no kept version reads.")
@engine_errors
def optimize(warehouse: str, retention: str, no_compact: bool) -> None:
    """Compact each table's small files into few large ones, then delete the files that neither the
    current version nor a version younger than --retention reads.

    Queries pay per file, so run it after many ingests; older versions stay in `evalhouse history`
    but can no longer be read with --as-of.

    \b
    Example:
      evalhouse optimize
      evalhouse optimize --retention 0
    """
    from evalhouse.optimize import optimize as run
    from evalhouse.optimize import parse_duration
    from evalhouse.warehouse import open_warehouse

    report = run(open_warehouse(warehouse), retention=parse_duration(retention),
                 compact=not no_compact)  # fmt: skip
    for table, (before, after) in sorted(report.compacted.items()):
        click.echo(f"{table}: {before} file(s) -> {after}")
    vacuumed = sum(report.vacuumed.values())
    click.echo(f"version {report.version}: {vacuumed} unreferenced file(s) deleted; versions from "
               f"{report.oldest_readable} on can be read with --as-of")  # fmt: skip


@main.command()
@warehouse_option
@engine_errors
def migrate(warehouse: str) -> None:
    """Upgrade a warehouse written by an older evalhouse to this one's layout (Delta tables).

    Any command does it on open; this does only that, and says what it did.

    \b
    Example:
      evalhouse migrate --warehouse warehouse/
    """
    from evalhouse import versions
    from evalhouse.warehouse import open_warehouse

    wh = open_warehouse(warehouse)
    done = [v for v in versions.history(wh.root) if v.kind == "migrate"]
    if done:
        click.echo(f"{wh.name}: migrated to Delta tables at version {done[-1].number} ({done[-1].time:%Y-%m-%d %H:%M})")
    else:
        click.echo(f"{wh.name}: already in this evalhouse's layout; nothing to do")


# evalhouse.synth.WRITERS, spelled out here so that `--help` does not import numpy.
SYNTH_SHAPES = ["mixed", "so8t-results", "so8t-tasks", "so8t-ab", "lm-eval-samples", "no-scores"]


@main.command()
@click.option("--runs", type=click.IntRange(1), required=True, help="Result files to write (each with ~100 items).")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Folder to write into.")
@click.option("--shape", type=click.Choice(SYNTH_SHAPES), default="mixed", show_default=True,
              help="An input format (source_format), or `mixed`: all of them plus a few broken files.")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, byte-identical files.")
@click.option("--families", type=click.IntRange(1, 10), default=None,
              help="Model families (4 variants each; default: 2 to 10 growing with --runs).")  # fmt: skip
@engine_errors
def synth(runs: int, out: str, shape: str, seed: int, families: int | None) -> None:
    """Write a synthetic corpus with planted effects (for demos, tests and benchmarks).

    Model families come with quantized (-q4km, -q8_0) and fine-tuned (-ft) variants whose scores
    differ from the base model by the effects declared in engine/synth.py (EFFECTS): some
    categories degrade, some improve, the rest are unchanged. Items are shared across models.

    \b
    Example:
      evalhouse synth --runs 300 --out demo/corpus && evalhouse ingest demo/corpus
    """
    import time

    from evalhouse.synth import generate

    t0 = time.perf_counter()
    report = generate(out, runs, shape=shape, seed=seed, families=families)
    kinds = ", ".join(f"{n} {k}" for k, n in report.counts.items())
    click.echo(f"wrote {report.files} file(s), {report.bytes / 1e6:.1f} MB, {report.families} model families "
               f"({kinds}) to {out} in {time.perf_counter() - t0:.1f} s")  # fmt: skip


@main.command()
def schema() -> None:
    """Print the documentation of the open `evalhouse-samples` format (JSONL or CSV).

    Tools evalhouse has no adapter for can write their per-item results in this format; files
    in it are recognised by content when ingested.

    \b
    Example:
      evalhouse schema > SAMPLES_FORMAT.md
    """
    from evalhouse.schema import open_format_doc

    click.echo(open_format_doc(), nl=False)


def _export_formats() -> list[str]:
    from evalhouse.export import WRITERS  # imports no data library: `--help` stays instant

    return list(WRITERS)


def _export_tables() -> tuple[str, ...]:
    from evalhouse.export import PARQUET_TABLES

    return PARQUET_TABLES


@main.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(_export_formats()), required=True,
              help="eee: Every Eval Ever (schema 0.3.0), OUT/data/<benchmark>/<org>/<model>/<uuid>.json and "
                   "<uuid>_samples.jsonl. parquet: OUT/<table>/part-00000.parquet per table, with "
                   "OUT/data_dictionary.json and OUT/DATA_DICTIONARY.md.")  # fmt: skip
@click.option("--model", "-m", "models", multiple=True, metavar="PATTERN",
              help="Only these models (glob, case-insensitive; repeatable). Default: every live run.")  # fmt: skip
@click.option("--tables", metavar="T1,T2", default=None,
              help=f"parquet: only these tables, of {','.join(_export_tables())}. Default: all.")  # fmt: skip
@warehouse_option
@as_of_option
@engine_errors
def export(out: str, fmt: str, models: tuple[str, ...], tables: str | None, warehouse: str, as_of: str | None) -> None:
    """Write the warehouse's live runs into OUT in another tool's format.

    eee writes one aggregate JSON per run (its reported metrics, and the mean and standard error of
    each metric of its per-item scores) and, for a run with per-item scores, a `_samples.jsonl`
    beside it; exporting again rewrites the same files. `evalhouse ingest OUT` reads them back.

    parquet writes the live rows of runs, scores, texts, metrics, files and
    the newest comparisons as zstd Parquet, one folder per table, for BI tools and dataframes, with
    a data dictionary of every column. It is written beside OUT and renamed into place; an existing
    OUT is replaced only if it is an earlier export.

    \b
    Example:
      evalhouse export --format eee eee-out/ -m 'EleutherAI/*'
      evalhouse export --format parquet bi/ --tables runs,scores,comparisons
    """
    from evalhouse.export import export as run_export
    from evalhouse.warehouse import open_warehouse

    names = None if tables is None else tuple(t.strip() for t in tables.split(",") if t.strip())
    report = run_export(open_warehouse(warehouse, as_of=as_of), out, fmt=fmt, models=models, tables=names)
    if fmt == "parquet":
        from evalhouse.export_parquet import DICTIONARY_MD

        counts = ", ".join(f"{name} {rows}" for name, rows in report.tables.items())
        click.echo(f"wrote {len(report.tables)} table(s) under {report.out} ({counts} row(s)); "
                   f"columns described in {report.out / DICTIONARY_MD}")  # fmt: skip
        return
    skipped = f"; {report.skipped} run(s) without scores or metrics skipped" if report.skipped else ""
    click.echo(f"wrote {report.runs} run(s): {len(report.files)} file(s), {report.lines} sample line(s) "
               f"under {report.out / 'data'}{skipped}")  # fmt: skip


@main.command()
@warehouse_option
@engine_errors
def shell(warehouse: str) -> None:
    """Open the DuckDB shell on the warehouse's views (needs the `duckdb` command).

    \b
    Example:
      evalhouse shell
    """
    from evalhouse.store import refuse
    from evalhouse.warehouse import open_warehouse

    refuse(warehouse, "shell", "the DuckDB shell cannot read s3:// without its httpfs extension",
           "query it with `evalhouse sql`, copy it out with `evalhouse export --format parquet OUT` (then "
           "`duckdb` on OUT), use --engine spark, or read tables/<table> in place with a Delta Lake reader "
           "(Spark: s3a:// with Delta's and Hadoop's S3 connectors)")  # fmt: skip
    wh = open_warehouse(warehouse)
    exe = shutil.which("duckdb") or _beside_python("duckdb")
    if not exe:
        raise WarehouseError("the DuckDB shell (`duckdb`) is not installed", hint="pip install duckdb-cli")
    os.execv(exe, [exe, str(wh.db_path)])


@main.command()
@warehouse_option
@click.option("--fix", "repair", is_flag=True,
              help="Undo unfinished commits, move files no Delta version lists to quarantine/, drop missing or "
                   "damaged files and withdraw their runs for re-ingest, rewrite the views.")  # fmt: skip
@engine_errors
def doctor(warehouse: str, repair: bool) -> None:
    """Check a warehouse: versions, each table's Delta log and live files, stray files, unfinished
    commits, the views file; prints the live rows per table.

    Exits 1 when it finds an error (data lost or misread); warnings alone exit 0.

    \b
    Example:
      evalhouse doctor --warehouse warehouse/
    """
    from evalhouse.doctor import examine, fix
    from evalhouse.tabular import terminal_text

    if repair:
        for line in fix(warehouse):
            click.echo(terminal_text(line))
    report = examine(warehouse)
    for finding in [*report.notes, *report.findings]:
        click.echo(terminal_text(str(finding)))
    errors = sum(f.level == "error" for f in report.findings)
    click.echo(f"{errors} error(s), {len(report.findings) - errors} warning(s)" if report.findings else "healthy")
    if errors:
        sys.exit(1)


@main.command()
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Folder to write the report into.")
@comparison_options
@click.option("--margin", metavar="M", default=None,
              help="Give each comparison the gate's verdict under this margin (2% or 0.02).")  # fmt: skip
@click.option("--output", "outputs", type=click.Choice(["md", "html", "interactive"]), multiple=True,
              help="What to write (repeatable) [default: all]: md (Markdown with PNG figures), html (one "
                   "static file, SVG inline), interactive (live charts with tooltips; offline).")  # fmt: skip
@click.option("--metric", default=None, help="Metric the charts show (default: the one with the most scores).")
@warehouse_option
@as_of_option
@engine_option
@engine_errors
def report(out: str, config: str | None, outputs: tuple[str, ...], metric: str | None, warehouse: str,
           as_of: str | None, engine: str, **options: Any) -> None:  # fmt: skip
    """Write the report: per pair the verdict and where it got worse first, then the comparisons,
    models and categories side by side on shared items, charts and provenance.

    Takes every option `compare` takes, merged the same way (patterns, else the [compare] rules of
    evalhouse.toml, else every variant against its base model); verdicts use --margin (default 1%
    of the baseline mean). Tables are also written whole as CSV under OUT/data/.

    \b
    Example:
      evalhouse report --out reports/q4 -b modela -c 'modela-*' --margin 2%
    """
    from evalhouse.report import OUTPUTS, build_report
    from evalhouse.warehouse import open_warehouse

    settings = _settings(config, **options)
    wh = open_warehouse(warehouse, as_of=as_of)
    result = build_report(wh, out, outputs=outputs or OUTPUTS, metric=metric, settings=settings,
                          connect=lambda pinned: connect_engine(pinned, engine, settings.source))  # fmt: skip
    for path in (result.markdown, result.html, result.interactive):
        if path is not None:
            click.echo(f"wrote {path}")
    click.echo(f"{result.charts} chart(s), {len(result.data)} CSV table(s) in {result.out}")


def _beside_python(name: str) -> str | None:
    candidate = os.path.join(os.path.dirname(sys.executable), name)
    return candidate if os.access(candidate, os.X_OK) else None


if __name__ == "__main__":
    main()
