"""`moerun catalog check` on fixture catalogs: a complete one passes, gaps are each named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moerun.cli import main

COMPLETE = """\
schema: 1
prices:
- {provider: a, usd_per_gpu_hour: 2.0, source: [S1], as_of: '2026-10-01'}
- {provider: b, usd_per_gpu_hour: 3.0, source: [S2], as_of: 'read 2026', as_of_iso: '2026-11-02'}
sources:
  S1: {title: a price page, ref: 'https://a.example/prices', date: '2026-10-01'}
  S2: {title: b price page, ref: 'https://b.example/prices', date: 'undated; retrieved 2026-11-02'}
"""


def _write(tmp_path: Path, text: str, name: str = "gpu_prices.yaml") -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path


def _check(folder: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object]]:
    code = main(["catalog", "check", "--dir", str(folder), "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_a_complete_catalog_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, data = _check(_write(tmp_path, COMPLETE), capsys)
    assert code == 0
    assert data == {"ok": True, "num_facts": 2, "num_sources": 2, "problems": []}


@pytest.mark.parametrize(
    ("old", "new", "where", "problem"),
    [
        ("source: [S1], as_of", "source: [], as_of", "prices[0]", "no source"),
        (
            "{provider: a, usd_per_gpu_hour: 2.0, source: [S1], ",
            "{provider: a, ",
            "prices[0]",
            "no source",
        ),
        ("as_of: '2026-10-01'}", "as_of: '2026'}", "prices[0]", "no real date (as_of: '2026')"),
        (
            "as_of_iso: '2026-11-02'",
            "as_of_iso: null",
            "prices[1]",
            "no real date (as_of: 'read 2026')",
        ),
        (
            "date: 'undated; retrieved 2026-11-02'",
            "date: undated",
            "sources.S2",
            "no real date (date: 'undated')",
        ),
    ],
)
def test_each_gap_fails_the_check_and_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, where: str, problem: str
) -> None:
    assert old in COMPLETE
    code, data = _check(_write(tmp_path, COMPLETE.replace(old, new)), capsys)
    assert code == 3
    assert data["ok"] is False
    assert data["problems"] == [{"file": "gpu_prices.yaml", "where": where, "problem": problem}]


def test_the_text_report_has_one_line_per_gap_and_a_total(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _write(tmp_path, COMPLETE.replace("source: [S2]", "source: []"))
    (folder / "sub").mkdir()
    _write(folder / "sub", "x: {source: [S9], as_of: n/a}\n", "other.yaml")
    assert main(["catalog", "check", "--dir", str(folder)]) == 3
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "gpu_prices.yaml: prices[1]: no source",
        "sub/other.yaml: x: no real date (as_of: 'n/a')",
        "catalog check: 3 facts and 2 cited sources checked: 2 problem(s)",
    ]


def test_bad_dir_and_bad_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "check", "--dir", str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err
    code, data = _check(_write(tmp_path, "a: [unclosed\n"), capsys)
    assert code == 3
    assert "not valid YAML" in str(data["problems"])


def test_csv_rows_are_facts_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path, COMPLETE)
    table = "id,output_tok_per_s,source,as_of\nR1,10.0,a paper,2026-02-13\nR2,11.0,,2026-02-13\n"
    _write(tmp_path, table + "R3,12.0,a paper,feb 2026\n", "runs.csv")
    _write(tmp_path, "id,value\nX,1\n", "no_sources.csv")  # not a table of sourced facts
    code, data = _check(tmp_path, capsys)
    assert code == 3
    assert data["num_facts"] == 2 + 3
    assert data["problems"] == [
        {"file": "runs.csv", "where": "line 3 (R2)", "problem": "no source"},
        {"file": "runs.csv", "where": "line 4 (R3)", "problem": "no real date (as_of: 'feb 2026')"},
    ]


def test_the_packaged_catalog_has_every_fact_sourced_and_dated(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["catalog", "check", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["problems"] == [] and data["ok"] is True
    assert data["num_facts"] > 200 and data["num_sources"] > 90
