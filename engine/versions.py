"""Warehouse versions: which Delta version of every table makes up one consistent warehouse.

Delta Lake commits one table at a time, and an ingest changes several (runs, scores, texts,
metrics, the ledger). A *warehouse version* is one small JSON file, ``versions/<n>.json``, naming
the Delta version of each table; readers read every table at the versions of the newest one, so
they see all of a commit or none of it. Publishing that file is the commit point: it is created
once and never replaced (a hard link of a finished temporary file, which fails if the name is
taken; on S3 a conditional put, ``If-None-Match: *``), so two writers can never both publish
version n.

A version also records what it was (``create``, ``ingest``, ``compare``, ``optimize``,
``migrate``), its batch id and the rows it added per table: ``evalhouse history`` lists them, and
``--as-of`` reads any of them whose files ``optimize`` has not yet vacuumed.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalhouse import store
from evalhouse.errors import CommitConflict, WarehouseError

if TYPE_CHECKING:
    from evalhouse.warehouse import Warehouse

VERSIONS_DIR = "versions"
VERSION_NAME = re.compile(r"(\d{20})\.json")
# Kinds of commit, as `evalhouse history` shows them.
KINDS = ("create", "ingest", "compare", "optimize", "migrate", "repair")


@dataclass(frozen=True)
class Version:
    """One published warehouse version."""

    number: int
    kind: str
    # The ingest batch or comparison analysis it published (None for creation and maintenance).
    batch_id: str | None
    time: datetime
    # Delta version of every stored table.
    tables: dict[str, int]
    # Rows added and removed per table by this commit.
    added: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        doc: dict[str, Any] = asdict(self)
        doc["time"] = self.time.isoformat()
        return json.dumps(doc, indent=1, sort_keys=True) + "\n"


def folder(root: Path) -> Path:
    return root / VERSIONS_DIR


def numbers(root: Path) -> list[int]:
    """The published version numbers, oldest first.

    >>> import tempfile; numbers(Path(tempfile.mkdtemp()))
    []
    """
    loc = store.location(root)
    if loc is not None:
        return sorted(int(m.group(1)) for n in store.names(loc, VERSIONS_DIR) if (m := VERSION_NAME.fullmatch(n)))
    try:
        names = os.listdir(folder(root))
    except FileNotFoundError:
        return []
    return sorted(int(m.group(1)) for n in names if (m := VERSION_NAME.fullmatch(n)))


def path_of(root: Path, number: int) -> Path:
    return folder(root) / f"{number:020d}.json"


# Versions of S3 warehouses read by this process: a published version never changes, and each
# read of one is a request.
_read_remote: dict[tuple[store.S3Location, int], Version] = {}


def read(root: Path, number: int) -> Version:
    """Version ``number``; raises WarehouseError if it is missing or unreadable."""
    path = path_of(root, number)
    loc = store.location(root)
    if loc is not None and (loc, number) in _read_remote:
        return _read_remote[loc, number]
    try:
        if loc is not None:
            found = store.read(loc, f"{VERSIONS_DIR}/{path.name}")
            if found is None:
                raise FileNotFoundError(f"{loc.url}/{VERSIONS_DIR}/{path.name}")
            doc = json.loads(found)
        else:
            doc = json.loads(path.read_text(encoding="utf-8"))
        version = Version(
            number=int(doc["number"]), kind=str(doc["kind"]), batch_id=doc.get("batch_id"),
            time=datetime.fromisoformat(doc["time"]), tables={str(k): int(v) for k, v in doc["tables"].items()},
            added=dict(doc.get("added") or {}), removed=dict(doc.get("removed") or {}),
        )  # fmt: skip
    except FileNotFoundError as exc:
        where = exc.args[0] if loc else path
        raise WarehouseError(f"{where}: missing", hint="`evalhouse history` lists the versions") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        if loc is not None:  # named by its URL (doctor is for local warehouses)
            raise WarehouseError(f"{loc.url}/{VERSIONS_DIR}/{path.name}: not a warehouse version ({exc})",
                                 hint="restore it from a backup") from None  # fmt: skip
        raise WarehouseError(f"{path}: not a warehouse version ({exc})", hint="run `evalhouse doctor`") from None
    if loc is not None:
        _read_remote[loc, number] = version
    return version


def current(root: Path) -> Version | None:
    """The newest published version (None before the warehouse's first)."""
    found = numbers(root)
    return read(root, found[-1]) if found else None


def history(root: Path) -> list[Version]:
    """Every published version, oldest first."""
    return [read(root, n) for n in numbers(root)]


def publish(root: Path, version: Version) -> None:
    """Publish ``version``: the commit point of every write to the warehouse.

    Raises WarehouseError if that number is taken (another writer committed first); on S3,
    CommitConflict, which the writer answers by redoing its work on the new state.
    """
    from evalhouse.warehouse import fsync

    target = path_of(root, version.number)
    loc = store.location(root)
    if loc is not None:
        if not store.create(loc, f"{VERSIONS_DIR}/{target.name}", version.to_json().encode()):
            raise CommitConflict(
                f"{loc.url}: another writer published version {version.number} first; nothing of this commit is live",
                hint="run the command again",
            )
        return
    target.parent.mkdir(exist_ok=True)
    tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(version.to_json())
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, target)
        except FileExistsError:
            raise WarehouseError(
                f"{target}: another writer published version {version.number} first; nothing of this commit is live",
                hint="run the command again",
            ) from None
        fsync(target.parent)
    finally:
        tmp.unlink(missing_ok=True)


def next_number(root: Path) -> int:
    found = numbers(root)
    return found[-1] + 1 if found else 0


def new(root: Path, kind: str, batch_id: str | None, tables: dict[str, int], **counts: dict[str, int]) -> Version:
    """The next version, to :func:`publish`."""
    return Version(next_number(root), kind, batch_id, datetime.now(UTC), tables, **counts)


def resolve(wh: Warehouse, as_of: str) -> int:
    """The version number an ``--as-of`` names: a version number, a batch id, or a time.

    A time (ISO 8601; UTC when it names no zone) selects the last version published at or before it.
    """
    found = history(wh.root)
    text = as_of.strip()
    hint = "`evalhouse history` lists them"
    if text.isdigit():
        if int(text) not in {v.number for v in found}:
            raise WarehouseError(f"no version {text}: the warehouse has versions 0 to {found[-1].number}", hint=hint)
        return int(text)
    for v in found:
        if v.batch_id == text:
            return v.number
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise WarehouseError(f"--as-of {as_of!r} is not a version number, a batch id or an ISO time",
                             hint=hint) from None  # fmt: skip
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    earlier = [v for v in found if v.time <= when]
    if not earlier:
        raise WarehouseError(f"--as-of {as_of}: the warehouse was created later, at {found[0].time.isoformat()}",
                             hint=hint)  # fmt: skip
    return earlier[-1].number
