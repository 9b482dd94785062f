"""Check an HTML report for overlapping text in headless Chromium, and screenshot it.

Run: .venv/bin/python scripts/check_report_layout.py REPORT.html [SHOT.png]

Loads the page at 1400 px wide, takes every SVG <text> element's rendered bounding box and
reports each pair within one chart whose boxes intersect (by more than half a pixel each
way), and each text whose box leaves its chart. Exit 1 when any is found. Needs `chromium`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROBE = """
<script>
window.addEventListener('load', function () {
  var out = [];
  document.querySelectorAll('svg').forEach(function (svg, k) {
    var box = svg.getBoundingClientRect();
    var texts = Array.prototype.slice.call(svg.querySelectorAll('text'));
    var rects = texts.map(function (t) { return t.getBoundingClientRect(); });
    for (var i = 0; i < texts.length; i++) {
      var a = rects[i];
      if (a.left < box.left - 0.5 || a.right > box.right + 0.5 ||
          a.top < box.top - 0.5 || a.bottom > box.bottom + 0.5) {
        out.push('chart ' + k + ': "' + texts[i].textContent + '" leaves the chart');
      }
      for (var j = i + 1; j < texts.length; j++) {
        var b = rects[j];
        var w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
        var h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
        if (w > 0.5 && h > 0.5) {
          out.push('chart ' + k + ': "' + texts[i].textContent + '" overlaps "' +
                   texts[j].textContent + '"');
        }
      }
    }
  });
  var pre = document.createElement('pre');
  pre.id = 'layout-result';
  pre.textContent = JSON.stringify({charts: document.querySelectorAll('svg').length,
                                    problems: out});
  document.body.appendChild(pre);
});
</script>
"""


def check(report: Path, shot: Path | None) -> list[str]:
    """Problems found (empty: none); writes the screenshot when asked."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("chromium is not installed")
    page = report.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>")
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.html"
        probe.write_text(page, encoding="utf-8")
        flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                 "--window-size=1400,3000", "--virtual-time-budget=5000"]  # fmt: skip
        dom = subprocess.run(
            [*flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, check=True
        ).stdout
        if shot is not None:
            subprocess.run(
                [*flags, f"--screenshot={shot}", report.resolve().as_uri()],
                capture_output=True,
                check=True,
            )
    found = re.search(r'<pre id="layout-result">(.*?)</pre>', dom, re.S)
    if found is None:
        return ["the probe did not run"]
    result = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    print(f"{result['charts']} charts checked")
    return list(result["problems"])


def main() -> None:
    """Print the problems; exit 1 if any."""
    problems = check(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None)
    for p in problems:
        print(p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
