"""Rebuild a damaged or lost ``evalhouse.json`` from the data, for ``evalhouse doctor --fix``.

The file says little the data does not: the schema version (every Delta-layout schema is the first
one, 3, plus columns added in place, which the upgrade on open adds where they are missing), when
the warehouse was created (the time of version 0), and the tables. The views fingerprint is
rewritten with the views. Rebuilt only where the data is a Delta-layout warehouse this evalhouse
can read: published versions and the tables' folders, no table with a column it does not know (a
newer evalhouse's), no folder of the previous layout (whose schema version its files do not say).
"""

from __future__ import annotations

import pyarrow as pa

from evalhouse import tables, versions
from evalhouse.errors import WarehouseError
from evalhouse.schema import SCHEMA_VERSION, TABLES
from evalhouse.warehouse import Warehouse, lock, read_meta, write_meta

# The first schema of Delta tables (engine/migrate.py's DELTA_SCHEMA): later ones only add columns.
DELTA_SCHEMA = 3
_RESTORE = "restore evalhouse.json from a backup"


def damaged(wh: Warehouse) -> str | None:
    """What is wrong with evalhouse.json when :func:`rebuild` should replace it, else None.

    Unreadable, not an object, or without an integer schema version; or missing from a folder
    holding published versions beyond the first (an unfinished creation is finished on open
    instead). A schema version newer than this evalhouse's is not damage.
    """
    if not wh.meta_path.exists():
        has_data = (wh.root / tables.TABLES_DIR).is_dir() and len(versions.numbers(wh.root)) > 1
        return "missing" if has_data else None
    try:
        meta = read_meta(wh)
    except WarehouseError as exc:
        return str(exc).removeprefix(f"{wh.meta_path}: ")
    version = meta.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return f"schema_version is {version!r}"
    return None


def rebuild(wh: Warehouse) -> list[str]:
    """Write evalhouse.json anew from the data (see the module docstring); returns what was done.

    Raises WarehouseError, leaving the file as it is, where the data cannot say what it held.
    """
    with lock(wh):
        why = damaged(wh)
        if why is None:  # repaired meanwhile
            return []
        if (wh.root / "data").is_dir():
            raise WarehouseError(f"{wh.meta_path}: {why}, and the previous layout's data does not say its schema "
                                 "version", hint=_RESTORE)  # fmt: skip
        numbers = versions.numbers(wh.root)
        if not numbers:
            raise WarehouseError(f"{wh.meta_path}: {why}, and there is no warehouse version to rebuild it from",
                                 hint=_RESTORE)  # fmt: skip
        current = versions.read(wh.root, numbers[-1])
        for name in current.tables:
            have = pa.schema(tables.open_table(wh.root, name, current.tables[name]).schema().to_arrow()).names
            unknown = sorted(set(have) - set(TABLES[name].names)) if name in TABLES else [name]
            if unknown:
                raise WarehouseError(
                    f"{wh.meta_path}: {why}, and {name} has column(s) {', '.join(unknown)} this evalhouse does not "
                    "know (written by a newer one?)",
                    hint=f"{_RESTORE}, or use a newer evalhouse",
                )
        created = versions.read(wh.root, numbers[0]).time
        write_meta(wh, {
            "schema_version": min(DELTA_SCHEMA, SCHEMA_VERSION), "created_at": created.isoformat(timespec="seconds"),
            "tables": sorted(TABLES),
        })  # fmt: skip
    return [f"rebuilt {wh.meta_path} from the tables and versions (it was {why})"]
