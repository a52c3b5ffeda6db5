"""A real Ray cluster of two nodes on this host, for the tests of ``qruntime serve --executor
ray``: ``ray start --head`` and ``ray start --address``, each in its own process group, on
loopback addresses of their own; stopped only by those groups (never ``ray stop``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from server_harness import free_port

RAY = str(Path(sys.executable).with_name("ray"))
#: Each node has its own loopback address, so Ray never picks the host's network address.
HEAD_IP, WORKER_IP = "127.0.0.11", "127.0.0.12"
#: A lost node is noticed within a few seconds (the defaults take half a minute).
RAY_ENV = {
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
    "RAY_USAGE_STATS_ENABLED": "0",
}
START_TIMEOUT = 90.0


@dataclass
class RayNode:
    args: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.args,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **RAY_ENV},
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL every process of the node, as a machine dying would."""
        if self.process is None:
            return
        kill_session(self.process.pid)
        self.process.wait(timeout=30)

    def freeze(self, pid: int) -> None:
        """SIGSTOP one process of this node (a hung agent); refused for any other process."""
        if self.process is None or _session_of(pid) != self.process.pid:
            raise ValueError(f"pid {pid} is not a process of this Ray node")
        os.kill(pid, signal.SIGSTOP)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class RayCluster:
    """A head (one CPU) and a worker node (one CPU), named by their loopback addresses."""

    root: Path
    port: int = field(default_factory=free_port)
    head: RayNode | None = None
    worker: RayNode | None = None

    @property
    def address(self) -> str:
        return f"{HEAD_IP}:{self.port}"

    def start(self) -> RayCluster:
        self.start_head()
        self.start_worker()
        self.wait_for_nodes(2)
        return self

    def start_head(self) -> None:
        self.head = RayNode(
            [
                RAY, "start", "--head", "--block", f"--port={self.port}",
                f"--node-ip-address={HEAD_IP}", "--num-cpus=1", "--num-gpus=0",
                "--include-dashboard=false", "--disable-usage-stats",
                f"--temp-dir={self.root / 'ray'}",
            ],
            self.root / "head.log",
        )  # fmt: skip
        self.head.start()

    def start_worker(self) -> None:
        self.worker = RayNode(
            [
                RAY, "start", "--block", f"--address={self.address}",
                f"--node-ip-address={WORKER_IP}", "--num-cpus=1", "--num-gpus=0",
                "--disable-usage-stats",
            ],
            self.root / "worker.log",
        )  # fmt: skip
        self.worker.start()

    def wait_for_nodes(self, count: int) -> None:
        """Until ``count`` nodes are alive, by ``ray status`` against the head."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            status = subprocess.run(
                [RAY, "status", f"--address={self.address}"],
                capture_output=True,
                text=True,
                env={**os.environ, **RAY_ENV},
                timeout=60,
            )
            if status.returncode == 0 and status.stdout.count("node_") >= count:
                return
            time.sleep(1)
        raise RuntimeError(f"the Ray cluster did not reach {count} nodes:\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-3000:] for p in self.root.glob("*.log") if p.exists()
        )

    def stop(self) -> None:
        for node in (self.worker, self.head):
            if node is not None:
                node.kill()


@contextlib.contextmanager
def ray_cluster() -> Iterator[RayCluster]:
    """A started two-node cluster in a fresh short directory (Ray's socket paths are short)."""
    root = Path(tempfile.mkdtemp(prefix=f"qrt-ray-{uuid.uuid4().hex[:6]}-"))
    cluster = RayCluster(root)
    try:
        yield cluster.start()
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def ray_server_args(cluster: RayCluster) -> list[str]:
    return ["--executor", "ray", "--ray-address", cluster.address]


def ray_server_env() -> dict[str, str]:
    """Each test server gets agents of its own (its own Ray namespace)."""
    return {"QRUNTIME_RAY_NAMESPACE": f"qrt-test-{uuid.uuid4().hex[:10]}"}


def kill_session(session: int) -> None:
    """SIGKILL every process of the node's session: Ray starts its workers (our agents) in
    process groups of their own, in the session of the ``ray start`` that started the node."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        members = [pid for pid in _pids() if _session_of(pid) == session]
        if not members:
            return
        for pid in members:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _session_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            fields = file.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return int(fields[3]) if fields[0] != b"Z" else None  # field 6: the session id
