"""CPU seconds per trivial job, by process (client, server and its threads, zygote, workers, and
the kernel's own threads): on 2 cores, jobs/s can be no higher than 2 s divided by the CPU that
one job costs.

The kernel threads' share is machine-wide (every kthread's CPU over the run): it holds work the
jobs cause outside their processes, above all each worker's network namespace, which the kernel
frees in a kworker (``cleanup_net``), and whatever else the machine does meanwhile."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from common import TRIVIAL_PROGRAM, Row, metadata
from server import BenchServer, wait_for_warm_pool, zygote_pid

from qruntime.client import RuntimeService

TICK = os.sysconf("SC_CLK_TCK")
POSTGRES = "PostgreSQL (its backends and WAL writer)"


@dataclass
class CpuSample:
    """CPU seconds so far: the client's own, and per process or thread of the server side."""

    client: float = 0.0
    server_threads: dict[str, float] = field(default_factory=dict)
    zygote: float = 0.0
    workers: float = 0.0  # reaped by the zygote
    kernel_threads: float = 0.0  # every kernel thread of the machine
    #: PostgreSQL's processes as the jobs use them (0 on SQLite): see :func:`postgres_cpu`.
    postgres: float = 0.0
    #: Of the above, the seconds spent in the kernel on the process's behalf (system time).
    system: dict[str, float] = field(default_factory=dict)


def _stat(path: str) -> list[str]:
    with open(path) as stat:
        return stat.read().rsplit(")", 1)[1].split()


def thread_cpu(pid: int, *, system_only: bool = False) -> dict[str, float]:
    """CPU seconds so far of each live thread of ``pid``, by thread id (``system_only``: the
    part spent in the kernel)."""
    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            fields = _stat(f"/proc/{pid}/task/{tid}/stat")
        except OSError:  # the thread ended meanwhile
            continue
        user = 0 if system_only else int(fields[11])
        threads[tid] = (user + int(fields[12])) / TICK
    return threads


def kernel_thread_cpu() -> float:
    """CPU seconds so far of every kernel thread (kthreadd, pid 2, and its children)."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fields = _stat(f"/proc/{pid}/stat")
        except OSError:  # it ended meanwhile
            continue
        if pid == "2" or fields[1] == "2":
            total += int(fields[11]) + int(fields[12])
    return total / TICK


def postgres_cpu(database: str) -> tuple[float, float]:
    """CPU and system seconds so far of PostgreSQL on this machine as the jobs use it: the
    backends of ``database`` and the processes without a database (WAL writer, checkpointer,
    background writer, ...), machine-wide like the kernel threads."""
    total = system = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                title = cmdline.read().split(b"\0")[0].decode(errors="replace")
            fields = _stat(f"/proc/{pid}/stat")
        except OSError:  # it ended meanwhile
            continue
        if not title.startswith("postgres: "):
            continue
        words = title.split()
        auxiliary = len(words) < 5  # "postgres: 15/main: walwriter", not "... user db host state"
        if auxiliary or f" {database} " in f" {title} ":
            total += int(fields[11]) + int(fields[12])
            system += int(fields[12])
    return total / TICK, system / TICK


def sample(server: BenchServer, zygote: int) -> CpuSample:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    threads = thread_cpu(server.pid)
    zygote_fields = _stat(f"/proc/{zygote}/stat")
    system = {
        "server": sum(thread_cpu(server.pid, system_only=True).values()),
        "zygote": int(zygote_fields[12]) / TICK,
        "workers": int(zygote_fields[14]) / TICK,
        "client (SDK)": usage.ru_stime,
    }
    postgres = 0.0
    if server.database is not None:
        postgres, system[POSTGRES] = postgres_cpu(server.database)
    return CpuSample(
        client=usage.ru_utime + usage.ru_stime,
        server_threads=threads,
        zygote=(int(zygote_fields[11]) + int(zygote_fields[12])) / TICK,
        workers=(int(zygote_fields[13]) + int(zygote_fields[14])) / TICK,
        kernel_threads=kernel_thread_cpu(),
        system=system,
        postgres=postgres,
    )


@contextmanager
def cpu_per_job(
    server: BenchServer, count: int, kernel: dict[str, float] | None = None
) -> Iterator[dict[str, float]]:
    """Fills the yielded dict with milliseconds of CPU per job once the block ends, and
    ``kernel`` with the part of it spent in the kernel, by process."""
    zygote = zygote_pid(server)
    if zygote is None:
        raise RuntimeError("the server has no zygote")
    per_job: dict[str, float] = {}
    before = sample(server, zygote)
    yield per_job
    after = sample(server, zygote)
    main_tid = str(server.pid)  # the event loop runs on the main thread
    ms = 1000 / count
    threads = {
        t: after.server_threads[t] - before.server_threads.get(t, 0.0) for t in after.server_threads
    }
    per_job["server event loop"] = threads.pop(main_tid, 0.0) * ms
    per_job["server other threads"] = sum(threads.values()) * ms
    per_job["zygote"] = (after.zygote - before.zygote) * ms
    per_job["workers"] = (after.workers - before.workers) * ms
    per_job["client (SDK)"] = (after.client - before.client) * ms
    per_job["kernel threads (machine-wide)"] = (after.kernel_threads - before.kernel_threads) * ms
    if server.database is not None:
        per_job[POSTGRES] = (after.postgres - before.postgres) * ms
    if kernel is not None:
        for name, seconds in after.system.items():
            kernel[name] = (seconds - before.system.get(name, 0.0)) * ms


def run(server: BenchServer, count: int, label: str = "") -> list[Row]:
    """``count`` trivial jobs one after another, the CPU of each process counted over them."""
    service = RuntimeService(url=server.url, token=server.token)
    program = service.upload_program(TRIVIAL_PROGRAM, metadata("cpu-budget"))
    wait_for_warm_pool(server, 2)
    started = time.perf_counter()
    kernel: dict[str, float] = {}
    with cpu_per_job(server, count, kernel) as per_job:
        for n in range(count):
            job = service.run(program, {"n": n}, options={"backend_name": "aer_simulator"})
            if job.result(timeout=60) != n:
                raise RuntimeError(f"job {n} returned a wrong result")
    wall = (time.perf_counter() - started) * 1000 / count
    total = sum(per_job.values())
    parts = ", ".join(f"{name} {value:.1f}" for name, value in per_job.items())
    prefix = f"{label}: " if label else ""
    cores = os.cpu_count() or 1
    return [
        Row("CPU per trivial job", f"{prefix}{count} jobs in turn, ms of CPU by process", parts),
        kernel_row(per_job, kernel, prefix),
        Row(
            "CPU per trivial job",
            f"{prefix}all processes together; the jobs/s that {cores} cores allow",
            f"{total:.1f} ms ({wall:.1f} ms wall) → at most {cores * 1000 / total:.0f} jobs/s",
            "≤ 20 ms, ≥ 100 jobs/s",
        ),
    ]


def kernel_row(per_job: dict[str, float], kernel: dict[str, float], prefix: str = "") -> Row:
    """How much of each process's CPU per job the kernel spent (system time): work that no
    change to qruntime's Python code removes, only fewer of the system calls and page faults
    that cause it (fork, mounts, namespaces, exit, copy-on-write)."""
    server = per_job["server event loop"] + per_job["server other threads"]
    of = {"server": server, **{name: per_job[name] for name in kernel if name != "server"}}
    threads = per_job["kernel threads (machine-wide)"]
    parts = ", ".join(f"{name} {kernel[name]:.1f} of {of[name]:.1f}" for name in kernel)
    in_kernel = sum(kernel.values()) + threads
    total = sum(per_job.values())
    return Row(
        "CPU per trivial job",
        f"{prefix}of that, in the kernel (system time and kernel threads), ms by process",
        f"{parts}, kernel threads {threads:.1f}: {in_kernel:.1f} of {total:.1f} ms "
        f"({in_kernel / total:.0%})",
    )
