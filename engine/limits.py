"""What one input file may cost, declared once: past any bound the file alone is rejected.

Bounds are counted after decompression and decoding (a 1 MB zip expanding to 1 GB is 1 GB), so
that no single file can take more than about 1 GB of a worker's memory or minutes of its time.
Each bound is a setting with a default here; ``evalhouse.toml`` may change them::

    [limits]
    file_bytes = 536870912      # a file on disk, and each file read beside it
    unpacked_bytes = 536870912  # an archive's members or a Parquet file's columns, decompressed
    members = 100000            # members of an archive (.eval zip)
    rows = 1000000              # score and metric rows of one file; lines of a JSONL or CSV file
    json_values = 5000000       # values in one JSON document (elements and members)
    depth = 64                  # nesting of the JSON evalhouse stores (run metadata, attributes)

A file past a bound is ``rejected`` with ``path: field: reason``, the reason naming the bound and
its setting (``over the limit of 1,000,000 rows ([limits] rows)``).

>>> Limits().rows, load_limits(None) == Limits()
(1000000, True)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalhouse.errors import BadResultFile, EvalhouseError
from evalhouse.settings import CONFIG_FILE, read_toml

SECTION = "limits"


@dataclass(frozen=True)
class Limits:
    """The bounds on one input file (see the module docstring); each field is a ``[limits]`` key."""

    file_bytes: int = field(default=512 * 2**20, metadata={"what": "bytes of a file on disk"})
    unpacked_bytes: int = field(default=512 * 2**20, metadata={"what": "bytes after decompression"})
    members: int = field(default=100_000, metadata={"what": "members of an archive"})
    rows: int = field(default=1_000_000, metadata={"what": "rows of one file"})
    json_values: int = field(default=5_000_000, metadata={"what": "values of one JSON document"})
    depth: int = field(default=64, metadata={"what": "levels of nesting of stored JSON"})

    def over(self, path: str, field: str, name: str, amount: str) -> BadResultFile:
        """The rejection of a file past bound ``name``: ``amount`` says how much it holds.

        >>> str(Limits().over("/a.eval", "(archive)", "members", "200,000 members"))
        '/a.eval: (archive): 200,000 members, over the limit of 100,000 ([limits] members in evalhouse.toml)'
        """
        setting = f"[{SECTION}] {name} in {CONFIG_FILE}"
        return BadResultFile(path, field, f"{amount}, over the limit of {getattr(self, name):,} ({setting})")


DEFAULT = Limits()


def load_limits(path: str | Path | None) -> Limits:
    """The ``[limits]`` of an evalhouse.toml over the defaults (``None``: ./evalhouse.toml if present).

    Raises EvalhouseError for an unreadable file, an unknown key or a value that is not a positive integer.
    """
    if path is None:
        if not Path(CONFIG_FILE).is_file():
            return DEFAULT
        path = CONFIG_FILE
    section: Any = read_toml(path, EvalhouseError).get(SECTION, {})
    if not isinstance(section, dict):
        raise EvalhouseError(f"{path}: [{SECTION}] must be a table")
    known = [f.name for f in dataclasses.fields(Limits)]
    unknown = sorted(set(section) - set(known))
    if unknown:
        raise EvalhouseError(f"{path}: [{SECTION}] has unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")
    for key, value in section.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise EvalhouseError(f"{path}: {SECTION}.{key} must be a positive integer, not {value!r}")
    return dataclasses.replace(DEFAULT, **section)


def describe() -> list[tuple[str, int, str]]:
    """(setting, default, what it bounds) of every limit (tests check the README lists each).

    >>> describe()[0]
    ('file_bytes', 536870912, 'bytes of a file on disk')
    """
    return [(f.name, getattr(DEFAULT, f.name), f.metadata["what"]) for f in dataclasses.fields(Limits)]


_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_WINDOW = 1 << 23


def json_values(data: bytes, budget: int) -> int:
    """The values of a JSON document, counted as its ``,`` ``[`` and ``{``, when that is over ``budget``.

    Parsed JSON takes up to ~100 bytes of memory per value, whatever the size of the text, so this is
    what bounds the memory of a parse. The count of those bytes anywhere is an upper bound found at
    memory speed; only when it exceeds ``budget`` are the ones inside strings (prose) left out, in
    windows so that memory stays flat. Returns the upper bound when it is within ``budget``.

    >>> doc = b'{"a": "x, [y], {z}", "b": [1, 2]}'
    >>> json_values(doc, 100), json_values(doc, 0)
    (8, 4)
    """
    bound = data.count(b",") + data.count(b"[") + data.count(b"{")
    if bound <= budget:
        return bound
    import numpy as np

    arr = np.frombuffer(data, dtype=np.uint8)
    inside = 0  # whether the window starts inside a string
    count = 0
    for start in range(0, len(arr), _WINDOW):
        w = arr[start : start + _WINDOW]
        quotes = np.flatnonzero(w == _QUOTE) + start
        before = quotes - 1
        suspect = (before >= 0) & (arr[np.maximum(before, 0)] == _BACKSLASH)
        if suspect.any():
            keep = np.ones(len(quotes), dtype=bool)
            for i in np.flatnonzero(suspect):
                keep[i] = not _escaped(arr, int(quotes[i]))
            quotes = quotes[keep]
        structural = np.flatnonzero((w == ord(",")) | (w == ord("[")) | (w == ord("{"))) + start
        parity = (np.searchsorted(quotes, structural) + inside) & 1
        count += int(len(structural) - parity.sum())
        inside ^= len(quotes) & 1
    return count


def _escaped(arr: Any, q: int) -> bool:
    """Whether the quote at ``q`` is escaped: an odd run of backslashes before it."""
    run = 0
    while q - run - 1 >= 0 and arr[q - run - 1] == _BACKSLASH:
        run += 1
    return run % 2 == 1


def nesting(value: Any, limit: int) -> int:
    """How deeply ``value`` (parsed JSON) nests, counted up to ``limit + 1`` (enough to tell it is over).

    >>> nesting({"a": [1, {"b": []}]}, 64), nesting([[[[]]]], 2), nesting("x", 64)
    (4, 3, 0)
    """
    depth = 0
    level = [value] if isinstance(value, (dict, list)) else []
    while level and depth <= limit:
        depth += 1
        level = [v for c in level for v in (c.values() if isinstance(c, dict) else c) if isinstance(v, (dict, list))]
    return depth
