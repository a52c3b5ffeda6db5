"""Migrations never import live qruntime code: a revision must do tomorrow what it did the day
it was written, whatever the domain rules become (copy what one needs into it)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from qruntime.storage.database import MIGRATIONS_DIR

REVISIONS = sorted((MIGRATIONS_DIR / "versions").glob("*.py"))


@pytest.mark.parametrize("revision", REVISIONS, ids=lambda path: path.stem)
def test_a_migration_imports_no_qruntime_module(revision: Path) -> None:
    imported = []
    for node in ast.walk(ast.parse(revision.read_text())):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.append(node.module)
    assert REVISIONS and not [name for name in imported if name.split(".")[0] == "qruntime"]
