"""Synthetic corpora: deterministic result files with planted effects, for the demo, tests and bench.

A corpus is a small universe (model families with quantized and fine-tuned variants, benchmarks
whose items are shared by every model so that per-item pairing works) written out in the shapes
the adapters read. Each shape is one writer function registered under its adapter's
``source_format`` name (see :data:`WRITERS`); run ``i`` of a shape is drawn from a random
generator seeded with ``(seed, shape, i)``, so the same seed gives byte-identical files whatever
the number of worker processes.

The effects planted in the scores are declared as data (:data:`EFFECTS`) so that tests and the
demo report can check that the analysis recovers them:

>>> planted_effect("q4km", "math"), planted_effect("q8_0", "history"), planted_effect("ft", "日本語")
(-0.2, 0.0, 0.2)
>>> variant_of("basem", "q4_k_m"), variant_of("basem-ft", None), variant_of("other", None)
(('basem', 'q4km'), ('basem', 'ft'), None)
"""

from __future__ import annotations

import functools
import json
import os
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson

# ---------------------------------------------------------------------------------------------
# The universe, declared as data
# ---------------------------------------------------------------------------------------------

# Model families; a corpus uses the first few (see families_for).
FAMILIES = ("basem", "corvid", "lumen", "saga", "tern", "vireo", "wren", "pika", "quill", "orca")
# Variant kind -> (model-name suffix, quantization as the engine normalises it, or None).
VARIANTS: dict[str, tuple[str, str | None]] = {
    "base": ("", None),
    "q4km": ("-q4km", "q4_k_m"),
    "q8_0": ("-q8_0", "q8_0"),
    "ft": ("-ft", None),
}

# Benchmark -> (item-identity style, categories). The styles are the three ways so8t-results
# files identify an item: `test_name`, `benchmark` + `task_index`, or only the question text.
BENCHMARKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "reasoning": ("test_name", ("math", "logic", "coding", "science")),
    "elyza_jp": ("task_index", ("日本語", "translation", "reading", "summarization")),
    "critical_infra": ("question", ("threat_detection", "medical", "finance", "ethics")),
    "knowledge": ("test_name", ("history", "geography", "general_knowledge", "trivia")),
}
ITEMS_PER_CATEGORY = 25  # 4 categories x 25 = 100 items per so8t-results run

# Task-array (so8t-tasks) tasks; each task is its own benchmark and category.
TASKS = ("gsm8k", "mmlu_abstract_algebra", "mmlu_world_history", "arc_challenge", "hellaswag")
ITEMS_PER_TASK = 40
# The so8t-tasks adapter names a run by the base model of its file name (`basem_q4km_results.json`
# is model `basem`, quantization q4_k_m), so quantized task arrays would merge with the base
# model's runs under one `model`; only unquantized variants get task arrays.
TASK_VARIANTS = ("base", "ft")

# lm-eval samples files: one task each, LM_DOCS docs (the shape lm-eval writes for a 4-choice
# task, ~2 KB a line); each task is its own benchmark and category.
LM_TASKS = ("arc_easy", "hellaswag", "winogrande")
LM_DOCS = 1000

# so8t-ab files: a base model at q8_0 against its fine-tune at q8_0, on arithmetic questions.
AB_ITEMS = 50
# so8t-ab questions have no category in the files; their planted effects are this category's
# (the A/B harness measures what the fine-tune was made for, so its effect is large).
AB_CATEGORY = "arithmetic"

# Planted effects: (variant kind, category) -> change in the expected score against the base
# model (scores are 0..1). Every pair not listed is unchanged (0.0).
EFFECTS: dict[tuple[str, str], float] = {
    ("q4km", "math"): -0.20,
    ("q4km", "logic"): -0.15,
    ("q4km", "coding"): -0.15,
    ("q4km", "日本語"): -0.15,
    ("q8_0", "coding"): -0.10,
    ("ft", "日本語"): +0.20,
    ("ft", "translation"): +0.15,
    ("ft", "math"): +0.15,
    ("ft", "gsm8k"): +0.30,  # task arrays and A/B files are small (40 and 50 items): larger effects
    ("ft", "arithmetic"): +0.30,
    ("q4km", "arc_easy"): -0.15,
    ("ft", "arc_easy"): +0.15,
    ("ft", "ethics"): -0.15,
    ("ft", "medical"): -0.10,
}

# Standard deviation of the per-answer noise of graded (0..1) scores and of the per-run offset. Every
# model runs each benchmark several times (a 300-run corpus: 5 so8t-results runs of each model on each
# benchmark, 5 task arrays of each base and fine-tune), so `evalhouse noise` has a run-to-run spread
# to show: see planted_run_sd.
ANSWER_NOISE = 0.12
RUN_NOISE = 0.01
# Graded so8t-results scores are rounded to 1 / SCORE_STEPS.
SCORE_STEPS = 20
START = datetime(2025, 3, 1, 9, 0, 0)

# Extra files of a `mixed` corpus: run metadata with no scores, and files that must be rejected.
NO_SCORES_FILES = 2
BROKEN = ("truncated", "score_not_a_number", "unknown_shape")


def planted_effect(kind: str, category: str) -> float:
    """The planted change of the mean score of variant ``kind`` against its base in ``category``.

    Args:
        kind: a key of VARIANTS (``base``, ``q4km``, ``q8_0``, ``ft``).
        category: a category of BENCHMARKS or a task of TASKS.

    Returns:
        The change in expected score (0.0 for pairs not in EFFECTS). so8t-ab items have no
        category (the engine files them under ``unknown``); theirs is AB_CATEGORY's effect.
    """
    return EFFECTS.get((kind, AB_CATEGORY if category == "unknown" else category), 0.0)


def planted_run_sd(items: int) -> float:
    """The planted run-to-run standard deviation of a model's mean over ``items`` graded so8t-results items.

    One run's offset (RUN_NOISE) is shared by its items; each answer adds ANSWER_NOISE and the
    rounding to 1 / SCORE_STEPS (uniform, variance step^2 / 12). Clipping to 0..1 is left out: it
    seldom applies to a model without a planted effect.

    >>> round(planted_run_sd(100), 4)
    0.0157
    """
    return float(np.sqrt(RUN_NOISE**2 + (ANSWER_NOISE**2 + SCORE_STEPS**-2 / 12) / items))


def planted_pairs(families: int) -> list[tuple[str, str, str]]:
    """(baseline, candidate, variant kind) of every comparison a corpus plants effects in.

    Each variant against its base model, and each so8t-ab file's fine-tune against its base
    (both at q8_0, ``basem:q8_0`` -> ``basem-ft:q8_0``: kind ``ft``).

    >>> planted_pairs(1)[1:]
    [('basem', 'basem-q8_0', 'q8_0'), ('basem', 'basem-ft', 'ft'), ('basem:q8_0', 'basem-ft:q8_0', 'ft')]
    """
    out = []
    for family in FAMILIES[:families]:
        out += [(family, family + suffix, kind) for kind, (suffix, _q) in VARIANTS.items() if kind != "base"]
        out.append((f"{family}:q8_0", f"{family}-ft:q8_0", "ft"))
    return out


def variant_of(model_base: str | None, quantization: str | None) -> tuple[str, str] | None:
    """(family, variant kind) of a synthetic model from the engine's ``model_base``/``quantization``.

    Every shape's model names parse to the same pair (``basem-q4km`` and ``basem_q4km_results.json``
    are both ``basem`` + ``q4_k_m``), so this is the key to compare variants across shapes.
    ``so8t-ab`` models (``basem:q8_0``, ``basem-ft:q8_0``) map to ``q8_0`` and ``ft`` at q8_0,
    which returns ``(family, "ft")`` too.
    """
    if not model_base:
        return None
    for kind, (suffix, quant) in VARIANTS.items():
        if suffix and not quant and model_base.endswith(suffix):
            family = model_base.removesuffix(suffix)
            return (family, kind) if family in FAMILIES else None
    if model_base not in FAMILIES:
        return None
    for kind, (_suffix, quant) in VARIANTS.items():
        if quant == quantization:
            return model_base, kind
    return None


def families_for(runs: int) -> int:
    """How many model families a corpus of ``runs`` runs uses: 2 for a few runs, up to 10.

    Ten families make 40 models and, with 16 so8t-results categories, 40*39/2*16 = 12,480
    (model pair, category) comparisons, the scale the benchmark's `compare` target names.

    >>> families_for(50), families_for(300), families_for(10_000)
    (2, 3, 10)
    """
    return max(2, min(len(FAMILIES), runs // 100))


# ---------------------------------------------------------------------------------------------
# Text pools and the universe built from a seed
# ---------------------------------------------------------------------------------------------

_SYLLABLES = [c + v for c in "bdfghklmnprstvz" for v in "aeiou"] + ["th", "st", "qu"]
_JP_PREFIX = "次の質問に日本語で答えてください。"


@dataclass(frozen=True)
class Item:
    """One benchmark item: the same for every model, so answers pair across models."""

    benchmark: str
    category: str
    index: int  # position within its benchmark (task_index)
    test_name: str
    question: str
    expected: str
    p: float  # the base models' expected score before family offsets and effects


@dataclass(frozen=True)
class Model:
    """One model variant: its name, family, kind and the family's ability offset."""

    name: str
    family: str
    kind: str
    offset: float


@dataclass(frozen=True)
class Universe:
    """Everything shared by the runs of a corpus (built once per process from the seed)."""

    seed: int
    models: tuple[Model, ...]
    items: dict[str, tuple[Item, ...]]  # benchmark or task -> its items
    ab_items: tuple[Item, ...]
    responses: tuple[str, ...]  # pool of ~600-character answers
    short_answers: tuple[str, ...]


def _words(rng: np.random.Generator, n: int) -> list[str]:
    lengths = rng.integers(1, 4, size=n)
    picks = rng.integers(0, len(_SYLLABLES), size=int(lengths.sum()))
    out, at = [], 0
    for length in lengths.tolist():
        out.append("".join(_SYLLABLES[j] for j in picks[at : at + length].tolist()))
        at += length
    return out


def _sentence(rng: np.random.Generator, vocab: list[str], chars: int, end: str) -> str:
    """Words from ``vocab`` until about ``chars`` characters."""
    picks = rng.integers(0, len(vocab), size=chars // 4 + 8).tolist()
    parts: list[str] = []
    size = 0
    for j in picks:
        if size >= chars:
            break
        parts.append(vocab[j])
        size += len(vocab[j]) + 1
    text = " ".join(parts)
    return text[0].upper() + text[1:] + end


@functools.lru_cache(maxsize=4)
def universe(seed: int, families: int) -> Universe:
    """The models, items and text pools of a corpus.

    Args:
        seed: the corpus seed.
        families: how many of FAMILIES to use.

    Returns:
        A Universe; the same arguments always give the same one.

    >>> u = universe(0, 2)
    >>> [m.name for m in u.models][:4], len(u.items["reasoning"])
    (['basem', 'basem-q4km', 'basem-q8_0', 'basem-ft'], 100)
    """
    rng = np.random.default_rng([seed, 0x5EED])
    vocab = _words(rng, 2000)
    models = []
    for family in FAMILIES[:families]:
        offset = round(float(rng.uniform(-0.08, 0.08)), 3)
        models += [Model(family + suffix, family, kind, offset) for kind, (suffix, _q) in VARIANTS.items()]
    items: dict[str, tuple[Item, ...]] = {}
    for bench, (_style, categories) in BENCHMARKS.items():
        rows = []
        for c, category in enumerate(categories):
            for k in range(ITEMS_PER_CATEGORY):
                q = _sentence(rng, vocab, int(rng.normal(200, 30)), "?")
                if bench == "elyza_jp":
                    q = _JP_PREFIX + q
                rows.append(Item(bench, category, c * ITEMS_PER_CATEGORY + k, f"{category} {k + 1:03d}", q,
                                 _sentence(rng, vocab, 24, "."), round(float(rng.uniform(0.3, 0.7)), 3)))  # fmt: skip
        items[bench] = tuple(rows)
    for task in TASKS:
        items[task] = tuple(
            Item(task, task, k, f"{task} {k}", _sentence(rng, vocab, int(rng.normal(200, 30)), "?"),
                 str(int(rng.integers(0, 1000))), round(float(rng.uniform(0.3, 0.7)), 3))
            for k in range(ITEMS_PER_TASK)
        )  # fmt: skip
    for task in LM_TASKS:
        items[task] = tuple(
            Item(task, task, k, str(k), _sentence(rng, vocab, int(rng.normal(200, 30)), "?"), "",
                 round(float(rng.uniform(0.3, 0.7)), 3))
            for k in range(LM_DOCS)
        )  # fmt: skip
    ab = []
    for k in range(AB_ITEMS):
        a, b = (int(x) for x in rng.integers(2, 99, size=2))
        ab.append(Item("ab", AB_CATEGORY, k, f"q{k + 1}", f"What is {a}*{b}? Show the working.", str(a * b),
                       round(float(rng.uniform(0.3, 0.7)), 3)))  # fmt: skip
    responses = tuple(_sentence(rng, vocab, int(np.clip(rng.normal(600, 120), 200, 1200)), ".") for _ in range(2048))
    short = tuple(_sentence(rng, vocab, 12, "") for _ in range(256))
    return Universe(seed, tuple(models), items, tuple(ab), responses, short)


# ---------------------------------------------------------------------------------------------
# Writers: one per source_format
# ---------------------------------------------------------------------------------------------

# A writer turns run ``i`` of its shape into its files: [(relative path, bytes)] (most shapes
# write one file a run; lm-eval writes the samples file and the results file beside it).
Files = list[tuple[str, bytes]]
Writer = Callable[[Universe, int], Files]
WRITERS: dict[str, Writer] = {}


def writer(name: str) -> Callable[[Writer], Writer]:
    """Register a writer under an adapter's source_format name."""

    def register(fn: Writer) -> Writer:
        WRITERS[name] = fn
        return fn

    return register


def _rng(u: Universe, shape: str, i: int) -> np.random.Generator:
    return np.random.default_rng([u.seed, zlib.crc32(shape.encode()), i])


def _expected(u: Universe, model: Model, items: tuple[Item, ...], rng: np.random.Generator,
              kinds: tuple[str, ...] | None = None) -> np.ndarray:  # fmt: skip
    """Expected score of each item for ``model`` in one run (family offset, effects, run noise)."""
    kinds = kinds or (model.kind,)
    p = np.array([it.p for it in items])
    effect = np.array([sum(planted_effect(k, it.category) for k in kinds) for it in items])
    return p + model.offset + effect + rng.normal(0, RUN_NOISE)


def _ts(t: datetime) -> str:
    return t.isoformat(timespec="microseconds")


@writer("so8t-results")
def write_so8t_results(u: Universe, i: int) -> Files:
    """One model on one benchmark: ``{"metadata", "results": [100 items], "summary"}``."""
    rng = _rng(u, "so8t-results", i)
    model = u.models[i % len(u.models)]
    bench = list(BENCHMARKS)[(i // len(u.models)) % len(BENCHMARKS)]
    style, categories = BENCHMARKS[bench]
    items = u.items[bench]
    n = len(items)
    mu = _expected(u, model, items, rng)
    scores = (np.round(np.clip(mu + rng.normal(0, ANSWER_NOISE, n), 0, 1) * SCORE_STEPS) / SCORE_STEPS).tolist()
    times = np.round(rng.lognormal(1.0, 0.5, n), 3)
    picks = rng.integers(0, len(u.responses), n).tolist()
    start = START + timedelta(minutes=7 * i, seconds=int(rng.integers(0, 60)))
    offsets = np.cumsum(times).tolist()
    rows: list[dict[str, Any]] = []
    for k, it in enumerate(items):
        row: dict[str, Any] = {"model": model.name}
        if style == "question":
            row |= {"domain": bench, "category": it.category, "scenario": it.test_name,
                    "criticality": ("low", "medium", "high")[k % 3]}  # fmt: skip
        elif style == "task_index":
            row |= {"benchmark": bench, "task_index": it.index, "category": it.category}
        else:
            row |= {"category": it.category, "test_name": it.test_name}
        row |= {
            "question": it.question,
            "expected_answer": it.expected,
            "response": u.responses[picks[k]],
            "score": scores[k],
            "response_time": float(times[k]),
            "timestamp": _ts(start + timedelta(seconds=offsets[k])),
            "evaluation_type": "rubric" if k % 4 else "exact",
        }
        rows.append(row)
    doc = {
        "metadata": {
            "timestamp": _ts(start),
            "models": [model.name],
            "categories": list(categories),
            "benchmarks": [bench],
            "total_tests": n,
            "total_execution_time": round(offsets[-1], 3),
        },
        "results": rows,
        "summary": {f"{model.name}_avg_score": round(sum(scores) / n, 4)},
    }
    kind = {"test_name": "automated_benchmark", "task_index": "simple_abc", "question": "critical_infrastructure_abc"}
    return [(f"so8t-results/{start:%Y%m%d_%H%M%S}_{i:05d}_{kind[style]}_results.json", orjson.dumps(doc))]


def _task_models(u: Universe) -> list[Model]:
    return [m for m in u.models if m.kind in TASK_VARIANTS]


@writer("so8t-tasks")
def write_so8t_tasks(u: Universe, i: int) -> Files:
    """One model's task array, named ``<model>_results.json`` in a folder per evaluation session."""
    rng = _rng(u, "so8t-tasks", i)
    models = _task_models(u)
    model = models[i % len(models)]
    session = START + timedelta(hours=6 * (i // len(models)))
    rows = []
    for task in TASKS:
        items = u.items[task]
        correct = rng.random(len(items)) < np.clip(_expected(u, model, items, rng), 0.02, 0.98)
        picks = rng.integers(0, len(u.responses), len(items)).tolist()
        speed = np.round(rng.normal(60, 5, len(items)), 2).tolist()
        wall = np.round(rng.lognormal(1.0, 0.4, len(items)), 3).tolist()
        for k, it in enumerate(items):
            rows.append({
                "task": task, "type": "math_reasoning" if task == "gsm8k" else "multiple_choice",
                "question": it.question, "model_response": u.responses[picks[k]], "correct_answer": it.expected,
                "is_correct": bool(correct[k]), "tokens_per_sec": speed[k], "wall_time": wall[k],
            })  # fmt: skip
    return [(f"so8t-tasks/{session:%Y%m%d_%H%M}/{model.name}_results.json", orjson.dumps(rows))]


@writer("so8t-ab")
def write_so8t_ab(u: Universe, i: int) -> Files:
    """A base model at q8_0 (``basem:q8_0``) against its fine-tune at q8_0 (``basem-ft:q8_0``)."""
    rng = _rng(u, "so8t-ab", i)
    families = sorted({m.family for m in u.models}, key=FAMILIES.index)
    family = families[i % len(families)]
    by_kind = {m.kind: m for m in u.models if m.family == family}
    when = START + timedelta(hours=5 * i, seconds=int(rng.integers(0, 3600)))
    cases = [{"question": it.question, "expected_answer": it.expected, "difficulty": ("basic", "multi_step")[k % 2]}
             for k, it in enumerate(u.ab_items)]  # fmt: skip
    doc: dict[str, Any] = {}
    sides = (("baseline", ("q8_0",), f"{family}:q8_0"), ("improved", ("ft", "q8_0"), f"{family}-ft:q8_0"))
    for side, kinds, name in sides:
        model = by_kind["ft" if side == "improved" else "base"]
        mu = np.clip(_expected(u, model, u.ab_items, rng, kinds), 0.02, 0.98)
        correct = (rng.random(len(mu)) < mu).tolist()
        partial = np.round(rng.uniform(0, 0.6, len(mu)), 1).tolist()
        times = np.round(rng.lognormal(1.5, 0.5, len(mu)), 2).tolist()
        picks = rng.integers(0, len(u.short_answers), len(mu)).tolist()
        results, evaluations = [], []
        for k, it in enumerate(u.ab_items):
            results.append({"question_id": k + 1, "question": it.question, "response": u.short_answers[picks[k]],
                            "response_time": times[k], "success": True, "error": None})  # fmt: skip
            evaluations.append({"correct": correct[k], "partial_credit": 1.0 if correct[k] else partial[k],
                                "reasoning_quality": "good" if correct[k] else "poor",
                                "hallucination_detected": False})  # fmt: skip
        doc[side] = {"model": name, "results": results, "evaluations": evaluations, "test_cases": cases}
    doc["analysis"] = {"note": "derived from the evaluations"}
    doc["timestamp"] = _ts(when)
    return [(f"so8t-ab/improvement_benchmark_results_{when:%Y%m%d_%H%M%S}_{i:04d}.json", orjson.dumps(doc))]


def _hex(rng: np.random.Generator, n: int) -> list[str]:
    return [f"{int(a):016x}{int(b):016x}{int(c):016x}{int(d):016x}" for a, b, c, d in rng.integers(0, 2**63, (n, 4))]


@functools.lru_cache(maxsize=8)
def _lm_static(seed: int, families: int, task: str) -> tuple[bytes, ...]:
    """The part of each samples line that is the same for every model (doc, prompts, hashes),
    serialised once per process: a line is this plus the model's responses and scores."""
    u = universe(seed, families)
    rng = np.random.default_rng([seed, zlib.crc32(task.encode())])
    hashes = _hex(rng, 3 * len(u.items[task]))
    out = []
    for k, it in enumerate(u.items[task]):
        choices = [u.short_answers[int(j)] for j in rng.integers(0, len(u.short_answers), 4)]
        prompt = f"Question: {it.question}\nAnswer:"
        static = {
            "doc": {"id": f"{task}-{k}", "question": it.question,
                    "choices": {"text": choices, "label": ["A", "B", "C", "D"]}, "answerKey": "ABCD"[k % 4]},
            "target": k % 4,
            "arguments": {f"gen_args_{c}": {"arg_0": prompt, "arg_1": " " + text} for c, text in enumerate(choices)},
            "doc_hash": hashes[3 * k], "prompt_hash": hashes[3 * k + 1], "target_hash": hashes[3 * k + 2],
        }  # fmt: skip
        out.append(orjson.dumps(static)[1:-1])
    return tuple(out)


@writer("lm-eval-samples")
def write_lm_eval_samples(u: Universe, i: int) -> Files:
    """One model on one task: ``<model>/samples_<task>_<time>.jsonl`` (LM_DOCS lines, ~2 KB each)
    and the ``results_<time>.json`` lm-eval writes beside it (which names the model)."""
    rng = _rng(u, "lm-eval-samples", i)
    model = u.models[i % len(u.models)]
    task = LM_TASKS[(i // len(u.models)) % len(LM_TASKS)]
    items = u.items[task]
    static = _lm_static(u.seed, len(u.models) // len(VARIANTS), task)
    p = np.clip(_expected(u, model, items, rng), 0.02, 0.98)
    acc = (rng.random(len(items)) < p).tolist()
    acc_norm = (rng.random(len(items)) < p).tolist()
    logprobs = np.round(-rng.random((len(items), 4)) * 10, 4).tolist()
    lines = []
    for k in range(len(items)):
        target = k % 4
        picked = target if acc[k] else (target + 1) % 4
        resps = [[lp, c == picked] for c, lp in enumerate(logprobs[k])]
        dynamic = orjson.dumps({
            "resps": [[r] for r in resps], "filtered_resps": resps, "filter": "none", "metrics": ["acc", "acc_norm"],
            "acc": 1.0 if acc[k] else 0.0, "acc_norm": 1.0 if acc_norm[k] else 0.0,
        })  # fmt: skip
        lines.append(b'{"doc_id":%d,%s,%s\n' % (k, static[k], dynamic[1:]))
    when = START + timedelta(minutes=3 * i)
    stamp = f"{when:%Y-%m-%dT%H-%M-%S}"
    n = len(items)
    mean, mean_norm = sum(acc) / n, sum(acc_norm) / n
    results = {
        "results": {task: {"alias": task, "acc,none": mean, "acc_stderr,none": (mean * (1 - mean) / (n - 1)) ** 0.5,
                           "acc_norm,none": mean_norm,
                           "acc_norm_stderr,none": (mean_norm * (1 - mean_norm) / (n - 1)) ** 0.5}},
        "group_subtasks": {task: []},
        "configs": {task: {"task": task, "output_type": "multiple_choice", "num_fewshot": 0}},
        "versions": {task: 1.0}, "n-shot": {task: 0},
        "higher_is_better": {task: {"acc": True, "acc_norm": True}},
        "n-samples": {task: {"original": n, "effective": n}},
        "config": {"model": "hf", "model_args": f"pretrained={model.name}", "batch_size": 8},
        "model_name": model.name, "model_name_sanitized": model.name,
        "date": when.timestamp(), "lm_eval_version": "0.4.8",
    }  # fmt: skip
    folder = f"lm-eval/{model.name}"
    return [(f"{folder}/samples_{task}_{stamp}.jsonl", b"".join(lines)),
            (f"{folder}/results_{stamp}.json", orjson.dumps(results))]  # fmt: skip


@writer("no-scores")
def write_no_scores(u: Universe, i: int) -> Files:
    """Run metadata with no scores (``deepeval/<run>/metadata.json``): ingested as not-results."""
    model = u.models[i % len(u.models)]
    when = START + timedelta(days=i)
    doc = {"model_runner": "ollama", "model_name": f"{model.name}:latest", "evaluation_model": "judge-1",
           "timestamp": f"{when:%Y%m%d_%H%M%S}", "cases_file": None}  # fmt: skip
    return [(f"no-scores/deepeval_{model.name}_{when:%Y%m%d_%H%M%S}/metadata.json", orjson.dumps(doc))]


def write_broken(u: Universe, i: int) -> Files:
    """Files every ingest must reject, with names like the good ones: see BROKEN."""
    what = BROKEN[i % len(BROKEN)]
    name = f"so8t-results/{START - timedelta(days=i + 1):%Y%m%d_%H%M%S}_broken_{i:02d}_automated_benchmark_results.json"
    if what == "unknown_shape":
        return [(name, orjson.dumps({"experiment": {"name": "x", "rows": [{"a": 1}]}, "notes": ["n"]}))]
    [(_path, data)] = write_so8t_results(u, 100_000 + i)
    if what == "truncated":
        return [(name, data[: len(data) // 2])]
    doc = orjson.loads(data)
    doc["results"][len(doc["results"]) // 2]["score"] = "n/a"
    return [(name, orjson.dumps(doc))]


# ---------------------------------------------------------------------------------------------
# Planning and writing a corpus
# ---------------------------------------------------------------------------------------------


def plan(runs: int, shape: str = "mixed") -> dict[str, int]:
    """How many files of each shape a corpus has.

    ``runs`` counts files with scores (an so8t-ab file holds two runs, baseline and improved).
    A ``mixed`` corpus is mostly so8t-results, with a tenth task arrays, a twentieth A/B files, a
    twentieth lm-eval samples files (each with its results file), plus NO_SCORES_FILES metadata
    files and one file of each BROKEN kind.

    >>> plan(300)
    {'so8t-results': 240, 'so8t-tasks': 30, 'so8t-ab': 15, 'lm-eval-samples': 15, 'no-scores': 2, 'broken': 3}
    >>> plan(5, "so8t-tasks")
    {'so8t-tasks': 5}
    """
    if shape != "mixed":
        if shape not in WRITERS:
            raise ValueError(f"unknown shape {shape!r}; one of {', '.join([*WRITERS, 'mixed'])}")
        return {shape: runs}
    tasks, ab, lm = runs // 10, runs // 20, runs // 20
    return {"so8t-results": runs - tasks - ab - lm, "so8t-tasks": tasks, "so8t-ab": ab, "lm-eval-samples": lm,
            "no-scores": NO_SCORES_FILES, "broken": len(BROKEN)}  # fmt: skip


@dataclass
class SynthReport:
    """What :func:`generate` wrote."""

    files: int
    bytes: int
    counts: dict[str, int]
    families: int


MANIFEST = ".synth.json"  # dot files: ingest's folder walk never offers them
COMPARE_CONFIG = ".evalhouse.toml"
PARALLEL_MIN_FILES = 200


def generate(out: str | os.PathLike[str], runs: int, *, shape: str = "mixed", seed: int = 0,
             families: int | None = None, workers: int | None = None) -> SynthReport:  # fmt: skip
    """Write a synthetic corpus into ``out`` (created if needed; files of the same name are replaced).

    Args:
        out: the folder to write into.
        runs: files with scores (see :func:`plan`).
        shape: a source_format of WRITERS, or ``mixed`` for all of them plus broken files.
        seed: the same seed gives byte-identical files.
        families: model families to use (default :func:`families_for` ``(runs)``).
        workers: processes (default: one per core for large corpora).

    Returns:
        A SynthReport; the parameters are also written to ``out/.synth.json``.

    >>> import tempfile; d = tempfile.mkdtemp()
    >>> generate(d, 3, shape="so8t-results").files
    3
    """
    counts = plan(runs, shape)
    fams = families or families_for(runs)
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[str, int, int, str, int, int]] = []
    total = sum(counts.values())
    n_workers = workers or os.cpu_count() or 1
    per_job = max(50, total // (n_workers * 8) + 1)
    for name, count in counts.items():
        for lo in range(0, count, per_job):
            jobs.append((str(root), seed, fams, name, lo, min(count, lo + per_job)))
    if n_workers > 1 and total >= PARALLEL_MIN_FILES:
        with ProcessPoolExecutor(max_workers=n_workers) as pool:
            done = list(pool.map(_write_range, jobs))
    else:
        done = list(map(_write_range, jobs))
    manifest = {"runs": runs, "shape": shape, "seed": seed, "families": fams, "counts": counts}
    (root / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (root / COMPARE_CONFIG).write_text(compare_config(fams), encoding="utf-8")
    return SynthReport(sum(f for f, _ in done), sum(b for _, b in done), counts, fams)


def compare_config(families: int) -> str:
    """An ``evalhouse.toml`` whose ``[compare]`` section pairs exactly the planted pairs.

    ``evalhouse compare``/``report`` pair a variant with the model named like its ``model_base``
    by default, which leaves out the fine-tunes (``basem-ft`` is a base name of its own); this
    file (written as ``.evalhouse.toml`` in the corpus) names every pair the effects are in.

    >>> print(compare_config(1))
    [compare]
    by = ["category"]
    pairs = [
      { baseline = "basem", candidate = ["basem-q4km", "basem-q8_0", "basem-ft"] },
      { baseline = "basem:q8_0", candidate = ["basem-ft:q8_0"] },
    ]
    <BLANKLINE>
    """
    rules: dict[str, list[str]] = {}
    for baseline, candidate, _kind in planted_pairs(families):
        rules.setdefault(baseline, []).append(candidate)
    lines = ["[compare]", 'by = ["category"]', "pairs = ["]
    for baseline, candidates in rules.items():
        lines.append(f"  {{ baseline = {json.dumps(baseline)}, candidate = {json.dumps(candidates)} }},")
    return "\n".join([*lines, "]", ""])


def read_manifest(out: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The parameters a corpus folder was generated with, or None if it has no manifest."""
    try:
        data = json.loads((Path(out) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_range(job: tuple[str, int, int, str, int, int]) -> tuple[int, int]:
    root, seed, fams, shape, lo, hi = job
    u = universe(seed, fams)
    write = write_broken if shape == "broken" else WRITERS[shape]
    made: set[Path] = set()
    size = 0
    files = 0
    for i in range(lo, hi):
        for rel, data in write(u, i):
            path = Path(root) / rel
            if path.parent not in made:
                path.parent.mkdir(parents=True, exist_ok=True)
                made.add(path.parent)
            path.write_bytes(data)
            size += len(data)
            files += 1
    return files, size
