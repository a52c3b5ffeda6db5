"""Job start latency: the executor is handed a job -> the program's first line runs.

Measured with the server's own executor configuration (sandbox on, limits on), with the warm
pool and, as baseline (a), with a fresh Python process per job (spawn + imports).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path

from common import FIRST_LINE_PROGRAM, Row, p50_p95, percentile

from qruntime.domain.events import InterimEvent
from qruntime.execution import JobRequest, LocalExecutor, LocalExecutorConfig
from qruntime.execution.sandbox import SandboxConfig
from qruntime.execution.warm_pool import WarmPoolConfig

#: Pause between jobs: the pool refills in the background between arrivals.
ARRIVAL_GAP = 0.05


def executor_config(pool: bool) -> LocalExecutorConfig:
    hidden = (Path.home(), Path(tempfile.gettempdir()) / "qruntime-bench-hidden")
    return LocalExecutorConfig(
        sandbox=SandboxConfig(hidden_paths=hidden),
        pool=WarmPoolConfig(size=2) if pool else None,
    )


async def _measure(pool: bool, count: int) -> list[float]:
    executor = LocalExecutor(executor_config(pool))
    await executor.start()
    latencies = []
    try:
        for _ in range(count + 1):  # the first job warms the pool's refill path up
            await _until_idle(executor, 2 if pool else 0)
            request = JobRequest(
                job_id=f"bench-{uuid.uuid4().hex[:12]}",
                source=FIRST_LINE_PROGRAM,
                backend_name="aer_simulator",
                max_execution_time=120,
            )
            handed = time.time()
            first_line = None
            async for event in executor.run(request):
                if isinstance(event, InterimEvent) and first_line is None:
                    first_line = json.loads(event.data)
            if first_line is None:
                raise RuntimeError("the benchmark program never published")
            latencies.append(first_line - handed)
    finally:
        await executor.aclose()
    return latencies[1:]


async def _until_idle(executor: LocalExecutor, idle: int) -> None:
    await asyncio.sleep(ARRIVAL_GAP)
    for _ in range(400):
        if len(executor.pool_status()["idle_pids"]) >= idle:
            return
        await asyncio.sleep(0.01)


def run(pooled_jobs: int = 200, spawned_jobs: int = 20) -> tuple[list[Row], dict[str, list[float]]]:
    pooled = asyncio.run(_measure(True, pooled_jobs))
    spawned = asyncio.run(_measure(False, spawned_jobs))
    ratio = percentile(spawned, 50) / percentile(pooled, 50)
    rows = [
        Row(
            "job start (executor)", f"warm pool, {len(pooled)} jobs", p50_p95(pooled), "p50 ≤ 5 ms"
        ),
        Row(
            "job start (executor)",
            f"fresh process (spawn + imports), {len(spawned)} jobs",
            p50_p95(spawned),
            "",
            "baseline (a)",
        ),
        Row("job start (executor)", "fresh process p50 / warm pool p50", f"{ratio:.0f}x", "≥ 50x"),
    ]
    return rows, {"pooled": pooled, "spawned": spawned}
