"""What the replicas' shared statements cost PostgreSQL: a claim with nothing queued, a claim
among thousands of queued jobs, and commits that carry a NOTIFY with 0 and with 50 listeners.

    .venv/bin/python bench/db_costs.py [--postgres-url URL] [--json]

Runs on a fresh database (``qrt_bench_<random>``, dropped at the end) with the project's own
storage code (``claim_jobs``, ``Signals``), so the figures are those of the real statements.
These are the inputs of the capacity estimate in docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import psycopg
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from replicas import POSTGRES_URL, fresh_database

from qruntime.service.claims import claim_jobs
from qruntime.service.fair_share import FairShare
from qruntime.storage import Database, JobRepository, UserRepository
from qruntime.storage.signals import CHANNEL, Signals


def timed(work, repeat: int) -> dict[str, float]:
    """Median and p95 of ``work()`` in milliseconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(1000 * (time.perf_counter() - started))
    times.sort()
    return {
        "p50 ms": round(statistics.median(times), 2),
        "p95 ms": round(times[int(0.95 * (len(times) - 1))], 2),
    }


def claim(db: Database, share: FairShare) -> int:
    with db.session() as session:
        return len(
            claim_jobs(
                session,
                replica_id="r-bench",
                slots=2,
                lease_seconds=30,
                fair_share=share,
                signals=Signals("r-bench"),
            )
        )


def queue(db: Database, users: int, per_user: int) -> None:
    with db.session() as session:
        owners = [UserRepository(session).create(f"u{i}", "user") for i in range(users)]
        jobs = JobRepository(session)
        for n in range(per_user):
            for owner in owners:
                jobs.add(
                    id=f"j-{owner.id}-{n}",
                    program_id="p",
                    program_name="p",
                    owner_id=owner.id,
                    backend="aer_simulator",
                    inputs="{}",
                    source="def main(backend, user_messenger):\n    pass\n",
                    max_execution_time=60.0,
                )


def notify_rate(db: Database, url: str, listeners: int, seconds: float = 5.0) -> dict[str, float]:
    """Commits/s of 4 writers, each commit an UPDATE plus one NOTIFY, with ``listeners``
    connections listening (each reading every notification, as a replica does)."""
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    stop = threading.Event()
    received = [0] * listeners

    def listen(i: int) -> None:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(f"LISTEN {CHANNEL}")
            while not stop.is_set():
                for _ in connection.notifies(timeout=0.2):
                    received[i] += 1

    listening = [threading.Thread(target=listen, args=(i,)) for i in range(listeners)]
    for thread in listening:
        thread.start()
    time.sleep(1.0)
    commits = [0] * 4

    def write(i: int) -> None:
        signals = Signals(f"w{i}")
        while not stop.is_set():
            with db.session() as session:
                session.execute(
                    text("UPDATE jobs SET interim_count = interim_count WHERE id = :id"),
                    {"id": f"j-{i + 1}-0"},
                )
                signals.interims(session, f"j-{i + 1}-0", 1)
            commits[i] += 1

    writers = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for thread in writers:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in writers + listening:
        thread.join()
    done = sum(commits)
    return {
        "commits/s": round(done / seconds),
        "deliveries/s": round(sum(received) / seconds) if listeners else 0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report: dict[str, object] = {}
    with fresh_database(args.postgres_url) as url:
        db = Database(url)
        db.migrate()
        share = FairShare()
        report["claim, nothing queued"] = timed(lambda: claim(db, share), 300)
        queue(db, users=100, per_user=30)
        report["claim of 2 among 3,000 queued jobs of 100 users"] = timed(
            lambda: claim(db, share), 300
        )
        report["NOTIFY commits, 0 listeners"] = notify_rate(db, url, 0)
        report["NOTIFY commits, 50 listeners"] = notify_rate(db, url, 50)
        db.dispose()
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
