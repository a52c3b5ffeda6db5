"""Load test: many short jobs from concurrent clients while their result streams are open.

    .venv/bin/python bench/load.py [--jobs 2000] [--clients 20] [--max-concurrent-jobs N]
                                   [--url URL --token ADMIN_TOKEN] [--stream-every K] [--json]

Without ``--url`` the script starts its own ``qruntime serve`` in a temporary directory (its
own database and account file; nothing of yours is touched) and stops it at the end. With
``--url`` it needs an admin token, because it creates one user per client.

What it does:

1. As admin, uploads a tiny public program (``load-echo``): it publishes ``1 + n % 3`` interim
   results ``{"n", "nonce", "i"}`` and returns ``{"n", "nonce"}`` -- its own inputs.
2. Creates one user and token per client (admin API, through the SDK).
3. Each client (a thread with its own ``RuntimeService`` and token) submits its share of the
   jobs as fast as the server accepts them, each with a unique ``nonce``. Every K-th job
   (default: every job) is started with ``run(..., callback=...)``, so the client holds an SSE
   stream open on it from submission to its final event. A job refused because the user's
   queue is full (429, nothing stored) is submitted again after a pause and counted as throttled.
4. Waits for every job's final state and fetches its result, one waiting thread per job. The
   SDK waits on the job's stream: the callback stream where there is one, else a stream of its
   own (so with ``--stream-every K`` every job still has a stream open; only every K-th
   delivers interim results to a callback).
5. Verifies, per user over the REST API: ``GET /jobs`` lists exactly the jobs the client got a
   201 for (none lost, none extra) and its total matches; every job is ``DONE`` with the right
   ``interim_count``; its stored interim results have seq ``1..k`` with the expected data (a job
   that ran twice would have more); its result equals its inputs; every nonce maps to exactly
   one job; and every callback saw exactly the stored interim results, once each, in order.

It prints submission and completion rates and latency percentiles (p50/p95/p99/max) of submit
(the ``POST /jobs``) and end-to-end (submit until the result is in hand), and exits 1 if any job
was lost, duplicated, failed, unfinished, or its stream or result was wrong (2 on bad usage,
or when the server cannot be started or the program and users cannot be set up). ``--json``
prints the summary as one JSON object on stdout; progress goes to stderr either way.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from qruntime import RuntimeJob, RuntimeService, __version__
from qruntime.client import QRuntimeClientError, RuntimeInvalidStateError

PROGRAM_NAME = "load-echo"
PROGRAM_SOURCE = '''"""Load-test program: publishes 1-3 interim results, returns its own inputs."""


def main(backend, user_messenger, n, nonce, **kwargs):
    for i in range(1 + n % 3):
        user_messenger.publish({"n": n, "nonce": nonce, "i": i})
    return {"n": n, "nonce": nonce}
'''
PROGRAM_METADATA: dict[str, Any] = {
    "name": PROGRAM_NAME,
    "description": "bench/load.py: publishes 1-3 interim results and returns its inputs.",
    "max_execution_time": 300,
    "is_public": True,
    "spec": {
        "parameters": {
            "$schema": "https://json-schema.org/draft/2019-09/schema",
            "type": "object",
            "properties": {
                "n": {"type": "integer", "minimum": 0, "description": "The job's number."},
                "nonce": {"type": "string", "description": "Unique per submitted job."},
            },
            "required": ["n", "nonce"],
        },
        "return_values": {"type": "object"},
        "interim_results": {"type": "object"},
    },
}
SERVER_START_TIMEOUT = 90.0
#: Pause before re-submitting a job the server refused because the user's queue was full.
THROTTLE_PAUSE = (0.2, 2.0)
#: How many problem messages the summary lists (the counts cover all of them).
MAX_PROBLEMS_LISTED = 25


def expected_interims(n: int, nonce: str) -> list[dict[str, Any]]:
    return [{"n": n, "nonce": nonce, "i": i} for i in range(1 + n % 3)]


# --- one job, one client ----------------------------------------------------------------------


@dataclass
class JobRecord:
    """What one client saw of one of its jobs."""

    n: int
    nonce: str
    streamed: bool
    job_id: str | None = None
    submit_start: float | None = None  # monotonic, the accepted POST
    submit_end: float | None = None
    throttled: int = 0
    submit_error: str | None = None
    finished_at: float | None = None  # result in hand
    status: str | None = None
    result: Any = None
    wait_error: str | None = None
    seen: list[Any] = field(default_factory=list)  # interim results the callback got

    def on_interim(self, job_id: str, value: Any) -> None:
        self.seen.append(value)


@dataclass
class ClientReport:
    name: str
    records: list[JobRecord]
    problems: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    nonces: Counter[str] = field(default_factory=Counter)


class LoadClient:
    """One user: submits its jobs, waits for them, then checks what the server stored."""

    def __init__(
        self,
        name: str,
        url: str,
        token: str,
        program_id: str,
        records: list[JobRecord],
        *,
        deadline: float,
        progress: Progress,
    ):
        self.name = name
        self.url = url
        self.token = token
        self.program_id = program_id
        self.report = ClientReport(name, records)
        self.deadline = deadline
        self.progress = progress
        # Every streamed job holds a connection for its whole life: no pool limit.
        transport = httpx.HTTPTransport(
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=32)
        )
        self.service = RuntimeService(url=url, token=token, transport=transport, timeout=120.0)
        self._waiters: list[tuple[threading.Thread, JobRecord]] = []

    def run(self, start_gate: threading.Barrier) -> None:
        try:
            start_gate.wait()
            for record in self.report.records:
                if time.monotonic() > self.deadline:
                    record.submit_error = "not submitted before the deadline"
                    continue
                job = self._submit(record)
                if job is not None:
                    waiter = threading.Thread(
                        target=self._wait,
                        args=(record, job),
                        daemon=True,
                        name=f"wait-{job.job_id()}",
                    )
                    waiter.start()
                    self._waiters.append((waiter, record))
            for waiter, record in self._waiters:
                waiter.join(max(0.0, self.deadline - time.monotonic()))
                if waiter.is_alive():
                    record.wait_error = "still waiting for its final state at the deadline"
            self._verify()
        except Exception as exc:  # a client that breaks is a failed run, never a silent one
            self.report.problems.append(f"{self.name}: client crashed: {type(exc).__name__}: {exc}")
        finally:
            self.service.close()

    def _submit(self, record: JobRecord) -> RuntimeJob | None:
        inputs = {"n": record.n, "nonce": record.nonce}
        callback = record.on_interim if record.streamed else None
        while True:
            start = time.monotonic()
            try:
                job = self.service.run(self.program_id, inputs, callback=callback)
            except QRuntimeClientError as exc:
                if not _queue_full(exc):
                    record.submit_error = f"{type(exc).__name__}: {exc}"
                    self.progress.submitted(failed=True)
                    return None
                # The user's queue is full: refused with nothing stored, so submit again.
                record.throttled += 1
                pause = min(
                    THROTTLE_PAUSE[0] * 2 ** min(record.throttled - 1, 4), THROTTLE_PAUSE[1]
                )
                if time.monotonic() + pause > self.deadline:
                    record.submit_error = f"still throttled at the deadline: {exc}"
                    self.progress.submitted(failed=True)
                    return None
                time.sleep(pause)
                continue
            record.submit_start, record.submit_end = start, time.monotonic()
            record.job_id = job.job_id()
            self.progress.submitted()
            return job

    def _wait(self, record: JobRecord, job: RuntimeJob) -> None:
        try:
            job.wait_for_final_state(timeout=max(1.0, self.deadline - time.monotonic()))
            record.status = job.status().name
            if record.status == "DONE":
                record.result = job.result()
                record.finished_at = time.monotonic()
        except Exception as exc:
            record.wait_error = f"{type(exc).__name__}: {exc}"
        finally:
            # The callback stream (if any) has delivered everything before its final event.
            job.cancel_result_streaming()
            self.progress.finished(ok=record.status == "DONE" and record.wait_error is None)

    def _verify(self) -> None:
        with httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=120
        ) as http:
            verify_client(self.report, http)


def _queue_full(exc: QRuntimeClientError) -> bool:
    """A submit refused for the per-user cap on queued jobs: 429 ``quota_exceeded`` (servers
    before that answered 409 ``invalid_state`` saying "queued jobs")."""
    if exc.status_code == 429 or exc.code == "quota_exceeded":
        return True
    return isinstance(exc, RuntimeInvalidStateError) and "queued jobs" in str(exc)


# --- verification -----------------------------------------------------------------------------


def verify_client(report: ClientReport, http: httpx.Client) -> None:
    """Compare what one client submitted and saw with what the server lists and stores."""
    problems = report.problems
    listed, total = _list_jobs(http)
    if total != len(listed):
        problems.append(f"{report.name}: GET /jobs total {total} != {len(listed)} listed")
    by_id = {job["id"]: job for job in listed}
    if len(by_id) != len(listed):
        report.counts["duplicated"] += len(listed) - len(by_id)
        problems.append(f"{report.name}: GET /jobs lists some job ids twice")
    accepted = [r for r in report.records if r.job_id is not None]
    accepted_ids = {r.job_id for r in accepted}
    report.counts["submitted"] = len(accepted)
    report.counts["submit_failed"] = sum(r.submit_error is not None for r in report.records)
    report.counts["throttled"] = sum(r.throttled for r in report.records)
    for record in report.records:
        if record.submit_error is not None:
            problems.append(f"{report.name}: job n={record.n}: {record.submit_error}")
    extra = set(by_id) - accepted_ids
    if extra:
        report.counts["unexpected"] += len(extra)
        problems.append(
            f"{report.name}: {len(extra)} job(s) listed that no POST returned: {sorted(extra)[:5]}"
        )
    for job in listed:
        nonce = (job.get("inputs") or {}).get("nonce")
        report.nonces[str(nonce)] += 1
    for record in accepted:
        verify_job(report, http, record, by_id.get(record.job_id))


def verify_job(
    report: ClientReport, http: httpx.Client, record: JobRecord, listed: dict[str, Any] | None
) -> None:
    """One accepted job: listed, DONE, interims stored once each, result = inputs, stream = log."""
    where = f"{report.name}: job {record.job_id} (n={record.n})"
    if listed is None:
        report.counts["lost"] += 1
        report.problems.append(f"{where}: accepted but not in GET /jobs")
        return
    expected = expected_interims(record.n, record.nonce)
    bad: list[str] = []
    if listed["status"] != "DONE":
        report.counts["not_done"] += 1
        bad.append(
            f"status {listed['status']} ({listed.get('reason')}): "
            f"{(listed.get('error_message') or '')[-300:]}"
        )
    if record.wait_error is not None:
        report.counts["wait_failed"] += 1
        bad.append(f"waiting failed: {record.wait_error}")
    if listed.get("interim_count") != len(expected):
        bad.append(f"interim_count {listed.get('interim_count')} != {len(expected)}")
    response = http.get(f"/jobs/{record.job_id}/interim_results", params={"since": 0})
    response.raise_for_status()
    stored = response.json()["interim_results"]
    seqs = [item["seq"] for item in stored]
    if seqs != list(range(1, len(expected) + 1)) or [i["data"] for i in stored] != expected:
        report.counts["ran_twice_or_bad_interims"] += 1
        bad.append(f"stored interims {[(i['seq'], i['data']) for i in stored]} != {expected}")
    if listed["status"] == "DONE" and record.wait_error is None:
        if record.result != {"n": record.n, "nonce": record.nonce}:
            report.counts["wrong_result"] += 1
            bad.append(f"result {record.result!r} is not its inputs")
        else:
            report.counts["done"] += 1
    if record.streamed:
        report.counts["streamed"] += 1
        if record.seen != [item["data"] for item in stored]:
            report.counts["stream_mismatch"] += 1
            bad.append(f"callback saw {record.seen} but the server stored {stored}")
    if bad:
        report.problems.append(f"{where}: " + "; ".join(bad))


def _list_jobs(http: httpx.Client) -> tuple[list[dict[str, Any]], int]:
    """Every job of the caller, through ``GET /jobs`` pages; and the total the server reports."""
    jobs: list[dict[str, Any]] = []
    total = -1
    while True:
        response = http.get("/jobs", params={"limit": 1000, "offset": len(jobs)})
        response.raise_for_status()
        body = response.json()
        total = int(body["total"])
        jobs.extend(body["jobs"])
        if not body["jobs"] or len(jobs) >= total:
            return jobs, total


# --- progress ---------------------------------------------------------------------------------


class Progress:
    """Counts submissions and completions; prints a line to stderr every ``interval`` seconds."""

    def __init__(self, total: int, interval: float, out: Callable[[str], None]):
        self.total = total
        self.interval = interval
        self._out = out
        self._lock = threading.Lock()
        self._submitted = 0
        self._submit_failed = 0
        self._finished = 0
        self._failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._report, daemon=True, name="load-progress")
        self.started = time.monotonic()

    def submitted(self, failed: bool = False) -> None:
        with self._lock:
            if failed:
                self._submit_failed += 1
            else:
                self._submitted += 1

    def finished(self, ok: bool) -> None:
        with self._lock:
            self._finished += 1
            self._failed += not ok

    def start(self) -> None:
        self.started = time.monotonic()
        if self.interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _report(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                sub, refused = self._submitted, self._submit_failed
                fin, bad = self._finished, self._failed
            elapsed = time.monotonic() - self.started
            self._out(
                f"[{elapsed:7.1f} s] submitted {sub}/{self.total} ({refused} failed), "
                f"finished {fin} ({bad} not DONE), {fin / elapsed:.2f} jobs/s"
            )


# --- the server -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _qruntime_command() -> list[str]:
    beside = Path(sys.executable).with_name("qruntime")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("qruntime")
    if found:
        return [found]
    raise SystemExit("error: cannot find the qruntime command (install the package first)")


@contextmanager
def own_server(
    max_concurrent_jobs: int | None, keep_dir: bool, out: Callable[[str], None]
) -> Iterator[tuple[str, str, Path]]:
    """A ``qruntime serve`` in a fresh temp dir; yields (url, admin token, dir)."""
    base = Path(tempfile.mkdtemp(prefix="qruntime-load-"))
    port = _free_port()
    args = [
        *_qruntime_command(),
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(base / "data"),
        "--log-level",
        "warning",
    ]
    if max_concurrent_jobs is not None:
        args += ["--max-concurrent-jobs", str(max_concurrent_jobs)]
    env = dict(os.environ)
    env.pop("QRUNTIME_URL", None)
    env.pop("QRUNTIME_TOKEN", None)
    env["QRUNTIME_ACCOUNTS_FILE"] = str(base / "accounts.json")
    env["QRUNTIME_SAVE_ADMIN_ACCOUNT"] = "false"
    log_path = base / "server.log"
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as server_log:
        process = subprocess.Popen(
            args, stdout=server_log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    ok = False
    try:
        _wait_healthy(url, process, log_path)
        token = (base / "data" / "admin-token").read_text().strip()
        yield url, token, base
        ok = True
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
        if keep_dir or not ok:
            out(f"server directory kept: {base} (log: {log_path})")
        else:
            shutil.rmtree(base, ignore_errors=True)


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerStartError(
                f"the server exited with {process.returncode}:\n{log_path.read_text()[-3000:]}"
            )
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise ServerStartError(f"the server was not healthy after {SERVER_START_TIMEOUT:.0f} s")


class ServerStartError(RuntimeError):
    pass


# --- the run ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadConfig:
    jobs: int = 2000
    clients: int = 20
    stream_every: int = 1
    timeout: float | None = None
    progress_interval: float = 10.0

    def deadline_seconds(self) -> float:
        return self.timeout if self.timeout is not None else 300.0 + 5.0 * self.jobs


def run_load(
    url: str, admin_token: str, config: LoadConfig, out: Callable[[str], None]
) -> dict[str, Any]:
    """Drive one load run against ``url``; returns the summary (see ``summarize``)."""
    run_id = secrets.token_hex(3)
    with RuntimeService(url=url, token=admin_token, timeout=120.0) as admin:
        program_id = admin.upload_program(PROGRAM_SOURCE, PROGRAM_METADATA)
        tokens = [
            admin.users.create(f"load-{run_id}-{c:03d}", "user").token
            for c in range(config.clients)
        ]
    out(
        f"run {run_id}: {config.jobs} jobs from {config.clients} clients against {url} "
        f"(program {program_id}, a callback stream on {_nth(config.stream_every)})"
    )
    shares: list[list[JobRecord]] = [[] for _ in range(config.clients)]
    for n in range(config.jobs):
        client = n % config.clients
        index = len(shares[client])
        shares[client].append(
            JobRecord(n=n, nonce=f"{run_id}-{n}", streamed=index % config.stream_every == 0)
        )
    progress = Progress(config.jobs, config.progress_interval, out)
    start_gate = threading.Barrier(config.clients + 1)
    deadline = time.monotonic() + config.deadline_seconds()
    clients = [
        LoadClient(
            f"load-{run_id}-{c:03d}",
            url,
            tokens[c],
            program_id,
            shares[c],
            deadline=deadline,
            progress=progress,
        )
        for c in range(config.clients)
    ]
    threads = [
        threading.Thread(target=client.run, args=(start_gate,), name=client.name)
        for client in clients
    ]
    for thread in threads:
        thread.start()
    start_gate.wait()
    progress.start()
    for thread in threads:
        thread.join()
    progress.stop()
    return summarize(config, url, program_id, run_id, [c.report for c in clients])


def _nth(k: int) -> str:
    return "every job" if k == 1 else f"1 job in {k}"


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """Nearest-rank p50/p95/p99 and the maximum, in milliseconds."""
    if not values:
        return {"count": 0, "p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] * 1000, 1)

    return {
        "count": len(ordered),
        "p50": rank(50),
        "p95": rank(95),
        "p99": rank(99),
        "max": round(ordered[-1] * 1000, 1),
    }


def summarize(
    config: LoadConfig, url: str, program_id: str, run_id: str, reports: list[ClientReport]
) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    nonces: Counter[str] = Counter()
    problems: list[str] = []
    records: list[JobRecord] = []
    for report in reports:
        counts.update(report.counts)
        nonces.update(report.nonces)
        problems.extend(report.problems)
        records.extend(report.records)
    duplicated_nonces = sorted(nonce for nonce, seen in nonces.items() if seen > 1)
    if duplicated_nonces:
        problems.append(f"inputs that ran as more than one job: {duplicated_nonces[:10]}")
    accepted = [r for r in records if r.submit_start is not None]
    finished = [r for r in accepted if r.finished_at is not None]
    first = min((r.submit_start for r in accepted), default=None)
    last_submit = max((r.submit_end for r in accepted), default=None)
    last_finish = max((r.finished_at for r in finished), default=None)
    submit_span = (last_submit - first) if first is not None and last_submit is not None else None
    total_span = (last_finish - first) if first is not None and last_finish is not None else None
    unfinished = sum(1 for r in accepted if r.status is None and r.wait_error is not None)
    lost = counts["lost"] + counts["submit_failed"]
    duplicated = counts["duplicated"] + counts["unexpected"] + len(duplicated_nonces)
    summary = {
        "ok": False,
        "run_id": run_id,
        "url": url,
        "program_id": program_id,
        "jobs": config.jobs,
        "clients": config.clients,
        "stream_every": config.stream_every,
        "submitted": len(accepted),
        "done": counts["done"],
        "not_done": counts["not_done"],
        "unfinished": unfinished,
        "lost": lost,
        "duplicated": duplicated,
        "ran_twice_or_bad_interims": counts["ran_twice_or_bad_interims"],
        "wrong_results": counts["wrong_result"],
        "streamed": counts["streamed"],
        "stream_mismatches": counts["stream_mismatch"],
        "wait_failed": counts["wait_failed"],
        "throttled_submits": counts["throttled"],
        "submit_seconds": _round(submit_span),
        "total_seconds": _round(total_span),
        "submit_jobs_per_s": _rate(len(accepted), submit_span),
        "completion_jobs_per_s": _rate(len(finished), total_span),
        "latency_ms": {
            "submit": percentiles([r.submit_end - r.submit_start for r in accepted]),
            "end_to_end": percentiles([r.finished_at - r.submit_start for r in finished]),
        },
        "problem_count": len(problems),
        "problems": problems[:MAX_PROBLEMS_LISTED],
    }
    summary["ok"] = (
        not problems
        and summary["done"] == config.jobs
        and lost == 0
        and duplicated == 0
        and summary["stream_mismatches"] == 0
    )
    return summary


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _rate(count: int, seconds: float | None) -> float | None:
    return None if not seconds else round(count / seconds, 2)


def render(summary: dict[str, Any]) -> str:
    def row(name: str, stats: dict[str, Any]) -> str:
        cells = "  ".join(f"{k} {stats[k]:>9}" for k in ("p50", "p95", "p99", "max"))
        return f"  {name:<12} {cells}   (n={stats['count']})"

    lines = [
        f"{'OK' if summary['ok'] else 'FAILED'}: {summary['done']}/{summary['jobs']} jobs DONE "
        f"from {summary['clients']} clients; lost {summary['lost']}, duplicated "
        f"{summary['duplicated']}, ran twice/bad interims {summary['ran_twice_or_bad_interims']}, "
        f"wrong results {summary['wrong_results']}",
        f"streams: {summary['streamed']} jobs followed by a callback, "
        f"{summary['stream_mismatches']} saw other than the stored interim results",
        f"submission: {summary['submitted']} jobs in {summary['submit_seconds']} s = "
        f"{summary['submit_jobs_per_s']} jobs/s ({summary['throttled_submits']} throttled retries)",
        f"completion: {summary['done']} jobs in {summary['total_seconds']} s = "
        f"{summary['completion_jobs_per_s']} jobs/s",
        "latency (ms):",
        row("submit", summary["latency_ms"]["submit"]),
        row("end-to-end", summary["latency_ms"]["end_to_end"]),
    ]
    if summary["problems"]:
        lines.append(f"problems ({summary['problem_count']}, first {len(summary['problems'])}):")
        lines.extend(f"  - {p}" for p in summary["problems"])
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/load.py",
        description="Submit many short jobs from concurrent clients while streams are open, "
        "then check that none was lost or duplicated.",
    )
    parser.add_argument("--jobs", type=int, default=2000, help="jobs in all (default 2000)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients (default 20)")
    parser.add_argument("--url", help="an existing server (default: start one in a temp dir)")
    parser.add_argument("--token", help="an admin token for --url")
    parser.add_argument(
        "--max-concurrent-jobs",
        type=int,
        help="for the server this script starts (default: the server's own, the CPU count)",
    )
    parser.add_argument(
        "--stream-every",
        type=int,
        default=1,
        metavar="K",
        help="follow every K-th job of each client with a callback stream (default 1: all)",
    )
    parser.add_argument(
        "--timeout", type=float, help="give up waiting after this many seconds (default 300+5/job)"
    )
    parser.add_argument(
        "--progress", type=float, default=10.0, help="seconds between progress lines (0: none)"
    )
    parser.add_argument("--keep-server-dir", action="store_true", help="keep the temp dir")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.clients < 1 or args.stream_every < 1:
        parser.error("--jobs, --clients and --stream-every must be at least 1")
    if (args.url is None) != (args.token is None):
        parser.error("--url and --token go together")
    if args.url is not None and args.max_concurrent_jobs is not None:
        parser.error("--max-concurrent-jobs only applies to the server this script starts")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    def out(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    config = LoadConfig(
        jobs=args.jobs,
        clients=args.clients,
        stream_every=args.stream_every,
        timeout=args.timeout,
        progress_interval=args.progress,
    )
    machine = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "qruntime": __version__,
        # Other work on the machine skews every figure: say how busy it was.
        "loadavg_1m_at_start": round(os.getloadavg()[0], 2),
    }
    try:
        if args.url is not None:
            summary = run_load(args.url, args.token, config, out)
            summary["server"] = {"own": False, "max_concurrent_jobs": None}
        else:
            with own_server(args.max_concurrent_jobs, args.keep_server_dir, out) as (url, token, _):
                summary = run_load(url, token, config, out)
            summary["server"] = {
                "own": True,
                "max_concurrent_jobs": args.max_concurrent_jobs or len(os.sched_getaffinity(0)),
            }
    except ServerStartError as exc:
        out(f"error: {exc}")
        return 2
    except QRuntimeClientError as exc:  # setting up: uploading the program, creating users
        out(f"error: cannot set up the run: {type(exc).__name__}: {exc}")
        return 2
    machine["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    summary["machine"] = machine
    summary["date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(render(summary))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
