"""The bench HTML report: sweep charts with SLO and predictions, legends clear of the plot,
and no overlapping text when a browser lays it out."""

from __future__ import annotations

import importlib.util
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from moerun.bench.html_report import render_html
from moerun.bench.results import read_results
from moerun.bench.svg import H, W, chart
from moerun.cli import main
from tests.bench.conftest import ThreadServer

SWEEP = ["--isl", "32", "--osl", "4", "--num-requests", "8", "--no-progress"]
DEPLOYMENT = ["--model", "glm-5.1", "--gpu", "h200_sxm", "--num-gpus", "8"]


def _sweep_report(url: str, tmp_path: Path) -> tuple[Path, str]:
    out, page = tmp_path / "r.json", tmp_path / "r.html"
    flags = ["--sweep-concurrency", "1,2,4", "--slo-ttft-ms", "600", "--slo-tpot-ms", "60"]
    code = main(["bench", url, *SWEEP, *flags, *DEPLOYMENT, "--compare-sim",
                 "--output", str(out), "--html", str(page)])  # fmt: skip
    assert code == 0
    return out, page.read_text()


def test_sweep_report_has_throughput_latency_charts_slo_and_predictions(
    fast_server: ThreadServer, tmp_path: Path
) -> None:
    out, html = _sweep_report(fast_server.url, tmp_path)
    assert "throughput vs TTFT" in html and "throughput vs TPOT" in html
    assert "output tokens / s per GPU" in html  # the deployment is known
    assert "SLO TTFT 600 ms" in html and "SLO TPOT 60 ms" in html
    assert "TTFT p99 simulate" in html and "ttft_ms (simulate)" in html
    assert "goodput req/s" in html and "<script" not in html
    # one sweep row per level, with its per-GPU throughput from the results file
    runs = read_results(out).runs
    for run in runs:
        per_gpu = float(run.summary["output_tok_per_s_per_gpu"])  # type: ignore[arg-type]
        assert f"<td>{run.label}</td><td>{per_gpu:,.1f}</td>" in html
    single = render_html(replace(read_results(out), runs=runs[:1]))
    assert "throughput vs TTFT" not in single  # no sweep section for one run


def test_legend_sits_below_the_plot_and_grows_the_chart() -> None:
    names = [f"concurrency {c} with a long label" for c in range(8)]
    svg = chart("t", [(n, [0.0, 1.0], [0.0, 1.0]) for n in names], x_label="x", y_label="y")
    height = float(re.search(r'height="([0-9.]+)"', svg).group(1))  # type: ignore[union-attr]
    assert height > H  # rows were added for the legend
    legend_ys = [float(y) for y in re.findall(r'<rect x="[0-9.]+" y="([0-9.]+)"', svg)]
    assert len(legend_ys) == 8 and min(legend_ys) > H - 10  # below the x-axis label
    xs = [float(x) for x in re.findall(r'<text x="([0-9.]+)" y="[0-9.]+">concurrency', svg)]
    assert max(xs) < W


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium")
def test_no_text_overlaps_in_a_browser(fast_server: ThreadServer, tmp_path: Path) -> None:
    _, html = _sweep_report(fast_server.url, tmp_path)
    page = tmp_path / "page.html"
    page.write_text(html)
    script = Path(__file__).parents[2] / "scripts" / "check_report_layout.py"
    spec = importlib.util.spec_from_file_location("check_report_layout", script)
    assert spec is not None and spec.loader is not None
    layout = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(layout)
    assert layout.check(page, None) == []
