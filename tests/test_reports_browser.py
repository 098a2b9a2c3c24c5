"""The HTML report opens in headless Chromium from disk, with no network and no console errors."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

import reports

DATA = Path(__file__).parent / "data" / "reports"
CONSOLE = re.compile(r":CONSOLE(?:\(\d+\))?:\d*\]\s*(.*)")
BAD_CONSOLE = re.compile(r"uncaught|error|fail|warn|blocked|cannot|could not", re.IGNORECASE)


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("no Chromium found: install Debian's chromium and chromium-driver (`make browser`)")


def open_page(page: Path, profile: Path, *extra: str) -> tuple[str, list[str]]:
    """(DOM after scripts ran, console messages) of a local page, every host unresolvable."""
    cmd = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
        "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=15000", "--window-size=1300,5000",
        *extra, page.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [m.group(1) for m in map(CONSOLE.search, proc.stderr.splitlines()) if m]
    return proc.stdout, console


@pytest.fixture(scope="module")
def report_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    reports.write_report(DATA / "seizures_small.csv", out, formats=("html",))
    return out / "index.html"


@pytest.mark.integration
def test_report_renders_offline_without_console_errors(report_page: Path, tmp_path: Path) -> None:
    dom, console = open_page(report_page, tmp_path / "profile", "--dump-dom")
    assert not [m for m in console if BAD_CONSOLE.search(m)], console
    charts = re.findall(r'id="(fig\d+)-chart"', dom)
    assert len(charts) >= 12
    # every chart drew its SVG, and the world map drew its countries from the embedded geometry
    assert dom.count('class="main-svg"') >= len(charts)
    assert dom.count('class="choroplethlocation"') >= 3
    assert 'class="sankey"' in dom


@pytest.mark.integration
def test_missing_map_geometry_would_be_caught(report_page: Path, tmp_path: Path) -> None:
    """Guard for the test above: a page that must fetch its topojson logs an error here."""
    page = tmp_path / "nogeo.html"
    page.write_text(report_page.read_text().replace("window.PlotlyGeoAssets = ", "window.unused = ", 1))
    _, console = open_page(page, tmp_path / "profile", "--dump-dom")
    assert any("topojson" in m for m in console), console


@pytest.mark.integration
def test_report_screenshot(report_page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    open_page(report_page, tmp_path / "profile", f"--screenshot={shot}")
    assert shot.stat().st_size > 50_000  # a blank page is a few kB


@pytest.mark.integration
@pytest.mark.slow
def test_report_passes_axe_and_sorts_from_the_keyboard(report_page: Path) -> None:
    """axe-core (the workbench's vendored copy) finds nothing; a table header sorts with Enter."""
    from playwright.sync_api import sync_playwright

    axe = Path(__file__).resolve().parents[1] / "serving" / "web" / "static" / "vendor" / "axe.min.js"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                     args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            page.goto(report_page.as_uri())
            page.wait_for_selector("#fig14-chart .main-svg")
            page.add_script_tag(path=str(axe))
            found = page.evaluate("""async () => (await axe.run(document, {resultTypes: ['violations']})).violations
                .map(v => ({id: v.id, impact: v.impact, targets: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))""")
            assert found == []
            header = page.locator("#fig3 table").nth(1).locator("th").nth(2)  # by_country: cases
            header.get_by_role("button").focus()
            page.keyboard.press("Enter")
            page.keyboard.press("Enter")
            assert header.get_attribute("aria-sort") == "descending"
            cells = page.locator("#fig3 table").nth(1).locator("tbody tr td:nth-child(3)").all_inner_texts()
            assert [int(c) for c in cells] == sorted((int(c) for c in cells), reverse=True)
        finally:
            browser.close()
