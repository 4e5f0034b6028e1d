-- Category and benchmark rows of the newest comparison analysis.
CREATE OR REPLACE VIEW category_comparisons AS
WITH c AS (SELECT * FROM {{parquet:comparisons}})
SELECT *
FROM c
WHERE scope IN ('category', 'benchmark') AND analysis_id = (SELECT max(analysis_id) FROM c);
