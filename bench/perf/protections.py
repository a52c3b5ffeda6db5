"""What the per-job protections of hardening round 2 cost, each against a baseline of the same run.

- a trivial job through the warm-pool executor (handed -> outcome), with a cgroup per job and
  without (``SandboxConfig(cgroups=False)``), everything else equal, jobs taking turns;
- a job cgroup made, read and removed (v1 here: memory, pids, cpu), alone;
- a worker's filesystem set-up: its own root (read-only binds, minimal /dev, one scratch tmpfs,
  fresh /proc) against the round-1 set-up (one tmpfs over each hidden path, fresh /proc). With
  the warm pool a worker does it while it waits idle, so only a fresh-process start pays it.

Run as root: ``.venv/bin/python bench/perf/protections.py [jobs]``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import TRIVIAL_PROGRAM, percentile

from qruntime.execution import JobRequest, LocalExecutor, LocalExecutorConfig, job_root, linux
from qruntime.execution.job_cgroups import CgroupLimits, detect
from qruntime.execution.sandbox import SandboxConfig, exposed_paths
from qruntime.execution.warm_pool import WarmPoolConfig

GAP = 0.05


async def _jobs(count: int) -> dict[bool, list[float]]:
    """Jobs alternate between two executors, with and without cgroups, so that both see the
    machine in the same state."""
    executors = {}
    for cgroups in (True, False):
        sandbox = SandboxConfig(hidden_paths=(Path.home(),), cgroups=cgroups)
        config = LocalExecutorConfig(sandbox=sandbox, pool=WarmPoolConfig(size=2))
        executors[cgroups] = LocalExecutor(config)
        await executors[cgroups].start()
    took: dict[bool, list[float]] = {True: [], False: []}
    try:
        for index in range(2 * (count + 1)):
            cgroups = index % 2 == 0
            executor = executors[cgroups]
            await asyncio.sleep(GAP)
            while len(executor.pool_status()["idle_pids"]) < 2:
                await asyncio.sleep(0.01)
            request = JobRequest(
                job_id=f"bench-{uuid.uuid4().hex[:12]}",
                source=TRIVIAL_PROGRAM,
                backend_name="aer_simulator",
                max_execution_time=60,
            )
            start = time.perf_counter()
            async for event in executor.run(request):
                if event.terminal:
                    took[cgroups].append(time.perf_counter() - start)
    finally:
        for executor in executors.values():
            await executor.aclose()
    return {cgroups: values[1:] for cgroups, values in took.items()}


def _cgroup_cycle(count: int) -> list[float]:
    cgroups, detail = detect(CgroupLimits(1024**3, 256, 100))
    if cgroups is None:
        raise SystemExit(f"no job cgroups here: {detail}")
    took = []
    try:
        for index in range(count):
            start = time.perf_counter()
            cgroups.create(f"job-bench{index}")
            cgroups.limits_hit(f"job-bench{index}")
            cgroups.remove(f"job-bench{index}")
            took.append(time.perf_counter() - start)
    finally:
        cgroups.close()
    return took


def _setup_in_child(own_root: bool, exposed: tuple[str, ...]) -> float:
    workdir = tempfile.mkdtemp(prefix="qruntime-bench-")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        start = time.perf_counter()
        linux.unshare(linux.CLONE_NEWNS | linux.CLONE_NEWIPC)
        linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
        if own_root:
            job_root.enter_job_root(workdir, None, exposed, 64 * 1024**2)
        else:
            linux.mount("tmpfs", str(Path.home()), "tmpfs", 0, "size=1m")
            flags = linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC
            linux.mount("proc", "/proc", "proc", flags, "hidepid=invisible")
        os.write(write, f"{time.perf_counter() - start}".encode())
        os._exit(0)
    os.close(write)
    took = float(os.read(read, 64))
    os.waitpid(pid, 0)
    os.close(read)
    os.rmdir(workdir)
    return took


def main(count: int) -> None:
    jobs = asyncio.run(_jobs(count))
    with_cgroup, without = jobs[True], jobs[False]
    cycle = _cgroup_cycle(count)
    exposed = exposed_paths()
    own = [_setup_in_child(True, exposed) for _ in range(count)]
    old = [_setup_in_child(False, exposed) for _ in range(count)]
    ms = 1000
    p50 = lambda values: percentile(values, 50) * ms  # noqa: E731
    print(f"trivial job, warm pool, {count} jobs each (handed -> outcome, ms, p50):")
    print(f"  with a cgroup per job   {p50(with_cgroup):7.2f}")
    print(f"  without                 {p50(without):7.2f}")
    print(f"  ratio                   {p50(with_cgroup) / p50(without):7.2f}")
    print(f"job cgroup made + read + removed (ms, p50): {p50(cycle):.2f}")
    print("worker filesystem set-up (ms, p50), off the hot path with the warm pool:")
    print(f"  own root + scratch      {p50(own):7.2f}")
    print(f"  round-1 hiding          {p50(old):7.2f}")
    print(f"  ratio                   {p50(own) / p50(old):7.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 60)
