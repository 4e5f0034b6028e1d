"""One benchmark, four harnesses' spellings: the same subject lines up in the warehouse and in compare."""

from __future__ import annotations

import orjson
from click.testing import CliRunner

from evalhouse.cli import main
from evalhouse.ingest import ingest
from evalhouse.names import canonical
from evalhouse.warehouse import Warehouse, connect
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


def test_opencompass_pairs_with_lm_eval_through_a_metric_alias(wh: Warehouse, tmp_path) -> None:
    """OpenCompass's `accuracy` (ppl mode) and lm-eval's `acc` are one measure once evalhouse.toml says so."""
    csv = tmp_path / "oc" / "summary_20240601_120000.csv"
    csv.parent.mkdir()
    csv.write_text("dataset,version,metric,mode,qwen-7b-hf\nlukaemon_mmlu_anatomy,72817f,accuracy,ppl,55.56\n",
                   encoding="utf-8")  # fmt: skip
    ingest(wh, [FIXTURES / "lm_eval" / "v0_4_11", csv.parent], workers=1)
    cfg = tmp_path / "evalhouse.toml"
    cfg.write_text('[metric_aliases]\nacc = ["accuracy,ppl"]\n', encoding="utf-8")
    args = ["compare", "-w", str(wh.root), "--no-save", "--format", "json", "-b", "*Qwen3.5*", "-c", "qwen-7b-hf",
            "--by", "category"]  # fmt: skip
    before = orjson.loads(CliRunner().invoke(main, args).stdout)
    assert before[0]["note"].startswith("no metric in common")
    rows = orjson.loads(CliRunner().invoke(main, [*args, "--config", str(cfg)]).stdout)
    anatomy = next(r for r in rows if r["category"] == "anatomy")
    assert (anatomy["metric"], anatomy["benchmark"], anatomy["mean_candidate"]) == ("acc", "mmlu", 0.5556)
