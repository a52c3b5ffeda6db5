"""Adds the dashboard to the API's app: its routes, static files and per-server secret."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from qruntime.web.backend_detail import BackendDetails
from qruntime.web.csrf import new_secret
from qruntime.web.routes import backends, cluster, home, jobs, programs, session, session_pages

STATIC_DIR = Path(__file__).parent / "static"


def install_dashboard(app: FastAPI) -> None:
    """Call after ``app.state.services`` is set; pages live under ``/ui``."""
    app.state.csrf_secret = new_secret()  # until the lifespan loads the database's shared one
    app.state.backend_details = BackendDetails(app.state.services.registry)
    for module in (home, session, programs, jobs, session_pages, backends, cluster):
        app.include_router(module.router)
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")
    app.include_router(home.fallback)
