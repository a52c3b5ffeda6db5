"""The zygote's job-root template (execution/root_template.py), for real, as root: a worker's
root copied from it is the root the plain way builds, and nothing one job writes reaches the
next job made from the same template."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import pytest

CHILD = """
import json, os, sys
from qruntime.execution.root_template import RootTemplates
from qruntime.execution.sandbox import SandboxPlan, enter_sandbox, exposed_paths

jobs = sys.argv[1]
templates = RootTemplates()


def plan(name):
    workdir = os.path.join(jobs, name)
    os.mkdir(workdir, 0o700)
    return SandboxPlan(
        workdir=workdir, isolate_filesystem=True, exposed_paths=exposed_paths(),
        scratch_bytes=1 << 20,
    )


def run(plan, template):
    read, write = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            enter_sandbox(plan, parent, keep_fds=(write,), template=template)
            with open("/proc/self/mountinfo") as info:
                lines = [line.split() for line in info]
            mounts = sorted(
                (f[4].replace(os.path.basename(plan.workdir), "JOB"), f[5]) for f in lines
            )
            seen = {"mounts": mounts, "marker": os.path.exists("/tmp/marker")}
            open("/tmp/marker", "w").write("left by a job")
            try:
                open("/usr/written", "w")
                seen["usr"] = "written"
            except OSError as exc:
                seen["usr"] = exc.strerror
            if template is not None:  # closed with every other descriptor the job has no use for
                try:
                    os.fstat(template.fd)
                    seen["template_fd"] = "open"
                except OSError as exc:
                    seen["template_fd"] = exc.strerror
            os.write(write, json.dumps(seen).encode())
        finally:
            os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks))


first = plan("job-a")
template = templates.for_plan(first.to_json())
assert template is not None, "no template was built"
from_template = [run(first, template), run(plan("job-b"), template)]
plain = run(plan("job-c"), None)
templates.close()
print(json.dumps({"template": from_template, "plain": plain}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="a mount namespace needs root")
def test_a_root_from_the_template_is_the_plain_one_and_shares_nothing_writable() -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as jobs:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, jobs], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        seen = json.loads(done.stdout)
        first, second = seen["template"]
        plain = seen["plain"]
        assert first["mounts"] == plain["mounts"] == second["mounts"]
        # The second job from the same template does not see what the first one wrote.
        assert [first["marker"], second["marker"], plain["marker"]] == [False, False, False]
        assert first["usr"] == second["usr"] == "Read-only file system"
        assert first["template_fd"] == second["template_fd"] == "Bad file descriptor"
        assert not [name for name in os.listdir(jobs) if name.startswith(".root-template-")]
