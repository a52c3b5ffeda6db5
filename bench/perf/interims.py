"""Interim results from one job: messages per second, and publish -> client callback latency,
with every message persisted by the server before it is streamed."""

from __future__ import annotations

import threading
import time

from common import FLOOD_PROGRAM, Row, metadata, p50_p95
from server import BenchServer, wait_for_warm_pool

from qruntime.client import RuntimeService


def _stream(
    service: RuntimeService, program: str, count: int, interval: float
) -> list[tuple[int, float, float]]:
    """(index, published at, callback at) for each interim result, checked complete and in order."""
    arrivals: list[tuple[int, float, float]] = []
    done = threading.Event()

    def callback(job_id: str, value: list) -> None:
        arrivals.append((value[0], value[1], time.time()))
        if len(arrivals) == count:
            done.set()

    inputs = {"count": count, "interval": interval}
    options = {"backend_name": "aer_simulator"}
    job = service.run(program, inputs, options=options, callback=callback)
    if job.result(timeout=600) != count or not done.wait(120):
        raise RuntimeError(f"{len(arrivals)} of {count} interim results reached the callback")
    if [a[0] for a in arrivals] != list(range(count)):
        raise RuntimeError("interim results arrived out of order or twice")
    return arrivals


def run(server: BenchServer, count: int = 5000, paced: int = 500) -> list[Row]:
    service = RuntimeService(url=server.url, token=server.token)
    program = service.upload_program(FLOOD_PROGRAM, metadata("interim-flood"))
    wait_for_warm_pool(server, 2)
    flood = _stream(service, program, count, 0.0)
    span = flood[-1][2] - flood[0][1]
    flood_latency = [received - published for _, published, received in flood]
    wait_for_warm_pool(server, 2)
    paced_run = _stream(service, program, paced, 0.01)
    paced_latency = [received - published for _, published, received in paced_run]
    return [
        Row(
            "interim results",
            f"one job publishing {count} as fast as it can; persisted; to an SDK callback",
            f"{count / span:.0f} msg/s",
            "≥ 5,000 msg/s",
        ),
        Row(
            "interim results",
            f"publish -> callback latency, {paced} published 10 ms apart",
            p50_p95(paced_latency),
            "p50 ≤ 5 ms",
        ),
        Row(
            "interim results",
            "publish -> callback latency during the flood above (queueing included)",
            p50_p95(flood_latency),
        ),
    ]
