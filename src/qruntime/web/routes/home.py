"""Where the bare server address leads, Plotly's script, and the dashboard's own 404 page."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, RedirectResponse

from qruntime.domain.errors import NotFoundError
from qruntime.web.auth import HOME
from qruntime.web.errors import PageRoute

router = APIRouter(route_class=PageRoute, include_in_schema=False)
#: Registered after every other dashboard route: any other ``/ui/...`` path.
fallback = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/")
@router.get("/ui")
@router.get("/ui/")
def home() -> Response:
    return RedirectResponse(HOME, status_code=307)


@router.get("/ui/vendor/plotly.min.js")
def plotly_js() -> Response:
    """The copy bundled in the ``plotly`` Python package: no CDN, works offline."""
    path = plotly_js_path()
    if path is None:
        raise NotFoundError("file", "plotly.min.js")
    headers = {"Cache-Control": "public, max-age=86400"}
    return FileResponse(path, media_type="text/javascript", headers=headers)


@fallback.get("/ui/{path:path}")
def not_found(request: Request, path: str) -> Response:
    raise NotFoundError("page", f"/ui/{path}")


@cache
def plotly_js_path() -> Path | None:
    """Found without importing ``plotly`` (its import pulls in much more than a file path)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"
    return path if path.is_file() else None
