"""Canonical benchmark and category names, whatever harness spelled them.

One benchmark reaches evalhouse under many names: MMLU's anatomy subject is ``mmlu_anatomy`` in
lm-evaluation-harness 0.4, ``hendrycksTest-anatomy`` in 0.3, ``lukaemon_mmlu_anatomy`` in OpenCompass,
``mmlu:subject=anatomy,method=...`` in HELM and ``leaderboard|mmlu:anatomy|5`` in lighteval.
``canonical(benchmark, category, task)`` maps every spelling listed here to one (benchmark,
category) pair and leaves any other name exactly as given; the source's own spelling stays in
``task``. ``RunBuilder`` (``engine/adapters/base.py``) applies it to every row an adapter adds.

>>> canonical("mmlu", "abstract_algebra", "hendrycksTest-abstract_algebra")
('mmlu', 'abstract_algebra')
>>> canonical("mmlu", "anatomy", "mmlu:anatomy|5"), canonical("lukaemon_mmlu_anatomy", "lukaemon_mmlu_anatomy", None)
(('mmlu', 'anatomy'), ('mmlu', 'anatomy'))
>>> canonical("cmmlu", "anatomy", "cmmlu_anatomy"), canonical(None, "math", None)
(('cmmlu', 'anatomy'), (None, 'math'))

Decisions (the canonical spelling is lm-evaluation-harness 0.4's wherever it has one):

- MMLU: benchmark ``mmlu``, category the subject as lm-eval spells it (``abstract_algebra``; every
  harness here spells the 57 subjects alike). Prompt variants (``mmlu_flan_cot_fewshot_*``,
  ``*_generative``, ...) are the same subject; their task names keep them apart when items pair.
- ARC: two benchmarks, ``arc_easy`` and ``arc_challenge`` (category = benchmark), as lm-eval names
  the tasks: the two sets differ in difficulty and are reported apart (the Open LLM Leaderboard's
  "ARC" is the challenge set), so one ``arc`` mean over both would mix two populations.
- HellaSwag, GSM8K, Winogrande, IFEval: one benchmark each, category = benchmark
  (``gsm8k_cot`` and the other GSM8K prompt variants included; HELM's ``gsm`` is GSM8K).
- TruthfulQA: benchmark ``truthfulqa``; category the answer format: ``mc1``, ``mc2``, ``gen``, and
  ``mc`` for tasks that report mc1 and mc2 as two metrics of one task (lm-eval 0.3
  ``truthfulqa_mc``, lighteval ``truthfulqa:mc``). HELM's ``task=mc_single`` is ``mc1``.
- BBH: benchmark ``bbh``, the 27 subtasks as lm-eval spells them (lighteval's ``causal_judgment``
  is ``causal_judgement``); zero-/few-shot and CoT variants are the same subtask.
- MATH: benchmark ``math``, the 7 subjects as the dataset's configs spell them
  (``counting_and_probability``, ``number_theory``, ``precalculus``; lm-eval's task names shorten
  them to ``counting_and_prob``, ``num_theory``, ``precalc``). Its level-5 subset (lm-eval
  ``leaderboard_math_*_hard``) is ``math_hard`` and the 500-problem subset ``math_500``: other items.
- Group aggregates stay as they are (OpenCompass ``mmlu-stem``, ``mmlu-humanities``): they are not a
  category of their benchmark but averages over several.
- Not MMLU: ``mmlu_pro``, ``cmmlu``, ``global_mmlu``, ``mmmlu``, ``kmmlu`` ... (other items), nor
  lighteval's ``bigbench:*`` (BBH up to 0.11 in the ``harness`` suite, but the full BIG-bench tasks in
  0.12, also in the ``lighteval`` suite that meant BBH before: only ``harness|bigbench:*`` is BBH).

Sources (bare git mirrors read with ``git ls-tree``/``git show``): EleutherAI/lm-evaluation-harness
(``lm_eval/tasks/{mmlu,bbh,arc,hellaswag,gsm8k,truthfulqa,winogrande,ifeval,hendrycks_math,
minerva_math,leaderboard}/``; tag v0.3.0 ``lm_eval/tasks/{__init__,hendrycks_test,hendrycks_math}.py``),
open-compass/opencompass (``opencompass/configs/datasets/*/`` ``abbr=``,
``configs/summarizers/groups/{mmlu,bbh}.py``), stanford-crfm/helm
(``src/helm/benchmark/run_specs/{lite,classic,capabilities}_run_specs.py``,
``presentation/run_entries_mmlu.conf``), huggingface/lighteval (``src/lighteval/tasks/tasks/*.py``;
tag v0.9.2 ``src/lighteval/tasks/default_tasks.py``), UKGovernmentBEIS/inspect_evals
(``_registry.py``, ``mmlu``/``math`` sample metadata), evaleval/every_eval_ever (leaderboard
``dataset_name``).
"""

from __future__ import annotations

import functools

MMLU_SUBJECTS = (
    "abstract_algebra", "anatomy", "astronomy", "business_ethics", "clinical_knowledge", "college_biology",
    "college_chemistry", "college_computer_science", "college_mathematics", "college_medicine", "college_physics",
    "computer_security", "conceptual_physics", "econometrics", "electrical_engineering", "elementary_mathematics",
    "formal_logic", "global_facts", "high_school_biology", "high_school_chemistry", "high_school_computer_science",
    "high_school_european_history", "high_school_geography", "high_school_government_and_politics",
    "high_school_macroeconomics", "high_school_mathematics", "high_school_microeconomics", "high_school_physics",
    "high_school_psychology", "high_school_statistics", "high_school_us_history", "high_school_world_history",
    "human_aging", "human_sexuality", "international_law", "jurisprudence", "logical_fallacies", "machine_learning",
    "management", "marketing", "medical_genetics", "miscellaneous", "moral_disputes", "moral_scenarios", "nutrition",
    "philosophy", "prehistory", "professional_accounting", "professional_law", "professional_medicine",
    "professional_psychology", "public_relations", "security_studies", "sociology", "us_foreign_policy", "virology",
    "world_religions",
)  # fmt: skip
BBH_SUBTASKS = (
    "boolean_expressions", "causal_judgement", "date_understanding", "disambiguation_qa", "dyck_languages",
    "formal_fallacies", "geometric_shapes", "hyperbaton", "logical_deduction_five_objects",
    "logical_deduction_seven_objects", "logical_deduction_three_objects", "movie_recommendation",
    "multistep_arithmetic_two", "navigate", "object_counting", "penguins_in_a_table",
    "reasoning_about_colored_objects", "ruin_names", "salient_translation_error_detection", "snarks",
    "sports_understanding", "temporal_sequences", "tracking_shuffled_objects_five_objects",
    "tracking_shuffled_objects_seven_objects", "tracking_shuffled_objects_three_objects", "web_of_lies",
    "word_sorting",
)  # fmt: skip
MATH_SUBJECTS = (
    "algebra", "counting_and_probability", "geometry", "intermediate_algebra", "number_theory", "prealgebra",
    "precalculus",
)  # fmt: skip

# Canonical benchmark -> its canonical categories (a one-task benchmark is its own category).
BENCHMARKS: dict[str, tuple[str, ...]] = {
    "mmlu": MMLU_SUBJECTS,
    "arc_easy": ("arc_easy",),
    "arc_challenge": ("arc_challenge",),
    "hellaswag": ("hellaswag",),
    "gsm8k": ("gsm8k",),
    "truthfulqa": ("mc1", "mc2", "gen", "mc"),
    "winogrande": ("winogrande",),
    "bbh": BBH_SUBTASKS,
    "ifeval": ("ifeval",),
    "math": MATH_SUBJECTS,
    "math_hard": MATH_SUBJECTS,
    "math_500": ("math_500",),
}

# Other spellings of a category inside task names (both directions of the lookup use them).
CATEGORY_SPELLINGS: dict[str, dict[str, str]] = {
    "bbh": {"causal_judgment": "causal_judgement"},  # lighteval
    "math": {"counting_and_prob": "counting_and_probability", "num_theory": "number_theory", "precalc": "precalculus"},
    "math_hard": {"counting_and_prob": "counting_and_probability", "num_theory": "number_theory"},
    "truthfulqa": {"mc_single": "mc1", "generation": "gen", "multiple_choice": "mc"},  # HELM; lighteval subsets
}

# Task names built from a category: "{}" stands for each category (and each of its spellings).
TASK_TEMPLATES: dict[str, tuple[str, ...]] = {
    "mmlu": (
        # lm-eval 0.4: lm_eval/tasks/mmlu/{default,continuation,generative,flan_cot_*,flan_n_shot/*}
        "mmlu_{}", "mmlu_{}_continuation", "mmlu_{}_generative", "mmlu_flan_cot_fewshot_{}",
        "mmlu_flan_cot_zeroshot_{}", "mmlu_flan_n_shot_generative_{}", "mmlu_flan_n_shot_loglikelihood_{}",
        "hendrycksTest-{}",  # lm-eval 0.3: lm_eval/tasks/hendrycks_test.py
        "lukaemon_mmlu_{}",  # OpenCompass: configs/datasets/mmlu/*.py
        "mmlu:{}",  # lighteval: tasks/tasks/mmlu.py (suites leaderboard, original, helm, lighteval)
        "mmlu:subject={}",  # HELM: run_specs/lite_run_specs.py get_mmlu_spec
    ),
    "bbh": (
        # lm-eval 0.4: lm_eval/tasks/bbh/{cot_fewshot,cot_zeroshot,fewshot,zeroshot}, tasks/leaderboard/bbh_mc
        "bbh_cot_fewshot_{}", "bbh_cot_zeroshot_{}", "bbh_fewshot_{}", "bbh_zeroshot_{}", "leaderboard_bbh_{}",
        "bbh-{}",  # OpenCompass: configs/datasets/bbh/*.py
        "bbh:{}",  # lighteval <= 0.11 (suite harness, lukaemon/bbh)
        "bigbench_hard:{}",  # lighteval >= 0.12: tasks/tasks/bigbench_hard.py
        "harness|bigbench:{}",  # lighteval <= 0.11: BBH from lighteval/bbh
    ),
    "math": (
        "hendrycks_math_{}", "minerva_math_{}",  # lm-eval 0.4: lm_eval/tasks/{hendrycks_math,minerva_math}
        "math_{}",  # lm-eval 0.3: lm_eval/tasks/__init__.py (math_algebra, math_num_theory, ...)
        "math:{}", "math_cot:{}",  # lighteval: tasks/tasks/math.py; <= 0.11 default_tasks.py
        "math:subject={}",  # HELM: run_specs/lite_run_specs.py get_math_spec
    ),
    "math_hard": ("leaderboard_math_{}_hard",),  # lm-eval 0.4: lm_eval/tasks/leaderboard/math
}  # fmt: skip

# Whole task names of one (benchmark, category).
TASK_NAMES: dict[tuple[str, str], tuple[str, ...]] = {
    # lm-eval 0.4/0.3, lighteval, OpenCompass (ARC_e/ARC_c configs), inspect_evals
    ("arc_easy", "arc_easy"): ("arc_easy", "arc:easy", "ARC-e"),
    ("arc_challenge", "arc_challenge"): (
        "arc_challenge", "arc_challenge_chat", "arc:challenge", "arc:c:letters", "arc:c:options", "arc:c:simple",
        "ARC-c",
    ),
    ("hellaswag", "hellaswag"): ("hellaswag", "commonsense:dataset=hellaswag"),  # the second: HELM
    ("gsm8k", "gsm8k"): (
        "gsm8k", "gsm8k_cot", "gsm8k_cot_zeroshot", "gsm8k_cot_self_consistency", "gsm8k_cot_llama", "gsm",
    ),
    ("winogrande", "winogrande"): ("winogrande",),
    ("ifeval", "ifeval"): ("ifeval", "leaderboard_ifeval", "IFEval"),
    ("truthfulqa", "mc1"): ("truthfulqa_mc1", "truthful_qa:task=mc_single"),
    ("truthfulqa", "mc2"): ("truthfulqa_mc2",),
    ("truthfulqa", "gen"): ("truthfulqa_gen", "truthfulqa:gen", "truthful_qa"),  # the last: OpenCompass
    ("truthfulqa", "mc"): ("truthfulqa_mc", "truthfulqa:mc"),
    ("math_500", "math_500"): ("math_500", "minerva_math500", "hendrycks_math500", "math-500", "math_prm800k_500"),
}  # fmt: skip

# Names of a whole benchmark (groups, suites, HELM scenarios and groups, inspect tasks run over every
# subject): they give the benchmark; the category is then the row's own, canonicalised if known.
BENCHMARK_NAMES: dict[str, tuple[str, ...]] = {
    "mmlu": (
        "mmlu", "mmlu_continuation", "mmlu_generative", "mmlu_flan_cot_fewshot", "mmlu_flan_cot_zeroshot",
        "mmlu_flan_n_shot_generative", "mmlu_flan_n_shot_loglikelihood", "mmlu_0_shot", "mmlu_5_shot",
    ),
    "bbh": ("bbh", "bbh_cot_fewshot", "bbh_cot_zeroshot", "bbh_fewshot", "bbh_zeroshot", "leaderboard_bbh",
            "bigbench_hard"),
    "math": ("math", "hendrycks_math", "minerva_math", "math_cot", "math_chain_of_thought", "math_regular"),
    "math_hard": ("math_hard", "leaderboard_math_hard", "MATH Level 5"),
    "truthfulqa": ("truthfulqa", "truthful_qa"),
    "arc_easy": ("arc_easy",),
    "arc_challenge": ("arc_challenge",),
    "hellaswag": ("hellaswag",),
    "gsm8k": ("gsm8k", "gsm"),
    "winogrande": ("winogrande",),
    "ifeval": ("ifeval",),
    "math_500": ("math_500",),
}  # fmt: skip

# Harnesses whose names are their own: the SO8T files are read as their analysis published them
# (its task arrays name `mmlu_abstract_algebra` a benchmark of its own, and the reproduction tests
# compare category by category), so RunBuilder leaves their rows as the adapter gives them.
OWN_NAMES_HARNESSES = frozenset({"so8t"})


def category_key(name: str) -> str:
    """A category name as looked up: lower case, ``&`` as ``and``, spaces and hyphens as ``_``.

    >>> category_key("Counting & Probability"), category_key(" High-School Biology")
    ('counting_and_probability', 'high_school_biology')
    """
    words = name.lower().replace("&", " and ").replace("-", " ").split()
    return "_".join(words)


def _tables() -> tuple[dict[str, tuple[str, str]], dict[str, str], dict[str, dict[str, str]]]:
    """(task spelling -> pair, benchmark spelling -> benchmark, benchmark -> {category key -> category})."""
    tasks: dict[str, tuple[str, str]] = {}
    categories: dict[str, dict[str, str]] = {}

    def add(spelling: str, pair: tuple[str, str]) -> None:
        key = spelling.lower()
        if tasks.setdefault(key, pair) != pair:
            raise ValueError(f"{spelling!r} names both {tasks[key]} and {pair}")

    for benchmark, cats in BENCHMARKS.items():
        spellings = {c: c for c in cats} | CATEGORY_SPELLINGS.get(benchmark, {})
        categories[benchmark] = {category_key(s): c for s, c in spellings.items()}
        for template in TASK_TEMPLATES.get(benchmark, ()):
            for spelling, category in spellings.items():
                add(template.format(spelling), (benchmark, category))
    for pair, names in TASK_NAMES.items():
        for name in names:
            add(name, pair)
    benchmarks = {name.lower(): b for b, names in BENCHMARK_NAMES.items() for name in names}
    return tasks, benchmarks, categories


_TASKS, _BENCHMARKS, _CATEGORIES = _tables()


def _spellings(name: str) -> tuple[list[str], list[str]]:
    """The keys to look a source's name up under: (as a task name, as a benchmark name).

    lighteval's ``suite|task|shots`` (or ``task|shots``) is tried as ``suite|task``, then ``task``;
    an inspect ``package/task`` also as ``task``; a HELM run name ``scenario:k=v,...`` as each
    ``scenario:k=v`` (its benchmark: the scenario).

    >>> _spellings("leaderboard|mmlu:anatomy|5")
    (['leaderboard|mmlu:anatomy', 'mmlu:anatomy'], ['leaderboard|mmlu:anatomy', 'mmlu:anatomy'])
    >>> _spellings("math:subject=algebra,level=1")
    (['math:subject=algebra', 'math:level=1'], ['math'])
    """
    low = name.strip().lower()
    if "|" in low:
        parts = low.split("|")
        if len(parts) > 1 and parts[-1].isdigit():
            parts = parts[:-1]
        keys = ["|".join(parts[-2:]), parts[-1]] if len(parts) > 1 else parts
    elif "/" in low:
        keys = [low, low.rsplit("/", 1)[1]]
    else:
        keys = [low]
    scenario, colon, args = keys[-1].partition(":")
    if colon and "=" in args:
        return [f"{scenario}:{arg}" for arg in args.split(",") if "=" in arg], [scenario]
    return keys, keys


def _as_task(name: str | None) -> tuple[str, str] | None:
    if name:
        for key in _spellings(name)[0]:
            if key in _TASKS:
                return _TASKS[key]
    return None


def _as_benchmark(name: str | None) -> str | None:
    if name:
        for key in _spellings(name)[1]:
            if key in _BENCHMARKS:
                return _BENCHMARKS[key]
    return None


@functools.lru_cache(maxsize=8192)
def canonical(benchmark: str | None, category: str | None, task: str | None) -> tuple[str | None, str | None]:
    """The canonical (benchmark, category) of a row, given the names an adapter found for it.

    Args:
        benchmark: the benchmark as the adapter placed the row (a group, a dataset, a suite, ...).
        category: its category, or None (then the benchmark stands for it).
        task: the source's task name (lm-eval task, lighteval key, HELM run name, ...), or None.

    Returns:
        The pair named by the task if it is a known spelling, else by the benchmark (when the
        category merely repeats it or is missing); else, when the task or benchmark names a known
        benchmark, that benchmark with the category canonicalised where known (kept otherwise,
        the benchmark itself when missing). Anything else comes back exactly as given.

    >>> canonical("leaderboard", "bbh_causal_judgement", "leaderboard_bbh_causal_judgement")
    ('bbh', 'causal_judgement')
    >>> canonical("mmlu_0_shot", "anatomy", "inspect_evals/mmlu_0_shot"), canonical("math", "number theory", "math")
    (('mmlu', 'anatomy'), ('math', 'number_theory'))
    """
    pair = _as_task(task)
    if pair is None and category in (None, benchmark):
        pair = _as_task(benchmark)
    if pair is not None:
        return pair
    found = _as_benchmark(task) or _as_benchmark(benchmark)
    if found is None:
        return benchmark, category
    if category is None or category in (benchmark, task):
        return found, found
    return found, _CATEGORIES[found].get(category_key(category), category)


@functools.lru_cache(maxsize=8192)
def canonical_row(
    benchmark: str | None, category: str | None, task: str | None
) -> tuple[str | None, str | None, str | None]:
    """``canonical`` plus the task: a row whose names change and that has no task keeps its source
    spelling there (the benchmark, or ``benchmark:category`` when both were given).

    >>> canonical_row("ARC-e", None, None), canonical_row("hellaswag", None, None)
    (('arc_easy', 'arc_easy', 'ARC-e'), ('hellaswag', None, None))
    """
    new_benchmark, new_category = canonical(benchmark, category, task)
    if (new_benchmark, new_category or new_benchmark) == (benchmark, category or benchmark):
        return benchmark, category, task
    if task is None:
        task = benchmark if category in (None, benchmark) else f"{benchmark}:{category}"
    return new_benchmark, new_category, task
