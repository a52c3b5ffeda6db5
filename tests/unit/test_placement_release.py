"""A worker's release runs its blocking steps (cgroup, directory) in one worker thread: a
hop each cost the event loop and a thread more than the steps themselves."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from qruntime.execution import placement as placement_module
from qruntime.execution.placement import WorkerPlacement


class Cgroups:
    def __init__(self) -> None:
        self.removed: list[str] = []

    def remove(self, name: str) -> None:
        self.removed.append(name)


@pytest.mark.parametrize("leftover", [False, True])
def test_release_removes_the_cgroup_and_the_directory_in_one_thread_hop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, leftover: bool
) -> None:
    placement = WorkerPlacement(None, sys.executable, tmp_path)
    cgroups = Cgroups()
    placement.cgroups = cgroups  # type: ignore[assignment]
    uid, workdir = placement.place()
    if leftover:  # what a job left in its directory goes with it
        (workdir / "sub").mkdir()
        (workdir / "sub" / "out.txt").write_text("x")
    hops = []
    real = asyncio.to_thread

    async def counted(function, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        hops.append(function)
        return await real(function, *args, **kwargs)

    monkeypatch.setattr(placement_module.asyncio, "to_thread", counted)
    asyncio.run(placement.release(uid, workdir))
    assert len(hops) == 1
    assert cgroups.removed == [workdir.name]
    assert not workdir.exists()
