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
