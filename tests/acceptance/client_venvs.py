"""Other clients in virtual environments of their own, never qruntime's: the 2021
``qiskit-ibmq-provider`` 0.20.2 (qiskit-terra 0.46, an old numpy) and the oldest
qiskit-ibm-runtime qruntime declares supported. Each venv is built once from its requirements
file under ``$QRUNTIME_CACHE_DIR`` (default ``~/.cache/qruntime``), keyed by that file and this
Python, and reused.
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

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
#: requirements file, and a statement that imports the client once it is installed
IBMQ_2021 = (EXAMPLES / "requirements-ibmq2021.txt", "from qiskit import IBMQ")
IBM_RUNTIME_OLDEST = (
    EXAMPLES / "requirements-ibm-runtime-oldest.txt",
    "import qiskit_ibm_runtime",
)
BUILD_TIMEOUT = 900
#: pytest-timeout for a test that may build a venv, or wait for the suite's background build
BUILD_WAIT_TIMEOUT = 1200


def cache_root() -> Path:
    return Path(os.environ.get("QRUNTIME_CACHE_DIR") or Path.home() / ".cache" / "qruntime")


def client_python(client: tuple[Path, str] = IBMQ_2021) -> Path:
    """The client venv's interpreter; the first call builds it (a lock keeps builds apart)."""
    requirements, check = client
    key = hashlib.sha256(requirements.read_bytes() + platform.python_version().encode())
    root = cache_root() / f"{requirements.stem}-{key.hexdigest()[:16]}"
    python = root / "bin" / "python"
    done = root / ".complete"
    if done.exists():
        return python
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f"{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(root, ignore_errors=True)  # a build that was cut short
            _build(root, requirements, check)
            done.write_text(requirements.read_text())
    return python


def _build(root: Path, requirements: Path, check: str) -> None:
    def run(*args: str | Path) -> None:
        finished = subprocess.run(
            [str(a) for a in args], capture_output=True, text=True, timeout=BUILD_TIMEOUT
        )
        if finished.returncode != 0:
            raise RuntimeError(f"building {root} failed: {args}\n{finished.stderr[-4000:]}")

    run(sys.executable, "-m", "venv", root)
    python = root / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", requirements)
    run(python, "-W", "ignore", "-c", check)


if __name__ == "__main__":  # tests/conftest.py starts this with the suite, so no test waits long
    cache_root().mkdir(parents=True, exist_ok=True)
    with open(cache_root() / "client-venvs-build.log", "w") as log:
        for each_client in (IBMQ_2021, IBM_RUNTIME_OLDEST):
            print(client_python(each_client), file=log, flush=True)
