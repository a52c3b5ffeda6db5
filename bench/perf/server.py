"""A ``qruntime serve`` of its own, in a temporary directory, for the server-level benchmarks."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

COUNTING_SERVE = Path(__file__).with_name("counting_serve.py")

START_TIMEOUT = 120.0


@dataclass(frozen=True)
class BenchServer:
    url: str
    token: str
    pid: int
    directory: Path
    counts: Path | None = None  # where counting_serve.py writes its statement counts
    database: str | None = None  # the PostgreSQL database's name; None on SQLite


def statement_counts(server: BenchServer) -> dict[str, int]:
    """SQL statements and commits the server ran so far (a server started with ``counting``)."""
    assert server.counts is not None, "start the server with bench_server(counting=True)"
    before = server.counts.stat().st_mtime_ns if server.counts.exists() else 0
    os.kill(server.pid, signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if server.counts.exists() and server.counts.stat().st_mtime_ns != before:
            return json.loads(server.counts.read_text())
        time.sleep(0.01)
    raise RuntimeError("the server wrote no statement counts")


@contextmanager
def bench_server(
    *,
    worker_pool_size: int = 2,
    max_concurrent_jobs: int | None = None,
    database_url: str | None = None,
    counting: bool = False,
    python: str | None = None,
) -> Iterator[BenchServer]:
    """Started with the embedded defaults (SQLite, sandbox, warm pool), stopped at the end.

    ``database_url`` (PostgreSQL) replaces the SQLite file; ``counting`` runs the server under
    counting_serve.py, whose statement counts :func:`statement_counts` reads; ``python`` is
    another virtual environment's interpreter, whose installed code serves (and its zygote's).
    """
    interpreter = Path(python or sys.executable)
    base = Path(tempfile.mkdtemp(prefix="qruntime-bench-"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    if counting:
        command = [str(interpreter), str(COUNTING_SERVE), "serve", "--port", str(port)]
    else:
        command = [str(interpreter.with_name("qruntime")), "serve", "--port", str(port)]
    command += ["--data-dir", str(base / "data"), "--log-level", "warning"]
    command += ["--worker-pool-size", str(worker_pool_size)]
    if max_concurrent_jobs is not None:
        command += ["--max-concurrent-jobs", str(max_concurrent_jobs)]
    env = {k: v for k, v in os.environ.items() if k not in ("QRUNTIME_URL", "QRUNTIME_TOKEN")}
    env |= {
        "QRUNTIME_ACCOUNTS_FILE": str(base / "accounts.json"),
        "QRUNTIME_SAVE_ADMIN_ACCOUNT": "false",
        "QRUNTIME_BENCH_COUNTS": str(base / "counts.json"),
    }
    if database_url is not None:
        env["QRUNTIME_DATABASE_URL"] = database_url
    log = (base / "server.log").open("wb")
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, base / "server.log")
        admin_token = base / "data" / "admin-token"  # only the database's first replica writes one
        token = admin_token.read_text().strip() if admin_token.exists() else ""
        counts = base / "counts.json" if counting else None
        database = None if database_url is None else _database_name(database_url)
        yield BenchServer(url, token, process.pid, base, counts, database)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(base, ignore_errors=True)


def _database_name(url: str) -> str | None:
    from sqlalchemy.engine import make_url

    return make_url(url).database


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server did not become healthy")


def wait_for_warm_pool(server: BenchServer, idle: int, timeout: float = 120.0) -> list[int]:
    """Pids of the idle workers (the zygote's children) once ``idle`` of them wait."""

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = idle_worker_pids(server)
        if len(pids) >= idle:
            return pids
        time.sleep(0.05)
    raise RuntimeError(f"the warm pool never reached {idle} idle workers")


def zygote_pid(server: BenchServer) -> int | None:
    import psutil

    for child in psutil.Process(server.pid).children():
        if "qruntime.execution.zygote" in " ".join(child.cmdline()):
            return child.pid
    return None


def idle_worker_pids(server: BenchServer) -> list[int]:
    import psutil

    zygote = zygote_pid(server)
    return [] if zygote is None else [p.pid for p in psutil.Process(zygote).children()]
