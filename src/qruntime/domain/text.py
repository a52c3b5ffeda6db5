"""What counts as valid text here, checked where text enters and repaired where it was stored.

Every string must encode as UTF-8 (no lone surrogates such as ``"\\udc80"``, which no response
can carry); plain-text fields (names, descriptions, ids) must also be free of NUL, which
PostgreSQL cannot store. Inside JSON values a NUL is fine: it is stored escaped (``\\u0000``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from qruntime.domain.errors import Problem, ValidationFailed

#: What a lone surrogate or NUL becomes when text already stored is repaired.
REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")
#: A JSON escape of a surrogate: only text with one can decode to a lone surrogate.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE_ESCAPE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]")


class InvalidTextError(ValidationFailed):
    what = "text"


def text_problem(text: str, *, allow_nul: bool = False) -> str | None:
    """Why ``text`` cannot be accepted, or None; fast for the usual valid text."""
    if not allow_nul and "\x00" in text:
        return f"must not contain a NUL character (at character {text.index(chr(0))})"
    if text.isascii():
        return None
    found = _SURROGATE.search(text)
    if found is not None:
        return (
            f"is not valid Unicode: a lone surrogate U+{ord(found.group()):04X} "
            f"at character {found.start()}"
        )
    return None


def check_text(text: str, location: str, *, allow_nul: bool = False) -> str:
    """Return ``text``, or raise InvalidTextError naming ``location``."""
    problem = text_problem(text, allow_nul=allow_nul)
    if problem is not None:
        raise InvalidTextError(Problem(location, problem))
    return text


def json_text_problem(value: Any, location: str, *, allow_nul: bool = True) -> Problem | None:
    """The first string (key or value) in a decoded JSON value that breaks the text rule."""
    stack: list[tuple[Any, str]] = [(value, location)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item, allow_nul=allow_nul)
            if problem is not None:
                return Problem(where, problem)
        elif isinstance(item, dict):
            for key, child in item.items():
                problem = text_problem(key, allow_nul=allow_nul) if isinstance(key, str) else None
                if problem is not None:
                    return Problem(where, f"a key {problem}")
                stack.append((child, f"{where}.{key}" if where else str(key)))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{index}]") for index, child in enumerate(item))
    return None


def may_hold_surrogates(encoded: str | bytes) -> bool:
    """False when JSON text cannot decode to a lone surrogate (the fast path for valid text)."""
    if isinstance(encoded, bytes):
        return _SURROGATE_ESCAPE_BYTES.search(encoded) is not None
    return _SURROGATE_ESCAPE.search(encoded) is not None or not encoded.isascii()


def published_json_problem(text: str) -> str | None:
    """Why JSON text a job sent back (an interim result, its result) cannot be stored, or None."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return f"is not valid JSON: {exc}"
    if not may_hold_surrogates(text):
        return None
    problem = json_text_problem(value, "")
    return None if problem is None else f"{problem.location or 'its value'} {problem.message}"


def repair_text(text: str) -> str:
    """``text`` with every lone surrogate and NUL replaced by U+FFFD; for output and old rows."""
    if "\x00" in text:
        text = text.replace("\x00", REPLACEMENT)
    if text.isascii():
        return text
    return _SURROGATE.sub(REPLACEMENT, text)


def repair_json(value: Any) -> Any:
    """A decoded JSON value with lone surrogates replaced in every key and string."""
    if isinstance(value, str):
        return _SURROGATE.sub(REPLACEMENT, value)
    if isinstance(value, dict):
        return {repair_json(k): repair_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [repair_json(item) for item in value]
    return value


def decode_stored_json(text: str) -> Any:
    """A stored JSON column's value, always fit for a response: lone surrogates are replaced and
    text that is not JSON (only in databases older than these checks) comes back as a string."""
    try:
        value = json.loads(text)
        return repair_json(value) if may_hold_surrogates(text) else value
    except (ValueError, RecursionError):
        return repair_text(text)


def repaired_json_text(text: str) -> str | None:
    """Stored JSON text re-encoded without lone surrogates; None when it needs no repair."""
    if not may_hold_surrogates(text):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return json.dumps(repair_text(text))
    if json_text_problem(value, "") is None:
        return None
    return json.dumps(repair_json(value))
