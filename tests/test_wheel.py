"""Installed like a library: a wheel built from the project, installed into a fresh virtual
environment, runs the README's commands and its Python API example from another folder, and puts
nothing at the top level of site-packages but `evalhouse`."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed (its dependencies taken from this environment)."""
    root = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                            str(root / "dist"), str(ROOT)], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (root / "dist").glob("evalhouse-*.whl")
    venv.create(root / "venv", with_pip=True)
    python = root / "venv" / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    # The dependencies come from this environment (appended after the venv's own site-packages,
    # without its .pth files, so the editable install of the source tree stays out).
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    done = subprocess.run([python, "-m", "pip", "install", "--no-deps", "-q", str(wheel)], capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return root


def test_the_wheel_holds_one_package_and_the_view_files(installed: Path) -> None:
    (wheel,) = (installed / "dist").glob("evalhouse-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"evalhouse", wheel.name.split("-py3")[0] + ".dist-info"}
    sql = sorted(n.removeprefix("evalhouse/sql/") for n in names if n.startswith("evalhouse/sql/"))
    assert sql == sorted(p.name for p in (ROOT / "sql").glob("*.sql"))
    assert "evalhouse/cli.py" in names


def test_the_readme_commands_and_the_api_run_from_the_installed_wheel(installed: Path) -> None:
    bin_dir = installed / "venv" / "bin"
    work = installed / "work"
    work.mkdir()

    def run(*args: str) -> str:
        done = subprocess.run([str(a) for a in args], cwd=work, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (args, done.stderr[-2000:])
        return done.stdout

    where = run(bin_dir / "python", "-c", "import evalhouse, evalhouse.warehouse as w; print(evalhouse.__file__)")
    assert where.startswith(str(installed / "venv"))  # the wheel, not the source tree
    run(bin_dir / "evalhouse", "synth", "--runs", "20", "--seed", "0", "--out", "corpus")
    run(bin_dir / "evalhouse", "ingest", "--quiet", "corpus", "-w", "wh")
    assert "model" in run(bin_dir / "evalhouse", "summary", "--by", "model", "-w", "wh", "--format", "csv")
    run(bin_dir / "evalhouse", "report", "-w", "wh", "--out", "report", "--output", "md")
    assert (work / "report" / "report.md").read_text(encoding="utf-8").startswith("# evalhouse report")
    api = (
        "import evalhouse.api as eh\n"
        "wh = eh.open_warehouse('wh')\n"
        "s = eh.summary(wh, by=['model'])\n"
        "c = eh.compare(wh)\n"
        "print(s.height > 0, c.height > 0, type(s).__module__.split('.')[0])\n"
    )
    assert run(bin_dir / "python", "-c", api).split() == ["True", "True", "polars"]
    out = run(bin_dir / "python", "-c", "import importlib.util as u; print(u.find_spec('engine'), u.find_spec('cli'))")
    assert out.split() == ["None", "None"]
