"""`moerun catalog check`: every fact in the catalog has a source and a real date.

Each row of a CSV table with a `source` column (published measurements) is a fact too.

A fact is any mapping in a catalog YAML file that carries `source` or `as_of` (a GPU, a
price, an unpriced offer, a provider's policy, an offering, a published measurement, a
billing rule, an engine default, a model config's provenance). It passes when its `source`
is non-empty and its date is a calendar day: `as_of_iso` when the file has one, else `as_of`
(a calibration profile, fitted rather than read, has the day it was fitted, `created`), in
YYYY-MM-DD form ("2026", "undated" or "n/a" are not dates). A cited source passes when its
`date` names a calendar day: the day it was published, or the day it was read, said so
("retrieved 2026-11-28"), for a page that carries no date of its own.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import yaml

from moerun.catalog.files import load_yaml

ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DAY_IN_TEXT = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


@dataclass(frozen=True, slots=True)
class Problem:
    """One fact or source that fails the check: where it is and what it lacks."""

    file: str
    where: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}: {self.where}: {self.problem}"


@dataclass(frozen=True, slots=True)
class Audit:
    """What the check looked at and what it found."""

    num_facts: int
    num_sources: int
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        """Whether every fact and source is sourced and dated."""
        return not self.problems


def fact_day(fact: dict[str, Any]) -> str | None:
    """The calendar day a fact speaks for (as_of_iso, as_of, created), or None when it has none."""
    for key in ("as_of_iso", "as_of", "created"):
        value = fact.get(key)
        if value is not None and ISO_DAY.match(str(value)):
            return str(value)
    return None


def audit_text(filename: str, text: str) -> Audit:
    """Check one catalog YAML file's facts and sources."""
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        return Audit(0, 0, (Problem(filename, "<root>", f"not valid YAML: {exc}"),))
    problems: list[Problem] = []
    num_facts = 0
    for where, fact in _facts(data, ""):
        num_facts += 1
        source = fact.get("source")
        if not source:
            problems.append(Problem(filename, where, "no source"))
        if fact_day(fact) is None:
            shown = fact.get("as_of_iso") or fact.get("as_of") or fact.get("created")
            problems.append(Problem(filename, where, f"no real date (as_of: {shown!r})"))
    sources = data.get("sources") if isinstance(data, dict) else None
    num_sources = 0
    if isinstance(sources, dict):
        for sid, entry in sources.items():
            num_sources += 1
            date = str(entry.get("date", "")) if isinstance(entry, dict) else ""
            if not _DAY_IN_TEXT.search(date):
                problems.append(
                    Problem(filename, f"sources.{sid}", f"no real date (date: {date!r})")
                )
    return Audit(num_facts, num_sources, tuple(problems))


def audit_csv_text(filename: str, text: str) -> Audit:
    """Check a table of facts: every row of a CSV with a `source` column needs it and `as_of`."""
    reader = csv.DictReader(io.StringIO(text))
    if "source" not in (reader.fieldnames or []):
        return Audit(0, 0, ())
    problems: list[Problem] = []
    num_rows = 0
    for line, row in enumerate(reader, start=2):
        num_rows += 1
        where = f"line {line}" + (f" ({row['id']})" if row.get("id") else "")
        if not (row.get("source") or "").strip():
            problems.append(Problem(filename, where, "no source"))
        if fact_day(row) is None:
            problems.append(Problem(filename, where, f"no real date (as_of: {row.get('as_of')!r})"))
    return Audit(num_rows, 0, tuple(problems))


def audit_files(files: Iterable[tuple[str, str]]) -> Audit:
    """Check many (filename, text) pairs (YAML, or CSV by name) and add up the results."""
    num_facts = num_sources = 0
    problems: list[Problem] = []
    for filename, text in files:
        check = audit_csv_text if filename.endswith(".csv") else audit_text
        a = check(filename, text)
        num_facts += a.num_facts
        num_sources += a.num_sources
        problems += a.problems
    return Audit(num_facts, num_sources, tuple(problems))


def packaged_files() -> list[tuple[str, str]]:
    """Every YAML and CSV file of the packaged catalog (data/, models/index.yaml), by name."""
    root = resources.files("moerun.catalog")
    out = [(f"models/{p.name}", p.read_text("utf-8")) for p in _yaml_in(root / "models")]
    out += [(name, p.read_text("utf-8")) for name, p in _walk(root / "data", "")]
    return sorted(out)


def audit_catalog() -> Audit:
    """Check the packaged catalog."""
    return audit_files(packaged_files())


def _walk(folder: Traversable, prefix: str) -> Iterator[tuple[str, Traversable]]:
    for p in folder.iterdir():
        if p.is_dir():
            yield from _walk(p, f"{prefix}{p.name}/")
        elif p.name.endswith((".yaml", ".yml", ".csv")):
            yield f"{prefix}{p.name}", p


def _yaml_in(folder: Traversable) -> list[Traversable]:
    return [p for p in folder.iterdir() if p.name.endswith((".yaml", ".yml"))]


def _facts(node: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every mapping that carries `source` or `as_of`, outside `sources` sections."""
    if isinstance(node, dict):
        if "source" in node or "as_of" in node:
            yield where or "<root>", node
        for key, value in node.items():
            if key == "sources" and not where:
                continue
            yield from _facts(value, f"{where}.{key}" if where else str(key))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _facts(item, f"{where}[{i}]")
