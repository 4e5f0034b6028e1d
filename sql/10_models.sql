-- One row per model name with its live runs and score rows.
CREATE OR REPLACE VIEW models AS
SELECT
    r.model AS model,
    any_value(r.model_base) AS model_base,
    any_value(r.quantization) AS quantization,
    count(*) AS runs,
    sum(r.n_items)::BIGINT AS items
FROM runs AS r
GROUP BY r.model;
