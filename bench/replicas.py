"""Capacity of replicas on one PostgreSQL database: jobs/s and stream latency with 1 and 2
replicas, and the database writes each job and each interim result costs.

    .venv/bin/python bench/replicas.py [--jobs 200] [--clients 8] [--interims 200]
                                       [--postgres-url URL] [--json]

For each replica count it creates a fresh database (``qrt_bench_<random>``, dropped at the end)
on ``--postgres-url`` (default ``$QRUNTIME_TEST_POSTGRES_URL`` or the test server), starts that
many ``qruntime serve --database-url ...`` processes (own data directory and port each,
``--max-concurrent-jobs 2``), and measures:

- **throughput**: ``--clients`` threads submit ``--jobs`` trivial jobs in all, each to replica
  ``i % R`` and waits for its result on the stream of replica ``(i + 1) % R`` (another one when
  there are two); every result is checked;
- **stream latency**: one job publishes ``--interims`` results 10 ms apart, each stamped with
  its publish time; an SDK callback on the replica it was submitted to and, with two replicas,
  one on the other replica record when each arrives (one machine, one clock);
- **database writes**: rows inserted/updated/deleted per table (``pg_stat_user_tables``) and
  transactions committed (``pg_stat_database.xact_commit``, read-only ones included) over each
  phase, read after every backend has flushed its counters (PostgreSQL does so within 10 s of
  going idle; the script waits 11 s). Heartbeats write during the phases too; an idle phase
  measures them alone.

Prints a table (or one JSON object with ``--json``); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from qruntime import RuntimeService

POSTGRES_URL = os.environ.get(
    "QRUNTIME_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SLOTS = 2
START_TIMEOUT = 120.0
#: PostgreSQL backends flush their statistics at most 10 s after they go idle.
STATS_FLUSH_SECONDS = 11.0
IDLE_SECONDS = 20.0

TRIVIAL = "def main(backend, user_messenger, n=0):\n    return n\n"
STAMPED = """\
import time


def main(backend, user_messenger, count=100, interval=0.01):
    for i in range(count):
        user_messenger.publish([i, time.time()])
        time.sleep(interval)
    return count
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def metadata(name: str) -> dict[str, Any]:
    return {"name": name, "description": f"replica benchmark: {name}", "max_execution_time": 600}


# --- a fresh database and replicas on it ---------------------------------------------------------


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    name = f"qrt_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@dataclass
class Replica:
    url: str
    process: subprocess.Popen[bytes]
    data_dir: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def replica(database_url: str, base: Path) -> Iterator[Replica]:
    port = _free_port()
    command = [str(Path(sys.executable).with_name("qruntime")), "serve", "--port", str(port)]
    command += ["--data-dir", str(base / "data"), "--database-url", database_url]
    command += ["--max-concurrent-jobs", str(SLOTS), "--log-level", "warning"]
    env = {k: v for k, v in os.environ.items() if k not in ("QRUNTIME_URL", "QRUNTIME_TOKEN")}
    env |= {
        "QRUNTIME_ACCOUNTS_FILE": str(base / "accounts.json"),
        "QRUNTIME_SAVE_ADMIN_ACCOUNT": "false",
    }
    base.mkdir(parents=True, exist_ok=True)
    with (base / "server.log").open("wb") as server_log:
        process = subprocess.Popen(
            command, stdout=server_log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((base / "server.log").read_text()[-3000:])
            time.sleep(0.1)
        yield Replica(url, process, base / "data")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


# --- database counters ---------------------------------------------------------------------------


def counters(database_url: str) -> dict[str, float]:
    """Row writes per table and committed transactions so far, after the backends flushed;
    ``at`` is when they were read (monotonic seconds)."""
    time.sleep(STATS_FLUSH_SECONDS)
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables")
            ).all()
            commits = connection.execute(
                text("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
            ).scalar_one()
    finally:
        engine.dispose()
    found: dict[str, float] = {"transactions": int(commits), "at": time.monotonic()}
    for table, inserted, updated, deleted in rows:
        found[f"{table} inserts"] = int(inserted)
        found[f"{table} updates"] = int(updated)
        found[f"{table} deletes"] = int(deleted)
    return found


def per(after: dict[str, float], before: dict[str, float], count: float) -> dict[str, float]:
    changed = {k: after.get(k, 0) - before.get(k, 0) for k in after if k != "at"}
    return {k: round(v / count, 2) for k, v in sorted(changed.items()) if v}


# --- the phases ----------------------------------------------------------------------------------


def throughput(services: list[RuntimeService], program: str, jobs: int, clients: int) -> float:
    count = len(services)

    def one(n: int) -> None:
        job = services[n % count].run(program, {"n": n}, options={"backend_name": "aer_simulator"})
        result = services[(n + 1) % count].job(job.job_id()).result(timeout=600)
        if result != n:
            raise RuntimeError(f"job {job.job_id()} returned {result!r}, not {n}")

    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(jobs)))
    return jobs / (time.monotonic() - started)


def stream_latency(services: list[RuntimeService], program: str, count: int) -> dict[str, float]:
    """Milliseconds from publish to callback: p50/p95 on the same and on the other replica."""
    inputs = {"count": count, "interval": 0.01}
    job = services[0].run(program, inputs, options={"backend_name": "aer_simulator"})
    readers = {"same replica": job}
    if len(services) > 1:
        readers["other replica"] = services[1].job(job.job_id())
    arrivals: dict[str, list[float]] = {name: [] for name in readers}
    complete = {name: threading.Event() for name in readers}
    for name, reader in readers.items():

        def callback(job_id: str, value: list, name: str = name) -> None:
            arrivals[name].append(time.time() - value[1])
            if len(arrivals[name]) == count:
                complete[name].set()

        reader.stream_results(callback)
    if job.result(timeout=600) != count:
        raise RuntimeError("the stamped job did not finish")
    figures = {}
    for name in readers:
        if not complete[name].wait(60):
            raise RuntimeError(f"{name}: {len(arrivals[name])} of {count} results arrived")
        late = sorted(1000 * a for a in arrivals[name][5:])  # the first few race the reader's start
        figures[f"{name} p50 ms"] = round(statistics.median(late), 1)
        figures[f"{name} p95 ms"] = round(late[int(0.95 * (len(late) - 1))], 1)
    return figures


def measure(replicas: int, args: argparse.Namespace) -> dict[str, Any]:
    log(f"{replicas} replica(s): starting")
    with fresh_database(args.postgres_url) as database_url, ExitStack() as stack:
        base = Path(tempfile.mkdtemp(prefix="qruntime-replicas-"))
        stack.callback(shutil.rmtree, base, ignore_errors=True)
        servers = [
            stack.enter_context(replica(database_url, base / f"r{i}")) for i in range(replicas)
        ]
        [token] = [
            (s.data_dir / "admin-token").read_text().strip()
            for s in servers
            if (s.data_dir / "admin-token").exists()
        ]
        services = [RuntimeService(url=s.url, token=token) for s in servers]
        trivial = services[0].upload_program(TRIVIAL, metadata("bench-trivial"))
        stamped = services[0].upload_program(STAMPED, metadata("bench-stamped"))
        throughput(services, trivial, 4 * replicas * SLOTS, args.clients)  # warm-up

        start = counters(database_url)
        time.sleep(IDLE_SECONDS)
        idle = counters(database_url)
        log(f"{replicas} replica(s): {args.jobs} trivial jobs from {args.clients} clients")
        rate = throughput(services, trivial, args.jobs, args.clients)
        after_jobs = counters(database_url)
        log(f"{replicas} replica(s): one job streaming {args.interims} interim results")
        latency = stream_latency(services, stamped, args.interims)
        after_stream = counters(database_url)
    return {
        "replicas": replicas,
        "jobs/s": round(rate, 1),
        **latency,
        "idle, per replica and second": per(idle, start, (idle["at"] - start["at"]) * replicas),
        "per trivial job (heartbeats included)": per(after_jobs, idle, args.jobs),
        "per interim result (streaming job, its start and end included)": per(
            after_stream, after_jobs, args.interims
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--interims", type=int, default=200)
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    machine = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load average at start": round(os.getloadavg()[0], 1),
    }
    runs = [measure(n, args) for n in (1, 2)]
    machine["load average at end"] = round(os.getloadavg()[0], 1)
    report = {"machine": machine, "runs": runs}
    if args.json:
        print(json.dumps(report))
        return 0
    print(json.dumps(machine))
    for run in runs:
        print(f"\n{run['replicas']} replica(s)")
        for key, value in run.items():
            if key != "replicas":
                print(f"  {key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
