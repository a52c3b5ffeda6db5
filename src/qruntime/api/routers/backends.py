"""``/backends``: the simulators jobs can run on."""

from __future__ import annotations

from fastapi import APIRouter

from qruntime.api.deps import CurrentUser, ServicesDep
from qruntime.api.errors import AUTHENTICATED, error_responses
from qruntime.api.schemas import BackendsPublic
from qruntime.domain.errors import NotFoundError

router = APIRouter(prefix="/backends", tags=["backends"], responses=AUTHENTICATED)


@router.get("")
def list_backends(caller: CurrentUser, services: ServicesDep) -> BackendsPublic:
    return BackendsPublic(backends=[info.to_json() for info in services.registry.infos()])


@router.get("/{name}", responses=error_responses(404))
def get_backend(name: str, caller: CurrentUser, services: ServicesDep) -> dict:
    if name not in services.registry:
        raise NotFoundError("backend", name)
    return services.registry.info(name).to_json()
