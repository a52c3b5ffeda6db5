"""How much the VQE-style loop (Aer on both cores) slows down beside other CPU work: in a job
against run directly, and run directly beside a burner process that takes BURST_MS of CPU every
20 ms, alternating; plus the server's CPU (schedstat) over each in-job run.

    .venv/bin/python bench/perf/vqe_sensitivity.py REPEATS BURST_MS
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from types import SimpleNamespace

from common import metadata
from overhead import VQE_LOOP
from server import bench_server, wait_for_warm_pool

from qruntime.backends import get_backend
from qruntime.client import RuntimeService
from qruntime.execution.program_loader import load_program

BURNER = """
import sys, time
burst, pause, until = float(sys.argv[1]), float(sys.argv[2]), time.perf_counter() + 2
while time.perf_counter() < until:
    started = time.perf_counter()
    while time.perf_counter() < started + burst:
        pass
    time.sleep(pause)
"""


def cpu_ns(pid: int) -> int:
    """Nanoseconds on a CPU so far, all threads of ``pid`` (``/proc/.../schedstat``)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as stat:
                total += int(stat.read().split()[0])
        except OSError:  # the thread ended meanwhile
            continue
    return total


def main(repeats: int, burst_ms: float) -> None:
    inputs = {"iterations": 100}
    with bench_server() as server:
        service = RuntimeService(url=server.url, token=server.token)
        program = service.upload_program(VQE_LOOP, metadata("vqe-loop"))
        backend = get_backend("aer_simulator")
        module = load_program(VQE_LOOP, "direct", module_name="vqe_direct")
        messenger = SimpleNamespace(publish=lambda *args, **kwargs: None)
        module.main(backend, messenger, **inputs)  # warm-up, as overhead.py does
        service.run(program, inputs, options={"backend_name": "aer_simulator"}).result(600)
        direct, in_job, beside, server_ms = [], [], [], []
        for _ in range(repeats):
            direct.append(module.main(backend, messenger, **inputs))
            wait_for_warm_pool(server, 2)
            before = cpu_ns(server.pid)
            job = service.run(program, inputs, options={"backend_name": "aer_simulator"})
            in_job.append(job.result(timeout=600))
            server_ms.append((cpu_ns(server.pid) - before) / 1e6)
            burner = subprocess.Popen([sys.executable, "-c", BURNER, str(burst_ms / 1000), "0.02"])
            time.sleep(0.05)
            beside.append(module.main(backend, messenger, **inputs))
            burner.wait()
    d, j, b = (statistics.median(values) * 1000 for values in (direct, in_job, beside))
    print(
        f"direct {d:.0f} ms; in a job {j:.0f} ms ({(j / d - 1) * 100:+.1f}%); direct beside a "
        f"burner of {burst_ms} ms every 20 ms {b:.0f} ms ({(b / d - 1) * 100:+.1f}%); the "
        f"server's CPU over the whole job, median {statistics.median(server_ms):.1f} ms"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]), float(sys.argv[2]))
