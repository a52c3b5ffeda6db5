"""A sandbox plan travels to its worker as JSON: every field out, and back as it was."""

import json
from dataclasses import asdict

from qruntime.execution.sandbox import SandboxPlan


def test_a_plan_survives_its_json_field_for_field():
    plan = SandboxPlan(
        workdir="/srv/jobs/j-1",
        uid=60001,
        isolate_network=True,
        hidden_paths=("/etc/qruntime", "/root"),
        exposed_paths=("/opt/data",),
        cgroup_procs=("/sys/fs/cgroup/qruntime/j-1/cgroup.procs",),
    )
    assert plan.to_json() == asdict(plan)
    assert SandboxPlan.from_json(json.loads(json.dumps(plan.to_json()))) == plan
