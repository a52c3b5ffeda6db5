"""A real ``qruntime serve`` process on a free port, with its own data dir and account file."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

QRUNTIME = str(Path(sys.executable).with_name("qruntime"))
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServerProcess:
    """Start, SIGKILL and restart a server on the same port and database."""

    data_dir: Path
    accounts_file: Path
    database_url: str | None = None
    max_concurrent_jobs: int = 2
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    #: The CA that signed ``--tls-cert``: the server then speaks HTTPS, checked against it.
    ca_file: Path | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.ca_file else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        return ssl.create_default_context(cafile=self.ca_file) if self.ca_file else True

    @property
    def admin_token(self) -> str:
        return (self.data_dir / "admin-token").read_text().strip()

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("QRUNTIME_URL", None)
        env.pop("QRUNTIME_TOKEN", None)
        env["QRUNTIME_ACCOUNTS_FILE"] = str(self.accounts_file)
        # Every test talks from 127.0.0.1, and many send bad tokens on purpose: the limit on
        # failed authentications per address is lifted unless a test sets it
        # (tests/security/test_request_limits.py does, from addresses of its own).
        env["QRUNTIME_MAX_FAILED_AUTHS_PER_MINUTE"] = "1000000"
        env.update(self.extra_env)
        return env

    def start(self) -> ServerProcess:
        args = [
            QRUNTIME,
            "serve",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--max-concurrent-jobs",
            str(self.max_concurrent_jobs),
            "--log-level",
            "warning",
        ]
        if self.database_url:
            args += ["--database-url", self.database_url]
        args += self.extra_args
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / f"server-{int(time.time() * 1000)}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env=self.env(), start_new_session=True
            )
        self.wait_healthy()
        return self

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                health = httpx.get(f"{self.url}/health", timeout=2, verify=self.verify)
                if health.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not become healthy in {START_TIMEOUT} s:\n{self.log()}")

    def health(self, admin_token: str | None = None) -> dict:
        """The whole ``GET /health``, as an admin sees it (anyone else: status and version);
        a replica that did not create the admin needs the token of the one that did."""
        headers = {"Authorization": f"Bearer {admin_token or self.admin_token}"}
        answer = httpx.get(f"{self.url}/health", headers=headers, timeout=10, verify=self.verify)
        assert answer.status_code == 200, (answer.status_code, answer.text)
        return answer.json()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def kill(self) -> None:
        """SIGKILL the server alone, as a crash would (its workers die with it)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)

    def client(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token or self.admin_token}"},
            timeout=60,
            verify=self.verify,
        )
