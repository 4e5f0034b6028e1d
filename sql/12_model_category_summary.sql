-- Score statistics per model, category and metric.
CREATE OR REPLACE VIEW model_category_summary AS
SELECT
    model, category,
    metric,
    count(score) AS n,
    avg(score) AS mean,
    stddev_samp(score) AS std,
    stddev_samp(score) / sqrt(count(score)) AS sem,
    min(score) AS min,
    median(score)::DOUBLE AS median,
    max(score) AS max
FROM scores
GROUP BY ALL;
