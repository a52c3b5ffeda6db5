"""The warm pool: workers forked by a zygote, sandboxed while idle, one job each, and the
fallback to a fresh Python process when there is no zygote."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import textwrap
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from qruntime.domain.events import ErrorEvent, InterimEvent, JobEvent, ResultEvent
from qruntime.execution import JobRequest, LocalExecutor, LocalExecutorConfig
from qruntime.execution.sandbox import SandboxConfig
from qruntime.execution.warm_pool import WarmPoolConfig
from qruntime.serialization import RuntimeDecoder

IS_ROOT = os.geteuid() == 0


def request(source: str, max_execution_time: float = 120) -> JobRequest:
    return JobRequest(
        job_id=f"job-{uuid.uuid4().hex[:12]}",
        source=textwrap.dedent(source),
        backend_name="aer_simulator",
        max_execution_time=max_execution_time,
    )


async def run(executor: LocalExecutor, req: JobRequest) -> list[JobEvent]:
    return [event async for event in executor.run(req)]


def result(events: list[JobEvent]):
    assert isinstance(events[-1], ResultEvent), events[-1]
    return json.loads(events[-1].data, cls=RuntimeDecoder)


async def wait_for_idle(executor: LocalExecutor, count: int) -> list[int]:
    for _ in range(600):
        pids = executor.pool_status()["idle_pids"]
        if len(pids) >= count:
            return pids
        await asyncio.sleep(0.05)
    raise AssertionError(f"the pool never had {count} idle workers: {executor.pool_status()}")


@pytest.fixture
async def pooled(tmp_path: Path) -> AsyncIterator[LocalExecutor]:
    sandbox = SandboxConfig(hidden_paths=(tmp_path / "secret", Path.home()))
    (tmp_path / "secret").mkdir()
    executor = LocalExecutor(LocalExecutorConfig(sandbox=sandbox, pool=WarmPoolConfig(size=2)))
    await executor.start()
    yield executor
    await executor.aclose()


async def test_a_start_that_fails_half_way_leaks_no_worker(pooled: LocalExecutor) -> None:
    """The sandbox plan cannot be made (a time limit no rlimit can hold) after a worker was
    taken from the pool: that worker is stopped, not left waiting for a job forever."""
    idle = set(await wait_for_idle(pooled, 2))
    with pytest.raises(OverflowError):
        await run(pooled, request("def main(backend, user_messenger): pass", float("inf")))
    assert pooled.running_jobs() == []

    def gone(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
        except FileNotFoundError:
            return True

    for _ in range(100):
        if [pid for pid in idle if gone(pid)]:
            break
        await asyncio.sleep(0.05)
    assert len([pid for pid in idle if gone(pid)]) == 1, "the taken worker still lives"
    assert result(await run(pooled, request("def main(backend, user_messenger): return 1"))) == 1


AER_THREADS = """
    from qiskit import QuantumCircuit, transpile

    def main(backend, user_messenger):
        qc = QuantumCircuit(16)
        qc.h(range(16))
        qc.t(range(16))  # not Clifford: Aer must simulate the state vector, in parallel
        for q in range(15):
            qc.cx(q, q + 1)
        qc.measure_all()
        backend.set_options(
            method="statevector", max_parallel_threads=2, statevector_parallel_threshold=2
        )
        result = backend.run(transpile(qc, backend), shots=256).result()
        return {
            "counts": sum(result.get_counts().values()),
            "threads": result.results[0].metadata["parallel_state_update"],
            "omp": result.metadata["omp_enabled"],
        }
"""


async def test_aer_runs_its_openmp_threads_in_a_forked_worker(pooled: LocalExecutor) -> None:
    report = result(await run(pooled, request(AER_THREADS)))
    assert report["counts"] == 256
    assert report["omp"] is True
    assert report["threads"] == min(2, os.cpu_count() or 1)


async def test_idle_workers_wait_already_sandboxed(pooled: LocalExecutor) -> None:
    pids = await wait_for_idle(pooled, 2)
    for pid in pids:
        fields = await sandboxed_status(pid)
        uids = fields["Uid"].split()
        if IS_ROOT:  # its own uid, not root, before any job exists
            assert set(uids) == {uids[0]} and int(uids[0]) >= 200_000, uids
        assert fields["NoNewPrivs"].strip() == "1"
        assert os.getsid(pid) == pid  # its own session: the supervisor can kill its group
    assert len(set(pids)) == 2


async def sandboxed_status(pid: int) -> dict[str, str]:
    """The worker's status once it has set its sandbox up (its own root takes ~0.1 s to
    build); a job sent meanwhile waits in its pipe until then."""
    for _ in range(100):
        status = Path(f"/proc/{pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines())
        if fields["NoNewPrivs"].strip() == "1":
            return fields
        await asyncio.sleep(0.05)
    return fields


MUTATE = """
    import sys
    import numpy
    import qiskit

    def main(backend, user_messenger, poison=False):
        seen = {
            "qiskit": getattr(qiskit, "poisoned", None),
            "numpy_pi": float(numpy.pi),
            "modules": "poison_module" in sys.modules,
            "backend_shots": backend.options.shots,
        }
        if poison:
            qiskit.poisoned = "yes"
            numpy.pi = 3.0
            sys.modules["poison_module"] = object()
            backend.set_options(shots=7)
        return seen
"""


async def test_a_job_that_changes_module_state_cannot_affect_the_next(
    pooled: LocalExecutor,
) -> None:
    first = request(MUTATE)
    first = JobRequest(**{**first.to_json(), "inputs": json.dumps({"poison": True})})
    before = result(await run(pooled, first))
    assert before["qiskit"] is None and before["numpy_pi"] == 3.141592653589793
    for _ in range(3):  # later jobs, in idle workers and in freshly forked ones
        after = result(await run(pooled, request(MUTATE)))
        assert after["qiskit"] is None and after["numpy_pi"] == 3.141592653589793
        assert after["modules"] is False and after["backend_shots"] != 7


async def test_each_worker_runs_one_job_and_exits(pooled: LocalExecutor) -> None:
    source = """
        import os
        def main(backend, user_messenger):
            return os.getpid()
    """
    pids = [result(await run(pooled, request(source))) for _ in range(4)]
    assert len(set(pids)) == 4
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0]
    except (FileNotFoundError, IndexError):
        return "zombie"


async def test_a_killed_zygote_fails_its_running_job_and_the_next_job_runs(
    pooled: LocalExecutor,
) -> None:
    slow = """
        import time
        def main(backend, user_messenger):
            user_messenger.publish("started")
            time.sleep(60)
    """
    events: list[JobEvent] = []

    async def consume() -> None:
        async for event in pooled.run(request(slow)):
            events.append(event)

    task = asyncio.create_task(consume())
    for _ in range(600):
        if any(isinstance(e, InterimEvent) for e in events):
            break
        await asyncio.sleep(0.05)
    zygote_pid = pooled.pool_status()["zygote_pid"]
    os.kill(zygote_pid, signal.SIGKILL)
    await asyncio.wait_for(task, 30)
    assert isinstance(events[-1], ErrorEvent)
    assert "SIGKILL" in events[-1].message
    after = result(await run(pooled, request("def main(backend, user_messenger):\n    return 1\n")))
    assert after == 1
    assert pooled.pool_status()["zygote_pid"] not in (None, zygote_pid)  # a new zygote


async def test_without_a_zygote_jobs_start_the_plain_way(caplog: pytest.LogCaptureFixture) -> None:
    config = LocalExecutorConfig(pool=WarmPoolConfig(size=2, start_timeout=0.001))
    executor = LocalExecutor(config)
    try:
        with caplog.at_level(logging.WARNING):
            source = "import sys\ndef main(backend, user_messenger):\n    return sys.argv[0]\n"
            events = await run(executor, request(source))
        assert result(events).endswith(".py")
        assert "fresh Python process" in caplog.text
        assert executor.pool_status()["zygote_pid"] is None
    finally:
        await executor.aclose()


async def test_pool_size_zero_never_starts_a_zygote() -> None:
    executor = LocalExecutor(LocalExecutorConfig(pool=WarmPoolConfig(size=0)))
    try:
        await executor.start()
        assert result(await run(executor, request("def main(b, m):\n    return 2\n"))) == 2
        assert executor.pool_status() == {"size": 0, "idle_pids": [], "zygote_pid": None}
    finally:
        await executor.aclose()
