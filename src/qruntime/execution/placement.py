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

from qruntime.domain.events import ErrorEvent, TerminalEvent
from qruntime.execution.job_cgroups import CgroupLimits, JobCgroups
from qruntime.execution.job_cgroups import detect as detect_cgroups
from qruntime.execution.job_users import (
    UidPool,
    kill_user_processes,
    remove_files_of,
    shared_temporary_dirs,
)
from qruntime.execution.jobs_root import JobsRoot, unowned_workdir
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
        self.cgroups: JobCgroups | None = None
        cgroup_detail = None
        if sandbox is not None and sandbox.enabled:
            self.cgroups, cgroup_detail = self._cgroups(sandbox)
        #: What this machine lets the sandbox do; None runs workers unconfined.
        self.report: SandboxReport | None = (
            probe_sandbox(sandbox, python, cgroups=(self.cgroups is not None, cgroup_detail))
            if sandbox is not None
            else None
        )
        report = self.report
        self._uids = UidPool(sandbox.uid_base) if sandbox and report.can_switch_uid else None
        self._exposed = exposed_paths() if report and report.can_isolate_filesystem else ()
        self._jobs_root = JobsRoot(workdir_root)

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
        """Kill what a worker left behind (also outside its group), remove its cgroup and its
        directory, and only then hand its uid out again. The blocking steps share one worker
        thread: a hop each cost the loop and a thread more than the steps themselves."""
        clean = await asyncio.to_thread(self._clean_up, uid, workdir, swept)
        if uid is not None:
            assert self._uids is not None
            self._uids.release(uid, clean=clean)

    def _clean_up(self, uid: int | None, workdir: Path, swept: bool) -> bool:
        """In a worker thread: what :meth:`release` removes; whether the uid is known clean."""
        clean = swept
        if uid is not None and not swept:
            clean = kill_user_processes(uid)
        if self.cgroups is not None:
            self.cgroups.remove(workdir.name)
        if uid is not None and not self._private_scratch:
            # No private scratch here: what the job left in the shared temporary directories.
            remove_files_of(uid, shared_temporary_dirs())
        try:
            os.rmdir(workdir)  # the common case, an empty directory: no walk
        except OSError:
            shutil.rmtree(workdir, True)
        return clean

    def cgroup_tasks(self, workdir: Path) -> str | None:
        """The worker's cgroup ``tasks`` file, read by the sweep instead of ``/proc``; None
        where it has none."""
        return self.cgroups.tasks_file(workdir.name) if self.cgroups is not None else None

    def explain(self, workdir: Path, outcome: TerminalEvent) -> TerminalEvent:
        """A failed job's outcome, with the job-wide limits it ran into named."""
        if self.cgroups is None or not isinstance(outcome, ErrorEvent):
            return outcome
        hits = self.cgroups.limits_hit(workdir.name)
        if not hits:
            return outcome
        return ErrorEvent(f"{outcome.message}\n[qruntime: {'; '.join(hits)}]", outcome.reason)

    def close(self) -> None:
        """Remove this server's cgroups and its (by now empty) jobs directory."""
        if self.cgroups is not None:
            self.cgroups.close()
        if self._uids is not None:
            self._uids.close()
        self._jobs_root.close()

    @property
    def _private_scratch(self) -> bool:
        return self.report is not None and self.report.can_isolate_filesystem

    @staticmethod
    def _cgroups(sandbox: SandboxConfig) -> tuple[JobCgroups | None, str]:
        if not sandbox.cgroups:
            return None, "off by configuration (QRUNTIME_SANDBOX_CGROUPS=false)"
        if os.geteuid() != 0:
            return None, f"unavailable: the server runs as uid {os.geteuid()}, not root"
        limits = CgroupLimits(
            sandbox.max_job_memory_bytes, sandbox.max_processes, sandbox.cpu_weight
        )
        return detect_cgroups(limits)

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
            # With a cgroup, its pids cap binds first and the failure can name it; the per-uid
            # limit stays as a backstop.
            max_processes=config.max_processes * (2 if self.cgroups is not None else 1),
            max_file_bytes=config.max_file_bytes,
            max_open_files=config.max_open_files,
            cgroup_procs=self.cgroups.create(workdir.name) if self.cgroups is not None else (),
            scratch_bytes=config.max_scratch_bytes,
        )

    def _make_workdir(self, uid: int | None) -> Path:
        """A fresh directory only the job's uid can enter, under a root nobody else can list.

        With a private scratch it only names the job's directory and is the mount point of
        the job's root: the job writes into its own tmpfs, never here.
        """
        if uid is None:
            return unowned_workdir(self.workdir_root)
        workdir = Path(tempfile.mkdtemp(prefix="job-", dir=self._jobs_root.path()))
        if not self._private_scratch:  # else the job's own copy, on its tmpfs, is its uid's
            os.chown(workdir, uid, uid)
        workdir.chmod(0o700)
        return workdir
