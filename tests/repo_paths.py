"""Where the tests find the repository, its fixtures and the installed ``qruntime`` command.

A plain module (not ``conftest``): several test directories have a conftest of their own, so
``from repo_paths import ...`` would be ambiguous.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
PROGRAMS = FIXTURES / "programs"
QRUNTIME = str(Path(sys.executable).with_name("qruntime"))


def installation_names_in_tmp() -> set[str]:
    """The entries of ``/tmp`` that hold this installation (a clone or venv there): a job's
    private ``/tmp`` shows them, read-only, and nothing else of the host's."""
    from qruntime.execution.sandbox import exposed_paths

    return {Path(p).parts[2] for p in exposed_paths() if Path(p).is_relative_to("/tmp/")}
