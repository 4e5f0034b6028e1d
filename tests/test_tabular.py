"""Terminal tables fit a width and align CJK text; CSV cells cannot run as spreadsheet formulas."""

from __future__ import annotations

import csv
import io
import re
import sys
import unicodedata
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from evalhouse import tabular
from evalhouse.cli import main
from evalhouse.ingest import ingest
from evalhouse.tabular import csv_cell, csv_safe, render, shorten, table_width
from evalhouse.warehouse import open_warehouse
from tests.conftest import FIXTURES


def width(text: str) -> int:
    """Terminal columns, computed here independently of evalhouse.tabular."""
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def test_cjk_columns_align_by_display_width() -> None:
    rows = [("日本語モデル-q4km", 0.5, 3), ("base", 0.25, 12), ("ｆｕｌｌ幅", 1.0, 100), ("e\u0301tude", 0.125, 7)]
    lines = render(["model", "mean", "n"], rows, "table").splitlines()
    assert len(lines) == 2 + len(rows)
    # Numeric columns are right-aligned: each ends at the same terminal column on every line.
    for col, texts in (("mean", ["0.5000", "0.2500", "1.0000", "0.1250"]), ("n", ["3", "12", "100", "7"])):
        ends = {width(lines[0][: lines[0].rindex(col) + len(col)])}
        for line, text in zip(lines[2:], texts, strict=True):
            ends.add(width(line[: line.rindex(text) + len(text)]))
        assert len(ends) == 1, (col, ends)
    assert {width(line) for line in lines} == {width(lines[0])}
    # Counting characters instead would have misaligned them: the test would catch len()-padding.
    assert len({len(line) for line in lines}) > 1


def test_table_truncated_to_80_columns_keeps_numbers_whole() -> None:
    family = "organisation/very-long-model-family-name-instruct-v2"
    names = [f"{family}-q4_k_m", f"{family}-q8_0", "short"]
    notes = ["a note " * 30, "", "partial overlap: " + "x" * 100]
    numbers = [(1234567, -0.5, True), (-3, 0.123456, False), (0, float("nan"), None)]
    rows = [(n, *nums, note) for n, nums, note in zip(names, numbers, notes, strict=True)]
    out = render(["model", "n", "diff", "significant", "note"], rows, "table", width=80)
    lines = out.splitlines()
    assert len(lines) == 2 + len(rows)  # still one table, one line per row
    assert all(width(line) <= 80 for line in lines), [width(line) for line in lines]
    assert max(width(line) for line in lines) == 80  # uses the room it has
    for line, (n, diff, sig) in zip(lines[2:], numbers, strict=True):
        fields = line.split()
        assert str(n) in fields and tabular._cell(diff) in fields
        if sig is not None:
            assert str(sig) in fields
    # Both ends of a cut name stay: names that differ only at the end stay distinct.
    shown = [line.split("  ")[0].rstrip() for line in lines[2:]]
    assert shown[0].startswith("organisation") and shown[0].endswith("-q4_k_m") and "…" in shown[0]
    assert shown[1].endswith("-q8_0") and shown[0] != shown[1]
    assert shown[2] == "short"


def test_cjk_text_is_cut_by_display_width() -> None:
    rows = [("日本語モデル" * 10 + "-q4km", 1), ("ascii-" * 20, 2)]
    lines = render(["model", "n"], rows, "table", width=30).splitlines()
    assert [width(line) for line in lines] == [30] * 4
    assert re.fullmatch("日本語モデル…語モデル-q4km +1", lines[2]), lines[2]  # a wide character is not split


def test_escaping_is_kept_when_cut() -> None:
    name = "\x1b[31mred" + "y" * 50 + "line\nbreak" + "z" * 50 + "\u202eevil\x07"
    out = render(["model", "score"], [(name, 0.5), ("\x1b" * 40, 0.25)], "table", width=40)
    lines = out.splitlines()
    assert len(lines) == 4 and all(width(line) <= 40 for line in lines)
    assert not any(ch in out for ch in "\x1b\x07\r\u202e") and "\n" not in lines[2]
    assert lines[2].startswith("\\x1b[31mred") and "\\u202eevil\\x07" in lines[2]
    # An escape is never cut in half.
    assert re.fullmatch(r"(\\x1b)+…(\\x1b)+ +0\.2500", lines[3]), lines[3]


def test_shorten_keeps_marks_with_their_letters() -> None:
    text = "e\u0301" * 20
    cut = shorten(text, 9)
    assert width(cut) <= 9 and cut.startswith("e\u0301") and cut.endswith("e\u0301")
    assert "…\u0301" not in cut  # the mark did not land on the ellipsis


def test_too_many_columns_become_blocks_then_records() -> None:
    columns = ["model", "metric"] + [f"stat_{i}" for i in range(12)]
    rows = [(f"model-{k}", "acc", *(k + i / 7 for i in range(12))) for k in range(3)]
    out = render(columns, rows, "table", width=60)
    blocks = out.split("\n\n")
    assert 1 < len(blocks) <= tabular.MAX_BLOCKS
    assert all(width(line) <= 60 for line in out.splitlines())
    for block in blocks:  # every block says which row each line is
        lines = block.splitlines()
        assert lines[0].split()[:2] == ["model", "metric"]
        assert [line.split()[0] for line in lines[2:]] == ["model-0", "model-1", "model-2"]
    assert sorted(c for b in blocks for c in b.splitlines()[0].split()[2:]) == sorted(columns[2:])

    wide = [f"column_{i}" for i in range(40)]
    out = render(wide, [tuple(range(-20, 20)), tuple(range(40))], "table", width=80)
    lines = out.splitlines()
    assert lines[0].startswith("-[ row 1 ]") and "-[ row 2 ]" in out
    assert all(width(line) <= 80 for line in lines)
    assert "column_0   -20" in lines[1:] and "column_39  39" in lines


def test_no_width_keeps_full_table() -> None:
    rows = [("m" * 150, 1)]
    assert render(["model", "n"], rows, "table").splitlines()[2] == "m" * 150 + "  1"
    long = render(["model", "n"], [("a" * 150 + "b" * 150, 1)], "table").splitlines()[2]
    assert width(long) == tabular.CELL_LIMIT + 3 and long.startswith("a") and long.endswith("b  1")


def test_table_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "72")
    assert table_width() == 72
    monkeypatch.delenv("COLUMNS")
    assert table_width() is None  # pytest's captured stdout is not a terminal

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdout", Terminal())
    monkeypatch.setattr(tabular.shutil, "get_terminal_size", lambda fallback=(0, 0): type("S", (), {"columns": 91}))
    assert table_width() == 91
    monkeypatch.setenv("COLUMNS", "not a number")
    assert table_width() == 91


FORMULAS = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(1)", "\tx", "\r=1"]


def test_csv_cell_neutralises_formulas_and_keeps_numbers() -> None:
    assert [csv_cell(v) for v in FORMULAS] == ["'" + v for v in FORMULAS]
    for safe in ("model-a", "日本語", "", "a=b", " =1"):
        assert csv_cell(safe) == safe
    assert csv_cell(-0.5) == -0.5 and isinstance(csv_cell(-3), int) and csv_cell(None) is None


def test_render_csv_neutralises_formula_cells() -> None:
    rows = [(v, -0.5, -3) for v in FORMULAS] + [("plain", 0.25, 4)]
    out = render(["=name", "diff", "n"], rows, "csv")
    parsed = list(csv.reader(io.StringIO(out)))
    assert parsed[0] == ["'=name", "diff", "n"]
    assert [r[0] for r in parsed[1:]] == ["'" + v for v in FORMULAS] + ["plain"]
    assert {(r[1], r[2]) for r in parsed[1:-1]} == {("-0.5", "-3")}  # negative numbers stay numbers


def test_csv_safe_frame(tmp_path: Path) -> None:
    values = [*FORMULAS, "plain", None]
    frame = pl.DataFrame(
        {
            "model": values,
            "category": pl.Series(values, dtype=pl.Categorical),
            "kind": pl.Series(values, dtype=pl.Enum(sorted({v for v in values if v is not None}))),
            "diff": [-0.5] * len(values),
            "n": [-3] * len(values),
            "@total": [1] * len(values),
        }
    )
    safe = csv_safe(frame)
    assert safe.columns == ["model", "category", "kind", "diff", "n", "'@total"]
    expected = [csv_cell(v) for v in values]  # one rule: the frame helper agrees with csv_cell
    assert safe["model"].to_list() == safe["category"].to_list() == safe["kind"].to_list() == expected
    assert safe["diff"].dtype == pl.Float64 and safe["n"].dtype == pl.Int64
    path = tmp_path / "out.csv"
    safe.write_csv(path)
    with path.open(newline="") as f:
        parsed = list(csv.reader(f))
    assert parsed[1][0] == "'=cmd|' /C calc'!A0" and parsed[1][3:5] == ["-0.5", "-3"]
    assert all(not row[0].startswith(tabular.CSV_FORMULA_PREFIXES) for row in parsed[1:])


def test_cli_tables_fit_columns(tmp_path: Path) -> None:
    wh = open_warehouse(tmp_path / "wh", create=True)
    ingest(wh, [FIXTURES / "so8t" / "good"], workers=1)
    runner = CliRunner()
    for args, cols in ((["models"], 40), (["summary"], 60), (["files"], 60)):
        result = runner.invoke(main, [*args, "-w", str(wh.root)], env={"COLUMNS": str(cols)})
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert all(width(line) <= cols for line in lines), (args, max(map(width, lines)))
        full = runner.invoke(main, [*args, "-w", str(wh.root)], env={"COLUMNS": None})
        assert max(map(width, full.stdout.splitlines())) > cols  # piped: every column whole
    result = runner.invoke(main, ["models", "-w", str(wh.root)], env={"COLUMNS": "40"})
    assert "base-m-q4km" in result.stdout and "q4_k_m" in result.stdout
