"""Server settings from flags and ``QRUNTIME_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_PORT = 8765


def _cpu_count() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


class Settings(BaseSettings):
    """Everything an operator can set; the defaults are the embedded single-machine setup."""

    model_config = SettingsConfigDict(env_prefix="QRUNTIME_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(DEFAULT_PORT, ge=0, le=65535)
    data_dir: Path = Path(".qruntime")
    #: SQLAlchemy URL; empty means SQLite (WAL) at ``<data_dir>/qruntime.db``.
    database_url: str | None = None
    max_concurrent_jobs: int = Field(default_factory=_cpu_count, ge=1)
    #: Jobs one user may have waiting; more are refused so one user cannot flood the queue.
    max_queued_jobs_per_user: int = Field(100, ge=1)
    max_source_bytes: int = Field(1024 * 1024, ge=1)
    max_inputs_bytes: int = Field(16 * 1024 * 1024, ge=1)
    #: Per-job cap on stored stdout/stderr; later lines are dropped and the log says so.
    max_log_bytes: int = Field(1024 * 1024, ge=1)
    #: Ceiling for any program's ``max_execution_time`` (seconds).
    max_execution_time_ceiling: int = Field(8 * 3600, ge=1)
    #: Seconds between keep-alive comments on idle event streams.
    stream_ping_seconds: float = Field(15.0, gt=0)
    #: Also save the admin account in the local account file on first start.
    save_admin_account: bool = True
    #: A catalogue directory (``runtime/``) to publish at every start, public under bare names.
    catalogue_dir: Path | None = None

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'qruntime.db').resolve()}"

    @property
    def public_url(self) -> str:
        """The URL clients on this machine use to reach the server."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"
