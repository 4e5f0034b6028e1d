"""The package list in pyproject.toml covers every subpackage of engine/ (a new one left out would
be missing from the wheel), and the CLI is the installed package's module."""

from __future__ import annotations

import tomllib

from tests.conftest import ROOT


def test_every_subpackage_of_engine_is_in_the_wheel() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    found = {"evalhouse"} | {
        "evalhouse." + ".".join(p.parent.relative_to(ROOT / "engine").parts)
        for p in (ROOT / "engine").rglob("__init__.py")
    } - {"evalhouse."}
    assert set(setuptools["packages"]) == found | {"evalhouse.sql"}
    assert setuptools["package-dir"] == {"evalhouse": "engine", "evalhouse.sql": "sql"}


def test_the_cli_module_is_cli_py() -> None:
    link = ROOT / "engine" / "cli.py"
    assert link.is_symlink() and link.resolve() == (ROOT / "cli.py").resolve()
    import evalhouse.cli

    assert evalhouse.cli.main.name == "main"
