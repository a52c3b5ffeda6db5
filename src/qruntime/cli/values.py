"""Program values on the command line: ``--inputs`` in, interim results and results out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qruntime.client import RuntimeInvalidInputsError
from qruntime.domain.errors import SerializationError
from qruntime.serialization import decode, encode


def value_text(value: Any) -> str:
    """One line of JSON (RuntimeEncoder envelopes for numpy, circuits...), else its repr."""
    try:
        return encode(value)
    except (SerializationError, TypeError, ValueError):
        return repr(value)


def value_json(value: Any) -> Any:
    """The value as a JSON-ready object, for ``--json`` output; its repr when not encodable."""
    try:
        return json.loads(encode(value))
    except (SerializationError, TypeError, ValueError):
        return repr(value)


def parse_inputs(text: str) -> dict[str, Any]:
    """``--inputs``: a JSON object (envelopes allowed), or ``@FILE`` holding one."""
    where = "--inputs"
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        where = f"--inputs file {path}"
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise _invalid(where, f"cannot read it: {exc.strerror or exc}") from None
    try:
        inputs = decode(text)
    except SerializationError as exc:
        raise _invalid(where, str(exc)) from None
    if not isinstance(inputs, dict):
        raise _invalid(where, f"must be a JSON object, got {type(inputs).__name__}")
    return inputs


def _invalid(where: str, message: str) -> RuntimeInvalidInputsError:
    return RuntimeInvalidInputsError(f"invalid job inputs: {where}: {message}")
