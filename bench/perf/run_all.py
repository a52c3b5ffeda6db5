"""Run every benchmark and write the table to docs/performance.md (between its markers).

bench/run                 # full run: the numbers in docs/performance.md
bench/run --quick         # a few jobs of each, for the test suite's smoke run
bench/run --no-write      # print the table only
bench/run --verbose       # say on stderr what runs (the output is otherwise the table alone)
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import cpu_budget
import interims
import memory
import overhead
import replicas_host
import request_cost
import server_jobs
import stages
import start_latency
import statements
import submit_cost
from common import Row, p50_p95, percentile
from server import bench_server
from statements import fresh_postgres

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def measure(quick: bool, ray: bool, log, *, postgres: bool = True) -> list[Row]:
    n = (lambda full, small: small) if quick else (lambda full, small: full)
    rows: list[Row] = []
    log("job start latency: warm pool and fresh process (executor)")
    start_rows, raw = start_latency.run(n(200, 5), n(20, 1))
    rows += start_rows
    if ray:
        from common import FIRST_LINE_PROGRAM
        from ray_baseline import measure_ray_job_start

        log("job start latency: Ray job submission API (baseline b)")
        ray_latencies = measure_ray_job_start(FIRST_LINE_PROGRAM, n(50, 3), log=log)
        rows.append(
            Row(
                "job start",
                f"Ray job API on a local Ray cluster, {len(ray_latencies)} jobs",
                p50_p95(ray_latencies),
                "",
                "baseline (b)",
            )
        )
        ratio = percentile(ray_latencies, 50) / percentile(raw["pooled"], 50)
        rows.append(Row("job start", "Ray job API p50 / warm pool p50", f"{ratio:.0f}x", "≥ 100x"))
    with bench_server(counting=True) as server:  # counting: one lock and a += per statement
        log("memory at rest")
        rows += memory.at_rest(server)
        log("server: job start and end to end")
        rows += server_jobs.latency_rows(server, starts=n(200, 3), e2e=n(100, 3))
        log("server: end to end, stage by stage")
        rows += stages.run(server, count=n(100, 3))
        log("server: CPU per trivial job")
        rows += cpu_budget.run(server, count=n(100, 3))
        log("server: throughput with 1, 4 and 16 clients")
        with memory.peak_under_load(server, rows):
            rows += server_jobs.throughput_rows(server, jobs_per_client=n(25, 1))
        log("interim results")
        rows += interims.run(server, count=n(5000, 200), paced=n(500, 20))
        log("in-program overhead")
        rows += overhead.run(server, repeats=n(9, 1), scale=n(1.0, 0.05))
        log("statements and server CPU per job and per interim result: SQLite")
        rows += statements.rows_for(server, "SQLite", n(100, 3), n(2000, 50))
    if postgres:  # an unreachable PostgreSQL fails the run (--no-postgres leaves it out)
        log("PostgreSQL: end to end, CPU per trivial job, throughput, statements")
        with fresh_postgres() as url, bench_server(counting=True, database_url=url) as server:
            label = "PostgreSQL"
            rows += server_jobs.latency_rows(server, starts=0, e2e=n(100, 3), label=label)
            rows += cpu_budget.run(server, count=n(100, 3), label=label)
            rows += server_jobs.throughput_rows(
                server, jobs_per_client=n(25, 1), clients=(16,), label=label
            )
            rows += statements.rows_for(server, label, n(100, 3), n(2000, 50))
        log("PostgreSQL: 1 and 2 replicas on one host")
        rows += replicas_host.rows(clients=16, jobs_per_client=n(25, 1))
    log("CPU of one submit in-process")
    rows += submit_cost.rows(n(7, 1), n(100, 5), postgres=postgres)
    log("CPU of POST /jobs and the stream in-process, thin endpoints and FastAPI's routes")
    rows += request_cost.rows(n(5, 1), n(200, 5), postgres=postgres)
    return rows


def table(rows: list[Row]) -> str:
    lines = ["| benchmark | what | measured | target | against |", "|---|---|---|---|---|"]
    lines += [
        f"| {r.benchmark} | {r.measure} | {r.value} | {r.target} | {r.baseline} |" for r in rows
    ]
    return "\n".join(lines)


def section(rows: list[Row], command: str, seconds: float) -> str:
    machine = (
        f"{platform.machine()}, {os.cpu_count()} CPUs, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )
    date = datetime.date.today().isoformat()
    return "\n".join(
        [
            BEGIN,
            f"Measured {date} on {machine}, in {seconds:.0f} s, by `{command}`.",
            "",
            table(rows),
            END,
        ]
    )


def write(doc: Path, text: str) -> None:
    current = doc.read_text() if doc.exists() else f"# Performance\n\n{BEGIN}\n{END}\n"
    before, _, rest = current.partition(BEGIN)
    _, _, after = rest.partition(END)
    doc.write_text(before + text + after)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few jobs of each (smoke run)")
    parser.add_argument("--no-ray", action="store_true", help="leave out the Ray baseline")
    parser.add_argument("--no-postgres", action="store_true", help="leave out the PostgreSQL rows")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--verbose", action="store_true", help="say on stderr what runs")
    parser.add_argument("--doc", type=Path, default=DOC)
    args = parser.parse_args(argv)
    ray = not args.no_ray
    if ray:
        from ray_baseline import ray_available

        if not ray_available():
            parser.error("Ray is not installed here: use bench/run (it installs it), or --no-ray")
    started = time.perf_counter()
    rows = measure(
        args.quick,
        ray,
        (lambda text: print(f"[bench] {text}", file=sys.stderr, flush=True))
        if args.verbose
        else (lambda text: None),
        postgres=not args.no_postgres,
    )
    command = "bench/run " + " ".join(argv if argv is not None else sys.argv[1:])
    text = section(rows, command.strip(), time.perf_counter() - started)
    print(text)
    if not args.no_write:
        write(args.doc, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
