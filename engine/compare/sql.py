"""The SQL behind ``evalhouse.compare``: sufficient statistics per model, pair, metric and scope.

The unit of analysis is the item (benchmark, category, task, item_id, filter): a model's repeated
answers to one item (epochs, repeated runs) are averaged first, so that n counts items and five
identical epochs are one observation, not five. Items pair on that key (within a metric), always
item by item. With ``cluster`` (``task`` or ``category``), the paired items are then averaged per
cluster, and the cluster is the unit of the test; coverage still counts items.

A category is a category of its benchmark: mmlu's ``anatomy`` and cmmlu's ``anatomy`` are two rows.
The metric of a row carries the answer filter where the source has one (``exact_match,strict-match``
as lm-eval spells it), so answers extracted two ways are never averaged into one number.

Every query reads ``_eh_scores`` and ``_eh_metrics`` (the views with model names as the analysis
spells them: ``evalhouse.toml``'s ``[models]`` aliases applied, see :data:`ALIASED`), and the
registered tables ``_eh_models`` (models in the analysis), ``_eh_excluded`` (runs left out) and, for
pairs, ``_eh_pairs`` (pair_id, baseline, candidate).
"""

from __future__ import annotations

from evalhouse.schema import metric_label_sql

UNKNOWN = "unknown"
# Columns compare can cluster on: levels of the item hierarchy below the benchmark.
CLUSTER_LEVELS = ("category", "task", "item_id")

LIVE = "model IN (SELECT model FROM _eh_models) AND run_id NOT IN (SELECT run_id FROM _eh_excluded)"
# lm-eval writes `none` where no filter applies; NULL, '' and 'none' are one thing.
_FILTER = "CASE WHEN s.filter IS NULL OR s.filter IN ('', 'none') THEN NULL ELSE s.filter END"
SCOPE_KEY = """
    CASE WHEN grouping(category) = 0 THEN 'category' WHEN grouping(bk) = 0 THEN 'benchmark' ELSE 'overall' END AS scope,
    CASE WHEN grouping(category) = 0 THEN category WHEN grouping(bk) = 0 THEN bk ELSE '' END AS key,
    CASE WHEN grouping(bk) = 0 THEN bk ELSE '' END AS bench"""
GROUPING_SETS = "GROUPING SETS (({0}, metric), ({0}, metric, bk, category), ({0}, metric, bk))"


# The stored tables as the analysis reads them: each alias's rows under its canonical model name
# (`_eh_alias`: spelling, canonical), the filter normalised, and the metric as its label (metric and
# filter, `exact_match,strict-match`) or that label's canonical name (`_eh_metric_alias`). Created as
# temporary views for the time of one comparison.
_LABEL = metric_label_sql("t")
# (`* EXCLUDE` and the column again rather than `* REPLACE`, which Spark SQL has no form of; queries
# name the columns, so their order does not matter.)
ALIASED = {
    view: f"""CREATE OR REPLACE TEMP VIEW {view} AS
    WITH t AS (
        SELECT s.* EXCLUDE (model, filter), coalesce(a.canonical, s.model) AS model, {_FILTER} AS filter
        FROM {table} AS s LEFT JOIN _eh_alias AS a ON a.spelling = s.model
    )
    SELECT t.* EXCLUDE (metric), coalesce(m.canonical, {_LABEL}) AS metric
    FROM t LEFT JOIN _eh_metric_alias AS m ON m.spelling = {_LABEL}"""
    for view, table in (("_eh_scores", "scores"), ("_eh_metrics", "metrics"))
} | {
    "_eh_runs": """CREATE OR REPLACE TEMP VIEW _eh_runs AS
    SELECT r.* EXCLUDE (model), coalesce(a.canonical, r.model) AS model
    FROM runs AS r LEFT JOIN _eh_alias AS a ON a.spelling = r.model"""
}


def _cluster_key(cluster: str | None) -> str:
    """The expression naming each item's cluster (the item itself by default).

    An item whose task is NULL is a cluster of its own under ``task``, never merged with the other
    task-less items of its category.
    """
    item = "hash(bk, category, task, item_id, filter)"
    if cluster == "task":
        return f"CASE WHEN task IS NULL THEN {item} ELSE hash(bk, category, task) END"
    if cluster == "category":
        return "hash(bk, category)"
    return item


def _items(cluster: str | None) -> str:
    """Per model, metric and item: the mean of its answers (``s``), their count, the item and its cluster."""
    return f"""
    base AS (
        SELECT model, metric AS metric, category, coalesce(benchmark, '{UNKNOWN}') AS bk, task,
               -- A NULL item_id is an answer of its own, never merged with other NULLs.
               coalesce(item_id, run_id || ':' || sample_id::VARCHAR) AS item_id, filter,
               score, higher_is_better, item_hash
        FROM _eh_scores WHERE {LIVE}
    ), items AS (
        SELECT model, metric, category, bk, avg(score) AS s, count(*) AS k,
               bool_and(higher_is_better) AS hib, min(score) >= 0 AND max(score) <= 1 AS in_range,
               -- Two content hashes for one item in one model's runs: the item is not one thing.
               CASE WHEN count(DISTINCT item_hash) = 1 THEN min(item_hash) END AS h,
               count(DISTINCT item_hash) > 1 AS h_mixed,
               hash(metric, bk, category, task, item_id, filter) AS item, {_cluster_key(cluster)} AS cl
        FROM base
        GROUP BY model, metric, category, bk, task, item_id, filter
    ), units AS (
        SELECT model, metric, category, bk, cl AS unit, avg(s) AS s, sum(k) AS k, count(*) AS n_items,
               bool_and(hib) AS hib, bool_and(in_range) AS in_range, bit_xor(item) AS items_hash
        FROM items
        GROUP BY model, metric, category, bk, cl
    ), matched AS (
        SELECT p.pair_id AS pair_id, b.metric AS metric, b.category AS category, b.bk AS bk, b.cl AS unit,
               b.item AS item, b.s AS sb, c.s AS sc, greatest(b.k, c.k) AS k,
               -- Same item id, different content (the dataset changed between the runs): not a pair.
               NOT (b.h_mixed OR c.h_mixed OR b.h IS DISTINCT FROM c.h AND b.h IS NOT NULL AND c.h IS NOT NULL)
                   AS same
        FROM _eh_pairs AS p
        JOIN items AS b ON b.model = p.baseline
        JOIN items AS c ON c.model = p.candidate AND c.metric = b.metric AND c.item = b.item
    ), pairs_items AS (
        SELECT * FROM matched WHERE same
    ), paired_units AS (
        SELECT pair_id, metric, category, bk, unit, avg(sb) AS sb, avg(sc) AS sc, max(k) AS k,
               count(*) AS n_items, bit_xor(item) AS items_hash,
               -- Flips are counted item by item, whatever the unit of the test.
               count(*) FILTER (WHERE sb = 1 AND sc = 0) AS f_down, count(*) FILTER (WHERE sb = 0 AND sc = 1) AS f_up,
               bool_and((sb = 0 OR sb = 1) AND (sc = 0 OR sc = 1)) AS f_binary
        FROM pairs_items
        GROUP BY pair_id, metric, category, bk, unit
    )"""


def items_sql(cluster: str | None) -> str:
    """Per model, metric and scope, over units: n, items, mean, variance, successes, 0/1, answers, item-set hash."""
    return f"""
    WITH {_items(cluster)}
    SELECT model, metric, {SCOPE_KEY},
           count(*) AS n, sum(n_items)::BIGINT AS n_items, avg(s) AS mean, var_samp(s) AS var,
           sum(s) AS successes, bool_and(s = 0 OR s = 1) AS binary, sum(k)::BIGINT AS n_answers,
           coalesce(bool_and(hib), true) AS hib, bool_and(in_range) AS unit_range,
           bit_xor(items_hash) AS items_hash
    FROM units
    GROUP BY {GROUPING_SETS.format("model")}
    """


def changed_sql(cluster: str | None) -> str:
    """Per pair, metric and scope: items with the same key whose content hashes differ (not paired)."""
    return f"""
    WITH {_items(cluster)}
    SELECT pair_id, metric, {SCOPE_KEY}, count(*) AS n_changed
    FROM matched WHERE NOT same
    GROUP BY {GROUPING_SETS.format("pair_id")}
    """


# Every answer as an observation: what the original SO8T scripts' Student t-test counted.
ANSWERS_SQL = f"""
WITH s AS (
    SELECT model, metric AS metric, category, coalesce(benchmark, '{UNKNOWN}') AS bk, score
    FROM _eh_scores WHERE {LIVE}
)
SELECT model, metric, {SCOPE_KEY}, count(*) AS n_ans, avg(score) AS mean_ans, var_samp(score) AS var_ans
FROM s
GROUP BY {GROUPING_SETS.format("model")}
"""


def paired_sql(cluster: str | None) -> str:
    """Per pair, metric and scope: the units both models have, differences taken unit by unit; the
    items whose 0/1 score went down (1 -> 0) and up, item by item."""
    return f"""
    WITH {_items(cluster)}
    SELECT pair_id, metric, {SCOPE_KEY},
           count(*) AS n_paired, sum(n_items)::BIGINT AS n_paired_items, avg(sb) AS pmean_b, avg(sc) AS pmean_c,
           avg(sc - sb) AS d_mean, var_samp(sc - sb) AS d_var,
           count(*) FILTER (WHERE sb = 1 AND sc = 0) AS n10, count(*) FILTER (WHERE sb = 0 AND sc = 1) AS n01,
           bool_and((sb = 0 OR sb = 1) AND (sc = 0 OR sc = 1)) AS p_binary, max(k) > 1 AS repeated,
           bit_xor(items_hash) AS paired_hash,
           sum(f_down)::BIGINT AS flips_down, sum(f_up)::BIGINT AS flips_up, bool_and(f_binary) AS flips_binary
    FROM paired_units
    GROUP BY {GROUPING_SETS.format("pair_id")}
    """


def values_sql(cluster: str | None, paired: bool) -> str:
    """The per-unit values behind the rows of ``_eh_need`` (row, pair_id, metric, scope, key, bench, side).

    Paired: the differences candidate - baseline on shared units. Unpaired: one side's unit means
    (``side`` names the model column of ``_eh_pairs``). Sorted by value, so that Monte Carlo draws
    are reproducible and depend on the data alone, not on an engine's hash function.
    """
    in_scope = """n.metric = u.metric AND (n.scope = 'overall'
        OR (n.scope = 'category' AND u.category IS NOT DISTINCT FROM n.key AND u.bk = n.bench)
        OR (n.scope = 'benchmark' AND u.bk = n.key))"""
    if paired:
        return f"""
        WITH {_items(cluster)}, u AS (SELECT pair_id, metric, category, bk, unit, sc - sb AS v FROM paired_units)
        SELECT n.row AS row, list_sort(list(u.v)) AS v
        FROM _eh_need AS n JOIN u ON u.pair_id = n.pair_id AND {in_scope}
        GROUP BY n.row
        """
    return f"""
    WITH {_items(cluster)}, u AS (
        SELECT p.pair_id, 'baseline' AS side, units.* FROM _eh_pairs AS p JOIN units ON units.model = p.baseline
        UNION ALL
        SELECT p.pair_id, 'candidate' AS side, units.* FROM _eh_pairs AS p JOIN units ON units.model = p.candidate
    )
    SELECT n.row AS row, list_sort(list(u.s)) AS v
    FROM _eh_need AS n JOIN u ON u.pair_id = n.pair_id AND u.side = n.side AND {in_scope}
    GROUP BY n.row
    """


# Reported aggregates (value, stderr) per model, metric and task first: repeated runs of one task
# are averaged, keeping one run's standard error (the same items again are not new evidence), and
# n is one run's. A benchmark's row is its own aggregate (the task named like the benchmark, as
# lm-eval's group `mmlu` is stored), else its only task; a category's row its only task. One of
# several tasks is listed with `parts`, never given the unweighted mean of its tasks.
METRICS_SQL = f"""
WITH m AS (
    SELECT model, metric AS metric, category, coalesce(benchmark, '{UNKNOWN}') AS bk, task, value, stderr,
           n, higher_is_better
    FROM _eh_metrics WHERE {LIVE}
), t AS (
    SELECT model, metric, category, bk, task, avg(value) AS value, avg(stderr) AS se,
           count(stderr) = count(*) AS has_se, max(n) AS n, bool_and(higher_is_better) AS hib,
           hash(bk, category, task) AS task_hash, coalesce(task = bk AND category = bk, false) AS own
    FROM m GROUP BY model, metric, category, bk, task
), b AS (
    -- Per benchmark: its own aggregate if it has one, else its tasks.
    SELECT *, bool_or(own) OVER (PARTITION BY model, metric, bk) AS has_own,
           count(*) OVER (PARTITION BY model, metric, bk) AS tasks
    FROM t
), c AS (
    -- A group's own aggregate is its benchmark's row, not one more category beside its tasks.
    SELECT * FROM b WHERE NOT (own AND tasks > 1)
)
SELECT model, metric, 'category' AS scope, category AS key, bk AS bench,
       CASE WHEN count(*) = 1 THEN any_value(value) END AS value, CASE WHEN count(*) = 1 THEN any_value(se) END AS se,
       bool_and(has_se) AS has_se, CASE WHEN count(*) = 1 THEN any_value(n) END::BIGINT AS n,
       coalesce(bool_and(hib), true) AS hib, count(*) AS parts, bit_xor(task_hash) AS tasks_hash
FROM c GROUP BY model, metric, bk, category
UNION ALL
SELECT model, metric, 'benchmark' AS scope, bk AS key, bk AS bench,
       CASE WHEN count(*) = 1 THEN any_value(value) END AS value, CASE WHEN count(*) = 1 THEN any_value(se) END AS se,
       bool_and(has_se) AS has_se, CASE WHEN count(*) = 1 THEN any_value(n) END::BIGINT AS n,
       coalesce(bool_and(hib), true) AS hib, count(*) AS parts, bit_xor(task_hash) AS tasks_hash
FROM b WHERE own OR NOT has_own GROUP BY model, metric, bk
"""


# Per model: the metrics it has scores for, and those it has only aggregates for (to explain a pair
# with none in common).
METRIC_NAMES_SQL = f"""
SELECT model, list_sort(list(DISTINCT label)) AS metrics FROM (
        SELECT model, metric AS label FROM _eh_scores WHERE {LIVE}
        UNION ALL
        SELECT model, metric || ' (aggregate)' AS label FROM _eh_metrics WHERE {LIVE}
) GROUP BY model
"""
