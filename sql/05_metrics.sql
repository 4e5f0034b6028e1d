-- Live aggregate-only results.
CREATE OR REPLACE VIEW metrics AS
SELECT *
FROM {{parquet:metrics}}
WHERE run_id NOT IN (SELECT run_id FROM retired);
