-- Live per-item scores without their text: what every aggregate reads.
CREATE OR REPLACE VIEW scores AS
SELECT *
FROM {{parquet:scores}}
WHERE run_id NOT IN (SELECT run_id FROM retired);
