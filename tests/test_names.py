"""Canonical benchmark and category names: every harness's spelling, unknown names untouched, RunBuilder."""

from __future__ import annotations

import pytest

from evalhouse.adapters.base import RunBuilder
from evalhouse.names import (
    BBH_SUBTASKS,
    BENCHMARK_NAMES,
    BENCHMARKS,
    MATH_SUBJECTS,
    MMLU_SUBJECTS,
    TASK_TEMPLATES,
    canonical,
    canonical_row,
)


def test_the_tables_have_every_subject() -> None:
    assert len(MMLU_SUBJECTS) == len(set(MMLU_SUBJECTS)) == 57
    assert len(BBH_SUBTASKS) == len(set(BBH_SUBTASKS)) == 27
    assert MATH_SUBJECTS == ("algebra", "counting_and_probability", "geometry", "intermediate_algebra",
                             "number_theory", "prealgebra", "precalculus")  # fmt: skip
    assert set(BENCHMARK_NAMES) == set(BENCHMARKS)
    assert set(TASK_TEMPLATES) <= set(BENCHMARKS)


# (benchmark, category, task) as each adapter passes them for a real spelling -> canonical pair.
SPELLINGS = [
    # lm-evaluation-harness 0.4 (lm_eval_results/lm_eval_samples: root group, task minus its prefix, task)
    (("mmlu", "abstract_algebra", "mmlu_abstract_algebra"), ("mmlu", "abstract_algebra")),
    (("mmlu_continuation", "mmlu_anatomy_continuation", "mmlu_anatomy_continuation"), ("mmlu", "anatomy")),
    (("mmlu_generative", "mmlu_virology_generative", "mmlu_virology_generative"), ("mmlu", "virology")),
    (("mmlu_flan_cot_fewshot", "world_religions", "mmlu_flan_cot_fewshot_world_religions"),
     ("mmlu", "world_religions")),
    (("mmlu_flan_n_shot_loglikelihood", "anatomy", "mmlu_flan_n_shot_loglikelihood_anatomy"), ("mmlu", "anatomy")),
    (("arc_easy", "arc_easy", "arc_easy"), ("arc_easy", "arc_easy")),
    (("ai2_arc", "arc_challenge", "arc_challenge"), ("arc_challenge", "arc_challenge")),
    (("arc_challenge_chat", "arc_challenge_chat", "arc_challenge_chat"), ("arc_challenge", "arc_challenge")),
    (("hellaswag", "hellaswag", "hellaswag"), ("hellaswag", "hellaswag")),
    (("gsm8k_cot_zeroshot", "gsm8k_cot_zeroshot", "gsm8k_cot_zeroshot"), ("gsm8k", "gsm8k")),
    (("truthfulqa_mc1", "truthfulqa_mc1", "truthfulqa_mc1"), ("truthfulqa", "mc1")),
    (("truthfulqa", "mc2", "truthfulqa_mc2"), ("truthfulqa", "mc2")),
    (("truthfulqa_gen", "truthfulqa_gen", "truthfulqa_gen"), ("truthfulqa", "gen")),
    (("winogrande", "winogrande", "winogrande"), ("winogrande", "winogrande")),
    (("bbh", "cot_fewshot_boolean_expressions", "bbh_cot_fewshot_boolean_expressions"),
     ("bbh", "boolean_expressions")),
    (("bbh_zeroshot", "word_sorting", "bbh_zeroshot_word_sorting"), ("bbh", "word_sorting")),
    (("leaderboard", "bbh_causal_judgement", "leaderboard_bbh_causal_judgement"), ("bbh", "causal_judgement")),
    (("leaderboard", "ifeval", "leaderboard_ifeval"), ("ifeval", "ifeval")),
    (("ifeval", "ifeval", "ifeval"), ("ifeval", "ifeval")),
    (("minerva_math", "algebra", "minerva_math_algebra"), ("math", "algebra")),
    (("hendrycks_math", "counting_and_prob", "hendrycks_math_counting_and_prob"),
     ("math", "counting_and_probability")),
    (("minerva_math_num_theory", "minerva_math_num_theory", "minerva_math_num_theory"), ("math", "number_theory")),
    (("hendrycks_math", "precalc", "hendrycks_math_precalc"), ("math", "precalculus")),
    (("leaderboard", "math_precalculus_hard", "leaderboard_math_precalculus_hard"), ("math_hard", "precalculus")),
    (("minerva_math500", "minerva_math500", "minerva_math500"), ("math_500", "math_500")),
    # lm-evaluation-harness 0.3 (lm_eval_v03.place)
    (("mmlu", "high_school_us_history", "hendrycksTest-high_school_us_history"), ("mmlu", "high_school_us_history")),
    (("truthfulqa_mc", "truthfulqa_mc", "truthfulqa_mc"), ("truthfulqa", "mc")),
    (("math_num_theory", "math_num_theory", "math_num_theory"), ("math", "number_theory")),
    (("math_counting_and_prob", "math_counting_and_prob", "math_counting_and_prob"),
     ("math", "counting_and_probability")),
    # OpenCompass summary CSV (benchmark = category = task = dataset abbr)
    (("lukaemon_mmlu_college_biology",) * 3, ("mmlu", "college_biology")),
    (("ARC-e",) * 3, ("arc_easy", "arc_easy")),
    (("ARC-c",) * 3, ("arc_challenge", "arc_challenge")),
    (("bbh-temporal_sequences",) * 3, ("bbh", "temporal_sequences")),
    (("IFEval",) * 3, ("ifeval", "ifeval")),
    (("truthful_qa",) * 3, ("truthfulqa", "gen")),
    (("math",) * 3, ("math", "math")),
    (("math_prm800k_500",) * 3, ("math_500", "math_500")),
    (("mmlu",) * 3, ("mmlu", "mmlu")),  # the summary's group row
    # HELM (first group, subject else benchmark, run name without model=)
    (("mmlu", "anatomy", "mmlu:subject=anatomy,method=multiple_choice_joint"), ("mmlu", "anatomy")),
    (("mmlu_abstract_algebra", "abstract_algebra", "mmlu:subject=abstract_algebra,method=multiple_choice_joint,"
      "eval_split=test,groups=mmlu_abstract_algebra"), ("mmlu", "abstract_algebra")),
    (("math_chain_of_thought", "counting_and_probability", "math:subject=counting_and_probability,level=1,"
      "use_official_examples=False,use_chain_of_thought=True"), ("math", "counting_and_probability")),
    (("gsm", "gsm", "gsm"), ("gsm8k", "gsm8k")),
    (("gsm", "gsm", "gsm:stop=none"), ("gsm8k", "gsm8k")),
    (("hellaswag", "hellaswag", "commonsense:dataset=hellaswag,method=multiple_choice_separate_original"),
     ("hellaswag", "hellaswag")),
    (("truthful_qa", "truthful_qa", "truthful_qa:task=mc_single,method=multiple_choice_joint"), ("truthfulqa", "mc1")),
    (("ifeval", "ifeval", "ifeval:increase_max_tokens=10000"), ("ifeval", "ifeval")),
    # lighteval <= 0.12.1 (split_task: name before and after ':', task = the results key)
    (("mmlu", "anatomy", "leaderboard|mmlu:anatomy|5"), ("mmlu", "anatomy")),
    (("mmlu", "abstract_algebra", "lighteval|mmlu:abstract_algebra|5"), ("mmlu", "abstract_algebra")),
    (("mmlu", "astronomy", "original|mmlu:astronomy|5"), ("mmlu", "astronomy")),
    (("mmlu", "anatomy", "helm|mmlu:anatomy|5"), ("mmlu", "anatomy")),
    (("arc", "challenge", "leaderboard|arc:challenge|25"), ("arc_challenge", "arc_challenge")),
    (("arc", "easy", "lighteval|arc:easy|0"), ("arc_easy", "arc_easy")),
    (("hellaswag", "hellaswag", "leaderboard|hellaswag|10"), ("hellaswag", "hellaswag")),
    (("truthfulqa", "mc", "leaderboard|truthfulqa:mc|0"), ("truthfulqa", "mc")),
    (("winogrande", "winogrande", "leaderboard|winogrande|5"), ("winogrande", "winogrande")),
    (("gsm8k", "gsm8k", "leaderboard|gsm8k|5"), ("gsm8k", "gsm8k")),
    (("bbh", "causal_judgment", "harness|bbh:causal_judgment|3"), ("bbh", "causal_judgement")),
    (("bigbench", "snarks", "harness|bigbench:snarks|3"), ("bbh", "snarks")),
    (("math", "number_theory", "lighteval|math:number_theory|4"), ("math", "number_theory")),
    (("math_cot", "geometry", "lighteval|math_cot:geometry|0"), ("math", "geometry")),
    (("ifeval", "ifeval", "extended|ifeval|0"), ("ifeval", "ifeval")),
    # lighteval 0.12.2+ writes `task|shots` keys, with no suite
    (("mmlu", "anatomy", "mmlu:anatomy|5"), ("mmlu", "anatomy")),
    (("bigbench_hard", "causal_judgment", "bigbench_hard:causal_judgment|3"), ("bbh", "causal_judgement")),
    (("math_500", "math_500", "math_500|0"), ("math_500", "math_500")),
    # inspect_evals (benchmark = task after '/', category from sample metadata `subject`)
    (("mmlu_0_shot", "abstract_algebra", "inspect_evals/mmlu_0_shot"), ("mmlu", "abstract_algebra")),
    (("mmlu_5_shot", None, "inspect_evals/mmlu_5_shot"), ("mmlu", "mmlu")),  # results.scores rows
    (("math", "counting & probability", "inspect_evals/math"), ("math", "counting_and_probability")),
    (("math", "number theory", "inspect_evals/math"), ("math", "number_theory")),
    (("arc_challenge", None, "inspect_evals/arc_challenge"), ("arc_challenge", "arc_challenge")),
    (("gsm8k", None, "gsm8k"), ("gsm8k", "gsm8k")),
    # every_eval_ever (Open LLM Leaderboard converter: dataset_name)
    (("BBH", "BBH", "BBH"), ("bbh", "bbh")),
    (("MATH Level 5", "MATH Level 5", "MATH Level 5"), ("math_hard", "math_hard")),
]  # fmt: skip


@pytest.mark.parametrize(("given", "expected"), SPELLINGS, ids=[str(g[2]) for g, _ in SPELLINGS])
def test_each_harness_spelling_is_canonical(given: tuple, expected: tuple) -> None:
    assert canonical(*given) == expected


@pytest.mark.parametrize("subject", MMLU_SUBJECTS)
def test_every_mmlu_subject_in_every_harness(subject: str) -> None:
    spellings = [
        ("mmlu", subject, f"mmlu_{subject}"),
        ("mmlu", subject, f"hendrycksTest-{subject}"),
        (f"lukaemon_mmlu_{subject}", f"lukaemon_mmlu_{subject}", f"lukaemon_mmlu_{subject}"),
        ("mmlu", subject, f"mmlu:subject={subject},method=multiple_choice_joint"),
        ("mmlu", subject, f"leaderboard|mmlu:{subject}|5"),
        ("mmlu_0_shot", subject, "inspect_evals/mmlu_0_shot"),
    ]
    assert {canonical(*s) for s in spellings} == {("mmlu", subject)}


@pytest.mark.parametrize("subtask", BBH_SUBTASKS)
def test_every_bbh_subtask_in_every_harness(subtask: str) -> None:
    lighteval = "causal_judgment" if subtask == "causal_judgement" else subtask
    spellings = [
        ("bbh", subtask, f"bbh_cot_fewshot_{subtask}"),
        ("bbh_cot_zeroshot", subtask, f"bbh_cot_zeroshot_{subtask}"),
        ("bbh_fewshot", subtask, f"bbh_fewshot_{subtask}"),
        ("bbh_zeroshot", subtask, f"bbh_zeroshot_{subtask}"),
        (f"bbh-{subtask}", f"bbh-{subtask}", f"bbh-{subtask}"),
        ("bbh", lighteval, f"harness|bbh:{lighteval}|3"),
    ]
    assert {canonical(*s) for s in spellings} == {("bbh", subtask)}


UNKNOWN = [
    ("cmmlu", "anatomy", "cmmlu_anatomy"),  # other benchmarks whose names contain mmlu
    ("mmlu_pro", "biology", "mmlu_pro_biology"),
    ("leaderboard", "mmlu_pro", "leaderboard_mmlu_pro"),
    ("global_mmlu_full_en", "anatomy", "global_mmlu_full_en_anatomy"),
    ("mmlu-stem", "mmlu-stem", "mmlu-stem"),  # an OpenCompass group average, not a category
    ("bigbench", "causal_judgment", "bigbench:causal_judgment|3"),  # lighteval >= 0.12: full BIG-bench
    ("bigbench", "snarks", "lighteval|bigbench:snarks|3"),  # BBH to 0.11, full BIG-bench in 0.12: ambiguous
    ("leaderboard", "musr_murder_mysteries", "leaderboard_musr_murder_mysteries"),
    ("arith", "subtraction", None),
    ("reasoning", "math", None),  # a category named like a benchmark stays a category
    (None, "math", None),
    (None, "日本語", None),
    ("elyza_100", None, None),
    ("wikitext", "wikitext", "wikitext"),
    (None, None, None),
]


@pytest.mark.parametrize("given", UNKNOWN, ids=[str(u) for u in UNKNOWN])
def test_unknown_names_are_left_exactly_as_given(given: tuple) -> None:
    assert canonical(*given) == given[:2]
    assert canonical_row(*given) == given


def test_a_known_benchmark_keeps_an_unknown_category() -> None:
    assert canonical("mmlu_0_shot", "Quantum Basket Weaving", "inspect_evals/mmlu_0_shot") == (
        "mmlu", "Quantum Basket Weaving"
    )  # fmt: skip
    assert canonical("MMLU", "Abstract Algebra", None) == ("mmlu", "abstract_algebra")


def test_the_source_spelling_fills_a_missing_task() -> None:
    assert canonical_row("hendrycksTest-anatomy", None, None) == ("mmlu", "anatomy", "hendrycksTest-anatomy")
    assert canonical_row("MMLU", "Abstract Algebra", None) == ("mmlu", "abstract_algebra", "MMLU:Abstract Algebra")
    # a task given is kept; names already canonical leave the task NULL
    assert canonical_row("mmlu", "anatomy", "mmlu_anatomy") == ("mmlu", "anatomy", "mmlu_anatomy")
    assert canonical_row("mmlu", "anatomy", None) == ("mmlu", "anatomy", None)
    assert canonical_row("gsm8k", None, None) == ("gsm8k", None, None)


def test_run_builder_makes_every_row_canonical() -> None:
    run = RunBuilder("r", "m-7b", harness="my-harness")
    run.add_answer("0", {"acc": 1.0}, benchmark="mmlu", category="anatomy", task="hendrycksTest-anatomy")
    run.add_answer("1", {"acc": 0.0}, benchmark="ARC-c")
    run.add_answers(
        ["2", "3", "4"], "score", [1.0, 0.0, 1.0], benchmark=["lukaemon_mmlu_virology", "arith", None],
        category=[None, "add", None], response_time_s=[None] * 3, timestamp=[None] * 3, attributes=[None] * 3,
        question=[None] * 3, response=[None] * 3, expected=[None] * 3,
    )  # fmt: skip
    run.add_metric("acc", 0.5, benchmark="mmlu", category="anatomy", task="mmlu:anatomy|5")
    run.add_metric_entry({"acc": 0.25, "acc_stderr": 0.1}, "f", "results.x", benchmark="bbh", task="bbh-snarks")
    s = run.scores
    assert list(zip(s["benchmark"], s["category"], s["task"], strict=True)) == [
        ("mmlu", "anatomy", "hendrycksTest-anatomy"),
        ("arc_challenge", "arc_challenge", "ARC-c"),
        ("mmlu", "virology", "lukaemon_mmlu_virology"),
        ("arith", "add", None),
        (None, "unknown", None),
    ]
    m = run.metrics
    assert list(zip(m["benchmark"], m["category"], m["task"], m["value"], strict=True)) == [
        ("mmlu", "anatomy", "mmlu:anatomy|5", 0.5),
        ("bbh", "snarks", "bbh-snarks", 0.25),
    ]


def test_so8t_rows_keep_their_names() -> None:
    # The SO8T task arrays name `mmlu_abstract_algebra` a benchmark; the published analysis is per that name.
    run = RunBuilder("tasks", "tiny-model", harness="so8t")
    run.add_answer("mmlu_abstract_algebra#0", {"score": 1.0}, benchmark="mmlu_abstract_algebra",
                   task="mmlu_abstract_algebra")  # fmt: skip
    run.add_answers(["q1"], "score", [0.5], benchmark=["ARC-e"], category=[None], response_time_s=[None],
                    timestamp=[None], attributes=[None], question=[None], response=[None], expected=[None])  # fmt: skip
    run.add_metric("acc", 0.5, benchmark="hendrycksTest-anatomy")
    s = run.scores
    assert list(zip(s["benchmark"], s["category"], s["task"], strict=True)) == [
        ("mmlu_abstract_algebra", "mmlu_abstract_algebra", "mmlu_abstract_algebra"),
        ("ARC-e", "ARC-e", None),
    ]
    assert (run.metrics["benchmark"], run.metrics["category"]) == (["hendrycksTest-anatomy"], ["hendrycksTest-anatomy"])
