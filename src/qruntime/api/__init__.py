"""HTTP API: thin FastAPI routers over the service layer."""

from qruntime.api.app import create_app

__all__ = ["create_app"]
