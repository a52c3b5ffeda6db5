"""``GET /health``: liveness for operators and for clients waiting for a server to start."""

from __future__ import annotations

from fastapi import APIRouter

from qruntime import __version__
from qruntime.api.deps import ServicesDep
from qruntime.api.schemas import Health, ReplicaPublic, StreamsStatus

router = APIRouter(tags=["health"])


@router.get("/health")
def health(services: ServicesDep) -> Health:
    return Health(
        status="ok",
        version=__version__,
        database=services.db.dialect,
        sandbox=services.sandbox_report(),
        executor=services.executor_status(),
        streams=StreamsStatus(**services.streams.status()),
        replica=services.replicas.identity.id,
        replicas=[ReplicaPublic.of(replica) for replica in services.replicas.list()],
    )
