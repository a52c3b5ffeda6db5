"""Placeholder, replaced below."""

from fastapi import APIRouter

from qruntime.api.json_body import CheckedJsonRoute

router = APIRouter(route_class=CheckedJsonRoute)
