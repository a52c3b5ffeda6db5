"""Where a throughput run's CPU goes, and whether its job slots sit idle: the CPU per job of each
process (and of the server's threads, by pool) while ``clients`` clients run trivial jobs, the
machine's busy share meanwhile, and the time a slot was free while a job was queued.

    .venv/bin/python bench/perf/throughput_cpu.py CLIENTS JOBS_PER_CLIENT [postgres]

Prints one JSON object. The server runs under counting_serve.py (as ``bench/run``'s does), so
the server's threads can be named.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from datetime import UTC, datetime

from cpu_budget import cpu_per_job, thread_cpu
from server import bench_server, statement_counts
from server_jobs import throughput
from statements import fresh_postgres


def _machine_busy() -> tuple[float, float]:
    """Busy and total CPU seconds of the whole machine so far (``/proc/stat``)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / tick, sum(fields) / tick


def _pool(name: str) -> str:
    return re.sub(r"[_-]\d+$", "", name) or name


def _slot_gaps(database_url: str, slots: int, since: float) -> dict[str, float]:
    """Seconds during which fewer than ``slots`` jobs ran while one was queued, from the rows
    of the jobs created after ``since`` (epoch seconds)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT created_at, started_at, ended_at FROM jobs")).all()
    engine.dispose()

    def seconds(value: object) -> float:
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:  # type: ignore[union-attr]
            value = value.replace(tzinfo=UTC)  # type: ignore[union-attr]
        return value.timestamp()  # type: ignore[union-attr]

    events = []
    for created, started, ended in rows:
        if seconds(created) < since:
            continue
        events += [(seconds(created), 0, 1), (seconds(started), 0, -1), (seconds(started), 1, 1)]
        events.append((seconds(ended), 1, -1))
    events.sort()
    queued = running = 0
    idle_with_work = busy = 0.0
    last = events[0][0]
    for moment, kind, delta in events:
        span = moment - last
        if queued and running < slots:
            idle_with_work += span * (slots - running)
        busy += span * running
        last = moment
        if kind == 0:
            queued += delta
        else:
            running += delta
    wall = events[-1][0] - events[0][0]
    return {
        "span s": round(wall, 3),
        "mean running": round(busy / wall, 3),
        "slot-seconds free while queued": round(idle_with_work, 3),
    }


def measure(clients: int, per_client: int, database_url: str | None) -> dict[str, object]:
    with bench_server(counting=True, database_url=database_url) as server:
        url = database_url or f"sqlite:///{server.directory / 'data' / 'qruntime.db'}"
        throughput(server, clients, 2)  # warm: connections, caches, the program
        names = statement_counts(server).get("threads", {})
        busy0, total0 = _machine_busy()
        threads0 = thread_cpu(server.pid)
        load0 = os.getloadavg()[0]
        count = clients * per_client
        since = time.time()
        started = time.perf_counter()
        with cpu_per_job(server, count) as per_job:
            rate, _ = throughput(server, clients, per_client)
        wall = time.perf_counter() - started
        busy1, total1 = _machine_busy()
        threads1 = thread_cpu(server.pid)
        names |= statement_counts(server).get("threads", {})
        pools: dict[str, float] = {}
        for tid, cpu in threads1.items():
            name = "event loop" if tid == str(server.pid) else _pool(names.get(tid, "?"))
            pools[name] = pools.get(name, 0.0) + (cpu - threads0.get(tid, 0.0)) * 1000 / count
        cores = os.cpu_count() or 1
        ours = sum(per_job.values()) - per_job["kernel threads (machine-wide)"]
        return {
            "clients": clients,
            "jobs": count,
            "jobs/s": round(rate, 1),
            "load": [round(load0, 1), round(os.getloadavg()[0], 1)],
            "machine busy %": round(100 * (busy1 - busy0) / (total1 - total0) * cores, 1),
            "our processes' CPU %": round(100 * ours * count / 1000 / wall, 1),
            "ms per job": {k: round(v, 2) for k, v in per_job.items()},
            "ms per job, all": round(sum(per_job.values()), 2),
            "server threads, ms per job": {k: round(v, 2) for k, v in sorted(pools.items())},
            "slots": _slot_gaps(url, 2, since),
        }


def main() -> None:
    clients, per_client = int(sys.argv[1]), int(sys.argv[2])
    if "postgres" in sys.argv[3:]:
        with fresh_postgres() as url:
            result = measure(clients, per_client, url)
    else:
        result = measure(clients, per_client, None)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
