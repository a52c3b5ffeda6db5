"""Ray baseline: job-start latency of Ray's job submission API on a local cluster.

    python bench/perf/ray_baseline.py [--count N] [--warmup W]

Starts a private local Ray head (dashboard on a free port, its own temp dir), submits jobs one at
a time that run the same program as our plain worker (``ray_entry.py``: qiskit, an AerSimulator
backend, the program's ``main``), and measures from just before ``submit_job`` until the program's
first ``publish``. Needs ``pip install -r bench/requirements.txt``; no network access.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from ray_cluster import kill_session

if TYPE_CHECKING:  # ray is optional: imported lazily, only where used
    from ray.job_submission import JobSubmissionClient

ENTRY = Path(__file__).with_name("ray_entry.py")
CLUSTER_START_TIMEOUT_S = 120.0
JOB_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0
POLL_S = 0.02

DEFAULT_SOURCE = """import time


def main(backend, user_messenger, **inputs):
    user_messenger.publish(time.time())
    return "done"
"""


def ray_available() -> bool:
    """Whether Ray (with its job submission client) can be imported here."""
    try:
        import ray
        import ray.job_submission  # noqa: F401
    except ImportError:
        return False
    return True


def _free_port() -> int:
    """A port nobody listens on right now (small race, fine for a benchmark)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_exe() -> str:
    """The ``ray`` CLI of this interpreter's environment, not whatever is first on PATH."""
    exe = Path(sys.executable).parent / "ray"
    if not exe.exists():
        raise RuntimeError(f"no ray executable at {exe}; pip install -r bench/requirements.txt")
    return str(exe)


def _ray_env() -> dict[str, str]:
    """Environment for the Ray CLI: no usage stats, no attaching to some other cluster."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    return env


def _start_head(temp_dir: str, port: int, dashboard_port: int) -> subprocess.Popen[bytes]:
    """``ray start --head --block`` in a session of its own, so that only it is stopped."""
    cmd = [
        _ray_exe(),
        "start",
        "--head",
        "--block",
        f"--port={port}",
        "--num-cpus=2",
        "--include-dashboard=true",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard_port}",
        "--disable-usage-stats",
        f"--temp-dir={temp_dir}",
    ]
    log = open(os.path.join(os.path.dirname(temp_dir), "ray-start.log"), "wb")  # noqa: SIM115
    return subprocess.Popen(
        cmd,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=_ray_env(),
        start_new_session=True,
    )


def _connect(url: str, deadline: float, head: subprocess.Popen[bytes]) -> JobSubmissionClient:
    """Retry until the dashboard's job API answers (it comes up after ``ray start`` returns)."""
    from ray.job_submission import JobSubmissionClient

    last: Exception | None = None
    while time.monotonic() < deadline:
        if head.poll() is not None:
            raise RuntimeError(
                f"ray start --head exited (code {head.returncode}) before {url} answered"
            )
        try:
            client = JobSubmissionClient(url)
            client.list_jobs()
            return client
        except Exception as e:  # connection refused, 5xx while the dashboard starts, ...
            last = e
            time.sleep(0.5)
    raise RuntimeError(
        f"Ray job API at {url} not ready after {CLUSTER_START_TIMEOUT_S:.0f} s: {last!r}"
    )


def _stop_head(head: subprocess.Popen[bytes]) -> None:
    """SIGKILL every process of the head's session (Ray's workers join it), never ``ray stop``,
    which would stop every Ray cluster of the machine."""
    kill_session(head.pid)
    with contextlib.suppress(subprocess.TimeoutExpired):
        head.wait(timeout=5)


def _run_job(client: JobSubmissionClient, program_file: str, out_file: Path) -> float:
    """Submit one job, wait for it to succeed, return seconds from submit to first publish."""
    from ray.job_submission import JobStatus

    out_file.unlink(missing_ok=True)
    entrypoint = shlex.join([sys.executable, str(ENTRY), program_file, str(out_file)])
    t0 = time.time()
    job_id = client.submit_job(entrypoint=entrypoint)
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while True:
        status = client.get_job_status(job_id)
        if status.is_terminal():
            break
        if time.monotonic() > deadline:
            client.stop_job(job_id)
            raise RuntimeError(
                f"Ray job {job_id} still {status} after {JOB_TIMEOUT_S:.0f} s; logs:\n"
                f"{client.get_job_logs(job_id)}"
            )
        time.sleep(POLL_S)
    if status != JobStatus.SUCCEEDED:
        info = client.get_job_info(job_id)
        raise RuntimeError(
            f"Ray job {job_id} ended {status} ({info.message}); logs:\n"
            f"{client.get_job_logs(job_id)}"
        )
    if not out_file.exists():
        raise RuntimeError(
            f"Ray job {job_id} succeeded but never published; logs:\n{client.get_job_logs(job_id)}"
        )
    return float(out_file.read_text(encoding="utf-8")) - t0


def measure_ray_job_start(
    source: str, count: int, *, warmup: int = 2, log: Callable[[str], object] = print
) -> list[float]:
    """Seconds from ``submit_job`` to the program's first publish, for ``count`` sequential jobs."""
    if count < 1 or warmup < 0:
        raise ValueError("count must be >= 1 and warmup >= 0")
    # Short path: Ray puts unix sockets under --temp-dir, and those have a ~107 byte limit.
    temp_dir = tempfile.mkdtemp(prefix="rayb-")
    try:
        program_file = os.path.join(temp_dir, "program.py")
        Path(program_file).write_text(source, encoding="utf-8")
        out_file = Path(temp_dir) / "first_publish.txt"
        dashboard_port = _free_port()
        url = f"http://127.0.0.1:{dashboard_port}"
        log(f"starting Ray head (dashboard {url}, temp dir {temp_dir})")
        started = time.monotonic()
        head = _start_head(os.path.join(temp_dir, "ray"), _free_port(), dashboard_port)
        try:
            client = _connect(url, started + CLUSTER_START_TIMEOUT_S, head)
            log(f"Ray job API ready after {time.monotonic() - started:.1f} s")
            latencies: list[float] = []
            for i in range(warmup + count):
                latency = _run_job(client, program_file, out_file)
                kind = "warmup" if i < warmup else "job"
                log(f"{kind} {i + 1}/{warmup + count}: {latency * 1000:.0f} ms")
                if i >= warmup:
                    latencies.append(latency)
            return latencies
        finally:
            _stop_head(head)
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


def _percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile, ``q`` in [0, 100]."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20, help="measured jobs (default 20)")
    parser.add_argument("--warmup", type=int, default=2, help="jobs dropped first (default 2)")
    args = parser.parse_args(argv)
    if not ray_available():
        print("ray is not installed: pip install -r bench/requirements.txt", file=sys.stderr)
        return 2
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    latencies = measure_ray_job_start(DEFAULT_SOURCE, args.count, warmup=args.warmup, log=log)
    print(
        f"ray job start ({len(latencies)} jobs): "
        f"p50 {_percentile(latencies, 50) * 1000:.0f} ms, "
        f"p95 {_percentile(latencies, 95) * 1000:.0f} ms, "
        f"mean {statistics.fmean(latencies) * 1000:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
