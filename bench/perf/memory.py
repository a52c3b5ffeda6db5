"""Unique memory (USS): an idle warm worker, the zygote, and the server at rest and under load."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psutil
from common import Row
from server import BenchServer, wait_for_warm_pool, zygote_pid

MiB = 1024 * 1024


def uss(pid: int) -> int:
    return psutil.Process(pid).memory_full_info().uss


def at_rest(server: BenchServer) -> list[Row]:
    workers = wait_for_warm_pool(server, 2)
    worker_uss = max(uss(pid) for pid in workers)
    zygote = zygote_pid(server)
    rows = [Row("memory (USS)", "idle warm worker", f"{worker_uss / MiB:.1f} MiB", "≤ 30 MB")]
    if zygote is not None:
        rows.append(
            Row(
                "memory (USS)",
                "zygote (imports shared with its workers)",
                f"{uss(zygote) / MiB:.1f} MiB",
            )
        )
    rows.append(Row("memory (USS)", "server at rest", f"{uss(server.pid) / MiB:.1f} MiB"))
    return rows


@contextmanager
def peak_under_load(server: BenchServer, rows: list[Row]) -> Iterator[None]:
    """Sample the server's USS while the body runs; append the peak to ``rows``."""
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], uss(server.pid))
            stop.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield
    finally:
        stop.set()
        sampler.join()
    rows.append(
        Row(
            "memory (USS)",
            "server under load (peak during the throughput runs)",
            f"{peak[0] / MiB:.1f} MiB",
        )
    )
