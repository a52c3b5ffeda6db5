"""Shared fixtures: where the fixture programs live and how to call the installed CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
PROGRAMS = FIXTURES / "programs"
QRUNTIME = str(Path(sys.executable).with_name("qruntime"))


@pytest.fixture
def programs() -> Path:
    return PROGRAMS


@pytest.fixture
def qruntime_cli():
    """Run the installed ``qruntime`` command as a user would; returns the CompletedProcess."""

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [QRUNTIME, *map(str, args)], capture_output=True, text=True, timeout=timeout
        )

    return run
