"""Which models to compare: pair rules, the default pairing by model_base, the ``[compare]`` config.

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
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import AnalysisError

CONFIG_FILE = "evalhouse.toml"


@dataclass(frozen=True)
class Rule:
    """Pair every model matching one of ``baseline`` with every model matching one of ``candidate``."""

    baseline: tuple[str, ...]
    candidate: tuple[str, ...]


@dataclass
class CompareConfig:
    """The ``[compare]`` section of ``evalhouse.toml`` (every key optional)."""

    rules: list[Rule] = field(default_factory=list)
    by: list[str] | None = None
    test: str | None = None
    adjust: str | None = None
    alpha: float | None = None
    exclude_sources: list[str] = field(default_factory=list)


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


_BITS = re.compile(r"(\d+)")


def precision_rank(quantization: str | None) -> float:
    """How close a quantization is to full precision (higher is closer; none is full precision).

    >>> [precision_rank(q) for q in (None, "fp16", "q8_0", "q4_k_m", "gptq")]
    [inf, 16.0, 8.0, 4.0, 0.0]
    """
    if quantization is None:
        return float("inf")
    m = _BITS.search(quantization)
    return float(m.group(1)) if m else 0.0


def default_pairs(
    names: Sequence[str], bases: dict[str, tuple[str, str | None]] | None = None
) -> list[tuple[str, str]]:
    """Pair every variant with its base model (see the module docstring).

    Args:
        names: model names.
        bases: ``{model: (model_base, quantization)}``; parsed from the names when not given.
    """
    from engine.modelname import split_model

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


def load_config(path: str | Path | None = None) -> CompareConfig:
    """Read the ``[compare]`` section of an ``evalhouse.toml``.

    Args:
        path: the file; default ``./evalhouse.toml`` if it exists (no file: an empty config).

    The section may hold ``baseline`` and ``candidate`` (a pattern or a list of them, one rule),
    ``pairs`` (a list of ``{baseline = ..., candidate = ...}`` tables, one rule each), ``by``,
    ``test``, ``adjust``, ``alpha`` and ``exclude_sources`` (globs of source paths to leave out).
    """
    if path is None:
        if not Path(CONFIG_FILE).is_file():
            return CompareConfig()
        path = CONFIG_FILE
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise AnalysisError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise AnalysisError(f"{path}: not valid TOML ({exc})") from None
    section = data.get("compare", {})
    if not isinstance(section, dict):
        raise AnalysisError(f"{path}: [compare] must be a table")
    known = {"baseline", "candidate", "pairs", "by", "test", "adjust", "alpha", "exclude_sources"}
    unknown = sorted(set(section) - known)
    if unknown:
        raise AnalysisError(f"{path}: [compare] has unknown key(s) {', '.join(unknown)}",
                            hint=f"known keys: {', '.join(sorted(known))}")  # fmt: skip
    cfg = CompareConfig()
    if "baseline" in section or "candidate" in section:
        cfg.rules.append(Rule(_patterns(path, "baseline", section), _patterns(path, "candidate", section)))
    for i, rule in enumerate(section.get("pairs", [])):
        if not isinstance(rule, dict):
            raise AnalysisError(f"{path}: compare.pairs[{i}] must be a table with baseline and candidate")
        cfg.rules.append(Rule(_patterns(path, "baseline", rule), _patterns(path, "candidate", rule)))
    if "by" in section:
        by = section["by"]
        cfg.by = [by] if isinstance(by, str) else list(by)
    cfg.test = _opt_str(path, "test", section)
    cfg.adjust = _opt_str(path, "adjust", section)
    if "alpha" in section:
        if not isinstance(section["alpha"], (int, float)):
            raise AnalysisError(f"{path}: compare.alpha must be a number")
        cfg.alpha = float(section["alpha"])
    cfg.exclude_sources = list(_patterns(path, "exclude_sources", section))
    return cfg


def _patterns(path: str | Path, key: str, table: dict[str, Any]) -> tuple[str, ...]:
    value = table.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AnalysisError(f"{path}: compare.{key} must be a string or a list of strings")
    return tuple(value)


def _opt_str(path: str | Path, key: str, table: dict[str, Any]) -> str | None:
    value = table.get(key)
    if value is not None and not isinstance(value, str):
        raise AnalysisError(f"{path}: compare.{key} must be a string")
    return value
