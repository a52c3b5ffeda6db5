"""The sandbox a worker enters after its set-up and before any program code runs.

The supervisor decides a :class:`SandboxPlan` per job (which protections this platform allows,
a uid of its own, limits); the worker applies it with :func:`enter_sandbox`, as root where the
server runs as root, in this order: new mount and network namespaces, hidden paths and a
``/proc`` that shows only the job's own processes, resource limits, then the job's uid.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qruntime.execution import job_root, linux

if TYPE_CHECKING:
    from qruntime.execution.root_template import RootTemplate

GiB = 1024**3
#: Variables a worker may inherit from the server; everything else (tokens, URLs) stays out.
DEFAULT_ENV_ALLOWLIST = (
    "PATH",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "QISKIT_NUM_PROCS",
    "QISKIT_PARALLEL",
)
#: Extra CPU seconds beyond what the wall-clock limit allows on every core.
CPU_SECONDS_MARGIN = 30


@dataclass(frozen=True)
class SandboxConfig:
    """The operator's sandbox settings; protections the platform lacks are reported, not faked."""

    enabled: bool = True
    #: Each running job gets its own uid, ``uid_base + slot``, when the server runs as root.
    uid_base: int = 200_000
    max_address_space_bytes: int = 4 * GiB
    max_processes: int = 256
    max_file_bytes: int = GiB
    max_open_files: int = 1024
    allow_network: bool = False
    #: Directories the program must not see (the data dir, the account file's, the home dir).
    hidden_paths: tuple[Path, ...] = ()
    env_allowlist: tuple[str, ...] = DEFAULT_ENV_ALLOWLIST
    #: A cgroup per job where the platform allows one (see job_cgroups.py), with these caps.
    cgroups: bool = True
    max_job_memory_bytes: int = 4 * GiB
    cpu_weight: int = 100
    #: One size cap for the job's working directory, /tmp, /var/tmp and /dev/shm together.
    max_scratch_bytes: int = GiB


@dataclass(frozen=True)
class SandboxPlan:
    """What one worker does before the program runs; travels in its JobRequest."""

    workdir: str
    uid: int | None = None
    isolate_network: bool = False
    isolate_filesystem: bool = False
    hidden_paths: tuple[str, ...] = ()
    exposed_paths: tuple[str, ...] = ()
    max_address_space_bytes: int = 4 * GiB
    max_cpu_seconds: int = 8 * 3600
    max_processes: int = 256
    max_file_bytes: int = GiB
    max_open_files: int = 1024
    #: The job's cgroup(s): the worker writes its pid into each before anything else.
    cgroup_procs: tuple[str, ...] = ()
    scratch_bytes: int = GiB

    def to_json(self) -> dict[str, Any]:
        # Every field is a plain value or a tuple of strings: no deep copy (``asdict``) needed.
        return {name: getattr(self, name) for name in _PLAN_FIELDS}

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> SandboxPlan:
        tuples = ("hidden_paths", "exposed_paths", "cgroup_procs")
        return cls(**{k: tuple(v) if k in tuples else v for k, v in payload.items()})


_PLAN_FIELDS = tuple(field.name for field in fields(SandboxPlan))


class SandboxError(RuntimeError):
    """A protection the plan asked for could not be applied: the program must not run."""


def worker_environment(config: SandboxConfig, workdir: str) -> dict[str, str]:
    """The allow-listed environment, with HOME and TMPDIR in the job's own directory."""
    env = {name: os.environ[name] for name in config.env_allowlist if name in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(
        HOME=workdir,
        TMPDIR=workdir,
        PYTHONNOUSERSITE="1",
        PYTHONDONTWRITEBYTECODE="1",
        # Aer's and BLAS's threads count against the job's process limit: keep them bounded.
        OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", str(min(os.cpu_count() or 1, 8))),
    )
    return env


def enter_sandbox(
    plan: SandboxPlan,
    supervisor_pid: int,
    keep_fds: tuple[int, ...],
    template: RootTemplate | None = None,
) -> None:
    """Apply ``plan`` to this process; raise SandboxError rather than run half-protected.

    ``template``: the zygote's read-only part of every job's root, copied instead of built.
    """
    try:
        _enter(plan, supervisor_pid, keep_fds, template)
    except OSError as exc:
        raise SandboxError(f"the job's sandbox could not be set up: {exc}") from exc


def _enter(
    plan: SandboxPlan,
    supervisor_pid: int,
    keep_fds: tuple[int, ...],
    template: RootTemplate | None,
) -> None:
    for procs in plan.cgroup_procs:  # first: every process the job makes is in its cgroup
        with open(procs, "w") as handle:
            handle.write(str(os.getpid()))
    flags = (linux.CLONE_NEWNS | linux.CLONE_NEWIPC if plan.isolate_filesystem else 0) | (
        linux.CLONE_NEWNET if plan.isolate_network else 0
    )
    if template is not None and _joined(template, plan):
        linux.unshare(flags)  # a private copy of the template's mounts, new IPC and network
        root = template.root
        job_root.enter_template_root(
            root, plan.workdir, plan.uid, plan.exposed_paths, plan.scratch_bytes
        )
    else:
        if flags:
            linux.unshare(flags)
        if plan.isolate_filesystem:
            linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
            hide_in_root(plan, plan.workdir)
            job_root.enter_job_root(plan.workdir, plan.uid, plan.exposed_paths, plan.scratch_bytes)
    _close_other_fds(keep_fds)
    _limit_resources(plan)
    os.umask(0o077)
    os.chdir(plan.workdir)
    if plan.uid is not None:
        os.setgroups([])
        os.setresgid(plan.uid, plan.uid, plan.uid)
        os.setresuid(plan.uid, plan.uid, plan.uid)
        if os.getresuid() != (plan.uid,) * 3 or os.getresgid() != (plan.uid,) * 3:
            raise OSError(1, f"still running as uid {os.getuid()} after switching to {plan.uid}")
    if linux.IS_LINUX:
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
        # A change of credentials clears the parent-death signal: set it again.
        linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != supervisor_pid:
        raise OSError(3, "the supervisor went away while the sandbox was set up")


def hide_in_root(plan: SandboxPlan, mount_point: str) -> None:
    """Cover the hidden paths that the job's root would bring in (the rest is not there at
    all), keeping ``mount_point``, where the root is built, reachable."""
    visible = job_root.visible_paths(plan.exposed_paths)
    inside = tuple(h for h in plan.hidden_paths if any(_under(h, v) for v in visible))
    _hide(replace(plan, hidden_paths=inside, workdir=mount_point))


def _joined(template: RootTemplate, plan: SandboxPlan) -> bool:
    """Into the template's mount namespace, when it was built for this plan's paths."""
    if not template.suits(plan):
        return False
    try:
        linux.setns(template.fd, linux.CLONE_NEWNS)
    except OSError:  # not allowed here: the root is built the plain way (nothing changed)
        return False
    return True


def _hide(plan: SandboxPlan) -> None:
    """Cover each hidden directory with an empty tmpfs, bringing back the exposed paths in it,
    and the job's own directory when it lies there (a data dir or account file in ``/tmp``).

    What comes back is held by an ``O_PATH`` descriptor across the cover and bind-mounted from
    ``/proc/self/fd``, so nothing needs a staging place outside the hidden directories.
    """
    hidden: list[str] = []
    for path in sorted(plan.hidden_paths, key=len):
        if not os.path.isdir(path) or any(_under(path, h) for h in hidden):
            continue
        keep = [p for p in plan.exposed_paths if _under(p, path) and os.path.exists(p)]
        if _under(plan.workdir, path):
            if plan.workdir == path:
                raise OSError(22, f"the job directory {plan.workdir} is itself a hidden path")
            keep.append(plan.workdir)
        keep = [p for p in keep if not any(_under(p, q) and p != q for q in keep)]
        held = [(os.open(kept, os.O_PATH | os.O_DIRECTORY), kept) for kept in keep]
        try:
            tmpfs_flags = linux.MS_NOSUID | linux.MS_NODEV
            linux.mount("tmpfs", path, "tmpfs", tmpfs_flags, "mode=0755,size=1m")
            for fd, kept in held:
                Path(kept).mkdir(parents=True, exist_ok=True)
                linux.mount(f"/proc/self/fd/{fd}", kept, None, linux.MS_BIND | linux.MS_REC)
        finally:
            for fd, _ in held:
                os.close(fd)
        hidden.append(path)


#: Directories every job needs (its interpreter, libraries, ``/etc/passwd``...): a setting
#: that would hide one of them is refused at start (:func:`hidden_path_problem`).
SYSTEM_DIRECTORIES = (
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/proc",
    "/sbin",
    "/sys",
    "/usr",
    "/var",
)


def hidden_path_problem(path: Path | str) -> str | None:
    """Why the sandbox cannot hide ``path`` from jobs, or None: jobs need what it holds."""
    real = os.path.realpath(path)
    if real in SYSTEM_DIRECTORIES or any(_under(d, real) for d in SYSTEM_DIRECTORIES):
        return f"{real} holds what every job needs, so the sandbox cannot hide it from jobs"
    return None


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def _close_other_fds(keep: tuple[int, ...]) -> None:
    """Only stdin/stdout/stderr and the event pipe stay open for the program."""
    for name in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else []:
        fd = int(name)
        if fd > 2 and fd not in keep:
            with contextlib.suppress(OSError):  # the directory listing's own fd is gone
                os.close(fd)


def _limit_resources(plan: SandboxPlan) -> None:
    limits = {
        resource.RLIMIT_AS: plan.max_address_space_bytes,
        resource.RLIMIT_CPU: plan.max_cpu_seconds,
        resource.RLIMIT_NPROC: plan.max_processes,
        resource.RLIMIT_FSIZE: plan.max_file_bytes,
        resource.RLIMIT_NOFILE: plan.max_open_files,
        resource.RLIMIT_CORE: 0,
    }
    for kind, value in limits.items():
        resource.setrlimit(kind, (value, value))
    # Writing past the file-size limit then fails with EFBIG ("File too large") instead of a
    # silent SIGXFSZ death, so the program's traceback says what happened.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def lower_cpu_limit(seconds: int) -> None:
    """Tighten the CPU-time limit to one job's; a pre-sandboxed worker may only lower it."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        seconds = min(seconds, hard)
    try:
        resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds))
    except (OSError, ValueError) as exc:
        raise SandboxError(f"the job's CPU-time limit could not be set: {exc}") from exc


def exposed_paths() -> tuple[str, ...]:
    """What the worker's Python needs to keep reading after paths are hidden."""
    import sys

    import qruntime

    # The package's own directory too: an editable install is found by a finder, not sys.path.
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(qruntime.__file__)))
    candidates = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(sys.executable)}
    candidates.add(package_root)
    candidates |= {entry for entry in sys.path if entry and os.path.isabs(entry)}
    real = {os.path.realpath(p) for p in candidates} | candidates
    return tuple(sorted(p for p in real if os.path.isdir(p)))
