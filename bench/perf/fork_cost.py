"""What one fork + exit of the zygote's image costs: wall time and CPU of the parent and child.

    .venv/bin/python bench/perf/fork_cost.py 200                # the zygote's preload, as is
    .venv/bin/python bench/perf/fork_cost.py 200 --collapse     # anonymous memory in huge pages
    .venv/bin/python bench/perf/fork_cost.py 200 --bare         # no preload: a bare Python
    .venv/bin/python bench/perf/fork_cost.py 200 --idle         # the child exits at once

The child touches every loaded module's dict (refcount writes, as a job does) and exits.
"""

from __future__ import annotations

import gc
import os
import resource
import sys
import time

from qruntime.execution.huge_pages import anonymous_ranges, collapse_heap


def collapse() -> tuple[int, int]:
    """The zygote's own collapse (execution/huge_pages.py); (bytes asked, bytes that failed)."""
    asked = sum(end - start for start, end in anonymous_ranges())
    return asked, max(0, asked - collapse_heap())


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def child_work() -> None:
    for module in list(sys.modules.values()):
        vars(module).get("__name__")


def measure(count: int, idle: bool = False) -> dict[str, float]:
    walls = []
    self_before = resource.getrusage(resource.RUSAGE_SELF)
    kids_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(count):
        started = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            if not idle:
                child_work()
            os._exit(0)
        os.waitpid(pid, 0)
        walls.append(time.perf_counter() - started)
    self_after = resource.getrusage(resource.RUSAGE_SELF)
    kids_after = resource.getrusage(resource.RUSAGE_CHILDREN)

    def cpu(a, b):
        return (a.ru_utime + a.ru_stime - b.ru_utime - b.ru_stime) * 1000 / count

    walls.sort()
    return {
        "wall p50 ms": walls[len(walls) // 2] * 1000,
        "parent cpu ms": cpu(self_after, self_before),
        "child cpu ms": cpu(kids_after, kids_before),
    }


def main(argv: list[str]) -> None:
    count = int(argv[1]) if len(argv) > 1 and argv[1].isdigit() else 100
    if "--bare" not in argv:
        from qruntime.execution.warm_pool import DEFAULT_PRELOAD
        from qruntime.execution.zygote import preload

        preload(list(DEFAULT_PRELOAD), gpu=False)
    gc.collect()
    gc.freeze()
    note = ""
    if "--collapse" in argv:
        asked, failed = collapse()
        note = f" collapse asked {asked >> 20} MiB, failed {failed >> 20} MiB"
    figures = measure(count, idle="--idle" in argv)
    text = ", ".join(f"{k} {v:.2f}" for k, v in figures.items())
    print(f"{' '.join(argv[2:]) or 'preload'}: rss {rss_mib():.0f} MiB, {text}{note}")


if __name__ == "__main__":
    main(sys.argv)
