"""The summary, compare and gate commands: output, exit codes, messages, help."""

from __future__ import annotations

import csv
import io

import numpy as np
import orjson
import pytest
from click.testing import CliRunner

from evalhouse.cli import main
from evalhouse.compare import COLUMNS


def _items(model: str, scores: list[float], category: str) -> list[dict]:
    return [
        {"model": model, "score": s, "category": category, "item_id": f"{category}{i}"} for i, s in enumerate(scores)
    ]


@pytest.fixture
def warehouse(put_scores) -> str:
    rows = _items("m", [0.9, 0.8, 0.85, 0.95, 0.9, 0.88, 0.92, 0.87], "math")
    rows += _items("m-q4km", [0.5, 0.45, 0.6, 0.55, 0.5, 0.48, 0.52, 0.58], "math")  # much worse
    rows += _items("m", [0.5, 0.6, 0.55], "chat") + _items("m-q4km", [0.52, 0.58, 0.56], "chat")
    rows += _items("n", [0.7, 0.72, 0.69, 0.71], "math") + _items("n-q8_0", [0.7, 0.71, 0.7, 0.71], "math")
    rows += _items("z", [1.0, 0.0], "poetry")
    return str(put_scores(rows).root)


def run(*args: str) -> object:
    return CliRunner().invoke(main, list(args))


def _shown(value: float, text: str | list[str]) -> bool:
    """Whether a float appears as tables show it (4 decimals); two runs may sum in another order, so
    a value on a rounding edge may round either way."""
    return any(f"{value + d:.4f}" in text for d in (-1e-9, 0.0, 1e-9))


def assert_formats_agree(*args: str) -> None:
    """The command's table, CSV and Markdown show the rows and values its JSON does."""
    json_result = run(*args, "--format", "json")
    assert json_result.exit_code == 0, json_result.output
    rows = orjson.loads(json_result.stdout)
    assert rows
    columns = list(rows[0])
    as_csv = run(*args, "--format", "csv")
    assert as_csv.exit_code == 0, as_csv.output
    parsed = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert parsed[0] == columns and len(parsed) == len(rows) + 1
    for row, cells in zip(rows, parsed[1:], strict=True):
        for column, cell in zip(columns, cells, strict=True):
            value = row[column]
            if isinstance(value, float):
                assert float(cell) == pytest.approx(value), column
            else:
                assert cell == ("" if value is None else str(value)), (column, cell, value)
    md = run(*args, "--format", "markdown")
    assert md.exit_code == 0, md.output
    lines = md.stdout.splitlines()
    assert lines[0] == "| " + " | ".join(columns) + " |" and len(lines) == len(rows) + 2
    for row, line in zip(rows, lines[2:], strict=True):
        cells = [c.strip() for c in line[2:-2].split(" | ")]
        assert cells[0] == str(row[columns[0]]) and len(cells) == len(columns)
        assert all(_shown(row[c], cells[i]) for i, c in enumerate(columns) if isinstance(row[c], float))
    table = run(*args, "--format", "table")
    assert table.exit_code == 0, table.output
    text = table.stdout
    assert text.split()[: len(columns)] == columns, "the table starts with every column name"
    assert len(text.splitlines()) == len(rows) + 2
    missing = [(c, row[c]) for row in rows for c in columns if isinstance(row[c], float) and not _shown(row[c], text)]
    assert not missing, missing


def test_summary_has_interval_columns_for_every_grouping(warehouse: str) -> None:
    for by in ("model", "category", "benchmark", "model,category", "model,benchmark"):
        result = run("summary", "-w", warehouse, "--by", by, "--format", "json")
        assert result.exit_code == 0, result.output
        rows = orjson.loads(result.stdout)
        assert {"n", "n_answers", "mean", "std", "sem", "median", "min", "max", "ci_low", "ci_high", "ci_method",
                "note"} <= set(rows[0])  # fmt: skip
    clustered = orjson.loads(run("summary", "-w", warehouse, "--cluster", "category", "--format", "json").stdout)
    # m has two categories (clusters); n and z have one each, so no interval and a note.
    assert {(r["model"], r["ci_method"], r["note"]) for r in clustered} == {
        ("m", "cluster-t-logit", None), ("m-q4km", "cluster-t-logit", None),
        ("n", None, "one cluster: no interval"), ("n-q8_0", None, "one cluster: no interval"),
        ("z", None, "one cluster: no interval"),
    }  # fmt: skip
    # By hand: m's 11 items (8 math, 3 chat); a sum of squares over n - 1, over sqrt(n).
    m = np.array([0.9, 0.8, 0.85, 0.95, 0.9, 0.88, 0.92, 0.87, 0.5, 0.6, 0.55])
    by_model = {r["model"]: r for r in orjson.loads(run("summary", "-w", warehouse, "--format", "json").stdout)}
    assert by_model["m"]["n"] == 11 and by_model["m"]["mean"] == pytest.approx(8.72 / 11)
    assert by_model["m"]["sem"] == pytest.approx(np.sqrt(((m - m.mean()) ** 2).sum() / 10 / 11))
    assert by_model["m"]["sem"] == pytest.approx(0.0488614, abs=1e-7)
    assert_formats_agree("summary", "-w", warehouse, "--by", "model,category")


def test_summary_bad_cluster_column(warehouse: str) -> None:
    result = run("summary", "-w", warehouse, "--cluster", "nope")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot cluster on 'nope': not a column of scores")
    wilson = run("summary", "-w", warehouse, "--cluster", "task", "--interval", "wilson")
    assert wilson.exit_code == 1
    assert wilson.stderr.splitlines() == [
        "Error: a Wilson interval treats answers as independent; it cannot be clustered",
        "Hint: use --interval auto or t with --cluster",
    ]


@pytest.fixture
def epochs(put_scores) -> str:
    """40 items answered in 5 identical epochs, 7 items all at 0.5, and lm-eval-style doc ids per task."""
    rng = np.random.default_rng(11)
    rows = [{"model": "e", "item_id": f"q{i}", "epoch": k, "score": float(s)}
            for i, s in enumerate(rng.uniform(size=40) < 0.7) for k in range(5)]  # fmt: skip
    rows += [{"model": "flat", "item_id": f"q{i}", "score": 0.5} for i in range(7)]
    rows += [{"model": "lm", "benchmark": "b", "task": f"task{t}", "item_id": str(d), "score": float(t * d % 3 == 0)}
             for t in range(6) for d in range(4)]  # fmt: skip
    return str(put_scores(rows).root)


def _summary(warehouse: str, *args: str) -> dict[str, dict]:
    result = run("summary", "-w", warehouse, "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return {r["model"]: r for r in orjson.loads(result.stdout)}


def test_summary_counts_items_not_answers(epochs: str) -> None:
    rows = _summary(epochs)
    assert (rows["e"]["n"], rows["e"]["n_answers"], rows["e"]["ci_method"]) == (40, 200, "wilson")
    assert (rows["lm"]["n"], rows["lm"]["n_answers"]) == (24, 24)  # doc 0..3 of six tasks: 24 items
    assert rows["flat"]["ci_low"] is None and rows["flat"]["note"] == "no variance among 7 items: no interval"
    per_answer = _summary(epochs, "--per-answer")
    assert (per_answer["e"]["n"], per_answer["e"]["n_answers"]) == (200, 200)
    assert per_answer["e"]["sem"] < rows["e"]["sem"] / 2


def test_summary_cluster_on_task_stays_inside_0_1(epochs: str) -> None:
    r = _summary(epochs, "--cluster", "task")["lm"]
    assert r["ci_method"] == "cluster-t-logit" and 0 <= r["ci_low"] < r["mean"] < r["ci_high"] <= 1
    assert_formats_agree("summary", "-w", epochs, "--cluster", "task")


def test_compare_json_keys_and_storage(warehouse: str) -> None:
    result = run("compare", "-w", warehouse, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = orjson.loads(result.stdout)
    assert all(list(r) == list(COLUMNS) for r in rows)
    assert {(r["baseline"], r["candidate"]) for r in rows} == {("m", "m-q4km"), ("n", "n-q8_0")}
    assert "stored" in result.stderr
    stored = orjson.loads(
        run("sql", "-w", warehouse, "SELECT * FROM comparisons ORDER BY baseline", "--format", "json").stdout
    )
    assert [r["candidate"] for r in stored] == ["m-q4km", "n-q8_0"]
    assert_formats_agree("compare", "-w", warehouse, "--no-save")


def test_compare_no_match_is_an_error(warehouse: str) -> None:
    result = run("compare", "-w", warehouse, "-b", "ghost*", "-c", "m")
    assert result.exit_code == 1
    assert "Error: no pairs of models to compare" in result.stderr
    assert "Hint:" in result.stderr


@pytest.fixture
def gate_wh(put_scores) -> str:
    """40 math items and 40 chat items: q4km much worse on math, level on chat; 6 items of a third model."""
    rng = np.random.default_rng(8)
    math_b = rng.uniform(0.6, 0.95, 40)
    chat_b = rng.uniform(0.4, 0.7, 40)
    rows = _items("m", math_b.round(3).tolist(), "math") + _items("m", chat_b.round(3).tolist(), "chat")
    rows += _items("m-q4km", (math_b - 0.3 + rng.normal(0, 0.05, 40)).round(3).tolist(), "math")
    rows += _items("m-q4km", (chat_b + rng.normal(0, 0.01, 40)).round(3).tolist(), "chat")
    rows += _items("n", [0.7, 0.72, 0.69, 0.71, 0.7, 0.68], "math") + _items(
        "n-q8_0", [0.7, 0.71, 0.7, 0.71, 0.7, 0.69], "math"
    )
    return str(put_scores(rows).root)


def test_gate_regressed_exits_1_with_one_line_per_row(gate_wh: str) -> None:
    result = run("gate", "-w", gate_wh, "-b", "m", "-c", "m-q4km", "--max-drop", "5", "--by", "category")
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("REGRESSED     m -> m-q4km  overall  score:") and "upper bound" in lines[0]
    assert lines[0].endswith("n 80 items (paired)")
    # chat: a difference of about 0 with tight bounds: within 5 % of its mean.
    assert lines[1].startswith("PASS          m -> m-q4km  category chat  score:") and "lower bound" in lines[1]
    assert lines[2].startswith("REGRESSED     m -> m-q4km  category math  score:")
    assert lines[3].startswith("gate: 1 pass, 2 regressed, 0 inconclusive (margin 5%")


def test_gate_passes_within_margin_and_never_on_a_handful_of_items(gate_wh: str) -> None:
    big = run("gate", "-w", gate_wh, "-b", "m", "-c", "m-q4km", "--margin", "60%")
    assert big.exit_code == 0 and big.stdout.startswith("PASS          m -> m-q4km  overall")
    # 6 items that barely differ: no verdict from so few (the permutation test's assumptions).
    flat = run("gate", "-w", gate_wh, "-b", "n", "-c", "n-q8_0", "--max-drop", "5")
    assert (
        flat.exit_code == 3 and flat.stdout.startswith("INCONCLUSIVE") and "about 20 items would decide" in flat.stdout
    )
    absolute = run("gate", "-w", gate_wh, "-b", "m", "-c", "m-q4km", "--margin", "0.5", "--format", "json")
    assert absolute.exit_code == 0
    assert [(r["verdict"], r["margin"]) for r in orjson.loads(absolute.stdout)] == [("pass", 0.5)]
    # An absolute margin as wide as the 0..1 range is surely a percentage meant.
    wide = run("gate", "-w", gate_wh, "-b", "m", "-c", "m-q4km", "--margin", "2")
    assert wide.exit_code == 1 and "Error: margin 2 is in score units" in wide.stderr and "2%" in wide.stderr


def test_gate_untestable_rows_are_inconclusive(warehouse: str) -> None:
    result = run("gate", "-w", warehouse, "-b", "z", "-c", "n", "--max-drop", "5")
    assert result.exit_code == 3 and "not comparable: no item, category or benchmark in common" in result.stdout
    forced = run("gate", "-w", warehouse, "-b", "z", "-c", "n", "--max-drop", "5", "--test", "welch")
    assert forced.exit_code == 3 and "partial overlap: 0 shared" in forced.stdout
    missing = run("gate", "-w", warehouse, "-b", "z", "-c", "n")
    assert missing.exit_code == 1 and "Error: the gate needs a margin" in missing.stderr
    both = run("gate", "-w", warehouse, "-b", "z", "-c", "n", "--margin", "1%", "--max-drop", "1")
    assert both.exit_code == 2
    bad = run("gate", "-w", warehouse, "-b", "z", "-c", "n", "--margin", "two")
    assert bad.exit_code == 1 and "Error: margin 'two' is not a number or a percentage" in bad.stderr


def test_compare_reads_evalhouse_toml(warehouse: str, tmp_path) -> None:
    cfg = tmp_path / "evalhouse.toml"
    cfg.write_text('[compare]\nbaseline = "n"\ncandidate = "n-*"\nby = []\ntest = "welch"\n')
    rows = orjson.loads(run("compare", "-w", warehouse, "--config", str(cfg), "--format", "json").stdout)
    assert [(r["candidate"], r["scope"], r["test"]) for r in rows] == [("n-q8_0", "overall", "welch")]


@pytest.mark.parametrize("command", ["summary", "compare", "gate"])
def test_help_has_an_example(command: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0 and "Example:" in result.stdout and f"evalhouse {command}" in result.stdout


def test_readme_data_dictionary_is_current() -> None:
    from pathlib import Path

    from evalhouse.schema import data_dictionary

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    start, end = "<!-- data-dictionary:start -->\n", "<!-- data-dictionary:end -->"
    assert readme[readme.index(start) + len(start) : readme.index(end)] == data_dictionary()
