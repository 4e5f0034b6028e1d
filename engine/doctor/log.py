"""Reading a table's Delta log: every commit its JSON commit files record, and so every file any
version lists and where each live file's rows came from."""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from urllib.parse import unquote

from evalhouse import tables

DELTA_LOG = "_delta_log"
_LOG_NAME = re.compile(r"(\d{20})\.json")


@dataclass(frozen=True)
class _DeltaCommit:
    kind: str | None
    batch: str | None
    added: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True)
class _TableLog:
    """Every commit of a table's Delta log, as its JSON commit files record them."""

    commits: dict[int, _DeltaCommit]

    @classmethod
    def read(cls, root: Path, table: str) -> _TableLog:
        log = tables.folder(root, table) / DELTA_LOG
        try:
            names = os.listdir(log)
        except OSError:
            return cls({})
        commits = {}
        for name in names:
            m = _LOG_NAME.fullmatch(name)
            if m is None:
                continue
            with contextlib.suppress(OSError, UnicodeDecodeError):
                commits[int(m.group(1))] = _parse_commit((log / name).read_text(encoding="utf-8"))
        return cls(dict(sorted(commits.items())))

    @cached_property
    def listed(self) -> set[str]:
        """Every file any commit added or removed."""
        return {p for c in self.commits.values() for p in (*c.added, *c.removed)}

    @cached_property
    def added_in(self) -> dict[str, int]:
        """The version that first added each file."""
        out: dict[str, int] = {}
        for version, c in self.commits.items():
            for p in c.added:
                out.setdefault(p, version)
        return out

    def origin(self, name: str) -> set[str] | None:
        """The batches whose runs may have rows in file ``name``; None: any run's.

        An ingest's own files hold rows of its batch's runs only. A file that replaced others in
        its commit (rows rewritten without withdrawn runs, a compaction) holds what they held; any
        other file (an upgrade's copies, a commit whose log is gone) may hold any run's rows.
        """
        out: set[str] = set()
        todo, seen = [name], set()
        while todo:  # not recursive: a file rewritten at every ingest has a long history
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            version = self.added_in.get(name)
            if version is None:
                return None
            c = self.commits[version]
            part = tables.PART_NAME.fullmatch(name)
            if c.kind == "ingest" and c.batch and part and not part.group("part").startswith("r"):
                out.add(c.batch)
                continue
            # No file replaced (or not one added before): it may hold any run's rows.
            if not c.removed or any(self.added_in.get(old, version) >= version for old in c.removed):
                return None
            todo += c.removed
        return out


def _parse_commit(text: str) -> _DeltaCommit:
    kind = batch = None
    added: list[str] = []
    removed: list[str] = []
    for line in text.splitlines():
        try:
            action = json.loads(line)
        except ValueError:
            continue
        if not isinstance(action, dict):
            continue
        for key, into in (("add", added), ("remove", removed)):
            if isinstance(action.get(key), dict) and isinstance(action[key].get("path"), str):
                into.append(unquote(action[key]["path"]))  # Delta logs percent-encode paths
        info = action.get("commitInfo")
        if isinstance(info, dict):
            kind, batch = info.get("evalhouse.kind"), info.get("evalhouse.batch")
    return _DeltaCommit(kind, batch, tuple(added), tuple(removed))
