"""Eagerly timed kernel tables (kernels/timing.yaml): vLLM's fp8_block GEMMs were timed without
CUDA graphs, so moerun reads SGLang's graph-timed DeepGEMM table of the same GPU instead."""

from __future__ import annotations

import pytest

from moerun.catalog.perf.kernels import (
    EagerTimed,
    graph_timed,
    load_kernel_tables,
    parse_timing,
)
from moerun.errors import CatalogError
from tests.conftest import raw_kernel_file

MS = 1e-3


def _cell(g: dict, m: int, n: int, k: int) -> float:
    """A GEMM table's stored latency (ms) at (m, n, k), read off the file's flat layout."""
    i, j, c = g["m"].index(m), g["n"].index(n), g["k"].index(k)
    return g["latency_ms"][(i * len(g["n"]) + j) * len(g["k"]) + c]


def test_the_stored_vllm_fp8_block_table_reads_host_launch_gaps() -> None:
    # the premise, read off the published files: at (n, k) = (2048, 6144) vLLM's eager timings
    # sit at 55-95 us from one token to 512 while SGLang's graph-timed DeepGEMM reads 8-25 us
    v = raw_kernel_file("h200_sxm", "vllm")["gemm"]["fp8_block"]
    s = raw_kernel_file("h200_sxm", "sglang")["gemm"]["fp8_block"]
    for m in (1, 8, 64, 512):
        assert 0.055 <= _cell(v, m, 2048, 6144) <= 0.095
        assert 0.008 <= _cell(s, m, 2048, 6144) <= 0.025


@pytest.mark.parametrize("gpu", ["h100_sxm", "h200_sxm", "b200_sxm", "gb200"])
def test_vllm_reads_sglangs_graph_timed_fp8_block_gemms(gpu: str) -> None:
    vllm, sglang = load_kernel_tables(gpu, "vllm"), load_kernel_tables(gpu, "sglang")
    assert vllm is not None and sglang is not None
    assert vllm.gemm["fp8_block"] is sglang.gemm["fp8_block"]
    # a cell read back: SGLang's file, in seconds
    g = raw_kernel_file(gpu, "sglang")["gemm"]["fp8_block"]
    m, n, k = 8, g["n"][-3], g["k"][-3]
    want = _cell(g, m, n, k)
    curve = vllm.gemm["fp8_block"].curve(n, k)
    assert want is not None and curve is not None
    assert curve.at(m) == pytest.approx(want * MS, rel=1e-9)
    assert "fp8_block GEMMs from sglang's graph-timed table" in vllm.source
    assert "without CUDA graphs" in vllm.source
    # what is not listed stays the engine's own: bf16 GEMMs and every other table
    assert vllm.gemm["bfloat16"] is not sglang.gemm["bfloat16"]
    assert "sglang" not in sglang.source


def test_without_a_donor_the_eager_table_is_dropped_and_said() -> None:
    # L40S: SGLang measured no fp8_block GEMM (no TMA), so vLLM's eager one is not used
    tables = load_kernel_tables("l40s", "vllm")
    assert tables is not None
    assert "fp8_block" in raw_kernel_file("l40s", "vllm")["gemm"]
    assert "fp8_block" not in tables.gemm
    assert "fp8_block GEMMs unmeasured" in tables.source


def test_rules_apply_only_to_their_engine() -> None:
    sglang = load_kernel_tables("h200_sxm", "sglang")
    assert sglang is not None
    rule = EagerTimed(engine="vllm", dtype="fp8_block", donor="sglang")
    assert graph_timed(sglang, (rule,)) is sglang
    # a rule naming the engine itself as donor drops the table rather than keeping it
    own = graph_timed(sglang, (EagerTimed("sglang", "fp8_block", "sglang"),))
    assert "fp8_block" not in own.gemm and "bfloat16" in own.gemm


GOOD = """
eager_timed:
  - {engine: vllm, table: gemm, dtype: fp8_block, donor: sglang,
     source: s, evidence: e, as_of: "2026-12-04"}
"""


def test_timing_rows_need_their_evidence() -> None:
    assert parse_timing(GOOD) == (EagerTimed("vllm", "fp8_block", "sglang"),)
    with pytest.raises(CatalogError, match="row 0"):
        parse_timing(GOOD.replace("evidence: e, ", ""))
    with pytest.raises(CatalogError, match="only gemm"):
        parse_timing(GOOD.replace("table: gemm", "table: moe"))
    with pytest.raises(CatalogError, match="not a mapping"):
        parse_timing("- just a list")
