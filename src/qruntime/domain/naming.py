"""The program-name rule: ids are URL- and CLI-safe, so hyphens, never underscores.

A program named ``hello-world`` lives in the Python file ``hello_world.py``.
"""

from __future__ import annotations

import re

from qruntime.domain.errors import Problem

MAX_PROGRAM_NAME_LENGTH = 63
PROGRAM_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
PROGRAM_NAME_RULE = (
    "lowercase letters, digits and single hyphens, 1-63 characters, "
    "starting with a letter and not ending with a hyphen"
)

_ALLOWED_CHARS = re.compile(r"^[a-z0-9-]*$")


def check_program_name(name: object, *, location: str = "metadata.name") -> list[Problem]:
    """Return one Problem per broken part of the name rule; an empty list means valid."""
    if not isinstance(name, str):
        return [Problem(location, f"program name must be a string, got {type(name).__name__}")]
    if name == "":
        return [Problem(location, f"program name must not be empty ({PROGRAM_NAME_RULE})")]
    if PROGRAM_NAME_PATTERN.match(name) and len(name) <= MAX_PROGRAM_NAME_LENGTH:
        return []
    problems: list[str] = []
    if len(name) > MAX_PROGRAM_NAME_LENGTH:
        problems.append(
            f"program name is {len(name)} characters long; "
            f"it must be at most {MAX_PROGRAM_NAME_LENGTH} characters"
        )
    if not _ALLOWED_CHARS.match(name):
        problems.append(_charset_message(name))
    if not name[0].isascii() or not name[0].isalpha():
        problems.append(f"program name {name!r} must start with a lowercase letter")
    if "--" in name:
        problems.append(f"program name {name!r} must not contain consecutive hyphens")
    if name.endswith("-"):
        problems.append(f"program name {name!r} must not end with a hyphen")
    return [Problem(location, message) for message in problems]


def _charset_message(name: str) -> str:
    message = (
        f"program name {name!r} must contain only lowercase letters, digits and single hyphens"
    )
    if "_" in name:
        suggestion = name.lower().replace("_", "-")
        module = program_name_to_module(suggestion)
        return (
            f"{message} (underscores are not allowed: name the file {module}.py "
            f"and the program {suggestion})"
        )
    if name.lower() != name:
        return f"{message} (uppercase is not allowed: use {name.lower()!r})"
    bad = sorted({c for c in name if not _ALLOWED_CHARS.match(c)})
    return f"{message} (found {', '.join(repr(c) for c in bad)})"


def program_name_to_module(name: str) -> str:
    """Map a program name to its source file's module stem: ``hello-world`` -> ``hello_world``."""
    return name.replace("-", "_")


def module_to_program_name(stem: str) -> str:
    """Map a module stem back to its program name: ``hello_world`` -> ``hello-world``.

    The result is not checked; pass it to :func:`check_program_name` when it comes from a user.
    """
    return stem.replace("_", "-")
