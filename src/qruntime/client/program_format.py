"""The text of ``str(program)``, laid out as the 2021 service printed it.

Two spaces per level; schema properties sorted by name, their keys sorted and sentence-cased,
then ``Required: True/False``; a section with nothing to show prints ``none``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, Protocol

from qruntime.client.wire import format_date

__all__ = ["PrintableProgram", "format_program", "sentence_case"]


class PrintableProgram(Protocol):
    """What the layout reads from a program; ``RuntimeProgram`` has it (no import either way)."""

    program_id: str
    name: str
    description: str
    max_execution_time: int
    parameters: Mapping[str, Any]
    return_values: dict[str, Any] | None
    interim_results: dict[str, Any] | None
    backend_requirements: dict[str, Any] | None
    creation_date: dt.datetime | str | None
    update_date: dt.datetime | str | None


#: Schema bookkeeping that tells a reader nothing about the program.
META_KEYS = frozenset({"$schema", "$id", "$comment", "$defs", "definitions"})
#: Schema-level keys printed before the properties, in this order.
SCHEMA_LINES = (("title", "Title"), ("description", "Description"), ("type", "Type"))
SPECIAL_LABELS = {"min_num_qubits": "Minimum number of qubits"}

_WORD_BREAK = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def sentence_case(key: str) -> str:
    """``minimum`` -> ``Minimum``, ``maxItems`` -> ``Max items``, ``x-type`` -> ``X type``."""
    if key in SPECIAL_LABELS:
        return SPECIAL_LABELS[key]
    words = _WORD_BREAK.sub(" ", key.lstrip("$"))
    words = re.sub(r"[_\-\s]+", " ", words).strip().lower()
    return words[:1].upper() + words[1:]


def format_program(program: PrintableProgram) -> str:
    lines = [
        f"{program.program_id}:",
        f"  Name: {program.name}",
        f"  Description: {program.description}",
        f"  Creation date: {format_date(program.creation_date)}",
        f"  Update date: {format_date(program.update_date)}",
        f"  Max execution time: {program.max_execution_time}",
    ]
    for title, schema in (
        ("Input parameters", dict(program.parameters)),
        ("Interim results", program.interim_results),
        ("Returns", program.return_values),
    ):
        lines.append(f"  {title}:")
        lines.extend(_schema_lines(schema) or ["    none"])
    lines.append("  Backend requirements:")
    requirements = program.backend_requirements or {}
    lines.extend(
        [
            f"    {sentence_case(key)}: {_text(value)}"
            for key, value in sorted(requirements.items(), key=lambda kv: sentence_case(kv[0]))
            if value is not None
        ]
        or ["    none"]
    )
    return "\n".join(lines)


def _schema_lines(schema: dict[str, Any] | None) -> list[str]:
    if not isinstance(schema, dict):
        return []
    lines = [f"    {label}: {_text(schema[key])}" for key, label in SCHEMA_LINES if key in schema]
    properties = schema.get("properties")
    if isinstance(properties, dict) and properties:
        required = schema.get("required") or []
        lines.append("    Properties:")
        for name in sorted(properties):
            lines.append(f"        - {name}:")
            prop = properties[name] if isinstance(properties[name], dict) else {}
            labelled = sorted(
                (
                    (sentence_case(key), value)
                    for key, value in prop.items()
                    if key not in META_KEYS
                ),
                key=lambda item: item[0],
            )
            lines.extend(f"            {label}: {_text(value)}" for label, value in labelled)
            lines.append(f"            Required: {name in required}")
    return lines


def _text(value: Any) -> str:
    return str(value)
