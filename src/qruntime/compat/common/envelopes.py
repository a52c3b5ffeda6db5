"""Values between a dialect's envelopes and qruntime's: decoded through one allow-list, then
encoded through the other; what the other side cannot hold is an error naming its type."""

from __future__ import annotations

import json
from typing import Any, Protocol

from qruntime.domain.errors import NotTranslatableError, SerializationError
from qruntime.serialization import UnsupportedTypeError, decode, encode


class Dialect(Protocol):
    """A module such as ``qruntime.serialization.ibmq2021``."""

    CLIENT: str

    def loads(self, text: str | bytes, *, max_bytes: int) -> Any: ...

    def dumps(self, obj: Any) -> str: ...


def to_native(dialect: Dialect, value: Any, *, max_bytes: int) -> Any:
    """A dialect's JSON value (already parsed) as qruntime's JSON value (for the services)."""
    decoded = dialect.loads(json.dumps(value), max_bytes=max_bytes)
    try:
        return json.loads(encode(decoded))
    except UnsupportedTypeError as exc:
        raise SerializationError(f"{exc}; qruntime cannot pass such a value on") from None


def from_native(dialect: Dialect, stored: str, *, what: str) -> str:
    """Stored qruntime JSON text as the dialect's JSON text; ``what`` names it in errors."""
    try:
        return dialect.dumps(decode(stored))
    except UnsupportedTypeError as exc:
        raise NotTranslatableError(f"the {what} cannot be sent: {exc}") from None


def from_native_or_note(dialect: Dialect, stored: str, *, what: str) -> Any:
    """Like :func:`from_native` but parsed, with a note in place of a value that cannot go
    (for echoes of a job's own inputs in listings, which must not fail the whole list)."""
    try:
        return json.loads(from_native(dialect, stored, what=what))
    except NotTranslatableError as exc:
        return f"<qruntime: {exc}>"
