"""Prompt text for workload segments: moerun's word rule, or exact with a tokenizer.

Without a tokenizer a segment of N tokens is N words (`moerun.core.load.synthetic_text`), which
the emulator counts back exactly and a real tokenizer counts within a few percent. With
`--tokenizer tokenizer.json` (the `tokenizers` package) the same words are encoded, cut to
exactly N token ids and decoded, so each segment is N tokens of that model (joining segments
may merge a token or two at the seams; the server's `usage` is what the metrics use).
Shared segment keys give identical text either way, so prefix caches hit as the workload says.
A `salt` (by default a fresh one per `moerun bench` run) changes every segment's text, so a
second run against the same server does not find the first run's prompts cached: each run
starts as cold as the simulator's.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from moerun.core.load.synthetic_text import segment_text, segment_words
from moerun.errors import UsageError

_MAX_CACHED = 4096


class PromptText:
    """Text for segments; caches the shared ones (system prompts), not per-request text."""

    def __init__(self, tokenizer: Any | None = None, *, salt: str = "") -> None:
        self._tok = tokenizer
        self.salt = salt
        self._cache: dict[str, str] = {}

    @classmethod
    def from_tokenizer_file(cls, path: str | None, *, salt: str = "") -> PromptText:
        """Word rule for `None`, else exact token counts from a local tokenizer.json."""
        if path is None:
            return cls(salt=salt)
        try:
            tokenizers = importlib.import_module("tokenizers")
        except ImportError:
            raise UsageError(
                "--tokenizer needs the 'tokenizers' package: pip install tokenizers"
            ) from None
        if not Path(path).is_file():
            raise UsageError(f"--tokenizer {path}: no such file (give a local tokenizer.json)")
        try:
            return cls(tokenizers.Tokenizer.from_file(path), salt=salt)
        except Exception as exc:  # the library raises bare Exceptions for bad files
            raise UsageError(f"--tokenizer {path}: not a tokenizer.json ({exc})") from None

    def for_level(self, index: int) -> PromptText:
        """Text for sweep point `index`: the same tokenizer, its own salt, so no segment's
        text repeats another point's."""
        return PromptText(self._tok, salt=f"{self.salt}/level{index}")

    @property
    def exact(self) -> bool:
        """Whether a real tokenizer sizes the segments."""
        return self._tok is not None

    def segment(self, key: str, num_tokens: int, *, shared: bool = False) -> str:
        """The text of segment `key` (`shared`: keep it for the next prompt that uses it)."""
        if num_tokens <= 0:
            return ""
        if shared and key in self._cache:
            return self._cache[key]
        salted = f"{self.salt}/{key}" if self.salt else key
        text = (
            segment_text(salted, num_tokens)
            if self._tok is None
            else self._exact(salted, num_tokens)
        )
        if shared and len(self._cache) < _MAX_CACHED:
            self._cache[key] = text
        return text

    def count(self, text: str) -> int:
        """Tokens in `text` by the tokenizer, else by the word rule."""
        if self._tok is None:
            return len(text.split())
        return len(self._tok.encode(text, add_special_tokens=False).ids)

    def _exact(self, key: str, num_tokens: int) -> str:
        tok = self._tok
        assert tok is not None
        words = segment_words(key, num_tokens + num_tokens // 2 + 8)
        ids = tok.encode(" ".join(words), add_special_tokens=False).ids
        while len(ids) < num_tokens:  # a tokenizer that merges words: add more
            words += segment_words(f"{key}+{len(words)}", num_tokens)
            ids = tok.encode(" ".join(words), add_special_tokens=False).ids
        text: str = tok.decode(ids[:num_tokens])
        return text
