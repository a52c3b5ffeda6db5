"""Check deploy/nginx-qruntime.conf for real: two replicas on a fresh PostgreSQL database behind
nginx on a free port, with the file's upstream list pointed at them.

    .venv/bin/python scripts/check-load-balancer.py [--postgres-url URL] [--config FILE]

Needs ``nginx`` on PATH (Debian: ``apt-get install nginx-light``). Through nginx it checks that
requests reach both replicas, that interim results published 0.3 s apart arrive 0.3 s apart
(an SSE stream that nginx buffered would deliver them all at the end), exactly once and in
order, through the SDK and through a plain SSE reader, and that a cancel through nginx stops a
job whichever replica runs it. Exit status 0 when every check passes.
"""

from __future__ import annotations

import argparse
import itertools
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
from httpx_sse import connect_sse

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from replicas import POSTGRES_URL, fresh_database, metadata, replica  # noqa: E402

from qruntime import RuntimeService  # noqa: E402

CONFIG = REPO / "deploy" / "nginx-qruntime.conf"
PACED = """\
import time


def main(backend, user_messenger, count=8, interval=0.3):
    for i in range(count):
        user_messenger.publish(i)
        time.sleep(interval)
    return count
"""
SLEEPER = "import time\n\n\ndef main(backend, user_messenger):\n    time.sleep(600)\n"


def nginx_config(site: str, prefix: Path, port: int, upstreams: list[str]) -> Path:
    """The site file with our port and replicas, inside a minimal main configuration."""
    servers = "".join(f"    server {u} max_fails=3 fail_timeout=10s;\n" for u in upstreams)
    site = re.sub(r"(?m)^    server 10\.0\.0\.\d+:8765.*\n", "", site)
    site = site.replace("    least_conn;", f"    least_conn;\n{servers.rstrip()}", 1)
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    main = (
        "user root;\nworker_processes 1;\ndaemon off;\n"
        f"pid {prefix}/nginx.pid;\nerror_log {prefix}/error.log warn;\n"
        "events { worker_connections 256; }\n"
        f"http {{\naccess_log {prefix}/access.log;\n{site}\n}}\n"
    )
    path = prefix / "nginx.conf"
    path.write_text(main)
    return path


def gaps(arrivals: list[float]) -> float:
    return statistics.median(b - a for a, b in itertools.pairwise(arrivals))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--config", type=Path, default=CONFIG, help="the site file to check")
    args = parser.parse_args()
    if shutil.which("nginx") is None:
        print("error: nginx is not installed", file=sys.stderr)
        return 2
    failures: list[str] = []

    def check(ok: bool, what: str) -> None:
        print(("ok    " if ok else "FAIL  ") + what)
        if not ok:
            failures.append(what)

    with fresh_database(args.postgres_url) as database_url, ExitStack() as stack:
        base = Path(tempfile.mkdtemp(prefix="qruntime-lb-"))
        stack.callback(shutil.rmtree, base, ignore_errors=True)
        servers = [stack.enter_context(replica(database_url, base / f"r{i}")) for i in range(2)]
        [token] = [
            (s.data_dir / "admin-token").read_text().strip()
            for s in servers
            if (s.data_dir / "admin-token").exists()
        ]
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        prefix = base / "nginx"
        prefix.mkdir()
        upstreams = [s.url.removeprefix("http://") for s in servers]
        conf = nginx_config(args.config.read_text(), prefix, port, upstreams)
        tested = subprocess.run(
            ["nginx", "-t", "-c", str(conf), "-p", str(prefix)], text=True, capture_output=True
        )
        check(tested.returncode == 0, f"nginx -t accepts the configuration {tested.stderr[-200:]}")
        nginx = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(prefix)])
        stack.callback(nginx.wait, 10)
        stack.callback(nginx.send_signal, signal.SIGQUIT)
        lb = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{lb}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)

        admin = {"Authorization": f"Bearer {token}"}  # /health names the replica to admins
        answered = {
            httpx.get(f"{lb}/health", headers=admin, timeout=10).json()["replica"]
            for _ in range(20)
        }
        check(len(answered) == 2, f"requests reach both replicas ({len(answered)} answered)")

        service = RuntimeService(url=lb, token=token)
        paced = service.upload_program(PACED, metadata("lb-paced"))
        arrivals: list[tuple[int, float]] = []
        complete = threading.Event()

        def callback(job_id: str, value: int) -> None:
            arrivals.append((value, time.monotonic()))
            if len(arrivals) == 8:
                complete.set()

        job = service.run(paced, {}, options={"backend_name": "aer_simulator"}, callback=callback)
        check(job.result(timeout=120) == 8 and complete.wait(30), "the SDK's job ran to its result")
        check(
            [v for v, _ in arrivals] == list(range(8)), "SDK callback: each result once, in order"
        )
        spread = gaps([t for _, t in arrivals])
        check(spread > 0.2, f"SDK callback: results arrive as published ({spread:.2f} s apart)")

        raw = service.run(paced, {}, options={"backend_name": "aer_simulator"})
        seen: list[tuple[str, float]] = []
        with (
            httpx.Client(base_url=lb, headers={"Authorization": f"Bearer {token}"}) as http,
            connect_sse(http, "GET", f"/jobs/{raw.job_id()}/stream", timeout=60) as source,
        ):
            for event in source.iter_sse():
                seen.append((event.event, time.monotonic()))
        interims = [t for kind, t in seen if kind == "interim"]
        check(len(interims) == 8 and seen[-1][0] == "final", "plain SSE: 8 interims, then final")
        check(gaps(interims) > 0.2, f"plain SSE: not buffered ({gaps(interims):.2f} s apart)")

        sleeper = service.upload_program(SLEEPER, metadata("lb-sleeper"))
        long = [
            service.run(sleeper, {}, options={"backend_name": "aer_simulator"}) for _ in range(4)
        ]
        while any(j.status().name != "RUNNING" for j in long):
            time.sleep(0.1)
        for j in long:
            j.cancel()
        check(all(j.status().name == "CANCELLED" for j in long), "cancel through nginx, 4 of 4")
    print("all checks passed" if not failures else f"{len(failures)} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
