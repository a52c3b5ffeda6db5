"""Backend pages: every backend's size and gates; one backend's coupling map and noise."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from qruntime.domain.errors import NotFoundError
from qruntime.web.auth import PageCaller
from qruntime.web.deps import ServicesDep
from qruntime.web.errors import PageRoute
from qruntime.web.templating import render

router = APIRouter(prefix="/ui/backends", route_class=PageRoute, include_in_schema=False)


@router.get("")
def backends_page(request: Request, caller: PageCaller, services: ServicesDep) -> Response:
    context = {"backends": services.registry.infos(), "executor": services.executor_status()}
    return render(request, "backends.html", context)


@router.get("/{name}")
def backend_page(
    request: Request, name: str, caller: PageCaller, services: ServicesDep
) -> Response:
    if name not in services.registry:
        raise NotFoundError("backend", name)
    detail = request.app.state.backend_details.get(name)
    return render(request, "backend.html", {"detail": detail, "info": detail.info})
