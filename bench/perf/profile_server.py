"""Profile the server with py-spy while it runs a workload; print where its time goes.

    .venv-bench/bin/python bench/perf/profile_server.py trivial 200   # 200 trivial jobs
    .venv-bench/bin/python bench/perf/profile_server.py vqe 3         # 3 VQE-style loops

Samples only the thread holding the GIL (``--gil``), so the figures are the server's Python
work; per-thread CPU seconds (from /proc) come first, which also count C and the kernel.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import TRIVIAL_PROGRAM, metadata
from cpu_budget import thread_cpu
from overhead import VQE_LOOP
from server import bench_server, wait_for_warm_pool

from qruntime.client import RuntimeService


def summarise(raw: Path, top: int) -> None:
    """Self and inclusive shares of the sampled frames (py-spy's raw format: stack count)."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames, n = stack.split(";"), int(count)
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    print(f"{total} samples holding the GIL")
    for title, counter in (("self", own), ("inclusive", inclusive)):
        print(f"--- {title}")
        for frame, n in counter.most_common(top):
            print(f"{n / total:6.1%} {frame[:140]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=("trivial", "vqe"))
    parser.add_argument("count", type=int)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    source, inputs = (TRIVIAL_PROGRAM, {}) if args.workload == "trivial" else (VQE_LOOP, {})
    raw = Path(tempfile.mkdtemp()) / "server.raw"
    with bench_server() as server:
        service = RuntimeService(url=server.url, token=server.token)
        program = service.upload_program(source, metadata(f"profile-{args.workload}"))
        wait_for_warm_pool(server, 2)
        before = thread_cpu(server.pid)
        record = ["record", "-p", str(server.pid), "--gil", "--threads", "--rate", "500"]
        spy = subprocess.Popen(
            [py_spy, *record, "--format", "raw", "-o", str(raw)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.5)  # py-spy attaches
        for _ in range(args.count):
            service.run(program, inputs, options={"backend_name": "aer_simulator"}).result(600)
            wait_for_warm_pool(server, 2)
        spy.send_signal(2)
        spy.wait()
        after = thread_cpu(server.pid)
    print(f"server CPU ms per job, by thread ({server.pid} runs the event loop):")
    for tid, seconds in after.items():
        spent = (seconds - before.get(tid, 0.0)) * 1000 / args.count
        if spent:
            print(f"  {tid}: {spent:.1f}")
    summarise(raw, args.top)


if __name__ == "__main__":
    main()
