"""The interactive HTML report in a real headless browser (Chromium): it loads with no script
errors, draws every chart, shows the verdict table on the first screen, and fetches nothing."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from evalhouse.report import build_report
from evalhouse.synth import generate
from evalhouse.warehouse import open_warehouse

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (make test installs it where it can)"),
]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--window-size=1280,900"]  # fmt: skip


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    generate(root / "corpus", 40, seed=0)
    from evalhouse.ingest import ingest

    wh = open_warehouse(root / "wh", create=True)
    ingest(wh, [root / "corpus"], workers=1)
    result = build_report(wh, root / "out", outputs=("interactive",))
    assert result.interactive is not None
    return result.interactive


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def test_the_page_draws_every_chart_without_errors(page: Path, tmp_path: Path) -> None:
    done = chromium("--virtual-time-budget=20000", "--dump-dom", page.as_uri(), profile=tmp_path / "p")
    assert done.returncode == 0, done.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", done.stdout)
    assert body, done.stdout[:500]
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(1)))
    drawn, total = attrs["charts"].split("/")
    assert int(total) >= 4 and drawn == total, attrs
    assert attrs["errors"] == "0", attrs
    assert attrs["first-screen"] == "true", attrs


def test_the_page_fetches_nothing_and_a_screenshot_shows_it(page: Path, tmp_path: Path) -> None:
    html = page.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html)
    shot = tmp_path / "shot.png"
    done = chromium("--virtual-time-budget=20000", f"--screenshot={shot}", page.as_uri(), profile=tmp_path / "q")
    assert done.returncode == 0 and shot.stat().st_size > 10_000, done.stderr[-2000:]
