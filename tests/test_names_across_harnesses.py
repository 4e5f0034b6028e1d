"""One benchmark, four harnesses' spellings: the same subject lines up in the warehouse and in compare."""

from __future__ import annotations

import orjson
from click.testing import CliRunner

from cli import main
from engine.ingest import ingest
from engine.names import canonical
from engine.warehouse import Warehouse, connect
from tests.conftest import FIXTURES


def test_mmlu_subjects_from_every_harness_spelling_are_one_pair() -> None:
    spellings = [
        ("mmlu", "anatomy", "hendrycksTest-anatomy"),  # lm-eval 0.3
        ("mmlu", "anatomy", "mmlu_anatomy"),  # lm-eval 0.4
        (None, None, "lukaemon_mmlu_anatomy"),  # OpenCompass
        (None, None, "mmlu:subject=anatomy,method=multiple_choice_joint"),  # HELM run name
        (None, None, "leaderboard|mmlu:anatomy|5"),  # lighteval
    ]
    assert {canonical(*s) for s in spellings} == {("mmlu", "anatomy")}


def test_lm_eval_03_and_04_pair_subject_by_subject(wh: Warehouse) -> None:
    ingest(wh, [FIXTURES / "lm_eval_v03", FIXTURES / "lm_eval" / "v0_4_11", FIXTURES / "helm_tutorial"], workers=1)
    con = connect(wh)
    names = con.sql(
        "SELECT DISTINCT task, benchmark, category FROM metrics WHERE category IN ('anatomy', 'philosophy') "
        "UNION SELECT DISTINCT task, benchmark, category FROM scores WHERE category = 'philosophy' ORDER BY 1"
    ).fetchall()
    con.close()
    # The source's spelling stays in task; benchmark and category are canonical.
    assert names == [
        ("hendrycksTest-anatomy", "mmlu", "anatomy"),
        ("mmlu:subject=philosophy,method=multiple_choice_joint", "mmlu", "philosophy"),
        ("mmlu_anatomy", "mmlu", "anatomy"),
    ]
    result = CliRunner().invoke(main, ["compare", "-w", str(wh.root), "--no-save", "--format", "json", "-b",
                                       "EleutherAI/gpt-j-6B", "-c", "*Qwen3.5*", "--by", "category"])  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = orjson.loads(result.stdout)
    anatomy = [r for r in rows if r["scope"] == "category" and r["category"] == "anatomy"]
    assert [(r["metric"], r["benchmark"], r["test"]) for r in anatomy] == [("acc", "mmlu", "z")]
