"""Turn an argv with placeholders into shell words for a given place of execution."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence

from moerun.core.deploy.launch import HEAD, POD_IP

_RANK = re.compile(r"@RANK(?:\*(\d+))?@")
_SAFE = re.compile(r"^[\w@%+=:,./*-]*$")


def shell_words(
    argv: Sequence[str], head: str, pod_ip: str, rank: Callable[[int], str]
) -> list[str]:
    """Quoted words; placeholders become `head`, `pod_ip` and `rank(scale)` (left unquoted).

    `head` etc. are shell expressions such as "${HEAD_ADDR}" or "$((LWS_WORKER_INDEX * 4))".
    A token holding a placeholder may hold nothing else that needs quoting.
    """
    out = []
    for token in argv:
        if HEAD not in token and POD_IP not in token and "@RANK" not in token:
            out.append(shlex.quote(token))
            continue
        if not _SAFE.match(token):
            raise AssertionError(f"placeholder token needs quoting: {token!r}")
        word = token.replace(HEAD, head).replace(POD_IP, pod_ip)
        out.append(_RANK.sub(lambda m: rank(int(m.group(1) or 1)), word))
    return out


def command_lines(words: Sequence[str], prefix: str = "", indent: str = "    ") -> str:
    """Words over several lines, one flag (with its values) per line, ending in a newline."""
    lines: list[list[str]] = [[]]
    for word in words:
        if word.startswith("--") and lines[-1]:
            lines.append([])
        lines[-1].append(word)
    return prefix + f" \\\n{indent}".join(" ".join(parts) for parts in lines) + "\n"
