-- Items whose score differs between two models: every ordered pair of models and every item both
-- answered, paired as `evalhouse compare` pairs them: on (metric and filter, benchmark, category,
-- task, item_id), each model's answers to an item averaged, items whose content hash differs left
-- out. Filter it: FROM flips WHERE baseline = 'a' AND candidate = 'b' ORDER BY abs(change) DESC.
CREATE OR REPLACE VIEW flips AS
WITH answers AS (
    SELECT s.model AS model,
           CASE WHEN s.filter IS NULL OR s.filter IN ('', 'none') THEN s.metric
                ELSE s.metric || ',' || s.filter END AS metric,
           coalesce(s.benchmark, 'unknown') AS benchmark, s.category AS category, s.task AS task,
           s.item_id AS item_id,
           CASE WHEN s.filter IS NULL OR s.filter IN ('', 'none') THEN NULL ELSE s.filter END AS filter,
           s.score AS score, s.item_hash AS item_hash, s.run_id AS run_id, s.sample_id AS sample_id
    FROM scores AS s
    -- An answer without an item_id is an item of its own: never shared with another model.
    WHERE s.item_id IS NOT NULL
), items AS (
    SELECT model, metric, benchmark, category, task, item_id, filter,
           avg(score) AS score, count(*) AS n_answers,
           CASE WHEN count(DISTINCT item_hash) = 1 THEN min(item_hash) END AS h,
           count(DISTINCT item_hash) > 1 AS h_mixed,
           min({'run_id': run_id, 'sample_id': sample_id}) AS first_answer
    FROM answers
    GROUP BY model, metric, benchmark, category, task, item_id, filter
), changed AS (
    SELECT b.model AS baseline, c.model AS candidate, b.metric AS metric, b.benchmark AS benchmark,
           b.category AS category, b.task AS task, b.item_id AS item_id,
           b.score AS score_baseline, c.score AS score_candidate, c.score - b.score AS change,
           b.n_answers AS answers_baseline, c.n_answers AS answers_candidate,
           b.first_answer AS first_baseline, c.first_answer AS first_candidate
    FROM items AS b
    JOIN items AS c
      ON c.metric = b.metric AND c.benchmark = b.benchmark AND c.category IS NOT DISTINCT FROM b.category
     AND c.task IS NOT DISTINCT FROM b.task AND c.item_id = b.item_id AND c.filter IS NOT DISTINCT FROM b.filter
     AND c.model <> b.model
    -- Averages of the same answers summed in another order differ in their last bits (and differ
    -- between engines): a change below 1e-12 of the scores is no change.
    WHERE abs(c.score - b.score) > 1e-12 * greatest(abs(b.score), abs(c.score))
      -- Same id, different content (the dataset changed between the runs): not the same item.
      AND NOT (b.h_mixed OR c.h_mixed OR coalesce(b.h <> c.h, false))
)
SELECT ch.baseline AS baseline, ch.candidate AS candidate, ch.metric AS metric, ch.benchmark AS benchmark,
       ch.category AS category, ch.task AS task, ch.item_id AS item_id,
       ch.score_baseline AS score_baseline, ch.score_candidate AS score_candidate, ch.change AS change,
       ch.answers_baseline AS answers_baseline, ch.answers_candidate AS answers_candidate,
       coalesce(tb.question, tc.question) AS question, coalesce(tb.expected, tc.expected) AS expected,
       tb.response AS response_baseline, tc.response AS response_candidate
FROM changed AS ch
LEFT JOIN {{parquet:texts}} AS tb
  ON tb.run_id = ch.first_baseline.run_id AND tb.sample_id = ch.first_baseline.sample_id
LEFT JOIN {{parquet:texts}} AS tc
  ON tc.run_id = ch.first_candidate.run_id AND tc.sample_id = ch.first_candidate.sample_id;
