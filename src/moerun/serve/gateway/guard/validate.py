"""Checks a request where every provider would reject it, so the client gets a clear
OpenAI-shaped 400 from the gateway instead of a retried, provider-specific one.

Only what OpenAI's API itself refuses is refused; unknown fields pass through untouched.
"""

from __future__ import annotations

from typing import Any

# Chat roles in OpenAI's API ("function" is deprecated but still accepted there).
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_NUMBERS = ("temperature", "top_p", "frequency_penalty", "presence_penalty", "repetition_penalty")
_POSITIVE_INTS = ("max_tokens", "max_completion_tokens", "n")


class Invalid(Exception):
    """A field a provider would refuse: message and the field's name."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def check_request(req: dict[str, Any], endpoint: str) -> None:
    """Raise Invalid for the first field a provider would reject."""
    if endpoint == "chat/completions":
        _check_messages(req.get("messages"))
    else:
        _check_prompt(req.get("prompt"))
    for name in _POSITIVE_INTS:
        v = req.get(name)
        if v is not None and (not _is_int(v) or v < 1):
            raise Invalid(f"`{name}` must be a positive integer, got {_show(v)}", name)
    for name in _NUMBERS:
        v = req.get(name)
        if v is not None and not _is_number(v):
            raise Invalid(f"`{name}` must be a number, got {_show(v)}", name)
    top_k = req.get("top_k")
    if top_k is not None and not _is_int(top_k):
        raise Invalid(f"`top_k` must be an integer, got {_show(top_k)}", "top_k")
    seed = req.get("seed")
    if seed is not None and not _is_int(seed):
        raise Invalid(f"`seed` must be an integer, got {_show(seed)}", "seed")


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise Invalid("`messages` must be a non-empty list of message objects", "messages")
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise Invalid(f"`{where}` must be an object with a `role`", where)
        role = m.get("role")
        if role not in ROLES:
            known = ", ".join(sorted(ROLES))
            raise Invalid(f"`{where}.role` must be one of {known}, got {_show(role)}", where)
        content = m.get("content")
        if content is not None and not isinstance(content, str | list):
            msg = f"`{where}.content` must be a string or a list of parts"
            raise Invalid(msg, where)


def _check_prompt(prompt: Any) -> None:
    if isinstance(prompt, str):
        return
    if isinstance(prompt, list) and prompt:
        if all(isinstance(p, str) for p in prompt) or all(_is_int(p) for p in prompt):
            return
        if all(isinstance(p, list) and p and all(_is_int(t) for t in p) for p in prompt):
            return
    msg = "`prompt` must be a string, a list of strings, or token ids"
    raise Invalid(msg, "prompt")


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."
