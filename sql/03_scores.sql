-- Live per-item scores without their text: what every aggregate reads.
CREATE OR REPLACE VIEW scores AS
SELECT *
FROM {{parquet:scores}};
