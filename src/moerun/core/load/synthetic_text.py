"""Synthetic prompt and output text, and the one token-counting rule bench and emulator share.

The rule: without a real tokenizer, a token is a whitespace-separated word. Prompts are built
from the workload's segments: each segment key becomes a deterministic run of common English
words (each a single token in the BPE vocabularies of GLM, Llama, Qwen and GPT models when
preceded by a space), so two prompts that share leading segments share their leading text
exactly, and a real server's prefix cache hits as the workload says it should.

The emulator counts a prompt's tokens by the same rule (`count_tokens`), and recovers prefix
identity from the text alone by hashing blocks of words, each hash chained to the previous
block's (as vLLM hashes KV blocks), so prompts that share their first k blocks share their
first k segment keys (`prompt_segments`). Blocks restart at chat-message boundaries and an
earlier answer is one segment, so a turn that continues the previous turn's prompt and answer
finds both cached, as the simulator's sessions do.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

Segment = tuple[str, int]

# Common short English words; a leading space makes each one token in the usual BPE vocabularies.
_WORDS = """
    the of and to in is was for on that with as by at from his it an were are which this be has
    had one not but its new after first also have they her who two their been other when there
    all during into school time may years more most only over city some world would where later
    up such used many can state about national out known university united then made since team
    film under both part this well year three between each game season north album south high
    church people american war several being music group until through won them house while
    first life against work series based number death began including early before three name
    following well member local second government west day same county river these area end
    town long family public four released player found last great best under became within
    village held took him family major around main another along small little old place way
    five large home book market water light point power line field road side night word hand
    story music child order women river board court light paper party press range stone table
    voice white world young above below north east open close short strong clear green black
    blue red plan model data table price value level model rate speed size cost model token
    cache batch query answer engine server queue step page block page layer
"""
VOCAB: tuple[str, ...] = tuple(dict.fromkeys(_WORDS.split()))

OUTPUT_CYCLE_LEN = 4096
_OUTPUT_WORDS: tuple[str, ...] = tuple(
    random.Random("moerun-output").choices(VOCAB, k=OUTPUT_CYCLE_LEN)
)


def segment_words(key: str, num_tokens: int) -> list[str]:
    """The `num_tokens` words a segment key stands for (same key, same words)."""
    return random.Random(f"moerun-seg:{key}").choices(VOCAB, k=num_tokens)


def segment_text(key: str, num_tokens: int) -> str:
    """A segment's text: its words joined by single spaces."""
    return " ".join(segment_words(key, num_tokens))


def count_tokens(text: str) -> int:
    """Tokens in `text` by moerun's approximation: whitespace-separated words."""
    return len(text.split())


def output_offset(seed: str) -> int:
    """Where in the output word cycle a response starts (deterministic per seed)."""
    digest = hashlib.blake2b(seed.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % OUTPUT_CYCLE_LEN


def output_words(offset: int, start: int, num_tokens: int) -> list[str]:
    """Output tokens `start .. start + num_tokens` of a response that begins at `offset`."""
    base = offset + start
    return [_OUTPUT_WORDS[(base + i) % OUTPUT_CYCLE_LEN] for i in range(num_tokens)]


def chain_key(prev: str, words: Sequence[str]) -> str:
    """The key of a segment of `words` that follows the segment keyed `prev`."""
    h = hashlib.blake2b(prev.encode() + b"|" + " ".join(words).encode(), digest_size=12)
    return h.hexdigest()


def prompt_segments(
    parts: Sequence[tuple[Sequence[str], bool]], block_tokens: int
) -> tuple[tuple[Segment, ...], str]:
    """Segments of a prompt made of `parts` (words, whole): a whole part (an earlier answer
    in a chat) is one segment; any other part is cut into blocks of `block_tokens` words.
    Each key chains over every earlier segment, so prompts that share their leading parts
    share their leading keys. Returns the segments and the last key (the root key "" if none)."""
    assert block_tokens > 0
    segs: list[Segment] = []
    key = ""
    for words, whole in parts:
        step = max(len(words), 1) if whole else block_tokens
        for i in range(0, len(words), step):
            block = words[i : i + step]
            key = chain_key(key, block)
            segs.append((key, len(block)))
    return tuple(segs), key
