"""``bench/perf/run_all.py --quick``: every benchmark runs a few jobs and lands in the table.

Asserts that each row is there with a measured value, never what the value is: timings are
for docs/performance.md, not for the test suite. The Ray baseline needs the benchmark
environment (``bench/run`` installs Ray); this run leaves it out with ``--no-ray``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

RUN_ALL = Path(__file__).resolve().parents[2] / "bench" / "perf" / "run_all.py"
EXPECTED = {
    "job start (executor)": 3,
    "memory (USS)": 4,
    "job start (server)": 1,
    "trivial job end to end": 2,  # SQLite, PostgreSQL
    "end to end, by stage": 6,
    "CPU per trivial job": 8,  # all processes, its kernel share, the server alone; both DBs
    "throughput": 4,  # 1, 4, 16 clients on SQLite; 16 on PostgreSQL
    "interim results": 3,
    "in-program overhead": 4,
    "statements per job": 2,  # SQLite, PostgreSQL (the test server's; unreachable fails)
    "CPU per interim result": 2,
    "statements per interim result": 2,
    "CPU per submit": 2,  # in-process, SQLite and PostgreSQL
    "CPU per submit + stream": 2,  # the two requests of a job in-process (request_cost.py)
    "replicas on one host": 2,  # 1 and 2 replicas on one PostgreSQL, 16 clients
}


def test_every_benchmark_runs_and_writes_its_rows(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    markers = "<!-- bench:begin -->\nold\n<!-- bench:end -->"
    doc.write_text(f"# Performance\n\nkept above\n\n{markers}\n\nkept below\n")
    done = subprocess.run(
        [sys.executable, str(RUN_ALL), "--quick", "--no-ray", "--doc", str(doc)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr == "", done.stderr[-3000:]  # quiet: the table on stdout, no logs
    text = doc.read_text()
    assert "kept above" in text and "kept below" in text and "\nold\n" not in text
    assert "by `bench/run --quick --no-ray" in text
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| ")][1:]
    counts: dict[str, int] = {}
    for benchmark, _what, measured, _target, _against in rows:
        counts[benchmark.strip()] = counts.get(benchmark.strip(), 0) + 1
        assert re.search(r"\d", measured), f"no number measured for {benchmark}: {measured!r}"
        assert "nan" not in measured
    assert counts == EXPECTED
