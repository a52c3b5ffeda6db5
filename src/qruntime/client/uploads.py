"""Read and check a program's source and metadata locally, so a bad file fails before any request.

The server checks everything again; the local checks use the same domain rules but no limits
that only the server knows (its execution-time ceiling), so they never refuse what it accepts.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

from qruntime.client.exceptions import RuntimeInvalidProgramError
from qruntime.domain.errors import InvalidMetadataError, InvalidSourceError, Problem
from qruntime.domain.metadata import SPEC_KEYS, load_metadata
from qruntime.domain.source import check_program_source

__all__ = [
    "PATCHABLE_FIELDS",
    "encode_source",
    "metadata_changes",
    "read_metadata",
    "read_source",
    "validated_patch",
]

PATCHABLE_FIELDS = ("name", "description", "max_execution_time", "version", "spec")
#: Locally, any positive time is fine: only the server knows its own ceiling.
_NO_CEILING = 10**12

MetadataArg = dict[str, Any] | str | Path | None


def read_source(data: str | bytes | Path) -> tuple[str, Path | None]:
    """The program text and, when ``data`` named a file, its path.

    A ``Path``, or a one-line ``str`` ending in ``.py`` (or naming a file), is read from disk;
    other text is the source itself.
    """
    path: Path | None = None
    if isinstance(data, Path) or (isinstance(data, str) and _looks_like_py_path(data)):
        path = Path(data).expanduser()
        raw: str | bytes = path.read_bytes()
    elif isinstance(data, str | bytes | bytearray):
        raw = bytes(data) if isinstance(data, bytearray) else data
    else:
        raise TypeError(f"data must be source text or a path to a .py file, got {type(data)}")
    try:
        text = check_program_source(raw, filename=path.name if path else "program.py")
    except InvalidSourceError as exc:
        raise RuntimeInvalidProgramError(str(exc), problems=exc.problems) from None
    return text, path


def encode_source(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def read_metadata(metadata: MetadataArg, source_path: Path | None = None) -> dict[str, Any]:
    """The metadata as a dict, checked in full; None means the ``.json`` beside the source file."""
    if metadata is None:
        candidate = source_path.with_suffix(".json") if source_path else None
        if candidate is None or not candidate.is_file():
            where = f" (no {candidate} next to the source)" if candidate else ""
            raise RuntimeInvalidProgramError(
                "metadata is required: pass a dict or the path of a JSON file" + where,
                problems=[Problem("metadata", "metadata is required")],
            )
        metadata = candidate
    raw = _raw_metadata(metadata)
    try:
        load_metadata(raw, max_execution_time_ceiling=_NO_CEILING)
    except InvalidMetadataError as exc:
        raise RuntimeInvalidProgramError(str(exc), problems=exc.problems) from None
    return raw


def metadata_changes(
    metadata: MetadataArg, explicit: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split an update into top-level field changes and spec keys to merge into the current spec.

    ``metadata`` may be partial and in the legacy format (spec keys at top level); explicit
    keyword arguments override it, and an explicit ``spec`` replaces the spec as a whole.
    """
    changes = _raw_metadata(metadata) if metadata is not None else {}
    spec_updates = {key: changes.pop(key) for key in SPEC_KEYS if key in changes}
    changes.update({key: value for key, value in explicit.items() if value is not None})
    if explicit.get("spec") is not None:
        spec_updates = {}
    return changes, spec_updates


def validated_patch(
    current: dict[str, Any], changes: dict[str, Any], spec_updates: dict[str, Any]
) -> dict[str, Any]:
    """The PATCH body for the changes applied to ``current``, after checking the merged result."""
    merged = {**copy.deepcopy(current), **copy.deepcopy(changes)}
    merged.pop("is_public", None)
    if spec_updates:
        merged["spec"] = {**(merged.get("spec") or {}), **copy.deepcopy(spec_updates)}
    try:
        normalized = load_metadata(merged, max_execution_time_ceiling=_NO_CEILING).to_json_dict()
    except InvalidMetadataError as exc:
        raise RuntimeInvalidProgramError(str(exc), problems=exc.problems) from None
    touched = set(changes) | ({"spec"} if spec_updates else set())
    return {key: normalized.get(key) for key in PATCHABLE_FIELDS if key in touched}


def _raw_metadata(metadata: dict[str, Any] | str | Path) -> dict[str, Any]:
    if isinstance(metadata, dict):
        return copy.deepcopy(metadata)
    if isinstance(metadata, str) and metadata.lstrip().startswith("{"):
        text, where = metadata, "metadata"
    elif isinstance(metadata, str | Path):
        path = Path(metadata).expanduser()
        text, where = path.read_text(encoding="utf-8"), str(path)
    else:
        raise TypeError(f"metadata must be a dict or a path to a JSON file, got {type(metadata)}")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RuntimeInvalidProgramError(
            f"invalid program metadata: {where} is not valid JSON: {exc}",
            problems=[Problem("metadata", f"not valid JSON: {exc}")],
        ) from None
    if not isinstance(raw, dict):
        raise RuntimeInvalidProgramError(
            f"invalid program metadata: {where} must hold a JSON object",
            problems=[Problem("metadata", "must be a JSON object")],
        )
    return raw


def _looks_like_py_path(text: str) -> bool:
    """A one-line string ending in ``.py``, or naming an existing file, is a path."""
    if "\n" in text or not text.strip():
        return False
    return text.endswith(".py") or Path(text).expanduser().is_file()
