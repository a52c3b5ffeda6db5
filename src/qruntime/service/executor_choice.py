"""Which executor a server runs jobs with, built from its settings."""

from __future__ import annotations

import importlib.util

from qruntime.execution import Executor, LocalExecutor, LocalExecutorConfig
from qruntime.service.recording_sink import DatabaseSinkFactory
from qruntime.settings import Settings


def executor_problem(settings: Settings) -> str | None:
    """Why the configured executor cannot work here; None when it can."""
    if settings.executor != "ray":
        return None
    if not settings.ray_address:
        return "--executor ray needs the Ray head's address (--ray-address / QRUNTIME_RAY_ADDRESS)"
    if not settings.resolved_database_url.startswith("postgresql"):
        return (
            "--executor ray needs a PostgreSQL database (--database-url postgresql+psycopg://...): "
            "jobs on other machines store their events in it"
        )
    agent_url = settings.ray_agent_database_url
    if agent_url is not None and not agent_url.startswith("postgresql"):
        return (
            "QRUNTIME_RAY_AGENT_DATABASE_URL must be a PostgreSQL URL (postgresql+psycopg://...) "
            "of the replicas' database"
        )
    if importlib.util.find_spec("ray") is None:
        return "--executor ray needs Ray: pip install 'qruntime[ray]'"
    return None


def build_executor(settings: Settings) -> Executor:
    local = LocalExecutorConfig(
        sandbox=settings.sandbox_config(),
        limits=settings.job_limits(),
        pool=settings.warm_pool(),
    )
    if settings.executor != "ray":
        return LocalExecutor(local)
    problem = executor_problem(settings)
    if problem is not None:
        raise ValueError(problem)
    from qruntime.execution.ray_executor import RayExecutor, RayExecutorConfig

    assert settings.ray_address is not None
    return RayExecutor(
        RayExecutorConfig(
            settings.ray_address,
            namespace=settings.ray_namespace,
            agent=local,
            watch_seconds=settings.ray_watch_seconds,
        ),
        DatabaseSinkFactory(agent_database_url(settings), settings.max_log_bytes),
    )


def agent_database_url(settings: Settings) -> str:
    """What the Ray agents connect with: they store job events, nothing else, so an operator
    gives them a role limited to the job tables; the replica's own URL only if none is set."""
    return settings.ray_agent_database_url or settings.resolved_database_url
