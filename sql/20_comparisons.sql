-- Overall rows of the newest comparison analysis (a new `evalhouse compare` replaces them).
CREATE OR REPLACE VIEW comparisons AS
WITH c AS (SELECT * FROM {{parquet:comparisons}})
SELECT *
FROM c
WHERE scope = 'overall' AND analysis_id = (SELECT max(analysis_id) FROM c);
