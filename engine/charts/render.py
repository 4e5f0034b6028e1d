"""Rendering: an Altair chart to PNG or SVG through vl-convert, or to a Vega-Lite spec for vega-embed.

Model and category names are often Japanese, so a font that covers it is registered with vl-convert
before the first drawing: labels come out as glyphs rather than boxes.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import altair as alt

_fonts_registered = False


def register_fonts() -> list[str]:
    """Register the fonts vl-convert needs for Japanese labels (once per process).

    The font is Noto Sans JP from the ``pylopdf-fonts-jp`` package (a data-only wheel, installed as
    a dependency so a fresh machine needs no system package); ``EVALHOUSE_FONT_DIR`` adds another
    folder. vl-convert falls back glyph by glyph, so Latin text keeps its usual font.

    Returns:
        The folders registered.
    """
    global _fonts_registered
    import vl_convert as vlc

    dirs: list[str] = []
    try:
        import pylopdf_fonts_jp

        dirs.append(str(pylopdf_fonts_jp.sans_path().parent))
    except ImportError:  # pragma: no cover - a dependency; without it Japanese falls back to system fonts
        pass
    if os.environ.get("EVALHOUSE_FONT_DIR"):
        dirs.append(os.environ["EVALHOUSE_FONT_DIR"])
    if not _fonts_registered:
        for d in dirs:
            if os.path.isdir(d):
                vlc.register_font_directory(os.path.abspath(d))
        _fonts_registered = True
    return dirs


def render(chart: alt.TopLevelMixin, path: str | os.PathLike[str], *, scale: float = 2.0) -> Path:
    """Write ``chart`` to ``path`` as PNG or SVG, chosen by the file's suffix.

    Args:
        chart: Any Altair chart.
        path: Destination ending in ``.png`` or ``.svg``.
        scale: PNG pixel density (2 gives crisp text on high-resolution screens).

    Returns:
        The path written.
    """
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix == ".png":
        out.write_bytes(to_png(chart, scale=scale))
    elif suffix == ".svg":
        out.write_text(to_svg(chart), encoding="utf-8")
    else:
        raise ValueError(f"cannot render to {out.name}: use a .png or .svg file name")
    return out


def to_png(chart: alt.TopLevelMixin, *, scale: float = 2.0) -> bytes:
    """The chart as PNG bytes."""
    import vl_convert as vlc

    register_fonts()
    return vlc.vegalite_to_png(to_spec(chart), scale=scale, allowed_base_urls=[])


def to_svg(chart: alt.TopLevelMixin) -> str:
    """The chart as an SVG document (text stays text; the viewer's fonts draw it)."""
    import vl_convert as vlc

    register_fonts()
    return vlc.vegalite_to_svg(to_spec(chart), allowed_base_urls=[])


def to_spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    """The chart as a Vega-Lite spec with its data inlined, ready for ``vegaEmbed(el, spec)``.

    The data sit in the spec's ``datasets`` (no URL, nothing fetched), every value JSON-safe (NaN
    and infinities become null), so ``json.dumps`` of the result is the whole chart.

    >>> import polars as pl
    >>> spec = to_spec(alt.Chart(pl.DataFrame({"x": [1.0, float("nan")]})).mark_point().encode(x="x:Q"))
    >>> next(iter(spec["datasets"].values())), "url" in spec["data"]
    ([{'x': 1.0}, {'x': None}], False)
    """
    # Inline whatever the global setting: the spec must carry its data, however many rows.
    with alt.data_transformers.enable("default", max_rows=None):
        spec = chart.to_dict()
    return _json_safe(spec)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value
