"""Where a trivial job's end-to-end time goes, stage by stage: the SDK's own clock at both
ends, and in between the times the server stored in its database (microseconds, same clock)."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime

from common import Row, metadata, percentile
from server import BenchServer, wait_for_warm_pool

from qruntime.client import RuntimeService

#: Returns when its first line ran, so that no interim result adds work of its own.
STAMP_PROGRAM = """\
import time


def main(backend, user_messenger, **kwargs):
    return time.time()
"""

STAGES = (
    ("SDK run() -> job stored (POST, token, checks, insert)", "submitted"),
    ("stored -> claimed by the scheduler (RUNNING)", "claimed"),
    ("claimed -> program's first line (a warm worker takes the job)", "first_line"),
    ("first line -> outcome stored (worker ends, kill and uid sweep, record)", "stored"),
    ("outcome stored -> result in the SDK (wake, stream read, final event)", "delivered"),
)


def _stamp(text: str) -> float:
    """A stored UTC timestamp (naive or with offset) as seconds since the epoch."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def run(server: BenchServer, count: int) -> list[Row]:
    service = RuntimeService(url=server.url, token=server.token)
    program = service.upload_program(STAMP_PROGRAM, metadata("stages"))
    marks: list[tuple[str, float, float, float]] = []
    for _ in range(count + 2):
        wait_for_warm_pool(server, 2)
        started = time.time()
        job = service.run(program, {}, options={"backend_name": "aer_simulator"})
        first_line = job.result(timeout=60)
        marks.append((job.job_id(), started, first_line, time.time()))
    marks = marks[2:]
    database = sqlite3.connect(server.directory / "data" / "qruntime.db")
    try:
        stored = {
            job_id: (_stamp(created), _stamp(running), _stamp(ended))
            for job_id, created, running, ended in database.execute(
                "SELECT id, created_at, started_at, ended_at FROM jobs"
            )
        }
    finally:
        database.close()
    spans: dict[str, list[float]] = {key: [] for _, key in STAGES}
    totals = []
    for job_id, started, first_line, done in marks:
        created, running, ended = stored[job_id]
        spans["submitted"].append(created - started)
        spans["claimed"].append(running - created)
        spans["first_line"].append(first_line - running)
        spans["stored"].append(ended - first_line)
        spans["delivered"].append(done - ended)
        totals.append(done - started)
    rows = [
        Row("end to end, by stage", f"{label}, p50", f"{percentile(spans[key], 50) * 1000:.1f} ms")
        for label, key in STAGES
    ]
    rows.append(
        Row(
            "end to end, by stage",
            f"all stages, {count} jobs, p50",
            f"{percentile(totals, 50) * 1000:.1f} ms",
        )
    )
    return rows
