-- Live per-item scores with the question, response and expected answer.
CREATE OR REPLACE VIEW samples AS
SELECT s.*, t.question AS question, t.response AS response, t.expected AS expected
FROM scores AS s
LEFT JOIN {{parquet:texts}} AS t USING (run_id, sample_id);
