"""Prompt text: shared segments are identical text; exact counts with a tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest

from moerun.bench.prompts import PromptText
from moerun.core.load.synthetic_text import VOCAB, count_tokens
from moerun.errors import UsageError


def test_word_rule() -> None:
    p = PromptText()
    a, b = p.segment("sys0", 500, shared=True), p.segment("sys0", 500)
    assert a == b and count_tokens(a) == 500 and p.count(a) == 500
    assert p.segment("sys1", 500) != a
    assert p.segment("k", 0) == ""
    assert set(a.split()) <= set(VOCAB)


def word_level_tokenizer(path: Path) -> Path:
    tokenizers = pytest.importorskip("tokenizers")
    vocab = {w: i for i, w in enumerate(["[UNK]", *VOCAB])}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tok.decoder = tokenizers.decoders.WordPiece(prefix="##")  # joins words with spaces
    out = path / "tokenizer.json"
    tok.save(str(out))
    return out


def test_exact_with_a_tokenizer(tmp_path: Path) -> None:
    p = PromptText.from_tokenizer_file(str(word_level_tokenizer(tmp_path)))
    assert p.exact
    for n in (1, 17, 300):
        assert p.count(p.segment(f"k{n}", n)) == n


def test_bad_tokenizer_paths(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        PromptText.from_tokenizer_file(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    pytest.importorskip("tokenizers")
    with pytest.raises(UsageError, match=r"not a tokenizer\.json"):
        PromptText.from_tokenizer_file(str(bad))
