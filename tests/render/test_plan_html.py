"""The plan's HTML report in a real headless browser (Debian's `chromium`): it loads without
console messages, is self-contained, and its three charts draw.

The page records each chart's drawn size and mark count in `data-rendered-*` attributes on
load; chromium's --dump-dom returns the DOM after that script ran, and --enable-logging=stderr
prints every console message as an `INFO:CONSOLE` line.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from moerun.catalog.plan_data import plan_sources
from moerun.catalog.sources import load_sources
from moerun.core.plan.curves import pareto
from moerun.core.plan.demand import DailyProfile, Volume
from moerun.render.plan_html import render_plan_html
from tests.fixtures.plan import run_plan

INSTALL = "apt-get install -y chromium"
CHART = re.compile(r'<svg class="chart"[^>]*>')


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(f"chromium not found: the HTML report test needs it; install it with `{INSTALL}`")


def load_in_browser(page: Path, profile: Path) -> tuple[str, list[str]]:
    """The DOM after load, and the console lines chromium logged."""
    proc = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return proc.stdout, console


def _sources() -> dict[str, tuple[str, str, str]]:
    out = {k: (s.title, s.ref, s.date) for k, s in load_sources().items()}
    out |= {k: (s.title, s.ref, s.date) for k, s in plan_sources().items()}
    return out


def test_the_checker_sees_console_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>console.error('boom'); nope();</script></body></html>")
    _, console = load_in_browser(bad, tmp_path / "profile")
    assert any("boom" in line for line in console)
    assert any("Uncaught ReferenceError" in line for line in console)


def test_plan_report_loads_cleanly_and_its_charts_render(tmp_path: Path) -> None:
    peaky = DailyProfile.from_values([0.3] * 16 + [3.0] * 8)
    # both engines: vLLM's best layouts here (attention DP, two nodes) were never measured,
    # SGLang's carry a measured band
    result = run_plan("agentic-coding", volume=Volume(400_000, peaky), engines=("vllm", "sglang"))
    html = render_plan_html(result, _sources())
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", html)  # nothing fetched
    page = tmp_path / "plan.html"
    page.write_text(html, "utf-8")

    dom, console = load_in_browser(page, tmp_path / "profile")
    assert console == []
    assert 'data-charts-checked="true"' in dom
    charts = CHART.findall(dom)
    assert len(charts) == 3, charts
    for tag in charts:
        width = int(re.search(r'data-rendered-width="(\d+)"', tag).group(1))  # type: ignore[union-attr]
        height = int(re.search(r'data-rendered-height="(\d+)"', tag).group(1))  # type: ignore[union-attr]
        marks = int(re.search(r'data-rendered-marks="(\d+)"', tag).group(1))  # type: ignore[union-attr]
        assert width > 300 and height > 150 and marks >= 2, tag
    # what the page must say: the recommendation, break-even, sources and calibration
    assert "Recommendation:" in dom and "Break-even" in dom
    assert "calibration" in dom and "±" in dom and "(error never measured)" in dom
    assert "p99 unverified" in dom
    assert re.search(r"\[S\d+[^\]]*\] 20\d\d-\d\d", dom)  # a price with its source and date
    assert "<b>S49</b>" in dom or "<b>S45</b>" in dom or "<b>S56</b>" in dom
    assert "hybrid" in dom
    # the fixture's best-looking layouts are extrapolations no run measured: the chart draws
    # them hollow with a dashed front of their own, and says so under the chart
    assert pareto(result).unmeasured_front
    assert 'class="series unmeasured"' in dom and 'class="point unmeasured"' in dom
    assert "The dashed front runs through predictions whose error was never measured" in dom
