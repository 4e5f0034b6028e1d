"""Hostile names: stored as given, shown safely, never part of a path or of SQL."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
from click.testing import CliRunner

from evalhouse.cli import main
from evalhouse.ingest import ingest
from evalhouse.schema import TABLES
from evalhouse.warehouse import Warehouse, connect

HOSTILE = [
    "../../etc/passwd",
    "..",
    'it\'s "quoted"',
    "x'; DROP TABLE runs; --",
    "line1\nline2\r\nline3",
    "\x1b[31mred\x1b[0m\x07bell\x08",
    "tab\there",
    "m" * 10_000,
    "🤖 model 🔥",
    "\u202eevil\u202c مرحبا",
    "日本語モデル-q4km",
    "$1 ? :name %s {0}",
]
FILE_NAMES = ['it\'s; "x".json', "new\nline.json", "日本語 🤖.json", "-rf.json", "a" * 200 + ".json"]


def write_hostile(folder: Path) -> list[Path]:
    folder.mkdir()
    paths = []
    for k, fname in enumerate(FILE_NAMES):
        items = [
            {"model": name, "category": name, "benchmark": name, "test_name": name, "score": (i + k) % 3 / 2}
            for i, name in enumerate(HOSTILE)
        ]
        path = folder / fname
        path.write_bytes(orjson.dumps({"metadata": {"k": k}, "results": items}))
        paths.append(path)
    return paths


def test_hostile_names_are_stored_as_given(wh: Warehouse, tmp_path: Path) -> None:
    paths = write_hostile(tmp_path / "in")
    report = ingest(wh, [tmp_path / "in"], workers=1)
    assert report.count("ingested") == len(FILE_NAMES)
    con = connect(wh)
    assert sorted(r[0] for r in con.execute("SELECT DISTINCT model FROM scores").fetchall()) == sorted(HOSTILE)
    for name in HOSTILE:
        row = con.execute(
            "SELECT count(*) FROM scores WHERE model = ? AND category = ? AND benchmark = ? AND item_id = ?",
            [name, name, name, name],
        ).fetchone()
        assert row == (len(FILE_NAMES),), name
    stored = {r[0] for r in con.execute("SELECT path FROM files").fetchall()}
    assert stored == {str(p) for p in paths}
    base = con.execute("SELECT model_base, quantization FROM runs WHERE model = '日本語モデル-q4km' LIMIT 1").fetchone()
    assert base == ("日本語モデル", "q4_k_m")


def test_no_path_is_built_from_names(wh: Warehouse, tmp_path: Path) -> None:
    write_hostile(tmp_path / "in")
    ingest(wh, [tmp_path / "in"], workers=1)
    tables = "|".join(TABLES)
    allowed = re.compile(rf"^(evalhouse\.json|evalhouse\.duckdb|\.lock|\.pending|tables|versions|\d{{20}}\.json"
                         rf"|_delta_log|{tables}|part-b\d{{8}}T\d{{12}}-[0-9a-f]{{6}}-[0-9a-z]+"
                         rf"\.parquet)$")  # fmt: skip
    for p in wh.root.rglob("*"):
        assert allowed.match(p.name), p
    assert not (tmp_path / "etc").exists()


def test_names_are_shown_safely(wh: Warehouse, tmp_path: Path) -> None:
    write_hostile(tmp_path / "in")
    ingest(wh, [tmp_path / "in"], workers=1)
    result = CliRunner().invoke(main, ["models", "-w", str(wh.root)])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 2 + len(HOSTILE)  # header, rule, one line per model: no forged lines
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout and "\r" not in result.stdout
    assert any("line1\\nline2\\r\\nline3" in line for line in lines)
    assert any("日本語モデル-q4km" in line for line in lines)
    assert "\u202e" not in result.stdout and any("\\u202eevil\\u202c مرحبا" in line for line in lines)
    # JSON output keeps every name exactly.
    result = CliRunner().invoke(main, ["models", "-w", str(wh.root), "--format", "json"])
    assert sorted(r["model"] for r in orjson.loads(result.stdout)) == sorted(HOSTILE)
    result = CliRunner().invoke(main, ["files", "-w", str(wh.root), "--format", "csv"])
    assert result.exit_code == 0 and "new\nline.json" in result.stdout  # CSV quotes it
