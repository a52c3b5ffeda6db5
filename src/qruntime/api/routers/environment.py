"""``/environment``: the Python packages jobs on this server can import."""

from __future__ import annotations

from fastapi import APIRouter

from qruntime.api.deps import CurrentUser
from qruntime.api.errors import AUTHENTICATED
from qruntime.api.schemas import EnvironmentPublic, PackagePublic
from qruntime.execution.environment import installed_packages, python_version

router = APIRouter(tags=["environment"], responses=AUTHENTICATED)


@router.get("/environment")
def environment(caller: CurrentUser) -> EnvironmentPublic:
    return EnvironmentPublic(
        python=python_version(),
        packages=[PackagePublic(name=n, version=v) for n, v in installed_packages()],
    )
