"""The plan and bench HTML reports at 1400 px in headless Chromium: no text box overlaps
another (bounding boxes compared in the DOM, by a script run on the loaded page)."""

from __future__ import annotations

import random
import re
import subprocess
from pathlib import Path

from moerun.bench.html_report import write_html
from moerun.bench.records import RequestRecord, summarize_records
from moerun.bench.results import BenchResults, RunResult
from moerun.core.plan.demand import DailyProfile, Volume
from moerun.render.plan_html import render_plan_html
from tests.fixtures.plan import run_plan
from tests.render.test_plan_html import _chromium, _sources

# every visible text element's box against every other's; the count lands on <body>
CHECK = """<script>
window.addEventListener('load', function () {
  var els = document.querySelectorAll('svg text, h1, h2, h3, p, li, th, td, small, b');
  var boxes = [];
  els.forEach(function (e) {
    if (e.children.length && e.tagName !== 'text') return;  // leaves only
    var b = e.getBoundingClientRect();
    if (b.width > 0 && b.height > 0) boxes.push([b, e.textContent.trim().slice(0, 40)]);
  });
  var bad = [];
  for (var i = 0; i < boxes.length; i++) for (var j = i + 1; j < boxes.length; j++) {
    var a = boxes[i][0], c = boxes[j][0];
    var w = Math.min(a.right, c.right) - Math.max(a.left, c.left);
    var h = Math.min(a.bottom, c.bottom) - Math.max(a.top, c.top);
    if (w > 2 && h > 2) bad.push(boxes[i][1] + ' | ' + boxes[j][1]);
  }
  document.body.setAttribute('data-checked-boxes', boxes.length);
  document.body.setAttribute('data-overlaps', bad.length);
  document.body.setAttribute('data-overlap-pairs', bad.slice(0, 10).join(' ;; '));
});
</script></body>"""


def _overlaps(html: str, tmp: Path, name: str) -> tuple[int, int, str]:
    page = tmp / f"{name}.html"
    page.write_text(html.replace("</body>", CHECK, 1), "utf-8")
    base = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            f"--user-data-dir={tmp / ('profile-' + name)}", "--window-size=1400,2400"]  # fmt: skip
    shot = subprocess.run(
        [*base, f"--screenshot={tmp / (name + '.png')}", page.as_uri()],
        capture_output=True,
        timeout=90,
    )
    assert shot.returncode == 0 and (tmp / f"{name}.png").stat().st_size > 10_000
    dom = subprocess.run(
        [*base, "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=90,
    ).stdout
    boxes = int(re.search(r'data-checked-boxes="(\d+)"', dom).group(1))  # type: ignore[union-attr]
    count = int(re.search(r'data-overlaps="(\d+)"', dom).group(1))  # type: ignore[union-attr]
    pairs = re.search(r'data-overlap-pairs="([^"]*)"', dom).group(1)  # type: ignore[union-attr]
    return boxes, count, pairs


def test_plan_report_text_does_not_overlap(tmp_path: Path) -> None:
    peaky = DailyProfile.from_values([0.3] * 16 + [3.0] * 8)
    result = run_plan("agentic-coding", volume=Volume(400_000, peaky), budget_usd_per_month=1.5e5)
    html = render_plan_html(result, _sources())
    boxes, count, pairs = _overlaps(html, tmp_path, "plan")
    assert boxes > 100 and count == 0, pairs
    # the ranked configurations are marked on the scatter, the front through drawn points
    assert html.count('class="point chosen"') >= 1
    assert "p99 TPOT bound" in html and "budget $150,000" in html


def test_checker_sees_an_overlap(tmp_path: Path) -> None:
    clash = (
        "<html><body><svg class=chart width=200 height=50><text x=10 y=20>overlapping</text>"
        "<text x=14 y=22>text here</text></svg></body></html>"
    )
    _, count, _ = _overlaps(clash, tmp_path, "clash")
    assert count == 1


def test_bench_report_text_does_not_overlap(tmp_path: Path) -> None:
    rng = random.Random(0)
    runs = []
    for conc in (1, 4, 16):
        records = []
        for i in range(40):
            start = i * 0.05
            gaps = [0.1] + [0.02 * (1 + rng.random()) for _ in range(19)]
            chunks = tuple(start + sum(gaps[: k + 1]) for k in range(20))
            records.append(RequestRecord(i, i, 0, start, chunks[-1], chunks, 500, 20, 0, 500, 20))
        summary = summarize_records(records, num_gpus=8)
        runs.append(RunResult(f"concurrency {conc}", {"concurrency": conc}, tuple(records),
                              summary, 3.0))  # fmt: skip
    results = BenchResults("http://127.0.0.1:9", "chat", "m", "words", "s", None, None, tuple(runs))
    write_html(tmp_path / "bench.html", results)
    boxes, count, pairs = _overlaps((tmp_path / "bench.html").read_text(), tmp_path, "bench")
    assert boxes > 20 and count == 0, pairs
