"""Job cgroups on a cgroup v2 hierarchy, delegated or at the namespace's root.

This machine's v2 hierarchy has no controllers (they are all bound to v1, which
tests/security/test_job_isolation.py exercises for real), so the v2 code runs here against a
directory laid out as the kernel lays out cgroupfs: the boundary is faked, not the logic.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from qruntime.execution import job_cgroups
from qruntime.execution.job_cgroups import CgroupLimits, JobCgroups

LIMITS = CgroupLimits(memory_bytes=512 * 1024**2, max_processes=64, cpu_weight=50)


def fake_cgroup(path: Path, controllers: str = "cpuset cpu io memory pids") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "cgroup.controllers").write_text(controllers + "\n")
    (path / "cgroup.subtree_control").write_text("")
    (path / "cgroup.procs").write_text("")
    return path


@pytest.fixture(autouse=True)
def kernel_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new cgroup directory comes with its interface files, and goes with them, as in
    cgroupfs; one with child cgroups cannot be removed."""

    def make(path: Path) -> None:
        if not path.exists():
            fake_cgroup(path)

    def remove(path: Path) -> None:
        if any(child.is_dir() for child in path.iterdir()):
            raise OSError(16, "Device or resource busy", str(path))
        shutil.rmtree(path)

    monkeypatch.setattr(job_cgroups, "make_cgroup", make)
    monkeypatch.setattr(job_cgroups, "remove_cgroup", remove)


@pytest.fixture
def delegated(tmp_path: Path) -> tuple[Path, Path]:
    """systemd's ``Delegate=yes``: the service's cgroup, with the server's process in it."""
    mount = fake_cgroup(tmp_path / "unified")
    service = fake_cgroup(mount / "system.slice" / "qruntime.service")
    return mount, service


def test_a_delegated_hierarchy_moves_the_server_to_a_leaf_then_enables_controllers(delegated):
    mount, service = delegated
    mounts = {"unified": (mount, "/")}
    own = {"": "/system.slice/qruntime.service"}

    cgroups = job_cgroups._v2(mounts, own, LIMITS)

    assert isinstance(cgroups, JobCgroups) and cgroups.version == 2
    leaf = service / f"qruntime-server-{os.getpid()}"
    assert (leaf / "cgroup.procs").read_text() == str(os.getpid())
    assert (service / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    parent = cgroups.parents["unified"]
    assert parent.parent == service and parent.name.startswith(f"qruntime-{os.getpid()}-")
    assert (parent / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    assert not (parent / "probe").exists()  # the start-up probe cleaned up after itself


def test_a_job_cgroup_gets_its_caps_and_names_the_limits_it_hit(delegated):
    mount, _ = delegated
    cgroups = job_cgroups._v2(
        {"unified": (mount, "/")}, {"": "/system.slice/qruntime.service"}, LIMITS
    )
    job = cgroups.parents["unified"] / "job-abc"
    fake_cgroup(job)
    (job / "memory.swap.max").write_text("max")
    (job / "cpu.weight").write_text("100")

    procs = cgroups.create("job-abc")

    assert procs == (str(job / "cgroup.procs"),)
    assert (job / "memory.max").read_text() == str(LIMITS.memory_bytes)
    assert (job / "memory.swap.max").read_text() == "0"
    assert (job / "pids.max").read_text() == "64"
    assert (job / "cpu.weight").read_text() == "50"
    assert cgroups.limits_hit("job-abc") == []
    (job / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n")
    (job / "pids.events").write_text("max 5\n")
    hits = cgroups.limits_hit("job-abc")
    assert "QRUNTIME_SANDBOX_MAX_JOB_MEMORY_BYTES" in hits[0] and "killed 2" in hits[0], hits
    assert "QRUNTIME_SANDBOX_MAX_PROCESSES" in hits[1], hits


def test_at_the_root_of_a_cgroup_namespace_the_server_stays_where_it_is(tmp_path):
    mount = fake_cgroup(tmp_path / "unified")

    cgroups = job_cgroups._v2({"unified": (mount, "/")}, {"": "/"}, LIMITS)

    assert isinstance(cgroups, JobCgroups)
    assert not list(mount.glob("qruntime-server-*"))
    assert cgroups.parents["unified"].parent == mount


def test_without_the_memory_and_pids_controllers_v2_says_which_are_missing(tmp_path):
    mount = fake_cgroup(tmp_path / "unified", controllers="hugetlb")

    found = job_cgroups._v2({"unified": (mount, "/")}, {"": "/"}, LIMITS)

    assert isinstance(found, str) and "memory, pids" in found, found


def test_a_gone_servers_cgroups_are_removed_at_start(tmp_path):
    mount = fake_cgroup(tmp_path / "unified")
    stale = mount / "qruntime-999999999-abcdef"
    (stale / "job-left").mkdir(parents=True)

    job_cgroups._v2({"unified": (mount, "/")}, {"": "/"}, LIMITS)

    assert not stale.exists()
