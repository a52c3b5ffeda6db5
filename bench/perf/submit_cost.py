"""CPU that one ``JobService.submit`` costs in-process (no HTTP, no executor), on SQLite and
PostgreSQL: the median over rounds, since this shared machine's load moves single rounds.

    .venv/bin/python bench/perf/submit_cost.py [rounds] [submits per round] [--no-postgres]

To compare with other code, run it with that code first on ``PYTHONPATH`` (A/B, alternating).
"""

from __future__ import annotations

import base64
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import TRIVIAL_PROGRAM, Row
from statements import fresh_postgres

from qruntime.domain.users import Role
from qruntime.service.container import Services
from qruntime.service.principal import Principal
from qruntime.settings import Settings

#: A spec like the catalogue's: a JSON-Schema of the inputs, checked at every submit.
SPEC = {
    "parameters": {
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "properties": {"n": {"type": "integer", "description": "returned as it is"}},
    },
    "return_values": {"type": "integer"},
}


def submit_cpu_ms(database_url: str | None, rounds: int, per_round: int) -> float:
    """Median CPU milliseconds per submit of a trivial job, with a parameters spec."""
    settings = Settings(
        data_dir=Path(tempfile.mkdtemp(prefix="qruntime-bench-submit-")),
        database_url=database_url,
        worker_pool_size=0,
        max_queued_jobs_per_user=10**9,
    )
    services = Services.build(settings)
    try:
        services.db.migrate()
        issued = services.users.create_user(None, "bench", Role.USER)
        caller = Principal(issued.user.id, issued.user.name, Role.USER)
        source = base64.b64encode(TRIVIAL_PROGRAM.encode()).decode()
        metadata = {"name": "submit", "description": "x", "max_execution_time": 60, "spec": SPEC}
        program = services.programs.upload(caller, data=source, metadata=metadata)

        def submit(count: int) -> None:
            for n in range(count):
                services.jobs.submit(
                    caller, program_id=program.id, backend="aer_simulator", inputs={"n": n}
                )

        submit(20)  # warm: imports, statement caches, the pool
        figures = []
        for _ in range(rounds):
            started = time.process_time()
            submit(per_round)
            figures.append((time.process_time() - started) * 1000 / per_round)
        return statistics.median(figures)
    finally:
        services.db.dispose()


def rows(rounds: int, per_round: int, *, postgres: bool = True) -> list[Row]:
    """The table's rows: SQLite, and a fresh PostgreSQL database unless ``postgres`` is off."""
    found = [("SQLite", submit_cpu_ms(None, rounds, per_round))]
    if postgres:
        with fresh_postgres() as url:
            found.append(("PostgreSQL", submit_cpu_ms(url, rounds, per_round)))
    what = f"{{}}: one JobService.submit in-process (no HTTP), median of {rounds} x {per_round}"
    return [Row("CPU per submit", what.format(label), f"{ms:.2f} ms") for label, ms in found]


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if not a.startswith("--")]
    rounds = int(arguments[0]) if arguments else 7
    per_round = int(arguments[1]) if len(arguments) > 1 else 100
    for row in rows(rounds, per_round, postgres="--no-postgres" not in sys.argv):
        print(f"| {row.benchmark} | {row.measure} | {row.value} |")
