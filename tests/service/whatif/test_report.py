"""The ``koshin whatif`` plots and HTML report, from a hand-made result (sample.py): self-contained, escaped, the
three plots present, the sources and rule ids shown; and the page as headless Chromium renders it. Under CI (CI
set) a missing Chromium is a test failure, never a skip."""

from __future__ import annotations

import base64
import dataclasses
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from markupsafe import escape
from matplotlib import image

from service.whatif import plots, report
from service.whatif.result import WhatIf
from tests.service.whatif.sample import HOSTILE, sample

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHROMIUM_TIMEOUT = 120  # seconds; a cold first start in a container can take a while


@pytest.fixture(scope="module")
def w() -> WhatIf:
    return sample()


@pytest.fixture(scope="module")
def page(w: WhatIf) -> str:
    return report.render_report(w)


def _plot_sources(page: str) -> list[str]:
    return re.findall(r'<img class="plot" src="([^"]*)"', page)


def test_no_external_resources(page: str) -> None:
    references = re.findall(r"""\b(?:src|href|action|srcset|poster|data)\s*=\s*["']?([^"'\s>]+)""", page)
    assert references
    assert all(ref.startswith(("#", "data:")) for ref in references), references
    text = re.sub(r'src="data:[^"]*"', "", page).replace("http-equiv", "")
    assert not re.search(r"https?:|//[a-z]", text, re.IGNORECASE)
    assert "<link" not in page
    assert "@import" not in page
    assert "url(" not in page
    assert page.count("<script") == 1
    assert "<script>" in page  # inline, no src


def test_the_three_plots_are_inline_svg(w: WhatIf, page: str) -> None:
    sources = _plot_sources(page)
    assert len(sources) == 3
    for source in sources:
        assert source.startswith("data:image/svg+xml;base64,")
        svg = base64.b64decode(source.removeprefix("data:image/svg+xml;base64,")).decode()
        assert "<svg" in svg
        assert "<script" not in svg
    for figure in (plots.counter_hours_figure(w), plots.sweep_figure(w), plots.assurance_mix_figure(w)):
        assert figure.lstrip().startswith("<?xml")
        assert "</svg>" in figure


def test_plots_are_reproducible(w: WhatIf) -> None:
    assert plots.sweep_figure(w) == plots.sweep_figure(w)


def test_tables_show_every_number_and_its_rule(w: WhatIf, page: str) -> None:
    assert '<meta charset="utf-8">' in page
    assert w.municipality in page  # Japanese as text, not as entities
    for year in w.fiscal_years:
        assert f'data-fiscal-year="{year}"' in page
    row = w.row("proposal-280", "FY2025")
    assert f"{row.counter_visits:,}" in page
    assert f"{row.counter_staff_hours:,.1f}" in page
    for channel in row.by_channel:
        assert f"<code>{channel}</code>" in page
    for regime in w.regimes:
        assert f'data-regime="{regime}"' in page
        for route in w.routes[regime]:
            assert f"<code>{route.rule_id}</code>" in page
            assert escape(route.basis) in page


def test_assumptions_carry_sources_and_kind(w: WhatIf, page: str) -> None:
    table = page[page.index('<table class="assumptions">') :]
    table = table[: table.index("</table>")]
    for a in w.assumptions:
        assert f"<code>{escape(a.name)}</code>" in table
        assert escape(a.source) in table
    assert table.count('data-assumed="true"') == sum(a.assumed for a in w.assumptions)
    assert table.count('data-assumed="false"') == sum(not a.assumed for a in w.assumptions)
    assert "365" in table
    assert "0.2" in table


def test_everything_is_escaped(page: str) -> None:
    assert HOSTILE not in page
    assert str(escape(HOSTILE)) in page
    assert "<b>not bold</b>" not in page
    assert "&lt;b&gt;not bold&lt;/b&gt;" in page


def test_measured_only_when_measured(w: WhatIf, page: str) -> None:
    assert 'id="measured"' in page
    assert 'id="measured"' not in report.render_report(dataclasses.replace(w, measured=[]))


def test_an_empty_result_still_renders() -> None:
    empty = WhatIf("none", "Nothing", "どこにもない町", [], [], [], {}, [], [], "FY2025")
    page = report.render_report(empty)
    assert len(_plot_sources(page)) == 3
    assert "どこにもない町" in page


def test_write_plots_writes_pngs(w: WhatIf, tmp_path: Path) -> None:
    paths = plots.write_plots(w, tmp_path / "plots")
    assert [path.name for path in paths] == ["counter-hours.png", "sweep.png", "assurance-mix.png"]
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE)
        assert len(data) > 10_000
        pixels = image.imread(path)
        assert pixels.std() > 0.05  # drawn on, not one colour


def test_write_report(w: WhatIf, tmp_path: Path) -> None:
    path = report.write_report(w, tmp_path / "out" / "report.html")
    assert path.read_text(encoding="utf-8") == report.render_report(w)


# -- headless Chromium ------------------------------------------------------------------------------------------


def require_chromium() -> str:
    browser = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if browser is None:
        message = "Chromium is not installed (Debian package chromium; `make test` installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return browser


def _chromium(browser: str, profile: Path, *arguments: str) -> str:
    command = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}", *arguments,
    ]  # fmt: skip
    env = {**os.environ, "HOME": str(profile)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT, env=env, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_chromium_renders_the_report(w: WhatIf, tmp_path: Path) -> None:
    browser = require_chromium()
    path = report.write_report(w, tmp_path / "report.html")
    url = path.resolve().as_uri()

    dom = _chromium(browser, tmp_path / "profile", "--dump-dom", url)
    body = re.search(r"<body[^>]*>", dom)
    assert body is not None, dom[:500]
    assert 'data-plots="3"' in body.group(0)  # the inline script ran (CSP hash right) and every plot has a width
    assert w.municipality in dom
    row = w.row("current-2022", "FY2025")
    assert f"{row.counter_staff_hours:,.1f}" in dom
    assert "<code>CUR-NO-KIOSK</code>" in dom
    assert HOSTILE not in dom

    shot = tmp_path / "shot.png"
    _chromium(browser, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,2000", url)
    data = shot.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 20_000
    pixels = image.imread(shot)
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels.std() > 0.05
    assert len({tuple(p) for p in pixels[::50, ::50, :3].reshape(-1, 3).round(2).tolist()}) > 10  # many colours
