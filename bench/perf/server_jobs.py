"""Through a real server and the SDK: job start from POST /jobs, trivial job end to end, and
throughput with 1, 4 and 16 concurrent clients (every result checked: nothing lost)."""

from __future__ import annotations

import threading
import time

from common import FIRST_LINE_PROGRAM, TRIVIAL_PROGRAM, Row, metadata, p50_p95
from server import BenchServer, wait_for_warm_pool

from qruntime.client import RuntimeService


def upload(service: RuntimeService, name: str, source: str) -> str:
    return service.upload_program(source, metadata(name))


def accepted_to_first_line(server: BenchServer, count: int) -> list[float]:
    """Client sends POST /jobs -> the program's first line runs (server, scheduler, executor)."""
    service = RuntimeService(url=server.url, token=server.token)
    program = upload(service, "first-line", FIRST_LINE_PROGRAM)
    latencies = []
    for _ in range(count + 2):
        wait_for_warm_pool(server, 2)
        sent = time.time()
        job = service.run(program, {}, options={"backend_name": "aer_simulator"})
        job.result(timeout=120)
        latencies.append(job.interim_results()[0] - sent)
    return latencies[2:]


def end_to_end(server: BenchServer, count: int) -> list[float]:
    """``service.run(...)`` -> ``job.result()`` in hand, one job at a time."""
    service = RuntimeService(url=server.url, token=server.token)
    program = upload(service, "trivial", TRIVIAL_PROGRAM)
    latencies = []
    for n in range(count + 2):
        wait_for_warm_pool(server, 2)
        started = time.perf_counter()
        result = service.run(program, {"n": n}, options={"backend_name": "aer_simulator"}).result(
            timeout=120
        )
        latencies.append(time.perf_counter() - started)
        if result != n:
            raise RuntimeError(f"job {n} returned {result!r}")
    return latencies[2:]


def throughput(
    servers: BenchServer | list[BenchServer], clients: int, jobs_per_client: int
) -> tuple[float, int]:
    """Trivial jobs per second from ``clients`` threads, each submitting and waiting in turn;
    with several replicas (one database), client ``i`` uses replica ``i % len(servers)``."""
    servers = servers if isinstance(servers, list) else [servers]
    token = servers[0].token
    setup = RuntimeService(url=servers[0].url, token=token)
    program = upload(setup, f"throughput-{clients}", TRIVIAL_PROGRAM)
    for server in servers:
        wait_for_warm_pool(server, 2)
    results: dict[int, object] = {}
    errors: list[str] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        service = RuntimeService(url=servers[index % len(servers)].url, token=token)
        for k in range(jobs_per_client):
            n = index * jobs_per_client + k
            try:
                value = service.run(
                    program, {"n": n}, options={"backend_name": "aer_simulator"}
                ).result(timeout=300)
            except Exception as exc:  # counted: a lost job fails the benchmark
                with lock:
                    errors.append(f"{n}: {exc}")
                continue
            with lock:
                results[n] = value

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    total = clients * jobs_per_client
    wrong = [n for n in range(total) if results.get(n) != n]
    if errors or wrong:
        raise RuntimeError(f"{len(errors)} failed, {len(wrong)} missing or wrong: {errors[:3]}")
    return total / elapsed, total


def latency_rows(
    server: BenchServer, *, starts: int = 200, e2e: int = 100, label: str = ""
) -> list[Row]:
    prefix = f"{label}: " if label else ""
    e2e_latencies = end_to_end(server, e2e)
    e2e_row = Row(
        "trivial job end to end",
        f"{prefix}SDK run -> result, {len(e2e_latencies)} jobs",
        p50_p95(e2e_latencies),
        "p50 ≤ 10 ms",
    )
    if not starts:
        return [e2e_row]
    start = accepted_to_first_line(server, starts)
    start_row = Row(
        "job start (server)",
        f"{prefix}POST /jobs sent -> first line, {len(start)} jobs",
        p50_p95(start),
    )
    return [start_row, e2e_row]


def throughput_rows(
    server: BenchServer,
    *,
    jobs_per_client: int = 25,
    clients: tuple[int, ...] = (1, 4, 16),
    label: str = "",
) -> list[Row]:
    prefix = f"{label}: " if label else ""
    rows = []
    for count in clients:
        per_client = jobs_per_client * (4 if count == 1 else 1)
        rate, total = throughput(server, count, per_client)
        rows.append(
            Row(
                "throughput",
                f"{prefix}{count} client(s), {total} trivial jobs, all results checked",
                f"{rate:.1f} jobs/s",
                "≥ 100 jobs/s",
            )
        )
    return rows
