"""The open evalhouse-samples format (JSONL and CSV) and `evalhouse schema`."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from evalhouse.cli import main
from evalhouse.errors import BadResultFile
from evalhouse.ingest import read_source
from evalhouse.schema import OPEN_FORMAT, SCORES, TEXTS, open_format_doc
from evalhouse.warehouse import Warehouse
from tests._harness import FIXTURES, load, rows, samples

ROOT = Path(__file__).resolve().parent.parent


def test_jsonl_and_csv_value_by_value(wh: Warehouse) -> None:
    report = load(wh, FIXTURES / "open_format")
    assert sorted(o.format for o in report.offers) == ["evalhouse-samples"] * 2
    q4, m7 = "m-7b-q4_k_m", "m-7b"
    assert sorted(samples(wh), key=repr) == sorted([
        # two lines, one answer: the metric lines share the answer's text and time
        (q4, "arith", "addition", None, "q1", 0, None, None, "score", 1.0, True, 0.5, None,
         datetime(2024, 6, 1, 10), None, "2+2?", "4", "4"),
        (q4, "arith", "addition", None, "q1", 0, None, None, "latency_ms", 500.0, False, 0.5, None,
         datetime(2024, 6, 1, 10), None, "2+2?", "4", "4"),
        (q4, "arith", "subtraction", None, "q2", 1, None, None, "score", 0.0, True, None, None, None,
         '{"difficulty":"hard"}', None, None, None),
        (m7, "arith", "addition", None, "q1", 0, None, None, "score", 0.5, True, None, 31.25, None, None, None, None,
         None),
        # CSV: "true" is 1, an empty cell is missing, attributes are JSON text, loss is lower-is-better
        (m7, "arith", "subtraction", None, "q2", 1, None, None, "score", 1.0, True, None, None, None,
         '{"difficulty":"hard"}', "5-2?", None, None),
        (m7, "arith", "subtraction", None, "q2", 1, None, None, "loss", 0.25, False, None, None, None,
         '{"difficulty":"hard"}', "5-2?", None, None),
    ], key=repr)  # fmt: skip
    assert rows(wh, "SELECT model, model_base, quantization, harness, started_at, n_items FROM runs ORDER BY ALL") == [
        (m7, m7, None, None, None, 1),
        (m7, m7, None, None, None, 1),
        (q4, m7, "q4_k_m", "my-harness", datetime(2024, 6, 1, 9, 59), 2),
    ]


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        ('{"model": "m", "item_id": "q1", "score": 1}\n{"model": "m", "item_id": "q2", "score": 0, "categroy": "x"}\n',
         "line 2.categroy",
         "unknown column (see `evalhouse schema`); known: " + ", ".join(f.name for f in OPEN_FORMAT)),
        ('{"model": "m", "item_id": "q1", "score": 1}\n{"model": "m", "item_id": "q2"}\n', "line 2.score",
         "missing (required)"),
        ('{"model": "m", "item_id": "q1", "score": "high"}\n', "line 1.score", "'high' is not a number"),
        ('{"model": "m", "item_id": "q1", "score": 1}\n{"model": "m", "item_id": "q1", "score": 0}\n',
         "line 2.metric", "'score' given twice for the same answer"),
        ('{"model": "m", "item_id": "q1", "score": 1, "epoch": 1.5}\n', "line 1.epoch", "1.5 is not an integer"),
        ('{"model": "m", "item_id": "q1", "score": 1, "harness": "a"}\n{"model": "m", "item_id": "q2", "score": 1, '
         '"harness": "b"}\n', "line 2.harness", "differs from the run's earlier value 'a'"),
    ],
)  # fmt: skip
def test_broken_files_are_rejected_whole(tmp_path: Path, text: str, field: str, reason: str) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(text)
    with pytest.raises(BadResultFile) as err:
        read_source(str(path), "0" * 64)
    assert (err.value.field, err.value.reason) == (field, reason)


def test_schema_command_prints_the_documentation() -> None:
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0
    assert result.output == open_format_doc()
    documented = re.findall(r"^\| `(\w+)` \|", result.output, flags=re.M)
    assert documented == [f.name for f in OPEN_FORMAT]
    # every per-item column of the warehouse can be written in the open format
    assert set(SCORES.names) - {"run_id", "sample_id"} <= set(documented)
    assert set(TEXTS.names) - {"run_id", "sample_id"} <= set(documented)
    assert "Example:" in CliRunner().invoke(main, ["schema", "--help"]).output


def test_readme_carries_the_open_format_documentation() -> None:
    readme = (ROOT / "README.md").read_text()
    start, end = "<!-- open-format:start -->\n", "<!-- open-format:end -->"
    assert readme[readme.index(start) + len(start) : readme.index(end)] == open_format_doc()
