"""A job's root (execution/job_root.py) built for real, in a child process's own mount
namespace (this machine runs the tests as root): what the worker's Python needs stays there,
read-only, even where it lives under a directory the job's scratch tmpfs covers (``/tmp``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

CHILD = """
import json, os, sys
from qruntime.execution import linux
from qruntime.execution.job_root import enter_job_root
from qruntime.execution.sandbox import exposed_paths

workdir, exposed = sys.argv[1], sys.argv[2]
linux.unshare(linux.CLONE_NEWNS)
linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
enter_job_root(workdir, None, (*exposed_paths(), exposed), 1024 * 1024)
seen = {"readable": open(os.path.join(exposed, "module.py")).read()}
for name, path in (("exposed", os.path.join(exposed, "new.py")), ("tmp", "/tmp/mine")):
    try:
        open(path, "w").write("x")
        seen[name] = "written"
    except OSError as exc:
        seen[name] = exc.strerror
print(json.dumps(seen))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="a mount namespace needs root")
def test_a_python_under_tmp_stays_visible_and_read_only() -> None:
    """Before: the scratch tmpfs on /tmp covered it, and a job on a venv in /tmp (a fresh
    clone there) failed reading qiskit-ibm-runtime's snapshot files."""
    with (
        tempfile.TemporaryDirectory(dir="/tmp") as exposed,
        tempfile.TemporaryDirectory(dir="/tmp") as workdir,
    ):
        Path(exposed, "module.py").write_text("VALUE = 1\n")
        done = subprocess.run(
            [sys.executable, "-c", CHILD, workdir, exposed],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {
            "readable": "VALUE = 1\n",
            "exposed": "Read-only file system",
            "tmp": "written",
        }
        assert not Path(exposed, "new.py").exists()
