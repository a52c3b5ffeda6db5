"""Two servers at once, each with its own ``PYTHONPATH`` (the server's code; the zygote's
environment drops it), trivial jobs alternating between them: an A/B of server-side code
that both sides see at one load, by CPU (``server_ab.py`` compares end to end and stages).

    .venv/bin/python bench/perf/server_cpu_ab.py 150 4 sqlite old=/path/to/old/src new=src
    .venv/bin/python bench/perf/server_cpu_ab.py 150 4 pg old=/path/to/old/src new=src

Per round: each server's CPU per job, its event loop's and its other threads' (from /proc, in
10 ms ticks). The side started first reads 0.07-0.13 ms higher in an A/A run: run both orders.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from common import TRIVIAL_PROGRAM, metadata
from cpu_budget import thread_cpu
from server import BenchServer, bench_server, wait_for_warm_pool

from qruntime.client import RuntimeService

WARM_UP = 10


def per_job(server: BenchServer, before: dict[str, float], jobs: int) -> tuple[float, float]:
    """Milliseconds per job of the event loop (the main thread) and of the other threads."""
    after = thread_cpu(server.pid)
    spent = {tid: after[tid] - before.get(tid, 0.0) for tid in after}
    loop = spent.pop(str(server.pid), 0.0)
    return loop * 1000 / jobs, sum(spent.values()) * 1000 / jobs


def compare(jobs: int, rounds: int, postgres: bool, sides: dict[str, str]) -> None:
    with contextlib.ExitStack() as stack:
        servers: dict[str, BenchServer] = {}
        for name, path in sides.items():
            os.environ["PYTHONPATH"] = str(Path(path).resolve())
            url = None
            if postgres:
                from statements import fresh_postgres

                url = stack.enter_context(fresh_postgres())
            servers[name] = stack.enter_context(bench_server(database_url=url))
        os.environ.pop("PYTHONPATH")
        clients = {}
        for name, server in servers.items():
            service = RuntimeService(url=server.url, token=server.token)
            clients[name] = (service, service.upload_program(TRIVIAL_PROGRAM, metadata("ab")))
            wait_for_warm_pool(server, 2)

        def run_one(name: str, n: int) -> None:
            service, program = clients[name]
            job = service.run(program, {"n": n}, options={"backend_name": "aer_simulator"})
            if job.result(timeout=60) != n:
                raise RuntimeError(f"{name}: job {n} returned a wrong result")

        for n in range(WARM_UP):
            for name in sides:
                run_one(name, n)
        for r in range(rounds):
            before = {name: thread_cpu(server.pid) for name, server in servers.items()}
            order = list(sides) if r % 2 == 0 else list(reversed(sides))
            for n in range(jobs):
                for name in order if n % 2 == 0 else reversed(order):
                    run_one(name, n)
            parts = []
            for name, server in servers.items():
                loop, others = per_job(server, before[name], jobs)
                parts.append(f"{name}: loop {loop:.2f} others {others:.2f} all {loop + others:.2f}")
            with open("/proc/loadavg") as load:
                figure = load.read().split()[0]
            print(f"round {r}: " + " | ".join(parts) + f" | load {figure}", flush=True)


if __name__ == "__main__":
    compare(
        int(sys.argv[1]),
        int(sys.argv[2]),
        sys.argv[3] == "pg",
        dict(arg.split("=", 1) for arg in sys.argv[4:]),
    )
