-- Live aggregate-only results.
CREATE OR REPLACE VIEW metrics AS
SELECT *
FROM {{parquet:metrics}};
