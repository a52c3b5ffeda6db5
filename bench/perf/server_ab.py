"""Two servers up at once, one running old code and one new, trivial jobs alternating between
them one by one: an end-to-end A/B that a loaded, shared machine cannot skew as much as runs
taken in turn (both sides see the same moments). Each side runs as another virtual
environment installs it, so worker- and zygote-side code differs too.

.venv/bin/python bench/perf/server_ab.py 100 /path/to/old/.venv [.venv] [postgres]

Per side: end to end p50 / p95, the p50 of each stage (stages.py's, from the side's own
database) and the server process's CPU per job (its event loop's thread and the rest), on
SQLite or each side on a fresh PostgreSQL database.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field

from common import metadata, percentile
from server import BenchServer, bench_server, wait_for_warm_pool
from stages import STAGES, STAMP_PROGRAM, _stamp
from statements import fresh_postgres

from qruntime.client import RuntimeService

_TIMES = "SELECT id, created_at, started_at, ended_at FROM jobs"
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(stat_path: str) -> float:
    """User plus system seconds from a /proc stat file (a process's or one thread's)."""
    with open(stat_path) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def server_cpu(pid: int) -> tuple[float, float]:
    """The server's CPU seconds: all its threads (the exited ones too), its main (loop) thread."""
    return cpu_seconds(f"/proc/{pid}/stat"), cpu_seconds(f"/proc/{pid}/task/{pid}/stat")


@dataclass
class Side:
    name: str
    server: BenchServer
    database_url: str | None
    service: RuntimeService
    program: str
    #: Per job: its id, the SDK's clock before ``run``, its first line's clock, result in hand.
    marks: list[tuple[str, float, float, float]] = field(default_factory=list)
    #: The server's (all threads, loop thread) CPU seconds after the warm-up and at the end.
    cpu: list[tuple[float, float]] = field(default_factory=list)

    def run_one(self) -> None:
        wait_for_warm_pool(self.server, 2)
        started = time.time()
        job = self.service.run(self.program, {}, options={"backend_name": "aer_simulator"})
        first_line = job.result(timeout=60)
        self.marks.append((job.job_id(), started, first_line, time.time()))

    def stored_times(self) -> dict[str, tuple[float, float, float]]:
        if self.database_url is None:
            database = sqlite3.connect(self.server.directory / "data" / "qruntime.db")
            try:
                rows = [tuple(map(str, row)) for row in database.execute(_TIMES)]
            finally:
                database.close()
        else:
            from sqlalchemy import create_engine, text

            engine = create_engine(self.database_url)
            with engine.connect() as connection:
                rows = [tuple(map(str, row)) for row in connection.execute(text(_TIMES))]
            engine.dispose()
        return {row[0]: (_stamp(row[1]), _stamp(row[2]), _stamp(row[3])) for row in rows}

    def report(self, warm_up: int) -> list[str]:
        stored = self.stored_times()
        spans: list[list[float]] = [[] for _ in STAGES]
        totals = []
        for job_id, started, first_line, done in self.marks[warm_up:]:
            created, running, ended = stored[job_id]
            steps = (created - started, running - created, first_line - running)
            for span, value in zip(spans, (*steps, ended - first_line, done - ended), strict=True):
                span.append(value * 1000)
            totals.append((done - started) * 1000)
        lines = [
            f"{self.name}: end to end p50 {percentile(totals, 50):.2f} ms, "
            f"p95 {percentile(totals, 95):.2f} ms ({len(totals)} jobs)"
        ]
        if len(self.cpu) == 2:
            (total0, loop0), (total1, loop1) = self.cpu
            loop, rest = (loop1 - loop0) * 1000, (total1 - total0 - loop1 + loop0) * 1000
            jobs = len(totals)
            lines.append(
                f"  server CPU per job {(loop + rest) / jobs:.2f} ms: "
                f"loop {loop / jobs:.2f} ms, other threads {rest / jobs:.2f} ms"
            )
        for (label, _), span in zip(STAGES, spans, strict=True):
            lines.append(f"  {percentile(span, 50):6.2f} ms  {label}")
        return lines


def main(count: int, old: str, new: str, postgres: bool) -> None:
    warm_up = 2
    with ExitStack() as stack:
        sides = []
        for name, venv in (("old", old), ("new", new)):
            url = stack.enter_context(fresh_postgres()) if postgres else None
            python = os.path.join(venv, "bin", "python")
            server = stack.enter_context(bench_server(database_url=url, python=python))
            service = RuntimeService(url=server.url, token=server.token)
            program = service.upload_program(STAMP_PROGRAM, metadata("server-ab"))
            sides.append(Side(name, server, url, service, program))
        load = [os.getloadavg()[0]]
        for n in range(count + warm_up):
            if n == warm_up:
                for side in sides:
                    side.cpu.append(server_cpu(side.server.pid))
            for side in sides if n % 2 == 0 else sides[::-1]:  # who goes first alternates too
                side.run_one()
        for side in sides:
            side.cpu.append(server_cpu(side.server.pid))
        load.append(os.getloadavg()[0])
        print(f"{'PostgreSQL' if postgres else 'SQLite'}, load {load[0]:.1f} -> {load[1]:.1f}")
        for side in sides:
            print("\n".join(side.report(warm_up)), flush=True)


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if a != "postgres"]
    if len(arguments) not in (2, 3):
        sys.exit(__doc__)
    main(
        int(arguments[0]),
        arguments[1],
        arguments[2] if len(arguments) == 3 else ".venv",
        "postgres" in sys.argv[1:],
    )
