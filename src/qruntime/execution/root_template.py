"""The read-only part of every job's root, built once by the zygote in a mount namespace of its
own, so that a worker copies it (``setns`` + ``unshare``) instead of making ~30 mounts itself.

Only what is the same for every job and read-only for all of them is in it: the system
directories, the Python installation, ``/dev``'s nodes, the covers of hidden paths. What a job
writes (its scratch tmpfs), its ``/proc`` and its namespaces stay its own: each worker makes them
in its private copy, as before (job_root.py). No process runs in the template's namespace; the
zygote holds it by a descriptor, which every worker closes before the program runs.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

from qruntime.execution import job_root, linux
from qruntime.execution.sandbox import SandboxPlan, hide_in_root

#: Where a job's directory must lie for its root to come from a template: in its scratch.
SCRATCH_PLACES = tuple(where for where, _ in job_root.SCRATCH_DIRS.values())


def template_key(plan: SandboxPlan) -> tuple | None:
    """What a template depends on; None for a plan that builds its root the plain way."""
    if not plan.isolate_filesystem:
        return None
    if not any(plan.workdir.startswith(where + "/") for where in SCRATCH_PLACES):
        return None  # its path is made in the job's scratch; elsewhere it would be shared
    return (plan.exposed_paths, plan.hidden_paths, os.path.dirname(plan.workdir))


@dataclass(frozen=True)
class RootTemplate:
    fd: int  # of the template's mount namespace
    root: str  # where its root lies in that namespace (a directory beside the job dirs)
    key: tuple

    def suits(self, plan: SandboxPlan) -> bool:
        return template_key(plan) == self.key


class RootTemplates:
    """The zygote's template for the plans it is sent (one at a time: they all match)."""

    def __init__(self) -> None:
        self._current: RootTemplate | None = None
        self._failed: set[tuple] = set()

    def for_plan(self, payload: dict | None) -> RootTemplate | None:
        if payload is None:
            return None
        plan = SandboxPlan.from_json(payload)
        key = template_key(plan)
        if key is None or key in self._failed:
            return None
        if self._current is not None and self._current.key == key:
            return self._current
        self.close()
        self._current = _build(plan, key)
        if self._current is None:
            self._failed.add(key)
        return self._current

    def close(self) -> None:
        if self._current is not None:
            os.close(self._current.fd)
            with contextlib.suppress(OSError):
                os.rmdir(self._current.root)
            self._current = None


def _build(plan: SandboxPlan, key: tuple) -> RootTemplate | None:
    """Build it in a short-lived child's new mount namespace, then hold that namespace."""
    root = tempfile.mkdtemp(prefix=".root-template-", dir=os.path.dirname(plan.workdir))
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's outcome is read by the parent
        status = 1
        try:
            os.close(ready_r)
            os.close(done_w)
            linux.unshare(linux.CLONE_NEWNS)
            linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
            hide_in_root(plan, root)
            job_root.build_template(root, plan.exposed_paths)
            os.write(ready_w, b"1")
            os.read(done_r, 1)  # until the zygote holds the namespace
            status = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(status)
    os.close(ready_w)
    os.close(done_r)
    fd = None
    try:
        if os.read(ready_r, 1) == b"1":
            fd = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY)
    except OSError:
        fd = None
    finally:
        os.close(ready_r)
        os.close(done_w)
        os.waitpid(pid, 0)
    if fd is None:
        with contextlib.suppress(OSError):
            Path(root).rmdir()
        return None
    return RootTemplate(fd, root, key)
