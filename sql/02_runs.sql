-- Live runs.
CREATE OR REPLACE VIEW runs AS
SELECT *
FROM {{parquet:runs}}
WHERE run_id NOT IN (SELECT run_id FROM retired);
