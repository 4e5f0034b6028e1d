-- Runs withdrawn because their source file changed; every other view hides them.
CREATE OR REPLACE VIEW retired AS
SELECT run_id, reason, batch_id
FROM {{parquet:retired}};
