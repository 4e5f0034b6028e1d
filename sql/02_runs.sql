-- Live runs.
CREATE OR REPLACE VIEW runs AS
SELECT *
FROM {{parquet:runs}};
