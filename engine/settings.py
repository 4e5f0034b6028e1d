"""The settings of a comparison, declared once and merged in one place.

``compare``, ``gate`` and ``report`` run the same analysis; they share one frozen :class:`Settings`
value, merged by :func:`merge` from (lowest first) the defaults below, the ``[compare]`` and
``[metrics]`` sections of ``evalhouse.toml``, and command-line options. A command never merges
options itself.

``evalhouse.toml``::

    [compare]
    baseline = "my-model"            # a pattern or a list; one pair rule
    candidate = ["my-model-*"]
    pairs = [{baseline = "a", candidate = "a-q4*"}]   # more rules
    by = ["category"]                # scopes besides overall: category, benchmark
    test = "auto"
    adjust = "holm"                  # within each pair and metric's category/benchmark rows
    alpha = 0.05
    margin = "2%"                    # the gate's non-inferiority margin: "2%" of the baseline mean, or 0.02
    overlap = 0.9                    # shared items needed, as a share of either side, for a like-for-like row
    cluster = "task"                 # unit of analysis other than the item
    exclude_sources = ["*/old/*"]

    [metrics]
    answer_accuracy = "higher"       # a metric's direction, over what the source and its name say
    refusal_rate = "lower"

    [models.aliases]                 # several spellings of one model: compared as the first name
    "model-a" = ["model_a", "modela"]

    [models.bases]                   # a variant's base model where its name does not show it
    "aegis" = "model-a"

    [metric_aliases]                 # several harnesses' names of one measure: compared as the first
    acc = ["accuracy,ppl", "exact_match"]

>>> s = merge(Settings(), by=["benchmark"], margin="2%")
>>> s.by, s.margin
(('benchmark',), Margin(value=0.02, relative=True))
>>> parse_margin("0.5")
Margin(value=0.5, relative=False)
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalhouse.errors import AnalysisError, EvalhouseError
from evalhouse.pairs import Rule

CONFIG_FILE = "evalhouse.toml"
SCOPES = ("overall", "category", "benchmark")
ADJUST_METHODS = ("holm", "bh", "none")
TESTS = ("auto", "student", "welch", "paired", "sign-flip", "permutation", "mcnemar", "score", "fisher")
DIRECTIONS = {"higher": True, "lower": False}
# Where summary, compare, gate and report aggregate: DuckDB in process, or a SparkSession.
ENGINES = ("duckdb", "spark")


@dataclass(frozen=True)
class Margin:
    """The gate's non-inferiority margin: a share of the baseline mean, or an absolute score difference."""

    value: float
    relative: bool

    def __str__(self) -> str:
        return f"{self.value * 100:g}%" if self.relative else f"{self.value:g}"


@dataclass(frozen=True)
class Settings:
    """Everything that decides a comparison's rows and verdicts (see the module docstring)."""

    rules: tuple[Rule, ...] = ()
    # Patterns from the command line; they replace the config's rules when given.
    baseline: tuple[str, ...] = ()
    candidate: tuple[str, ...] = ()
    by: tuple[str, ...] | None = None  # None: the command's own default
    test: str = "auto"
    adjust: str = "holm"
    alpha: float = 0.05
    margin: Margin | None = None
    overlap: float = 0.9
    cluster: str | None = None
    exclude_sources: tuple[str, ...] = ()
    directions: Mapping[str, bool] = field(default_factory=dict)
    # spelling -> canonical model name; variant -> base model
    aliases: Mapping[str, str] = field(default_factory=dict)
    bases: Mapping[str, str] = field(default_factory=dict)
    # metric label (`metric` or `metric,filter`) -> canonical label
    metric_aliases: Mapping[str, str] = field(default_factory=dict)
    source: str | None = None  # the evalhouse.toml read, if any

    def canonical(self, model: str) -> str:
        """The name a model is compared under: its alias's canonical name, else itself."""
        return self.aliases.get(model, model)

    @property
    def pair_rules(self) -> list[Rule]:
        """The rules that choose pairs: the command line's patterns, else the config's rules."""
        if self.baseline or self.candidate:
            return [Rule(self.baseline, self.candidate)]
        return list(self.rules)

    def scopes(self, default_by: Sequence[str]) -> list[str]:
        """``overall`` and the scopes of ``by`` (or of the command's default), in a fixed order."""
        by = self.by if self.by is not None else tuple(default_by)
        return ["overall", *[s for s in SCOPES[1:] if s in by]]

    @property
    def adjust_name(self) -> str:
        return {"holm": "Holm-adjusted", "bh": "Benjamini-Hochberg-adjusted", "none": "not adjusted"}[self.adjust]


def parse_margin(text: str | float) -> Margin:
    """``"2%"`` (of the baseline mean) or ``"0.02"`` (score units) as a :class:`Margin`."""
    raw = str(text).strip()
    relative = raw.endswith("%")
    try:
        value = float(raw.removesuffix("%"))
    except ValueError:
        raise AnalysisError(f"margin {raw!r} is not a number or a percentage (e.g. 2% or 0.02)") from None
    if not value >= 0 or value == float("inf"):
        raise AnalysisError(f"margin {raw!r} must be a finite number >= 0")
    return Margin(value / 100 if relative else value, relative)


def merge(base: Settings, **options: Any) -> Settings:
    """``base`` with every option that is set (not None, not empty) put over it, then checked.

    Options: the field names of :class:`Settings`; ``by`` and pattern lists as sequences, ``margin``
    as text or a :class:`Margin`.
    """
    changes: dict[str, Any] = {}
    for name, value in options.items():
        if value is None or (isinstance(value, (tuple, list)) and not value and name != "by"):
            continue
        if name in ("baseline", "candidate", "exclude_sources", "by"):
            value = tuple([value] if isinstance(value, str) else value)
            if name == "exclude_sources":
                value = base.exclude_sources + value
        elif name == "margin" and not isinstance(value, Margin):
            value = parse_margin(value)
        changes[name] = value
    settings = dataclasses.replace(base, **changes)
    check(settings)
    return settings


def check(s: Settings) -> None:
    """Raise :class:`AnalysisError` for a setting no analysis can use."""
    bad = [b for b in s.by or () if b not in SCOPES[1:]]
    if bad:
        raise AnalysisError(f"cannot compare by {', '.join(bad)}; choose category and/or benchmark")
    if s.test not in TESTS:
        raise AnalysisError(f"unknown test {s.test!r}; choose one of {', '.join(TESTS)}")
    if s.adjust not in ADJUST_METHODS:
        raise AnalysisError(f"unknown adjustment {s.adjust!r}; choose one of {', '.join(ADJUST_METHODS)}")
    if not 0 < s.alpha < 0.5:
        raise AnalysisError(f"alpha must be between 0 and 0.5, not {s.alpha}")
    if not 0 < s.overlap <= 1:
        raise AnalysisError(f"overlap must be a share in (0, 1], not {s.overlap}")


def load(path: str | Path | None = None) -> Settings:
    """The settings of an ``evalhouse.toml`` over the defaults.

    Args:
        path: the file; default ``./evalhouse.toml`` if it exists (no file: the defaults).
    """
    if path is None:
        if not Path(CONFIG_FILE).is_file():
            return Settings()
        path = CONFIG_FILE
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise AnalysisError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise AnalysisError(f"{path}: not a text file (evalhouse.toml must be UTF-8 TOML)") from None
    except tomllib.TOMLDecodeError as exc:
        raise AnalysisError(f"{path}: not valid TOML ({exc})") from None
    except RecursionError:  # tomllib parses nested arrays recursively
        raise AnalysisError(f"{path}: not valid TOML (nested too deeply)") from None
    section = _table(path, data, "compare")
    known = {"baseline", "candidate", "pairs", "by", "test", "adjust", "alpha", "margin", "overlap", "cluster",
             "exclude_sources"}  # fmt: skip
    unknown = sorted(set(section) - known)
    if unknown:
        raise AnalysisError(f"{path}: [compare] has unknown key(s) {', '.join(unknown)}",
                            hint=f"known keys: {', '.join(sorted(known))}")  # fmt: skip
    rules = []
    if "baseline" in section or "candidate" in section:
        rules.append(Rule(_patterns(path, "baseline", section), _patterns(path, "candidate", section)))
    pairs = section.get("pairs", [])
    if not isinstance(pairs, list):
        raise AnalysisError(f"{path}: compare.pairs must be a list of tables with baseline and candidate")
    for i, rule in enumerate(pairs):
        if not isinstance(rule, dict):
            raise AnalysisError(f"{path}: compare.pairs[{i}] must be a table with baseline and candidate")
        rules.append(Rule(_patterns(path, "baseline", rule), _patterns(path, "candidate", rule)))
    options: dict[str, Any] = {
        "by": _patterns(path, "by", section) if "by" in section else None,
        "exclude_sources": _patterns(path, "exclude_sources", section),
    }
    for key, kind in (("test", str), ("adjust", str), ("cluster", str), ("alpha", float), ("overlap", float)):
        value = section.get(key)
        if value is not None and not isinstance(value, (int, float) if kind is float else str):
            raise AnalysisError(f"{path}: compare.{key} must be a {'number' if kind is float else 'string'}")
        options[key] = kind(value) if value is not None else None
    if "margin" in section:
        if not isinstance(section["margin"], (str, int, float)):
            raise AnalysisError(f'{path}: compare.margin must be a percentage string ("2%") or a number')
        options["margin"] = section["margin"]
    directions = {}
    for metric, word in _table(path, data, "metrics").items():
        if word not in DIRECTIONS:
            raise AnalysisError(f'{path}: metrics.{metric} must be "higher" or "lower" (which is better)')
        directions[metric] = DIRECTIONS[word]
    aliases, bases = _models(path, _table(path, data, "models"))
    metric_aliases = _aliases(path, "metric_aliases", _table(path, data, "metric_aliases"))
    try:
        return merge(
            Settings(rules=tuple(rules), directions=directions, aliases=aliases, bases=bases,
                     metric_aliases=metric_aliases, source=str(path)),
            **options,
        )  # fmt: skip
    except AnalysisError as exc:
        raise AnalysisError(f"{path}: {exc}") from None


def _models(path: str | Path, section: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """``[models.aliases]`` (canonical -> spellings) as spelling -> canonical, and ``[models.bases]``."""
    unknown = sorted(set(section) - {"aliases", "bases"})
    if unknown:
        raise AnalysisError(f"{path}: [models] has unknown key(s) {', '.join(unknown)}", hint="known: aliases, bases")
    aliases = _aliases(path, "models.aliases", _table(path, section, "aliases"))
    bases = _table(path, section, "bases")
    if not all(isinstance(v, str) for v in bases.values()):
        raise AnalysisError(f"{path}: models.bases values must be model names (strings)")
    return aliases, dict(bases)


def _aliases(path: str | Path, where: str, table: dict[str, Any]) -> dict[str, str]:
    """``{canonical: [spellings]}`` as spelling -> canonical; a spelling of two names is an error."""
    out: dict[str, str] = {}
    for canonical, spellings in table.items():
        for spelling in _patterns(path, f"{where}.{canonical}", {"x": spellings}, "x"):
            if out.get(spelling, canonical) != canonical:
                raise AnalysisError(f"{path}: {where}: {spelling!r} is an alias of two names")
            if spelling != canonical:
                out[spelling] = canonical
    return out


def _table(path: str | Path, data: dict[str, Any], name: str) -> dict[str, Any]:
    section = data.get(name, {})
    if not isinstance(section, dict):
        raise AnalysisError(f"{path}: [{name}] must be a table")
    return section


def _patterns(path: str | Path, key: str, table: dict[str, Any], field_name: str | None = None) -> tuple[str, ...]:
    """A string or list of strings at ``table[field_name or key]``; ``key`` names it in errors."""
    value = table.get(field_name or key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        name = key if "." in key else f"compare.{key}"
        raise AnalysisError(f"{path}: {name} must be a string or a list of strings")
    return tuple(value)


# ---------------------------------------------------------------------------------------------
# [spark]: where `--engine spark` runs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SparkSettings:
    """The SparkSession of ``--engine spark``, from ``[spark]`` of evalhouse.toml over these defaults.

    ``evalhouse.toml``::

        [spark]
        master = "spark://head:7077"        # default local[*]; env EVALHOUSE_SPARK_MASTER wins
        remote = "sc://head:15002"          # Spark Connect instead of a master; env SPARK_REMOTE wins
        conf = { "spark.executor.memory" = "8g" }

    >>> load_spark(None, environ={"EVALHOUSE_SPARK_MASTER": "local[2]"}).master
    'local[2]'
    """

    master: str = "local[*]"
    remote: str | None = None
    conf: Mapping[str, str] = field(default_factory=dict)


# The environment over the file: a job scheduler sets these per run, the file holds the site default.
SPARK_ENV = {"master": "EVALHOUSE_SPARK_MASTER", "remote": "SPARK_REMOTE"}


def read_toml(path: str | Path, error: type[EvalhouseError]) -> dict[str, Any]:
    """The TOML file at ``path``, or ``error`` naming the file and what is wrong with it."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        raise error(f"{path}: not a valid UTF-8 TOML file ({type(exc).__name__})") from None


def load_spark(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> SparkSettings:
    """The ``[spark]`` settings: defaults < ``evalhouse.toml`` (``path``, default ./evalhouse.toml if
    present) < the environment (:data:`SPARK_ENV`)."""
    environ = os.environ if environ is None else environ
    section: dict[str, Any] = {}
    if path is not None or Path(CONFIG_FILE).is_file():
        path = path or CONFIG_FILE
        section = _table(path, read_toml(path, AnalysisError), "spark")
        known = [f.name for f in dataclasses.fields(SparkSettings)]
        unknown = sorted(set(section) - set(known))
        if unknown:
            raise AnalysisError(
                f"{path}: [spark] has unknown key(s) {', '.join(unknown)}", hint=f"known: {', '.join(known)}"
            )
        for key in ("master", "remote"):
            if key in section and not isinstance(section[key], str):
                raise AnalysisError(f"{path}: spark.{key} must be a string")
        conf = section.get("conf", {})
        if not isinstance(conf, dict) or not all(isinstance(v, (str, int, float, bool)) for v in conf.values()):
            raise AnalysisError(f"{path}: spark.conf must be a table of Spark settings (strings or numbers)")
        # Spark takes every setting as text; TOML's true is Spark's "true".
        section["conf"] = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in conf.items()}
    for key, variable in SPARK_ENV.items():
        if environ.get(variable):
            section[key] = environ[variable]
    return dataclasses.replace(SparkSettings(), **section)
