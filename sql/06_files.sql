-- The ingest ledger: every offer of every file.
CREATE OR REPLACE VIEW files AS
SELECT *
FROM {{parquet:files}};
