"""The wired services, as the pages get them (the API has its own twin in ``api/deps.py``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from qruntime.service.container import Services


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]
