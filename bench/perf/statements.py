"""What a trivial job and an interim result cost the server: SQL statements and commits
(counted in the server by counting_serve.py) and CPU (from /proc), on SQLite and PostgreSQL.

    .venv/bin/python bench/perf/statements.py 100 2000      # jobs, interim results
    QRUNTIME_BENCH_LOOP=1 .venv/bin/python bench/perf/statements.py 30 2000   # + loop work
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from common import FLOOD_PROGRAM, TRIVIAL_PROGRAM, Row, metadata
from cpu_budget import thread_cpu
from server import BenchServer, bench_server, statement_counts, wait_for_warm_pool

from qruntime.client import RuntimeService

POSTGRES_URL = os.environ.get(
    "QRUNTIME_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
#: The interim results' pace: 2.5 ms apart is 400/s, inside the issue's 300-500/s.
INTERIM_GAP = 0.0025


@contextmanager
def fresh_postgres() -> Iterator[str]:
    """A new database on the test PostgreSQL, dropped at the end."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    name = f"qrt_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _server_cpu(server: BenchServer) -> tuple[float, float]:
    """CPU seconds so far of the server's event loop (main thread) and of its other threads."""
    threads = thread_cpu(server.pid)
    loop = threads.pop(str(server.pid), 0.0)
    return loop, sum(threads.values())


def _per(before: dict[str, int], after: dict[str, int], count: int, key: str) -> float:
    return (after.get(key, 0) - before.get(key, 0)) / count


def measure(server: BenchServer, jobs: int, interims: int) -> dict[str, float]:
    """Per trivial job and per interim result: statements, commits, server CPU (ms)."""
    service = RuntimeService(url=server.url, token=server.token)
    trivial = service.upload_program(TRIVIAL_PROGRAM, metadata("statements"))
    flood = service.upload_program(FLOOD_PROGRAM, metadata("statements-interims"))
    options = {"backend_name": "aer_simulator"}
    wait_for_warm_pool(server, 2)
    service.run(trivial, {"n": -1}, options=options).result(timeout=60)  # warm caches
    before, cpu_before = statement_counts(server), _server_cpu(server)
    for n in range(jobs):
        if service.run(trivial, {"n": n}, options=options).result(timeout=60) != n:
            raise RuntimeError(f"job {n} returned a wrong result")
    after, cpu_after = statement_counts(server), _server_cpu(server)
    figures = {
        "job statements": _per(before, after, jobs, "statements"),
        "job commits": _per(before, after, jobs, "commits"),
        "job loop ms": (cpu_after[0] - cpu_before[0]) * 1000 / jobs,
        "job threads ms": (cpu_after[1] - cpu_before[1]) * 1000 / jobs,
    }
    # A job that only waits costs the same with and without results: measure the difference.
    wait_for_warm_pool(server, 2)
    seen: list[int] = []
    inputs = {"count": interims, "interval": INTERIM_GAP}
    before, cpu_before = statement_counts(server), _server_cpu(server)
    started = time.monotonic()
    job = service.run(flood, inputs, options=options, callback=lambda _id, v: seen.append(v[0]))
    if job.result(timeout=600) != interims:
        raise RuntimeError("the interim job failed")
    wall = time.monotonic() - started
    after, cpu_after = statement_counts(server), _server_cpu(server)
    deadline = time.monotonic() + 30
    while len(seen) < interims and time.monotonic() < deadline:
        time.sleep(0.01)
    if seen != list(range(interims)):
        raise RuntimeError(f"{len(seen)} of {interims} interim results reached the callback")
    job_cpu = figures["job loop ms"] + figures["job threads ms"]
    server_ms = (sum(cpu_after) - sum(cpu_before)) * 1000
    figures |= {
        "interim statements": _per(before, after, interims, "statements"),
        "interim commits": _per(before, after, interims, "commits"),
        "interim server ms": max(server_ms - job_cpu, 0.0) / interims,
        "interim loop callbacks": _per(before, after, interims, "loop callbacks"),
        "interim thread hand-offs": _per(before, after, interims, "thread hand-offs"),
        "interim rate": interims / wall,
    }
    return figures


def rows(label: str, figures: dict[str, float], jobs: int, interims: int) -> list[Row]:
    found = [
        Row(
            "statements per job",
            f"{label}: trivial job, SQL statements / commits, {jobs} jobs",
            f"{figures['job statements']:.1f} / {figures['job commits']:.1f}",
        ),
        Row(
            "CPU per trivial job",
            f"{label}: server only (event loop + other threads), {jobs} jobs",
            f"{figures['job loop ms'] + figures['job threads ms']:.1f} ms "
            f"({figures['job loop ms']:.1f} + {figures['job threads ms']:.1f})",
        ),
        Row(
            "CPU per interim result",
            f"{label}: server CPU, {interims} published at {figures['interim rate']:.0f}/s "
            "(the job's own cost taken off)",
            f"{figures['interim server ms']:.3f} ms",
            "≤ 0.1 ms",
        ),
        Row(
            "statements per interim result",
            f"{label}: SQL statements / commits",
            f"{figures['interim statements']:.2f} / {figures['interim commits']:.2f}",
        ),
    ]
    if figures["interim loop callbacks"]:  # QRUNTIME_BENCH_LOOP=1: the loop's work counted
        found.append(
            Row(
                "loop work per interim result",
                f"{label}: event-loop callbacks / thread-to-loop hand-offs "
                "(QRUNTIME_BENCH_LOOP=1: its CPU figures carry the counting's own cost)",
                f"{figures['interim loop callbacks']:.2f} / "
                f"{figures['interim thread hand-offs']:.2f}",
            )
        )
    return found


def rows_for(server: BenchServer, label: str, jobs: int, interims: int) -> list[Row]:
    """The rows of a server started with ``bench_server(counting=True)``."""
    return rows(label, measure(server, jobs, interims), jobs, interims)


def postgres_rows(jobs: int, interims: int) -> list[Row]:
    """The rows of a server of its own on a fresh PostgreSQL database."""
    with fresh_postgres() as url, bench_server(counting=True, database_url=url) as server:
        return rows_for(server, "PostgreSQL", jobs, interims)


if __name__ == "__main__":
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    interims = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    with bench_server(counting=True) as server:
        found = rows_for(server, "SQLite", jobs, interims)
    for row in found + postgres_rows(jobs, interims):
        print(f"| {row.benchmark} | {row.measure} | {row.value} | {row.target} |")
