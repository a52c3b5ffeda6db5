"""Jinja2 templates, their filters, and the headers every dashboard page carries."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from qruntime import __version__
from qruntime.domain.instances import instance_crn

TEMPLATES_DIR = Path(__file__).parent / "templates"

#: No inline scripts and nothing from elsewhere; Plotly adds <style> elements, hence the
#: inline styles. No framing, so a form cannot be clicked from under another site's page.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def when(moment: datetime | None) -> str:
    """A stored UTC time as people read it; empty for "not yet"."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(start: datetime | None, end: datetime | None) -> str:
    if start is None:
        return ""
    seconds = ((end or datetime.now(UTC)) - start).total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False, ensure_ascii=False)


templates = Jinja2Templates(directory=TEMPLATES_DIR)
templates.env.filters.update(when=when, pretty_json=pretty_json)
templates.env.globals.update(duration=duration, version=__version__, instance_crn=instance_crn)


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, *, status_code: int = 200
) -> HTMLResponse:
    """Render a page with the signed-in caller and the form token of their session, if any."""
    session = getattr(request.state, "session", None)
    page = {
        "caller": session.caller if session else None,
        "csrf_token": session.form_token if session else "",
        **(context or {}),
    }
    response = templates.TemplateResponse(request, name, page, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response
