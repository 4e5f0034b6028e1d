"""The SQL behind ``engine.compare``: sufficient statistics per model, pair, metric and scope.

The unit of analysis is the item (benchmark, category, task, item_id, filter): a model's repeated
answers to one item (epochs, repeated runs) are averaged first, so that n counts items and five
identical epochs are one observation, not five. With ``cluster``, the unit is that column's group
instead (``task``: every task of a category is one unit), always within its benchmark and category.

The metric of a row carries the answer filter where the source has one (``exact_match,strict-match``
as lm-eval spells it), so answers extracted two ways are never averaged into one number.

Every query reads the registered tables ``_eh_models`` (models in the analysis), ``_eh_excluded``
(runs left out) and, for pairs, ``_eh_pairs`` (pair_id, baseline, candidate).
"""

from __future__ import annotations

from engine.stats import quote

UNKNOWN = "unknown"
# The item key, from the outermost group in.
ITEM_KEY = ("benchmark", "category", "task", "item_id", "filter")

_LIVE = "model IN (SELECT model FROM _eh_models) AND run_id NOT IN (SELECT run_id FROM _eh_excluded)"
_METRIC = "CASE WHEN filter IS NULL OR filter IN ('', 'none') THEN metric ELSE metric || ',' || filter END"
_SCOPE_KEY = """
    CASE WHEN grouping(category) = 0 THEN 'category' WHEN grouping(bk) = 0 THEN 'benchmark' ELSE 'overall' END AS scope,
    CASE WHEN grouping(category) = 0 THEN category WHEN grouping(bk) = 0 THEN bk ELSE '' END AS key"""
_SETS = "GROUPING SETS (({0}, metric), ({0}, metric, category), ({0}, metric, bk))"


def unit_columns(cluster: str | None) -> list[str]:
    """The columns (besides benchmark and category) that identify one unit of analysis.

    >>> unit_columns(None), unit_columns("task"), unit_columns("epoch")
    (['task', 'item_id', 'filter'], ['task'], ['epoch'])
    """
    if cluster is None or cluster in ("item_id", "filter"):
        return list(ITEM_KEY[2:])
    if cluster in ITEM_KEY:
        return list(ITEM_KEY[2 : ITEM_KEY.index(cluster) + 1])
    return [cluster]


def _units(cluster: str | None) -> str:
    """Per model, metric and unit: the mean of its answers (``s``), their count, a global unit number."""
    extra = unit_columns(cluster)
    # A NULL item_id is an answer of its own, never merged with other NULLs.
    cols = ", ".join(
        "coalesce(item_id, run_id || ':' || sample_id::VARCHAR) AS item_id" if c == "item_id" else quote(c)
        for c in extra
    )
    keys = ", ".join(quote(c) for c in extra)
    return f"""
    base AS (
        SELECT model, {_METRIC} AS metric, category, coalesce(benchmark, '{UNKNOWN}') AS bk, score,
               higher_is_better, {cols}
        FROM scores WHERE {_LIVE}
    ), units AS (
        SELECT model, metric, category, bk, avg(score) AS s, count(*) AS k,
               bool_and(higher_is_better) AS hib, min(score) >= 0 AND max(score) <= 1 AS unit_range,
               dense_rank() OVER (ORDER BY metric, bk, category, {keys}) AS unit
        FROM base
        GROUP BY model, metric, category, bk, {keys}
    )"""


def items_sql(cluster: str | None) -> str:
    """Per model, metric and scope, over units: n, mean, variance, successes, 0/1, answers, item-set hash."""
    return f"""
    WITH {_units(cluster)}
    SELECT model, metric, {_SCOPE_KEY},
           count(*) AS n, avg(s) AS mean, var_samp(s) AS var, sum(s) AS successes,
           bool_and(s = 0 OR s = 1) AS binary, sum(k)::BIGINT AS n_answers,
           coalesce(bool_and(hib), true) AS hib, bool_and(unit_range) AS unit_range,
           bit_xor(hash(unit)) AS items_hash
    FROM units
    GROUP BY {_SETS.format("model")}
    """


# Every answer as an observation: what the original SO8T scripts' Student t-test counted.
ANSWERS_SQL = f"""
WITH s AS (
    SELECT model, {_METRIC} AS metric, category, coalesce(benchmark, '{UNKNOWN}') AS bk, score
    FROM scores WHERE {_LIVE}
)
SELECT model, metric, {_SCOPE_KEY}, count(*) AS n_ans, avg(score) AS mean_ans, var_samp(score) AS var_ans
FROM s
GROUP BY {_SETS.format("model")}
"""


def paired_sql(cluster: str | None) -> str:
    """Per pair, metric and scope: the units both models have, differences taken unit by unit."""
    return f"""
    WITH {_units(cluster)}, j AS (
        SELECT p.pair_id AS pair_id, b.metric AS metric, b.category AS category, b.bk AS bk, b.unit AS unit,
               b.s AS sb, c.s AS sc, greatest(b.k, c.k) AS k
        FROM _eh_pairs AS p
        JOIN units AS b ON b.model = p.baseline
        JOIN units AS c ON c.model = p.candidate AND c.unit = b.unit
    )
    SELECT pair_id, metric, {_SCOPE_KEY},
           count(*) AS n_paired, avg(sb) AS pmean_b, avg(sc) AS pmean_c,
           avg(sc - sb) AS d_mean, var_samp(sc - sb) AS d_var,
           count(*) FILTER (WHERE sb = 1 AND sc = 0) AS n10, count(*) FILTER (WHERE sb = 0 AND sc = 1) AS n01,
           bool_and((sb = 0 OR sb = 1) AND (sc = 0 OR sc = 1)) AS p_binary, max(k) > 1 AS repeated,
           bit_xor(hash(unit)) AS paired_hash
    FROM j
    GROUP BY {_SETS.format("pair_id")}
    """


def values_sql(cluster: str | None, paired: bool) -> str:
    """The per-unit values behind the rows of ``_eh_need`` (row, pair_id, metric, scope, key, side).

    Paired: the differences candidate - baseline on shared units. Unpaired: one side's unit means
    (``side`` names the model column of ``_eh_pairs``). Ordered by unit, so that Monte Carlo draws
    are reproducible.
    """
    in_scope = """n.metric = u.metric AND (n.scope = 'overall'
        OR (n.scope = 'category' AND u.category IS NOT DISTINCT FROM n.key)
        OR (n.scope = 'benchmark' AND u.bk = n.key))"""
    if paired:
        return f"""
        WITH {_units(cluster)}, u AS (
            SELECT p.pair_id, b.metric, b.category, b.bk, b.unit, c.s - b.s AS v
            FROM _eh_pairs AS p
            JOIN units AS b ON b.model = p.baseline
            JOIN units AS c ON c.model = p.candidate AND c.unit = b.unit
        )
        SELECT n.row AS row, list(u.v ORDER BY u.unit) AS v
        FROM _eh_need AS n JOIN u ON u.pair_id = n.pair_id AND {in_scope}
        GROUP BY n.row
        """
    return f"""
    WITH {_units(cluster)}, u AS (
        SELECT p.pair_id, 'baseline' AS side, units.* FROM _eh_pairs AS p JOIN units ON units.model = p.baseline
        UNION ALL
        SELECT p.pair_id, 'candidate' AS side, units.* FROM _eh_pairs AS p JOIN units ON units.model = p.candidate
    )
    SELECT n.row AS row, list(u.s ORDER BY u.unit) AS v
    FROM _eh_need AS n JOIN u ON u.pair_id = n.pair_id AND u.side = n.side AND {in_scope}
    GROUP BY n.row
    """


# Reported aggregates (value, stderr) per model, metric and category, and per benchmark where the
# benchmark has one value of its own (a single task); several rows for one key (repeated runs) are
# averaged, their standard errors combined as for a mean. A benchmark of several tasks is never
# given the unweighted mean of its tasks: `parts` says how many there were.
METRICS_SQL = f"""
WITH m AS (
    SELECT model, {_METRIC} AS metric, category, coalesce(benchmark, '{UNKNOWN}') AS bk, value, stderr, n,
           higher_is_better
    FROM metrics WHERE {_LIVE}
)
SELECT model, metric, 'category' AS scope, category AS key, avg(value) AS value,
       sqrt(sum(stderr * stderr)) / count(*) AS se, count(stderr) = count(*) AS has_se, sum(n)::BIGINT AS n,
       coalesce(bool_and(higher_is_better), true) AS hib, 1 AS parts
FROM m GROUP BY model, metric, category
UNION ALL
SELECT model, metric, 'benchmark' AS scope, bk AS key,
       CASE WHEN count(DISTINCT category) = 1 THEN avg(value) END AS value,
       CASE WHEN count(DISTINCT category) = 1 THEN sqrt(sum(stderr * stderr)) / count(*) END AS se,
       count(stderr) = count(*) AS has_se, CASE WHEN count(DISTINCT category) = 1 THEN sum(n)::BIGINT END AS n,
       coalesce(bool_and(higher_is_better), true) AS hib, count(DISTINCT category) AS parts
FROM m GROUP BY model, metric, bk
"""


# Per model: the metrics it has scores or aggregates for (to explain a pair with none in common).
METRIC_NAMES_SQL = f"""
SELECT model, list(DISTINCT metric ORDER BY metric) AS metrics FROM (
        SELECT model, {_METRIC} AS metric FROM scores WHERE {_LIVE}
        UNION ALL
        SELECT model, {_METRIC} AS metric FROM metrics WHERE {_LIVE}
) GROUP BY model
"""
