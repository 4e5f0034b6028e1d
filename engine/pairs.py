"""Which models to compare: pair rules and the default pairing by model_base.

A rule is a set of baseline patterns and a set of candidate patterns (shell globs, matched
case-insensitively against model names); it pairs every baseline it matches with every candidate
it matches. With no rule, every variant is paired with its base model: the model whose name is
the variant's ``model_base`` (``aegis-q4km`` with ``aegis``) or, when no model has that name, the
highest-precision model sharing the base (``foo-q8_0`` for ``foo-q4_k_m``).

>>> names = ["aegis", "aegis-q4km", "modela", "Modela-Q4KM", "agiasi"]
>>> match_patterns(names, ["modela*"])
['modela', 'Modela-Q4KM']
>>> pairs_from_rules(names, [Rule(("modela",), ("aegis*",))])
[('modela', 'aegis'), ('modela', 'aegis-q4km')]
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    """Pair every model matching one of ``baseline`` with every model matching one of ``candidate``."""

    baseline: tuple[str, ...]
    candidate: tuple[str, ...]


def match_patterns(names: Iterable[str], patterns: Sequence[str]) -> list[str]:
    """The names (in their order) matching any of the glob patterns, case-insensitively."""
    low = [p.lower() for p in patterns]
    return [n for n in names if any(fnmatch.fnmatchcase(n.lower(), p) for p in low)]


def pairs_from_rules(names: Sequence[str], rules: Sequence[Rule]) -> list[tuple[str, str]]:
    """(baseline, candidate) pairs of every rule, in rule order, without repeats or self-pairs.

    A rule with no baseline patterns pairs each candidate it matches with its base model.
    """
    out: dict[tuple[str, str], None] = {}
    for rule in rules:
        candidates = match_patterns(names, rule.candidate) if rule.candidate else None
        if not rule.baseline:
            base_pairs = default_pairs(names)
            wanted = set(candidates or [])
            for b, c in base_pairs:
                if c in wanted:
                    out[(b, c)] = None
            continue
        baselines = match_patterns(names, rule.baseline)
        if candidates is None:  # baselines only: compare everything else with them
            candidates = [n for n in names if n not in set(baselines)]
        for b in baselines:
            for c in candidates:
                if b != c:
                    out[(b, c)] = None
    return list(out)


def precision_rank(quantization: str | None) -> float:
    """How close a quantization is to full precision (higher is closer; none is full precision).

    The bits per weight the label stands for (``evalhouse.modelname.quant_bits``); 0 when it does not
    say (``gptq``, ``gguf``): ranked last.

    >>> [precision_rank(q) for q in (None, "fp16", "q8_0", "q4_k_m", "gptq", "w4a16", "exl2-4.65bpw")]
    [inf, 16.0, 8.0, 4.0, 0.0, 4.0, 4.65]
    """
    from evalhouse.modelname import quant_bits

    if quantization is None:
        return float("inf")
    return quant_bits(quantization) or 0.0


def default_pairs(
    names: Sequence[str], bases: dict[str, tuple[str, str | None]] | None = None
) -> list[tuple[str, str]]:
    """Pair every variant with its base model (see the module docstring).

    Args:
        names: model names.
        bases: ``{model: (model_base, quantization)}``; parsed from the names when not given.
    """
    from evalhouse.modelname import split_model

    info = bases if bases is not None else {n: split_model(n) for n in names}
    by_base: dict[str, list[str]] = {}
    for n in names:
        by_base.setdefault(info.get(n, (n, None))[0], []).append(n)
    out = []
    for base, members in by_base.items():
        if len(members) < 2:
            continue
        if base in members:
            anchor = base
        else:
            ranked = sorted(members, key=lambda m: -precision_rank(info.get(m, (m, None))[1]))
            top = precision_rank(info.get(ranked[0], (ranked[0], None))[1])
            # Two models of the same precision: no way to tell which is the base.
            if precision_rank(info.get(ranked[1], (ranked[1], None))[1]) == top:
                continue
            anchor = ranked[0]
        out += [(anchor, m) for m in members if m != anchor]
    return out
