"""The cluster page: the replicas serving this database, with their heartbeats and jobs.

Hosts, pids and URLs are for admins only, as in ``/health``: they map the deployment."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from qruntime.web.auth import PageCaller
from qruntime.web.deps import ServicesDep
from qruntime.web.errors import PageRoute
from qruntime.web.templating import render

router = APIRouter(prefix="/ui/cluster", route_class=PageRoute, include_in_schema=False)


@router.get("")
def cluster_page(request: Request, caller: PageCaller, services: ServicesDep) -> Response:
    context = {
        "replicas": services.replicas.list(),
        "this_replica": services.replicas.identity.id,
        "database": services.db.dialect,
        "admin": caller.is_admin,
    }
    return render(request, "cluster.html", context)
