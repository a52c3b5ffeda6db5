"""Server settings from flags and ``QRUNTIME_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from qruntime.accounts import accounts_file
from qruntime.execution.limits import JobLimits
from qruntime.execution.sandbox import SandboxConfig, hidden_path_problem
from qruntime.execution.warm_pool import DEFAULT_PRELOAD, WarmPoolConfig

DEFAULT_PORT = 8765


def _cpu_count() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


class Settings(BaseSettings):
    """Everything an operator can set; the defaults are the embedded single-machine setup."""

    model_config = SettingsConfigDict(env_prefix="QRUNTIME_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(DEFAULT_PORT, ge=0, le=65535)
    #: PEM certificate (chain) and key: serve HTTPS and WSS instead of HTTP. The 2021 IBM
    #: client streams interim results only from an ``https`` server (docs/compat.md).
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    data_dir: Path = Path(".qruntime")
    #: SQLAlchemy URL; empty means SQLite (WAL) at ``<data_dir>/qruntime.db``.
    database_url: str | None = None
    max_concurrent_jobs: int = Field(default_factory=_cpu_count, ge=1)
    #: Jobs one user may have waiting; more are refused so one user cannot flood the queue.
    max_queued_jobs_per_user: int = Field(100, ge=1)
    #: Jobs one user may have running at once on all replicas together; None: no cap (fair
    #: share still serves the user with the fewest running jobs first).
    max_running_jobs_per_user: int | None = Field(None, ge=1)
    #: Seconds between a replica's heartbeats, which also renew its running jobs' leases.
    replica_heartbeat_seconds: float = Field(5.0, gt=0)
    #: How long a running job's claim holds without a heartbeat; once it has run out, another
    #: replica takes the job over (ends it as INTERRUPTED, or adopts it with Ray).
    replica_lease_seconds: float = Field(30.0, gt=0)
    max_source_bytes: int = Field(1024 * 1024, ge=1)
    #: Size of a program's metadata (JSON) on upload or update.
    max_metadata_bytes: int = Field(256 * 1024, ge=1024)
    max_inputs_bytes: int = Field(64 * 1024 * 1024, ge=1)
    #: Per-job cap on stored stdout/stderr: the newest bytes are kept, the log says so.
    max_log_bytes: int = Field(1024 * 1024, ge=1)
    #: Interim results one job may publish; past it the job fails and says why.
    max_interim_results: int = Field(100_000, ge=1)
    #: Encoded size of one interim result.
    max_interim_bytes: int = Field(1024 * 1024, ge=1)
    #: Interim results per second one job may publish before it is slowed down.
    max_interim_rate: float = Field(10_000.0, gt=0)
    #: Encoded size of a job's final result.
    max_result_bytes: int = Field(64 * 1024 * 1024, ge=1)
    #: Ceiling for any program's ``max_execution_time`` (seconds).
    max_execution_time_ceiling: int = Field(8 * 3600, ge=1)
    #: Seconds between keep-alive comments on idle event streams.
    stream_ping_seconds: float = Field(15.0, gt=0)
    #: Event streams open at once, over all users, and for one user (more are refused: 429).
    max_streams: int = Field(500, ge=1)
    max_streams_per_user: int = Field(50, ge=1)
    #: Body a request without a valid token may send (a sign-in form; bigger ones: 401).
    max_anonymous_body_bytes: int = Field(8 * 1024, ge=1024)
    #: Failed authentications from one client address in a minute before it is refused (429).
    max_failed_auths_per_minute: int = Field(30, ge=1)
    #: Seconds a checked token is believed without reading the database: a token revoked
    #: through another replica (or in the database) is refused here within this bound; through
    #: this replica at once. 0 turns the cache off.
    token_cache_seconds: float = Field(2.0, ge=0, le=60)
    #: ``POST /jobs`` and ``GET /jobs/{id}/stream`` answered ahead of the router, with the same
    #: answers and less CPU (api/thin_endpoints.py); off: through FastAPI's routes.
    thin_endpoints: bool = True
    #: Reverse proxies whose ``X-Forwarded-For`` / ``X-Forwarded-Proto`` are believed: comma-
    #: separated addresses or networks (``10.0.0.0/8``), or ``*``. Empty (the default): none,
    #: every request is the address it comes from. Behind nginx, name nginx's address, so the
    #: failed-authentication limit counts per client rather than for the proxy.
    forwarded_allow_ips: str = ""
    #: What one user may keep stored: program sources, job inputs and sources, results,
    #: interim results and logs (bytes as stored); a submit or upload past it is refused.
    max_stored_bytes_per_user: int = Field(1024**3, ge=1024)
    #: Finished jobs (with their results, interim results and logs) are deleted this many
    #: days after they ended; 0 keeps them until their owner deletes them.
    job_retention_days: float = Field(0.0, ge=0)
    #: Also save the admin account in the local account file on first start.
    save_admin_account: bool = True
    #: A catalogue directory (``runtime/``) to publish at every start, public under bare names.
    catalogue_dir: Path | None = None
    #: Confine every job (own uid, hidden server files, no network, limits); see docs/security.md.
    sandbox: bool = True
    #: Jobs run as uid ``sandbox_uid_base + slot`` when the server runs as root.
    sandbox_uid_base: int = Field(200_000, ge=1000)
    #: Address-space limit of a job's processes (bytes); numpy/Aer allocations fail beyond it.
    sandbox_max_memory_bytes: int = Field(4 * 1024**3, ge=256 * 1024**2)
    #: Processes and threads a job may have at once (Aer's OpenMP threads count).
    sandbox_max_processes: int = Field(256, ge=8)
    #: Largest file a job may write (bytes).
    sandbox_max_file_bytes: int = Field(1024**3, ge=1024)
    sandbox_max_open_files: int = Field(1024, ge=64)
    #: Let jobs use the network (off: a new network namespace with no usable interface).
    sandbox_allow_network: bool = False
    #: A cgroup per job where the server may create one (cgroup v2 delegated, or v1 as root).
    sandbox_cgroups: bool = True
    #: Memory of all of a job's processes together, its scratch files included (cgroup).
    sandbox_max_job_memory_bytes: int = Field(4 * 1024**3, ge=64 * 1024**2)
    #: The job's CPU share against other jobs, 1-10000 (100: an equal share).
    sandbox_cpu_weight: int = Field(100, ge=1, le=10000)
    #: One size cap for the job's working directory, /tmp, /var/tmp and /dev/shm together.
    sandbox_max_scratch_bytes: int = Field(1024**3, ge=1024**2)
    #: Idle workers, forked from a zygote that imported qiskit, waiting already sandboxed;
    #: 0 starts a fresh Python process per job (slower by about a second or two per job).
    worker_pool_size: int = Field(2, ge=0, le=64)
    #: Modules the zygote imports before it forks workers (missing ones are skipped).
    worker_preload: tuple[str, ...] = DEFAULT_PRELOAD
    #: Where jobs run: ``local`` (worker processes on this machine) or ``ray`` (a Ray cluster).
    executor: Literal["local", "ray"] = "local"
    #: The Ray cluster's address (``HOST:PORT`` of its head) for ``executor = ray``.
    ray_address: str | None = None
    #: Ray namespace of the qruntime agents; the replicas of one service share it.
    ray_namespace: str = Field("qruntime", min_length=1, max_length=64)
    #: How often a replica reads the Ray nodes' free resources (it claims jobs by them).
    ray_watch_seconds: float = Field(2.0, gt=0, le=300)
    #: The database URL the Ray agents store jobs' events with, best a role that may touch only
    #: the job tables (docs/deployment.md); None: the replica's own URL. It travels to every
    #: Ray node, so an environment variable only (QRUNTIME_RAY_AGENT_DATABASE_URL), no flag.
    ray_agent_database_url: str | None = None

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _trusted_proxies(cls, value: str) -> str:
        entries = [entry.strip() for entry in value.split(",") if entry.strip()]
        for entry in entries:
            if entry == "*":
                continue
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is no IP address or network (QRUNTIME_FORWARDED_ALLOW_IPS takes "
                    "e.g. 127.0.0.1,10.0.0.0/8 or *)"
                ) from None
        return ",".join(entries)

    @model_validator(mode="after")
    def _lease_outlives_heartbeats(self) -> Settings:
        if self.replica_lease_seconds < 2 * self.replica_heartbeat_seconds:
            raise ValueError(
                f"replica_lease_seconds ({self.replica_lease_seconds:g}) must be at least twice "
                f"replica_heartbeat_seconds ({self.replica_heartbeat_seconds:g}), or one late "
                "heartbeat would hand a live replica's jobs to another"
            )
        return self

    def warm_pool(self) -> WarmPoolConfig | None:
        if self.worker_pool_size == 0:
            return None
        return WarmPoolConfig(size=self.worker_pool_size, preload=self.worker_preload)

    def job_limits(self) -> JobLimits:
        return JobLimits(
            max_interim_results=self.max_interim_results,
            max_interim_bytes=self.max_interim_bytes,
            max_interim_rate=self.max_interim_rate,
            max_result_bytes=self.max_result_bytes,
        )

    def _hidden_paths(self) -> dict[str, Path]:
        """What jobs must not see, by the setting that names it; a home directory of ``/``
        (some containers) cannot be hidden and is left out, the other two refuse to start."""
        paths = {
            "QRUNTIME_DATA_DIR (--data-dir)": self.data_dir.resolve(),
            "QRUNTIME_ACCOUNTS_FILE": accounts_file().parent,
        }
        if hidden_path_problem(Path.home()) is None:
            paths["HOME"] = Path.home()
        return paths

    def sandbox_problems(self) -> list[str]:
        """Settings the sandbox cannot honour (a data dir or account file in ``/etc``...);
        ``qruntime serve`` refuses to start on them rather than run every job broken."""
        if not self.sandbox:
            return []
        problems = []
        for setting, path in self._hidden_paths().items():
            problem = hidden_path_problem(path)
            if problem is not None:
                problems.append(
                    f"{setting} puts the server's own files in {path}: {problem}; "
                    "give them a directory of their own"
                )
        return problems

    def sandbox_config(self) -> SandboxConfig:
        """The executor's sandbox: the data dir, the account file's dir and home are hidden."""
        hidden = tuple(self._hidden_paths().values())
        return SandboxConfig(
            enabled=self.sandbox,
            uid_base=self.sandbox_uid_base,
            max_address_space_bytes=self.sandbox_max_memory_bytes,
            max_processes=self.sandbox_max_processes,
            max_file_bytes=self.sandbox_max_file_bytes,
            max_open_files=self.sandbox_max_open_files,
            allow_network=self.sandbox_allow_network,
            hidden_paths=hidden,
            cgroups=self.sandbox_cgroups,
            max_job_memory_bytes=self.sandbox_max_job_memory_bytes,
            cpu_weight=self.sandbox_cpu_weight,
            max_scratch_bytes=self.sandbox_max_scratch_bytes,
        )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'qruntime.db').resolve()}"

    @property
    def replica_url(self) -> str:
        """How other machines reach this server: its host name when it binds every interface."""
        if self.host in ("0.0.0.0", "::", ""):
            return f"{self._scheme}://{socket.gethostname()}:{self.port}"
        return self.public_url

    @property
    def _scheme(self) -> str:
        return "https" if self.tls_certfile else "http"

    @property
    def public_url(self) -> str:
        """The URL clients on this machine use to reach the server."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"{self._scheme}://{host}:{self.port}"
