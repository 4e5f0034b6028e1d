"""The canonical tables and views of the warehouse, declared once.

Adapters produce exactly these columns, the Parquet writer takes its Arrow schemas from here, and
README.md's data dictionary is generated from here (``python -m evalhouse.schema``); a test keeps the
README and the live views in step with these declarations.

>>> [c.name for c in TABLES["runs"].columns][:3]
['run_id', 'source_path', 'source_sha256']
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pyarrow as pa

# Bumped whenever a stored table changes shape; the warehouse records the version it was written
# with so that an older warehouse is upgraded or refused, never silently misread.
SCHEMA_VERSION = 4

UTC_TS = pa.timestamp("us", tz="UTC")
LOCAL_TS = pa.timestamp("us")


@dataclass(frozen=True)
class Column:
    """One column: its name, Arrow type (or SQL type, for views) and meaning."""

    name: str
    type: pa.DataType | str
    doc: str

    @property
    def type_name(self) -> str:
        return self.type if isinstance(self.type, str) else str(self.type)


@dataclass(frozen=True)
class Table:
    """A stored table (a Delta table under ``warehouse/tables``) or a view defined in ``sql/``."""

    name: str
    doc: str
    columns: tuple[Column, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.type) for c in self.columns])  # type: ignore[arg-type]


def _t(name: str, doc: str, *columns: tuple[str, pa.DataType | str, str]) -> Table:
    return Table(name, doc, tuple(Column(*c) for c in columns))


S, F, I32, I64, B = pa.string(), pa.float64(), pa.int32(), pa.int64(), pa.bool_()

# ---------------------------------------------------------------------------------------------
# Stored tables
# ---------------------------------------------------------------------------------------------

RUNS = _t(
    "runs",
    "One row per evaluation run: one model evaluated by one source file (a file can hold several).",
    ("run_id", S, "Stable id: a hash of the source content, the adapter and the run's key in it."),
    ("source_path", S, "Absolute path of the file the run was first ingested from."),
    ("source_sha256", S, "SHA-256 of that file's bytes."),
    ("source_format", S, "Name of the adapter that read it, e.g. `so8t-results`."),
    ("model", S, "Model name exactly as the source gives it."),
    ("model_base", S, "Model name without its quantization suffix or tag."),
    ("quantization", S, "Normalised quantization (`q4_k_m`, `q8_0`, `fp16`, ...); NULL if none."),
    ("harness", S, "Evaluation harness or tool that wrote the file, where known."),
    ("status", S, "Run status as the source reports it (`success`, `error`, ...); NULL if none."),
    ("started_at", LOCAL_TS, "When the run started, as the source gives it (no time zone)."),
    ("ingested_at", UTC_TS, "When evalhouse ingested the run (UTC)."),
    ("n_items", I64, "Number of scored answers (items x epochs) in the run."),
    ("batch_id", S, "The ingest batch that wrote the run."),
    ("metadata", S, "Run-level fields that have no column of their own, as JSON text."),
)

# One question: the same item_id in two tasks (lm-eval's doc 0 of every task) is two items.
ITEM_KEY = ("benchmark", "category", "task", "item_id", "filter")


def metric_label_sql(table: str) -> str:
    """SQL for a row's metric as analyses show it: the answer filter after a comma where it has one.

    lm-eval's `exact_match,strict-match` and `exact_match,flexible-extract` are two metrics, never
    averaged into one; NULL, '' and lm-eval's `none` are no filter.

    >>> metric_label_sql("s")
    "CASE WHEN s.filter IS NULL OR s.filter IN ('', 'none') THEN s.metric ELSE s.metric || ',' || s.filter END"
    """
    return (
        f"CASE WHEN {table}.filter IS NULL OR {table}.filter IN ('', 'none') THEN {table}.metric "
        f"ELSE {table}.metric || ',' || {table}.filter END"
    )


SCORES = _t(
    "scores",
    "One row per scored answer per metric: the narrow table every aggregate reads.",
    ("run_id", S, "The run (see `runs`)."),
    ("sample_id", I32, "Position of the answer within its run; joins `texts`."),
    ("model", S, "Model name (copied from the run so aggregates need no join)."),
    ("benchmark", S, "Benchmark or suite the item belongs to; NULL if the source has none."),
    ("category", S, "Item category; else its benchmark; `unknown` only when there is neither."),
    ("task", S, "Harness task name (lm-eval task, inspect task, HELM run group); NULL if none."),
    ("item_id", S, "Stable key of the question, the same across models, for pairing."),
    ("epoch", I32, "Repetition of the same item in one run (inspect epoch, HELM trial); 0 if none."),
    (
        "filter",
        S,
        "Variant of the same answer, part of the pairing key: lm-eval filter name (a doc appears once "
        "per filter), HELM perturbation name; NULL where there is none.",
    ),
    ("split", S, "Data split (`test`, `valid`, ...) where the source names one."),
    ("metric", S, "Metric name (`score`, `acc`, `exact_match`, `correct`, ...)."),
    ("score", F, "The score, a finite number."),
    ("higher_is_better", B, "Direction of the metric: false for losses, perplexity, error rates."),
    ("response_time_s", F, "Seconds the model took to answer, where recorded."),
    ("tokens_per_sec", F, "Generation speed, where recorded."),
    ("timestamp", LOCAL_TS, "When the item was scored, as the source gives it."),
    ("attributes", S, "Leftover scalar fields of the item, as JSON text."),
    (
        "item_hash",
        S,
        "Content hash of the item (question and reference) where the source gives one (lm-eval `doc_hash`, "
        "Every Eval Ever `sample_hash`) or evalhouse can compute one (inspect input and target); pairing "
        "skips an item whose hashes differ between two runs (the dataset changed). NULL where unknown.",
    ),
)

TEXTS = _t(
    "texts",
    "The long text of each answer, kept apart so that aggregates never read it.",
    ("run_id", S, "The run."),
    ("sample_id", I32, "The answer within the run (joins `scores`)."),
    ("question", S, "The prompt or question."),
    ("response", S, "The model's answer."),
    ("expected", S, "The reference answer."),
)

METRICS = _t(
    "metrics",
    "Aggregate-only results (a harness reported a value, not per-item scores).",
    ("run_id", S, "The run."),
    ("model", S, "Model name (copied from the run)."),
    ("benchmark", S, "Benchmark or suite."),
    ("category", S, "Category (subtask, subject); else the benchmark."),
    ("task", S, "Harness task name."),
    ("metric", S, "Metric name."),
    ("filter", S, "lm-eval filter, HELM perturbation or OpenCompass mode (`gen`, `ppl`); NULL where none."),
    ("value", F, "The reported value."),
    ("stderr", F, "Its standard error; NULL when the source gives none."),
    ("n", I64, "Number of items behind the value; NULL when unknown."),
    ("higher_is_better", B, "Direction of the metric."),
)

FILES = _t(
    "files",
    "The ledger: every file offered to ingest, its last state per path and every real change "
    "(an offer of a file unchanged since its last adds no row).",
    ("path", S, "Absolute path of the file."),
    ("sha256", S, "SHA-256 of its bytes (NULL if it could not be read)."),
    ("size", I64, "Size in bytes."),
    ("mtime_ns", I64, "Modification time (ns since the epoch) when offered."),
    ("format", S, "Adapter that recognised it; NULL if none did."),
    ("status", S, "`ingested`, `unchanged`, `duplicate`, `not-results` or `rejected`."),
    ("reason", S, "Why it was rejected, or which file it duplicates."),
    ("rows", I64, "Score and metric rows it contributed in this offer."),
    (
        "depends_on",
        S,
        "Other files read to interpret this one (a samples file's results file, a HELM run's "
        "`run_spec.json`), as JSON `[{path, sha256, size, mtime_ns}]`; a change to any re-reads this file.",
    ),
    ("batch_id", S, "The ingest batch that offered it."),
    ("time", UTC_TS, "When it was offered (UTC)."),
)

_COMPARISON_COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("baseline", S, "Baseline model."),
    ("candidate", S, "Candidate model (the variant compared with the baseline)."),
    ("metric", S, "Metric compared, with the answer filter after a comma where the source has one "
                  "(`exact_match,strict-match`); NULL on a row saying the pair shares no metric."),
    ("scope", S, "`overall`, `category` or `benchmark`."),
    ("category", S, "The category, on category rows; NULL otherwise."),
    ("benchmark", S, "The benchmark (`unknown` where the source has none), on benchmark rows and (the benchmark "
                     "of the category) on category rows; NULL on overall rows."),
    ("n_baseline", I64, "Baseline's units in scope: items (clusters with `--cluster`; answers for `student`; "
                        "the reported n, for aggregate-only rows)."),
    ("n_candidate", I64, "Candidate's units in scope."),
    ("n_paired", I64, "Units both models answered (items matched on benchmark, category, task, item, filter, "
                      "metric)."),
    ("n_changed", I64, "Items with the same key on both sides whose content hashes (`item_hash`) differ: the "
                       "dataset changed between the runs, so they are not paired."),
    ("n_answers_baseline", I64, "Baseline's scored answers behind its items (epochs, repeated runs)."),
    ("n_answers_candidate", I64, "Candidate's scored answers behind its items."),
    ("coverage", F, "Shared items as a share of the larger side's items (items, whatever the unit): 1 is like "
                    "for like."),
    ("mean_baseline", F, "Baseline mean over its items; over the paired items when the test is paired."),
    ("mean_candidate", F, "Candidate mean, on the same items."),
    ("diff", F, "mean_candidate - mean_baseline."),
    ("rel_change_pct", F, "diff / mean_baseline * 100; NULL when the baseline mean is 0."),
    ("direction", S, "`improved`, `degraded` or `no change`, taking the metric's direction into account."),
    ("higher_is_better", B, "The metric's direction used: the source's flag, else evalhouse.toml [metrics], "
                            "else the words of its name."),
    ("test", S, "`mcnemar`, `paired`, `sign-flip`, `score`, `welch`, `permutation`, `student`, `fisher` or `z`; "
                "NULL when not tested."),
    ("statistic", F, "t, z, the smaller discordant count (McNemar), the mean difference (permutation "
                     "tests) or the odds ratio (Fisher)."),
    ("p_value", F, "Two-sided p-value; NULL when not tested or undefined."),
    ("p_adjusted", F, "Overall rows (and aggregate-only benchmark rows): the p-value itself, the primary "
                      "result. Category and benchmark rows: adjusted over the family named in `adjusted_over`."),
    ("adjusted_over", S, "The family p_adjusted was adjusted over: `primary` or `N rows of this pair and metric`."),
    ("significant", B, "p_adjusted < alpha; NULL when not tested."),
    ("ci_low", F, "Lower bound of the interval of diff from the same test: 1 - alpha on primary rows, "
                  "1 - alpha/N (Bonferroni) on category/benchmark rows of a family of N unless --adjust none; "
                  "NULL where the data have no spread."),
    ("ci_high", F, "Upper bound of that interval."),
    ("bound_low", F, "One-sided lower confidence bound of diff at the same level (what the gate reads)."),
    ("bound_high", F, "One-sided upper confidence bound of diff."),
    ("effect_size", F, "Cohen's d (d_z when paired) or Cohen's h (0/1 scores); NULL for z."),
    ("mde", F, "Minimum detectable difference at 80 % power at the row's alpha and n; NULL if no variance."),
    ("margin", F, "The gate's margin in score units for this row (NULL without a margin)."),
    ("verdict", S, "`pass`, `regressed` or `inconclusive` under the margin (NULL without a margin, and on the "
                   "informational overall row of aggregate-only data)."),
    ("items_needed", I64, "Items per model that would decide an inconclusive row, if the observed difference and "
                          "spread held (80 % power): with a margin, the gate's verdict; without, significance (rows "
                          "not significant)."),
    ("unpaired_test", S, "Partial overlap only: the unpaired test on all items of both sides."),
    ("unpaired_diff", F, "Its difference of means over all items."),
    ("unpaired_p_value", F, "Its p-value."),
    ("unpaired_ci_low", F, "Its interval."),
    ("unpaired_ci_high", F, "Its interval."),
    ("settings_diff", S, "Run settings in which the two models' runs differ (harness and task versions, few-shot "
                         "count, generation arguments, chat template, dataset revision: whatever the sources "
                         "record), as `key: baseline vs candidate`; NULL when none recorded differ."),
    ("comparable", B, "False when the models share no item, category or benchmark."),
    ("note", S, "How the row was computed, where it matters (overlap, repeated answers, why no test)."),
)  # fmt: skip

# Flips and the noise floor (schema 4): stored after the analysis columns, where upgrading a warehouse
# of schema 3 appends them (engine/migrate.py), so that every comparisons table has one column order.
_STABILITY_COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("flips_down", I64, "Rows whose paired items all have 0/1 scores: items the baseline got right (1) and the "
                        "candidate wrong (0), counted item by item (also with `--cluster`); NULL on other rows."),
    ("flips_up", I64, "Items the baseline got wrong and the candidate right."),
    ("flip_rate", F, "(flips_down + flips_up) / paired items: the share of answers that changed, whatever the means "
                     "did (`evalhouse flips` lists them)."),
    ("flip_rate_low", F, "Wilson interval of flip_rate at the row's level (as ci_low)."),
    ("flip_rate_high", F, "Its upper bound."),
    ("noise_sd", F, "The baseline's run-to-run standard deviation of the mean in this scope, from its repeated runs "
                    "(or epochs) of the same items, as `evalhouse noise` reports it; NULL when it answered no item "
                    "twice."),
    ("noise_runs", I64, "The baseline's runs (or epochs) behind noise_sd."),
    ("noise_floor", F, "The difference the baseline stays within against itself at the row's level: z(1 - alpha/2) x "
                       "noise_sd x sqrt(1/k_baseline + 1/k_candidate), k the answers averaged per item on each side."),
    ("within_noise", B, "|diff| <= noise_floor: no larger than re-running the baseline gives; NULL without a floor."),
)  # fmt: skip

COMPARISONS = _t(
    "comparisons",
    "Results of `evalhouse compare` (each analysis replaces the last; the views show the newest).",
    *_COMPARISON_COLUMNS,
    ("analysis_id", S, "The analysis (the batch that stored it); sorts by time."),
    ("analysis_time", UTC_TS, "When the analysis ran (UTC)."),
    *_STABILITY_COLUMNS,
)

TABLES: dict[str, Table] = {t.name: t for t in (RUNS, SCORES, TEXTS, METRICS, FILES, COMPARISONS)}

# Statuses a file can end up with in the ledger.
FILE_STATUSES = ("ingested", "unchanged", "duplicate", "not-results", "rejected")

# ---------------------------------------------------------------------------------------------
# Views (sql/): the columns users and the CLI read
# ---------------------------------------------------------------------------------------------

_AGG = (
    ("n", "BIGINT", "Number of score rows."),
    ("mean", "DOUBLE", "Mean score."),
    ("std", "DOUBLE", "Sample standard deviation (n - 1); NULL when n = 1."),
    ("sem", "DOUBLE", "Standard error of the mean, std / sqrt(n)."),
    ("min", "DOUBLE", "Lowest score."),
    ("median", "DOUBLE", "Median score."),
    ("max", "DOUBLE", "Highest score."),
)

VIEWS: dict[str, Table] = {
    t.name: t
    for t in (
        _t("runs", "Live runs.", *((c.name, c.type, c.doc) for c in RUNS.columns)),
        _t(
            "scores",
            "Live per-item scores, narrow (no text).",
            *((c.name, c.type, c.doc) for c in SCORES.columns),
        ),
        _t(
            "samples",
            "Live per-item scores with their text: `scores` joined to `texts`.",
            *((c.name, c.type, c.doc) for c in SCORES.columns),
            *((c.name, c.type, c.doc) for c in TEXTS.columns[2:]),
        ),
        _t("metrics", "Live aggregate-only results.", *((c.name, c.type, c.doc) for c in METRICS.columns)),
        _t("files", FILES.doc, *((c.name, c.type, c.doc) for c in FILES.columns)),
        _t(
            "models",
            "One row per model name.",
            ("model", "VARCHAR", "Model name as the sources give it."),
            ("model_base", "VARCHAR", "Name without quantization."),
            ("quantization", "VARCHAR", "Quantization; NULL if none."),
            ("runs", "BIGINT", "Live runs of the model."),
            ("items", "BIGINT", "Scored answers of the model (over all its live runs)."),
        ),
        _t(
            "model_summary",
            "Score statistics per model and metric.",
            ("model", "VARCHAR", "Model name."),
            ("metric", "VARCHAR", "Metric name."),
            *_AGG,
        ),
        _t(
            "model_category_summary",
            "Score statistics per model, category and metric.",
            ("model", "VARCHAR", "Model name."),
            ("category", "VARCHAR", "Category."),
            ("metric", "VARCHAR", "Metric name."),
            *_AGG,
        ),
        _t(
            "benchmark_summary",
            "Score statistics per model, benchmark and metric.",
            ("model", "VARCHAR", "Model name."),
            ("benchmark", "VARCHAR", "Benchmark (`unknown` where the source has none)."),
            ("metric", "VARCHAR", "Metric name."),
            *_AGG,
        ),
        _t(
            "comparisons",
            "Overall comparisons of the newest `evalhouse compare`: one row per pair and metric.",
            *((c.name, c.type, c.doc) for c in COMPARISONS.columns),
        ),
        _t(
            "category_comparisons",
            "Per-category and per-benchmark comparisons of the newest `evalhouse compare`.",
            *((c.name, c.type, c.doc) for c in COMPARISONS.columns),
        ),
        _t(
            "flips",
            "Items whose score differs between two models: every ordered pair of models (as stored, without "
            "evalhouse.toml's aliases) and every item both answered, paired as `evalhouse compare` pairs them "
            "(repeated answers averaged per item, items whose content hash changed left out). Filter on "
            "`baseline` and `candidate`; `evalhouse flips` lists them largest change first.",
            ("baseline", "VARCHAR", "Baseline model."),
            ("candidate", "VARCHAR", "Candidate model."),
            ("metric", "VARCHAR", "Metric, with the answer filter after a comma where the source has one."),
            ("benchmark", "VARCHAR", "Benchmark (`unknown` where the source has none)."),
            ("category", "VARCHAR", "Category."),
            ("task", "VARCHAR", "Harness task; NULL if none."),
            ("item_id", "VARCHAR", "The item."),
            ("score_baseline", "DOUBLE", "Baseline's score on the item (mean of its answers)."),
            ("score_candidate", "DOUBLE", "Candidate's score on the item."),
            ("change", "DOUBLE", "score_candidate - score_baseline (never 0)."),
            ("answers_baseline", "BIGINT", "Baseline's answers behind its score (epochs, repeated runs)."),
            ("answers_candidate", "BIGINT", "Candidate's answers behind its score."),
            (
                "question",
                "VARCHAR",
                "The question, where a source has it (the baseline's first answer, else the candidate's).",
            ),
            ("expected", "VARCHAR", "The reference answer, where a source has it."),
            ("response_baseline", "VARCHAR", "The baseline's response (its first answer to the item)."),
            ("response_candidate", "VARCHAR", "The candidate's response (its first answer to the item)."),
        ),
    )
}


# ---------------------------------------------------------------------------------------------
# The open format (`evalhouse-samples`): what harnesses without an adapter can write
# ---------------------------------------------------------------------------------------------

OPEN_FORMAT_NAME = "evalhouse-samples"


@dataclass(frozen=True)
class Field:
    """One field of the open format: name, value type, whether it is required, meaning."""

    name: str
    kind: str  # text | integer | number | boolean | time | object
    required: bool
    doc: str


def _from(table: Table, name: str) -> str:
    return next(c.doc for c in table.columns if c.name == name)


OPEN_FORMAT: tuple[Field, ...] = (
    Field("model", "text", True, "Model name as you want it shown; quantization is parsed from it (`m-7b-q4_k_m`)."),
    Field("item_id", "text", True, _from(SCORES, "item_id")),
    Field("score", "number", True, "The score: a finite number (true/false read as 1/0)."),
    Field("metric", "text", False, "Metric name; default `score`. One line per item and metric."),
    Field("benchmark", "text", False, _from(SCORES, "benchmark")),
    Field("category", "text", False, _from(SCORES, "category")),
    Field("task", "text", False, "Task name, where the benchmark has several."),
    Field("epoch", "integer", False, "Repetition of the same item in one run; default 0."),
    Field(
        "filter", "text", False, "Answer-extraction variant (a doc scored once per filter); part of the pairing key."
    ),
    Field("split", "text", False, _from(SCORES, "split")),
    Field(
        "higher_is_better",
        "boolean",
        False,
        "Direction of the metric; default from its name (loss, perplexity, error: false).",
    ),
    Field("response_time_s", "number", False, _from(SCORES, "response_time_s")),
    Field("tokens_per_sec", "number", False, _from(SCORES, "tokens_per_sec")),
    Field("timestamp", "time", False, "When the item was scored (ISO 8601 or Unix seconds)."),
    Field("question", "text", False, _from(TEXTS, "question")),
    Field("response", "text", False, _from(TEXTS, "response")),
    Field("expected", "text", False, _from(TEXTS, "expected")),
    Field("attributes", "object", False, "Any other per-item fields: a JSON object (in CSV, JSON text)."),
    Field(
        "item_hash",
        "text",
        False,
        "A hash of the item's content (question and reference), if you have one: "
        "two runs pair on an item only where its hashes agree.",
    ),
    Field("run", "text", False, "Run key: lines with the same `run` form one run; default the model."),
    Field("harness", "text", False, _from(RUNS, "harness")),
    Field("status", "text", False, _from(RUNS, "status")),
    Field("started_at", "time", False, "When the run started (ISO 8601 or Unix seconds)."),
)


def open_format_doc() -> str:
    """The open format's documentation as Markdown (what ``evalhouse schema`` prints).

    >>> open_format_doc().splitlines()[0]
    '# The `evalhouse-samples` open format'
    """
    lines = [
        f"# The `{OPEN_FORMAT_NAME}` open format",
        "",
        "For results from any tool evalhouse has no adapter for. Write either",
        "",
        "- JSON Lines (`.jsonl`): one JSON object per line, or",
        "- CSV (`.csv`, UTF-8, a header row naming the columns; empty cell = missing),",
        "",
        "with one line per scored answer and metric. `model`, `item_id` and `score` are required;",
        "any other column must be one of those below (an unknown column rejects the file, so a typo",
        "cannot go unnoticed). Lines with the same run key, `item_id`, `epoch`, `task`, `filter`,",
        "`split`, `benchmark` and `category` are one answer: give each metric on its own line.",
        "Items pair across models on (benchmark, category, task, item_id, filter, metric): keep",
        "`item_id` the same for the same question in every run.",
        "",
        "| column | type | required | meaning |",
        "|---|---|---|---|",
    ]
    lines += [f"| `{f.name}` | {f.kind} | {'yes' if f.required else ''} | {f.doc} |" for f in OPEN_FORMAT]
    lines += [
        "",
        "Example (JSONL):",
        "",
        "```",
        '{"model": "m-7b-q4_k_m", "benchmark": "arith", "item_id": "q1", "score": 1, "question": "2+2?", '
        '"response": "4", "expected": "4"}',
        '{"model": "m-7b-q4_k_m", "benchmark": "arith", "item_id": "q2", "score": 0, "response_time_s": 1.5}',
        "```",
    ]
    return "\n".join(lines) + "\n"


def data_dictionary() -> str:
    """Markdown tables documenting every stored table and view column (pasted into README.md)."""
    out = ["### Stored tables (Delta Lake tables under `warehouse/tables/<name>/`)", ""]
    for table in TABLES.values():
        out += _md_table(table)
    out += ["### Views (`sql/`, in `warehouse/evalhouse.duckdb`)", ""]
    for table in VIEWS.values():
        out += _md_table(table)
    return "\n".join(out).rstrip() + "\n"


def _md_table(table: Table) -> list[str]:
    lines = [f"#### `{table.name}`", "", table.doc, "", "| column | type | meaning |", "|---|---|---|"]
    lines += [f"| `{c.name}` | {c.type_name} | {c.doc} |" for c in table.columns]
    return [*lines, ""]


if __name__ == "__main__":
    sys.stdout.write(data_dictionary())
