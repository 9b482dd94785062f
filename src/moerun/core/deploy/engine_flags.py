"""The command-line flags one engine release accepts, and the check of an emitted command."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FlagInfo:
    """One flag of one release: its spellings, whether it takes a value, its deprecation."""

    name: str
    aliases: tuple[str, ...]
    takes_value: bool
    deprecated: bool
    replacement: str | None
    # Accepted values when the release enumerates them (argparse choices, parser registries).
    choices: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class FlagSet:
    """Every flag of one package release (`vllm` 0.33.0), keyed by each of its spellings."""

    package: str
    version: str
    source: str
    extracted_on: str
    by_option: Mapping[str, FlagInfo]

    @property
    def label(self) -> str:
        """Short name such as 'vllm 0.33.0'."""
        return f"{self.package} {self.version}"

    def get(self, option: str) -> FlagInfo | None:
        """The flag spelled `option` (a name or an alias), if this release has it."""
        return self.by_option.get(option)

    def accepts(self, option: str) -> bool:
        """Whether this release has `option` and does not mark it deprecated."""
        info = self.by_option.get(option)
        return info is not None and not info.deprecated

    def problems(self, argv: Iterable[str]) -> list[str]:
        """Why `argv` would not be accepted as written: unknown, deprecated or bad values.

        Tokens are read as argparse does: `--flag value` or `--flag=value`; a token after a
        flag that takes a value is that value. Placeholders (`@HEAD@`) are opaque values.
        """
        reasons: list[str] = []
        tokens = list(argv)
        i = 0
        while i < len(tokens):
            token = tokens[i]
            i += 1
            if not token.startswith("-") or token == "-":
                continue
            option, has_inline, inline = token.partition("=")
            info = self.by_option.get(option)
            if info is None:
                reasons.append(f"{self.label} has no flag {option}")
                continue
            if info.deprecated:
                instead = f"; use {info.replacement}" if info.replacement else ""
                reasons.append(f"{self.label} marks {option} deprecated{instead}")
            if not info.takes_value:
                if has_inline:
                    reasons.append(f"{self.label}: {option} takes no value")
                continue
            if has_inline:
                value: str | None = inline
            elif i < len(tokens):
                value = tokens[i]
                i += 1
            else:
                value = None
            if value is None:
                reasons.append(f"{self.label}: {option} needs a value")
            elif info.choices is not None and "@" not in value and value not in info.choices:
                reasons.append(
                    f"{self.label}: {option} {value!r} is not one of its values "
                    f"({', '.join(info.choices[:12])}{', ...' if len(info.choices) > 12 else ''})"
                )
        return reasons


def flag_names(argv: Iterable[str]) -> list[str]:
    """The flags (`--x`, without values) an argv uses, in order."""
    return [t.partition("=")[0] for t in argv if t.startswith("--")]
