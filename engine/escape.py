r"""Text from input files, made safe for where it is written: one function per kind of output.

Names (models, categories, tasks, paths) come from files anyone can write. On the way out they
must not forge lines or hide characters (control and bidi characters are shown escaped everywhere),
run as HTML or Markdown in a report, or act as formulas in a spreadsheet (see ``evalhouse.tabular``
for CSV and terminal tables). Long names are cut to a bounded length before any layout work, so
that the time to write a report does not depend on how long a name is.

>>> md_text("<img src=x onerror=alert(1)> *x*")
'&lt;img src=x onerror=alert(1)&gt; \\*x\\*'
>>> md_code("a``b"), html_text("<b>" + chr(0x202E))
('``` a``b ```', '&lt;b&gt;\\u202e')
"""

from __future__ import annotations

import html
import re

# Characters a reader cannot see, or that reorder what follows them.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
# Longest name a report shows whole; longer ones keep both ends (the CSV beside it has them all).
NAME_LIMIT = 160
# Markdown's punctuation that can make markup in the middle of a line (emphasis, code, links,
# images, table cells, strikethrough; an underscore only at a word edge, as model_base is no
# emphasis): each is backslash-escaped; < > & become entities.
_MD_SPECIAL = re.compile(r"([\\`*\[\]|~]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z]))")


def visible(text: str) -> str:
    r"""``text`` with what a reader cannot see, or that acts on a terminal, written as escapes:
    control characters (C0, DEL, C1: a newline cannot forge a line, ``ESC[2J`` cannot clear the
    screen), bidirectional controls, and the undecodable bytes of a file name.

    >>> visible("a" + chr(10) + "b" + chr(27) + "[2J"), visible("plain é")
    ('a\\nb\\x1b[2J', 'plain é')
    """
    if text.isprintable() and not any(ch in BIDI_CONTROLS for ch in text):
        return text
    return "".join(escape_char(ch) for ch in text)


def escape_char(ch: str) -> str:
    """One character as :func:`visible` writes it."""
    code = ord(ch)
    if code < 32 or 127 <= code < 160 or ch in BIDI_CONTROLS:
        return ch.encode("unicode_escape").decode("ascii")
    if 0xDC80 <= code <= 0xDCFF:  # a byte of a file name that is not UTF-8 (Python's surrogate escape)
        return f"\\x{code - 0xDC00:02x}"
    if 0xD800 <= code <= 0xDFFF:  # a lone surrogate: no encoding can write it
        return f"\\u{code:04x}"
    return ch


def shorten(text: str, limit: int = NAME_LIMIT) -> str:
    """``text`` cut in the middle to at most ``limit`` characters, both ends kept.

    >>> shorten("basemodel-instruct-v2-q4_k_m", 15)
    'basemod…-q4_k_m'
    """
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2
    return text[:head] + "…" + text[len(text) - (limit - 1 - head) :]


def name(text: object, limit: int = NAME_LIMIT) -> str:
    """A name as every report shows it: cut to ``limit``, then made visible (escapes are not cut)."""
    return visible(shorten(str(text), limit))


def md_text(text: str) -> str:
    """Prose or a table cell in Markdown: no HTML, no markup, one line."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(visible(text), quote=False))


def md_code(text: str) -> str:
    """A code span holding ``text`` literally, whatever backticks it has (CommonMark: a fence
    longer than any run of backticks inside, with spaces when the text starts or ends with one)."""
    text = visible(text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if longest or text.startswith(" ") or text.endswith(" ") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def html_text(text: str) -> str:
    """Text or an attribute value in HTML."""
    return html.escape(visible(text), quote=True)


def json_for_script(data: str) -> str:
    """JSON text safe inside an HTML ``<script>`` element (``</script>`` and ``<!--`` cannot occur).

    >>> json_for_script('{"a": "</script>"}')
    '{"a": "\\\\u003c/script\\\\u003e"}'
    """
    return data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
