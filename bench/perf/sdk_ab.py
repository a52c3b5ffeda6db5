"""Two SDKs against one server, job by job in turn: an A/B of client code that a loaded,
shared machine cannot skew (both sides see the same moments; the server is the same).

.venv/bin/python bench/perf/sdk_ab.py 100 old=/path/to/old/src new=src

Each side is a client process with that ``PYTHONPATH``; per side: end to end p50/p95, the
SDK's CPU per job, the server event loop's CPU per job (jobs run one at a time), and the TCP
connections the SDK opened.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from common import TRIVIAL_PROGRAM, metadata, percentile
from cpu_budget import thread_cpu
from server import bench_server, wait_for_warm_pool

from qruntime.client import RuntimeService


def client(url: str, token: str, program: str) -> None:
    """Run a job for each number read from stdin; print its wall and CPU seconds."""
    connects = 0
    connect = socket.create_connection

    def counted(*args, **kwargs):
        nonlocal connects
        connects += 1
        return connect(*args, **kwargs)

    socket.create_connection = counted  # what httpcore opens its connections with
    service = RuntimeService(url=url, token=token)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        n = int(line)
        cpu, wall = time.process_time(), time.perf_counter()
        job = service.run(program, {"n": n}, options={"backend_name": "aer_simulator"})
        result = job.result(timeout=120)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if result != n:
            raise RuntimeError(f"job {n} returned {result!r}")
        print(json.dumps({"wall": wall, "cpu": cpu, "connects": connects}), flush=True)


def compare(count: int, sides: dict[str, str]) -> None:
    warm_up = 3
    with bench_server() as server:
        program = RuntimeService(url=server.url, token=server.token).upload_program(
            TRIVIAL_PROGRAM, metadata("sdk-ab")
        )
        procs = {}
        for name, path in sides.items():
            env = dict(os.environ, PYTHONPATH=str(Path(path).resolve()))
            command = [sys.executable, __file__, "--client", server.url, server.token, program]
            procs[name] = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
            )
            json.loads(procs[name].stdout.readline())
        seen: dict[str, dict[str, list[float]]] = {
            k: {"wall": [], "cpu": [], "loop": []} for k in procs
        }
        connects = dict.fromkeys(procs, 0)
        for i in range(1, count + warm_up + 1):
            order = list(procs.items()) if i % 2 else list(reversed(procs.items()))
            for name, proc in order:
                wait_for_warm_pool(server, 2)
                loop = thread_cpu(server.pid).get(str(server.pid), 0.0)
                proc.stdin.write(f"{i}\n")
                proc.stdin.flush()
                done = json.loads(proc.stdout.readline())
                if i > warm_up:
                    loop = thread_cpu(server.pid).get(str(server.pid), 0.0) - loop
                    for key, value in (
                        ("wall", done["wall"]),
                        ("cpu", done["cpu"]),
                        ("loop", loop),
                    ):
                        seen[name][key].append(value)
                    connects[name] = done["connects"]
        for proc in procs.values():
            proc.stdin.close()
            proc.wait()
    for name, values in seen.items():
        wall, jobs = values["wall"], len(values["wall"])
        print(
            f"{name}: end to end p50 {percentile(wall, 50) * 1000:.1f} ms, "
            f"p95 {percentile(wall, 95) * 1000:.1f} ms; "
            f"SDK CPU {sum(values['cpu']) * 1000 / jobs:.2f} ms/job; "
            f"server loop CPU {sum(values['loop']) * 1000 / jobs:.2f} ms/job; "
            f"{connects[name]} TCP connections for {jobs + warm_up} jobs"
        )
    with open("/proc/loadavg") as load:
        print("load", load.read().split()[0])


if __name__ == "__main__":
    if sys.argv[1] == "--client":
        client(*sys.argv[2:5])
    else:
        compare(int(sys.argv[1]), dict(arg.split("=", 1) for arg in sys.argv[2:]))
