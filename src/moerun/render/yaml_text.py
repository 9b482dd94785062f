"""Deterministic YAML text: key order as built, no line wrapping, block style for multi-line."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes multi-line strings as literal blocks and indents lists."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: object) -> bool:
        # A dict used twice (labels) is written out twice: no &anchors in manifests.
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)


def dump(obj: Any) -> str:
    """One YAML document (same object, same bytes)."""
    text: str = yaml.dump(
        obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=10_000
    )
    return text


def dump_all(objs: Iterable[Any], header: str = "") -> str:
    """Several documents separated by `---`, after an optional comment header."""
    docs = [dump(o) for o in objs]
    return comment(header) + "---\n".join(docs)


def comment(text: str) -> str:
    """Text as YAML / shell comment lines ('' for no text)."""
    if not text:
        return ""
    return "".join(f"# {line}".rstrip() + "\n" for line in text.splitlines())
