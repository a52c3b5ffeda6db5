"""Who may do what: the three roles and the rule for user names."""

from __future__ import annotations

import re
from enum import StrEnum

from qruntime.domain.errors import Problem, ValidationFailed

_USER_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class Role(StrEnum):
    """A user's role; each includes what the one before it may do."""

    #: May list and run public programs (the seeds' open-access users); may not upload.
    OPEN = "open"
    #: May also upload programs and manage their own programs and jobs.
    USER = "user"
    #: Sees and manages everything, including users and tokens.
    ADMIN = "admin"


class InvalidUserError(ValidationFailed):
    what = "user"


def check_user_name(name: object) -> str:
    """User names appear in URLs and listings: lowercase letters, digits, ``_ . -``, ≤ 64."""
    if not isinstance(name, str) or not _USER_NAME.fullmatch(name):
        raise InvalidUserError(
            Problem(
                "name",
                f"{name!r} is not a valid user name: use 1-64 lowercase letters, digits, "
                "'_', '.' or '-', starting with a letter or digit",
            )
        )
    return name


def parse_role(value: object) -> Role:
    try:
        return Role(value)
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise InvalidUserError(
            Problem("role", f"unknown role {value!r}; use one of {known}")
        ) from None
