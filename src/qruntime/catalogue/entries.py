"""One catalogue program as read from disk, and the content hash that decides re-publishing."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qruntime.domain.metadata import load_metadata
from qruntime.domain.naming import module_to_program_name


@dataclass(frozen=True)
class CatalogueProgram:
    """A program's two files, read but not yet validated (the checks do that)."""

    source_path: Path
    metadata_path: Path
    source: str
    metadata: dict[str, Any]

    @property
    def module(self) -> str:
        return self.source_path.stem

    @property
    def name(self) -> str:
        """The program name the files' stem stands for (hyphens for underscores)."""
        return module_to_program_name(self.module)

    @property
    def content_hash(self) -> str:
        return content_hash(self.source, self.metadata)


def content_hash(source: str, metadata: Any) -> str:
    """Source plus normalised metadata (visibility left out): an equal hash means unchanged."""
    normal = load_metadata(metadata).to_json_dict()
    normal.pop("is_public", None)
    canonical = json.dumps(normal, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256()
    digest.update(source.encode())
    digest.update(b"\0")
    digest.update(canonical.encode())
    return digest.hexdigest()


def load_catalogue(directory: Path) -> list[CatalogueProgram]:
    """Every ``<module>.py`` with its ``.json`` beside it, ordered by name.

    Raises ``OSError``/``ValueError`` on unreadable files; run the checks first for a full report.
    """
    programs = []
    for source_path in sorted(directory.glob("*.py")):
        metadata_path = source_path.with_suffix(".json")
        metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
        programs.append(
            CatalogueProgram(
                source_path, metadata_path, source_path.read_text(encoding="utf-8"), metadata
            )
        )
    return programs
