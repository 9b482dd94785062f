"""Reading and validating one catalog YAML file, with errors that name the file and field."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from moerun.errors import CatalogError

M = TypeVar("M", bound=BaseModel)
# libyaml's loader when present (same safe semantics, ~10x faster on the provider file).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_package_file(filename: str) -> str:
    """Text of a file in moerun/catalog/data (package data, never a path outside it)."""
    return resources.files("moerun.catalog").joinpath("data", filename).read_text("utf-8")


T = TypeVar("T")


def read_measured_rows(
    text: str, filename: str, parse_row: Callable[[dict[str, Any]], T]
) -> tuple[tuple[T, ...], str]:
    """The rows of a measured-row file (`write_measured_rows`'s format), each through
    `parse_row` (which raises KeyError, TypeError or ValueError on a bad row), and the date
    they were measured; CatalogError names the file and the row."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogError(f"{filename}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise CatalogError(f"{filename}: not a mapping")
    rows = []
    for i, row in enumerate(data.get("rows") or []):
        try:
            rows.append(parse_row(row))
        except (KeyError, TypeError, ValueError) as exc:
            raise CatalogError(f"{filename}: row {i}: bad or missing field ({exc})") from None
    return tuple(rows), str(data.get("measured", ""))


def write_measured_rows(
    filename: str, header: str, rows: list[dict[str, Any]], check: Callable[[str], object]
) -> Path:
    """Write measured `rows` to moerun/catalog/data/`filename` under the comment `header`,
    dated today, after `check` (the file's parser) has read the text back; returns the path."""
    path = Path(str(resources.files("moerun.catalog").joinpath("data", filename)))
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    text = comment + yaml.safe_dump(
        {"schema": 1, "measured": dt.date.today().isoformat(), "rows": rows}, sort_keys=False
    )
    check(text)  # what is written must read back
    path.write_text(text, encoding="utf-8")
    return path


def parse_file(text: str, filename: str, schema: type[M]) -> M:
    """Parse YAML text and validate it against schema; CatalogError names file and field."""
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as exc:
        raise CatalogError(f"{filename}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise CatalogError(f"{filename}: expected a mapping at the top level")
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise CatalogError(
            f"{filename}: {field_path(first['loc'])}: {first['msg'].lower()}"
            + (f" (and {exc.error_count() - 1} more errors)" if exc.error_count() > 1 else "")
        ) from exc


def load_yaml(text: str) -> Any:
    """Parse YAML text safely (no arbitrary object construction)."""
    # _LOADER is CSafeLoader or SafeLoader: safe semantics either way.
    return yaml.load(text, Loader=_LOADER)


def field_path(loc: Iterable[Any]) -> str:
    """Render a pydantic error location as gpus[2].mem_bw_tbps."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


def check_sources(
    filename: str, where: str, cited: Iterable[str], sources: Mapping[str, object]
) -> None:
    """Every cited source id must be defined in the file's own sources section."""
    for sid in cited:
        if sid not in sources:
            raise CatalogError(f"{filename}: {where}.source: unknown source id {sid!r}")
