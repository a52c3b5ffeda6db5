"""The 2021 IBM Quantum client (``qiskit-ibmq-provider`` 0.20.2) in its own virtual environment.

It needs qiskit-terra 0.46 and an old numpy, so it never shares qruntime's venv: the venv is
built once from ``examples/requirements-ibmq2021.txt`` under ``$QRUNTIME_CACHE_DIR``
(default ``~/.cache/qruntime``), keyed by those requirements and this Python, and reused.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

REQUIREMENTS = Path(__file__).resolve().parents[2] / "examples" / "requirements-ibmq2021.txt"
BUILD_TIMEOUT = 900


def cache_root() -> Path:
    return Path(os.environ.get("QRUNTIME_CACHE_DIR") or Path.home() / ".cache" / "qruntime")


def client_python() -> Path:
    """The venv's interpreter; the first call builds it (a lock keeps parallel builds apart)."""
    key = hashlib.sha256(REQUIREMENTS.read_bytes() + platform.python_version().encode())
    root = cache_root() / f"ibmq-provider-{key.hexdigest()[:16]}"
    python = root / "bin" / "python"
    done = root / ".complete"
    if done.exists():
        return python
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f"{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(root, ignore_errors=True)  # a build that was cut short
            _build(root)
            done.write_text(REQUIREMENTS.read_text())
    return python


def _build(root: Path) -> None:
    def run(*args: str | Path) -> None:
        finished = subprocess.run(
            [str(a) for a in args], capture_output=True, text=True, timeout=BUILD_TIMEOUT
        )
        if finished.returncode != 0:
            raise RuntimeError(f"building {root} failed: {args}\n{finished.stderr[-4000:]}")

    run(sys.executable, "-m", "venv", root)
    python = root / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", REQUIREMENTS)
    run(python, "-W", "ignore", "-c", "from qiskit import IBMQ")
