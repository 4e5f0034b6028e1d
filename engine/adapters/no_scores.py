"""Files that are results-adjacent but hold no scores (run metadata, configs): ``not-results``.

A flat JSON object (every value a scalar, or a list of scalars) cannot hold per-item scores, so
it is recorded as not-results rather than rejected as an unknown shape.
"""

from __future__ import annotations

from evalhouse.adapters.base import RunBuilder, Source

NAME = "no-scores"


def _scalar(v: object) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def detect(source: Source) -> bool:
    if not source.looks_like_json():
        return False
    doc = source.json
    return isinstance(doc, dict) and all(
        _scalar(v) or (isinstance(v, list) and all(_scalar(x) for x in v)) for v in doc.values()
    )


def read(source: Source) -> list[RunBuilder]:
    return []
