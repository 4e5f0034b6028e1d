"""The font a report embeds so that CJK names render where the reader has no such font.

Only the characters the page uses are kept (a subset of Noto Sans JP, from the ``pylopdf-fonts-jp``
wheel that the PNG charts use too): a few tens of KB instead of 4.5 MB.
"""

from __future__ import annotations

import base64
import io

# Below this code point every character is Latin, Greek or Cyrillic, which system fonts have.
_FIRST_WIDE = 0x2E80


def font_face(text: str) -> str:
    """An ``@font-face`` rule for ``evalhouse-cjk`` covering the CJK characters of ``text``
    ("" when there are none, or when the font is not installed)."""
    chars = sorted({ch for ch in text if ord(ch) >= _FIRST_WIDE})
    if not chars:
        return ""
    try:
        import pylopdf_fonts_jp
        from fontTools import subset
    except ImportError:  # pragma: no cover - both are dependencies
        return ""
    options = subset.Options()
    options.flavor = "woff"
    buf = io.BytesIO()
    with subset.load_font(str(pylopdf_fonts_jp.sans_path()), options) as font:
        subsetter = subset.Subsetter(options)
        subsetter.populate(text="".join(chars))
        subsetter.subset(font)
        subset.save_font(font, buf, options)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'@font-face {{ font-family: evalhouse-cjk; src: url(data:font/woff;base64,{data}) format("woff"); }}\n'
