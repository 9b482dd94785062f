"""Engine flag fixtures: catalog/data/engine_flags/<package>-<version>.json -> FlagSet.

Each file is extracted from the published PyPI wheel of that release by
`scripts/extract_engine_flags.py` (its `source`, `wheel_sha256` and `extracted_on` say which and
when). moerun refuses to emit a flag its target release does not accept.
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from typing import Any

from moerun.core.deploy.engine_flags import FlagInfo, FlagSet
from moerun.errors import CatalogError

FLAGS_DIR = "data/engine_flags"


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version))


@functools.cache
def _index() -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {}
    folder = resources.files("moerun.catalog").joinpath(FLAGS_DIR)
    for entry in folder.iterdir():
        match = re.fullmatch(r"(.+)-(\d[\w.]*)\.json", entry.name)
        if match:
            found.setdefault(match.group(1), []).append(match.group(2))
    return {pkg: tuple(sorted(vs, key=_version_key)) for pkg, vs in found.items()}


def flag_versions(package: str) -> tuple[str, ...]:
    """Releases of `package` with a flag fixture, oldest first."""
    return _index().get(package, ())


def default_version(package: str) -> str:
    """The newest release of `package` moerun has flags for (what it targets by default)."""
    versions = flag_versions(package)
    if not versions:
        raise CatalogError(f"no engine flag fixture for {package!r} in catalog/{FLAGS_DIR}")
    return versions[-1]


def load_flags(package: str, version: str | None = None) -> FlagSet:
    """The flags of `package` at `version` (newest when None); unknown versions are refused."""
    versions = flag_versions(package)
    chosen = version if version is not None else default_version(package)
    if chosen not in versions:
        raise CatalogError(
            f"no flag data for {package} {chosen}; moerun knows {package} "
            f"{', '.join(versions) or '(none)'} (add one with `python "
            f"scripts/extract_engine_flags.py {package}=={chosen}`)"
        )
    return _load(package, chosen)


@functools.cache
def _load(package: str, version: str) -> FlagSet:
    name = f"{package}-{version}.json"
    text = resources.files("moerun.catalog").joinpath(FLAGS_DIR, name).read_text("utf-8")
    try:
        raw = json.loads(text)
        return _parse(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise CatalogError(f"catalog/{FLAGS_DIR}/{name}: bad or missing field {exc}") from exc


def _parse(raw: dict[str, Any]) -> FlagSet:
    by_option: dict[str, FlagInfo] = {}
    for name, f in raw["flags"].items():
        choices = f["choices"]
        info = FlagInfo(
            name=name,
            aliases=tuple(f["aliases"]),
            takes_value=bool(f["takes_value"]),
            deprecated=bool(f["deprecated"]),
            replacement=f["replacement"],
            choices=None if choices is None else tuple(str(c) for c in choices),
        )
        for option in (name, *info.aliases):
            by_option[option] = info
    return FlagSet(
        package=str(raw["package"]),
        version=str(raw["version"]),
        source=str(raw["source"]),
        extracted_on=str(raw["extracted_on"]),
        by_option=by_option,
    )
