"""Where one worker lives on this machine: its uid, a fresh working directory, its environment
and its sandbox plan; and everything it held given back, with whatever it left running killed.

This is the per-job seam of the sandbox: what a job gets on top of its process (a uid, a
directory) is made in :meth:`WorkerPlacement.place` and undone in :meth:`WorkerPlacement.release`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path

from qruntime.execution.job_users import UidPool, kill_user_processes
from qruntime.execution.sandbox import (
    CPU_SECONDS_MARGIN,
    SandboxConfig,
    SandboxPlan,
    exposed_paths,
    worker_environment,
)
from qruntime.execution.sandbox_probe import SandboxReport, probe_sandbox


class WorkerPlacement:
    """Hands out (uid, workdir) pairs and the sandbox each worker applies to itself."""

    def __init__(self, sandbox: SandboxConfig | None, python: str, workdir_root: Path | None):
        self.sandbox = sandbox
        self.workdir_root = workdir_root
        #: What this machine lets the sandbox do; None runs workers unconfined.
        self.report: SandboxReport | None = (
            probe_sandbox(sandbox, python) if sandbox is not None else None
        )
        report = self.report
        self._uids = UidPool(sandbox.uid_base) if sandbox and report.can_switch_uid else None
        self._exposed = exposed_paths() if report and report.can_isolate_filesystem else ()
        self._jobs_root: Path | None = None

    @property
    def sandboxed(self) -> bool:
        return self.sandbox is not None and self.sandbox.enabled

    def place(self) -> tuple[int | None, Path]:
        """A uid (when the sandbox switches uids) and a fresh working directory."""
        uid = self._uids.acquire() if self._uids is not None else None
        try:
            return uid, self._make_workdir(uid)
        except BaseException:
            if uid is not None:
                self._uids.release(uid)
            raise

    async def release(self, uid: int | None, workdir: Path, *, swept: bool = False) -> None:
        """Kill what a worker left behind (also outside its group), then remove its directory."""
        if uid is not None:
            if not swept:
                await asyncio.to_thread(kill_user_processes, uid)
            assert self._uids is not None
            self._uids.release(uid)
        await asyncio.to_thread(shutil.rmtree, workdir, True)

    def environment(self, workdir: str) -> dict[str, str]:
        """The allow-listed environment in a sandbox; the server's own without one."""
        if not self.sandboxed:
            return dict(os.environ)
        assert self.sandbox is not None
        return worker_environment(self.sandbox, workdir)

    def plan(self, max_execution_time: float, workdir: Path, uid: int | None) -> SandboxPlan:
        """What the worker applies to itself before the program runs."""
        config, report = self.sandbox, self.report
        assert config is not None and report is not None
        cpus = os.cpu_count() or 1
        return SandboxPlan(
            workdir=str(workdir),
            uid=uid,
            isolate_network=report.can_isolate_network,
            isolate_filesystem=report.can_isolate_filesystem,
            hidden_paths=tuple(os.path.realpath(p) for p in config.hidden_paths),
            exposed_paths=self._exposed,
            max_address_space_bytes=config.max_address_space_bytes,
            max_cpu_seconds=int(max_execution_time * cpus) + CPU_SECONDS_MARGIN,
            max_processes=config.max_processes,
            max_file_bytes=config.max_file_bytes,
            max_open_files=config.max_open_files,
        )

    def _make_workdir(self, uid: int | None) -> Path:
        """A fresh directory only the job's uid can enter, under a root nobody else can list."""
        if uid is None:
            return Path(tempfile.mkdtemp(prefix="qruntime-job-", dir=self.workdir_root))
        if self._jobs_root is None or not self._jobs_root.is_dir():
            root = Path(tempfile.mkdtemp(prefix="qruntime-jobs-", dir=self.workdir_root))
            root.chmod(0o711)
            self._jobs_root = root
        workdir = Path(tempfile.mkdtemp(prefix="job-", dir=self._jobs_root))
        os.chown(workdir, uid, uid)
        workdir.chmod(0o700)
        return workdir
