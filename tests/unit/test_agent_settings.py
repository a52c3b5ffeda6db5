"""The Ray agents' settings fingerprint: equal for replicas that differ only in their own paths,
different (naming the setting) when a limit differs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from qruntime.execution.agent_settings import (
    UNSET,
    agent_settings,
    describe,
    differences,
    fingerprint,
)
from qruntime.execution.local import LocalExecutorConfig
from qruntime.execution.sandbox import SandboxConfig


def config(data_dir: str, **sandbox: object) -> LocalExecutorConfig:
    return LocalExecutorConfig(
        python=f"{data_dir}/venv/bin/python",
        workdir_root=Path(data_dir) / "jobs",
        sandbox=SandboxConfig(hidden_paths=(Path(data_dir),), **sandbox),  # type: ignore[arg-type]
    )


def test_replicas_with_other_data_dirs_have_the_same_fingerprint() -> None:
    first, second = agent_settings(config("/srv/a")), agent_settings(config("/srv/b"))
    assert first == second and fingerprint(first) == fingerprint(second)
    assert not differences(first, second)


def test_a_different_limit_changes_the_fingerprint_and_is_named() -> None:
    agents = agent_settings(config("/srv/a"))
    mine = agent_settings(config("/srv/b", max_processes=64))
    assert fingerprint(agents) != fingerprint(mine)
    differing = differences(agents, mine)
    assert differing == {"sandbox.max_processes": {"agents": 256, "this_replica": 64}}
    assert describe(differing) == "sandbox.max_processes: agents 256, this replica 64"


def test_no_sandbox_differs_from_a_sandbox() -> None:
    sandboxed = agent_settings(config("/srv/a"))
    bare = agent_settings(replace(config("/srv/a"), sandbox=None))
    differing = differences(sandboxed, bare)
    assert differing["sandbox"] == {"agents": UNSET, "this_replica": None}
    assert differing["sandbox.enabled"] == {"agents": True, "this_replica": UNSET}
