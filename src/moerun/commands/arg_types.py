"""argparse value types shared by every command: each says what it expected and what it got."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _parse(text: str, convert: Callable[[str], float], what: str) -> float:
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if isinstance(value, float) and math.isnan(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


# Input bound on MTP draft tokens: the engines' published GLM-5/DeepSeek recipes run at most
# 4 (SGLang's GLM-5 cookbook: 3 steps, 4 draft tokens; vLLM's recipes: 1 to 3, see
# catalog/data/support.yaml). Deeper drafts have no acceptance data to predict them with.
MAX_MTP_TOKENS = 4


def mtp_draft_tokens(text: str) -> int:
    """MTP draft tokens: 0 (off) to MAX_MTP_TOKENS."""
    value = nonneg_int(text)
    if value > MAX_MTP_TOKENS:
        raise argparse.ArgumentTypeError(
            f"at most {MAX_MTP_TOKENS} draft tokens (the most the engines' recipes run), "
            f"got {value}"
        )
    return value


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = int(_parse(text, int, "a whole number"))
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def nonneg_int(text: str) -> int:
    """An integer >= 0."""
    value = int(_parse(text, int, "a whole number"))
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def positive_float(text: str) -> float:
    """A number > 0."""
    value = _parse(text, float, "a number")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


def nonneg_float(text: str) -> float:
    """A number >= 0."""
    value = _parse(text, float, "a number")
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text!r}")
    return value


def fraction(text: str) -> float:
    """A number in (0, 1]."""
    value = _parse(text, float, "a number")
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {value}")
    return value


def probability(text: str) -> float:
    """A number in [0, 1]."""
    value = _parse(text, float, "a probability")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1], got {text!r}")
    return value


def acceptance(text: str) -> float:
    """An MTP acceptance rate in [0, 1)."""
    value = _parse(text, float, "a number in [0, 1)")
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"the acceptance rate must be in [0, 1), got {text!r}")
    return value


def request_rate(text: str) -> float:
    """Requests per second > 0, or `inf` (everything at once)."""
    if text.strip().lower() == "inf":
        return math.inf
    value = _parse(text, float, "a rate in requests/s or 'inf'")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"the request rate must be positive, got {text!r}")
    return value
