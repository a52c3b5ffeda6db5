"""What /health says for each protection the platform lacks (the probe's report, not faked:
each case below is a real probe run on this machine, with the missing part handed in)."""

from __future__ import annotations

from qruntime.execution.sandbox import SandboxConfig
from qruntime.execution.sandbox_probe import probe_sandbox


def by_name(report) -> dict:
    return {p.name: p for p in report.protections}


def test_without_job_cgroups_the_limits_are_said_to_be_per_process():
    why = "unavailable: v2: no cgroup2 hierarchy for this process; v1: no memory controller"
    report = by_name(probe_sandbox(SandboxConfig(), cgroups=(False, why)))

    cgroup = report["per-job cgroup"]
    assert cgroup.active is False
    assert cgroup.detail.startswith(why) and "memory is limited per process only" in cgroup.detail


def test_with_the_network_allowed_abstract_sockets_are_said_to_be_reachable():
    report = by_name(probe_sandbox(SandboxConfig(allow_network=True)))

    sockets = report["no host sockets"]
    assert sockets.active is False
    assert "abstract Unix sockets are reachable" in sockets.detail, sockets.detail


def test_a_disabled_sandbox_reports_every_protection_off():
    report = probe_sandbox(SandboxConfig(enabled=False))

    assert {p.name for p in report.protections} >= {
        "private scratch",
        "no host sockets",
        "per-job cgroup",
    }
    assert not any(p.active for p in report.protections)
