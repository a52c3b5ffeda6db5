"""Which sandbox protections this platform allows, found once at start and reported honestly.

The server logs every protection that is unavailable and lists all of them in ``GET /health``,
instead of silently running programs without one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass

from qruntime.execution.sandbox import SandboxConfig

#: Runs in a throwaway child: try the namespaces and mounts a worker would use.
_PROBE = r"""
import ctypes, json, os, tempfile
libc = ctypes.CDLL(None, use_errno=True)
def attempt(call, *args):
    if call(*args) != 0:
        return os.strerror(ctypes.get_errno())
    return None
out = {}
out["mount"] = attempt(libc.unshare, 0x00020000 | 0x08000000)  # mount and IPC namespaces
if out["mount"] is None:
    out["mount"] = attempt(libc.mount, None, b"/", None, ctypes.c_ulong((1 << 18) | 0x4000), None)
if out["mount"] is None:
    target = tempfile.mkdtemp().encode()
    out["mount"] = attempt(libc.mount, b"tmpfs", target, b"tmpfs", ctypes.c_ulong(0), b"size=1m")
    if out["mount"] is None:
        libc.umount2(target, 0)
    os.rmdir(target)
if out["mount"] is None:
    flags = ctypes.c_ulong(0xE)  # nosuid, nodev, noexec
    out["mount"] = attempt(libc.mount, b"proc", b"/proc", b"proc", flags, b"hidepid=invisible")
out["network"] = attempt(libc.unshare, 0x40000000)
print(json.dumps(out))
"""


@dataclass(frozen=True)
class Protection:
    name: str
    active: bool
    detail: str


@dataclass(frozen=True)
class SandboxReport:
    enabled: bool
    protections: tuple[Protection, ...]
    can_switch_uid: bool = False
    can_isolate_filesystem: bool = False
    can_isolate_network: bool = False

    def unavailable(self) -> list[Protection]:
        return [p for p in self.protections if not p.active]

    def to_json(self) -> dict:
        return {"enabled": self.enabled, "protections": [asdict(p) for p in self.protections]}


def probe_sandbox(
    config: SandboxConfig,
    python: str = sys.executable,
    *,
    cgroups: tuple[bool, str | None] = (False, None),
) -> SandboxReport:
    """Try each protection (in a child process for the namespaces) and say what holds here;
    ``cgroups`` is what :func:`qruntime.execution.job_cgroups.detect` found."""
    if not config.enabled:
        off = "the sandbox is disabled by configuration (QRUNTIME_SANDBOX=false)"
        return SandboxReport(False, tuple(Protection(n, False, off) for n in _NAMES))
    is_root = os.geteuid() == 0
    failures = _probe_namespaces(python)
    mount_error, network_error = failures.get("mount"), failures.get("network")
    uid = Protection(
        "separate user",
        is_root,
        f"each job runs as its own uid ({config.uid_base} + slot), not the server's"
        if is_root
        else f"unavailable: the server runs as uid {os.geteuid()}, not root, so jobs run as "
        "the server's user and file permissions alone protect its files",
    )
    filesystem = Protection(
        "hidden server files",
        mount_error is None,
        "each job has a root of its own (a private mount namespace) holding, read-only, only "
        "/usr, /etc, /bin, /lib*, /opt and the Python installation: the data dir, the account "
        "file and the server's home are not there; /proc shows only the job's own processes"
        if mount_error is None
        else f"unavailable: no private mount namespace here ({mount_error})",
    )
    scratch = Protection(
        "private scratch",
        mount_error is None,
        "the job's working directory, /tmp, /var/tmp and /dev/shm are one empty tmpfs of "
        f"{config.max_scratch_bytes} B of its own (QRUNTIME_SANDBOX_MAX_SCRATCH_BYTES), gone "
        "with the job; the host's files are read-only to it; a private IPC namespace"
        if mount_error is None
        else f"unavailable: no private mount namespace here ({mount_error}); jobs share the "
        "host's /tmp, /var/tmp and /dev/shm, and what a job left there is deleted before its "
        "uid is used again",
    )
    if mount_error is not None:
        sockets_detail = (
            f"unavailable: no private mount namespace here ({mount_error}), so jobs can reach "
            "the host's Unix sockets in /run, /tmp and elsewhere"
        )
    elif network_error is not None or config.allow_network:
        why = "network allowed by configuration" if config.allow_network else network_error
        sockets_detail = (
            "socket files: /run, /var/run and every host directory but the system ones are "
            f"not in the job's root; but abstract Unix sockets are reachable ({why}): they "
            "belong to the network namespace"
        )
    else:
        sockets_detail = (
            "no host Unix socket is reachable: /run, /var/run and every host directory but "
            "the system ones are not in the job's root, and abstract sockets belong to the "
            "host's network namespace, which the job is not in"
        )
    sockets = Protection(
        "no host sockets",
        mount_error is None and network_error is None and not config.allow_network,
        sockets_detail,
    )
    cgroups_active, cgroups_detail = cgroups
    per_job = Protection(
        "per-job cgroup",
        cgroups_active,
        cgroups_detail
        if cgroups_active
        else f"{cgroups_detail or 'unavailable'}; memory is limited per process only "
        f"(RLIMIT_AS {config.max_address_space_bytes} B each), processes per uid, and a job's "
        "CPU use is not weighed against others'",
    )
    if config.allow_network:
        network = Protection("no network", False, "network allowed by configuration")
    else:
        network = Protection(
            "no network",
            network_error is None,
            "a new network namespace with only a loopback that is down"
            if network_error is None
            else f"unavailable: no new network namespace here ({network_error})",
        )
    limits = Protection(
        "resource limits",
        True,
        f"address space {config.max_address_space_bytes} B, {config.max_processes} processes, "
        f"files up to {config.max_file_bytes} B, {config.max_open_files} open files, "
        "CPU time tied to max_execution_time, no core dumps",
    )
    env = Protection(
        "environment allow-list", True, f"only {', '.join(config.env_allowlist)} are passed on"
    )
    workdir = Protection(
        "private working directory",
        True,
        "a fresh directory per job (mode 0700), removed afterwards; no inherited descriptors "
        "but the job's own pipes",
    )
    return SandboxReport(
        True,
        (uid, filesystem, scratch, sockets, network, per_job, limits, env, workdir),
        can_switch_uid=is_root,
        can_isolate_filesystem=mount_error is None,
        can_isolate_network=network_error is None and not config.allow_network,
    )


_NAMES = (
    "separate user",
    "hidden server files",
    "private scratch",
    "no host sockets",
    "no network",
    "per-job cgroup",
    "resource limits",
    "environment allow-list",
    "private working directory",
)


def _probe_namespaces(python: str) -> dict[str, str | None]:
    if not sys.platform.startswith("linux"):
        reason = f"not available on {sys.platform}"
        return {"mount": reason, "network": reason}
    try:
        done = subprocess.run(
            [python, "-I", "-c", _PROBE], capture_output=True, text=True, timeout=30, check=True
        )
        return json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        reason = f"the probe failed: {exc}"
        return {"mount": reason, "network": reason}
