"""Format adapters, tried in order; the first whose ``detect`` accepts a file reads it."""

from __future__ import annotations

from types import ModuleType

from evalhouse.adapters import (
    every_eval_ever,
    helm,
    inspect_ai,
    lighteval,
    lm_eval_results,
    lm_eval_samples,
    lm_eval_v03,
    no_scores,
    open_format,
    opencompass,
    so8t_ab,
    so8t_results,
    so8t_tasks,
)

# Line-oriented and binary formats first: they check their own first bytes, and a JSONL file
# would otherwise reach the JSON adapters, whose whole-file parse rejects it. Then the formats that
# tolerate bare NaN (lighteval, lm-eval): they must see such a file before a strict adapter rejects
# it. Then the other shapes, most specific first; ``no_scores`` last: it accepts any flat object.
# ``every_eval_ever`` reads a JSONL shape (``_samples.jsonl``) and a JSON one, so it sits with the
# line-oriented formats; its JSON test looks for its keys in the bytes and never raises on a file
# that is not strict JSON, so the NaN-tolerant adapters after it still get theirs.
ADAPTERS: list[ModuleType] = [
    lm_eval_samples,
    open_format,
    every_eval_ever,
    lighteval,
    lm_eval_results,
    lm_eval_v03,
    inspect_ai,
    opencompass,
    helm,
    so8t_results,
    so8t_tasks,
    so8t_ab,
    no_scores,
]

BY_NAME: dict[str, ModuleType] = {a.NAME: a for a in ADAPTERS}
