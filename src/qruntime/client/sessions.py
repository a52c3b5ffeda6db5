"""Sessions and batches as the SDK shows them: ``RuntimeService.sessions()`` and friends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qruntime.client.transport import ApiClient


@dataclass(frozen=True)
class SessionJobInfo:
    """One job of a session, as ``GET /sessions/{id}`` lists it (in submission order)."""

    id: str
    program_id: str
    status: str
    reason: str | None = None
    start_date: str | None = None
    end_date: str | None = None


@dataclass(frozen=True)
class SessionInfo:
    """A session (one job after another) or batch (started in order, side by side)."""

    id: str
    mode: str
    backend: str
    state: str
    accepting_jobs: bool
    max_time: int
    creation_date: str
    owner: str = ""
    activation_date: str | None = None
    expiry_date: str | None = None
    job_count: int = 0
    pending_jobs: int = 0
    usage_seconds: float = 0.0
    #: Its jobs, when read one session at a time (``RuntimeService.session``).
    jobs: tuple[SessionJobInfo, ...] | None = field(default=None)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> SessionInfo:
        jobs = body.get("jobs")
        return cls(
            id=body["id"],
            mode=body["mode"],
            backend=body["backend"],
            state=body["state"],
            accepting_jobs=bool(body.get("accepting_jobs")),
            max_time=int(body["max_time"]),
            creation_date=body.get("creation_date") or "",
            owner=body.get("owner") or "",
            activation_date=body.get("activation_date"),
            expiry_date=body.get("expiry_date"),
            job_count=int(body.get("job_count") or 0),
            pending_jobs=int(body.get("pending_jobs") or 0),
            usage_seconds=float(body.get("usage_seconds") or 0.0),
            jobs=None
            if jobs is None
            else tuple(
                SessionJobInfo(
                    id=job["id"],
                    program_id=job["program_id"],
                    status=job["status"],
                    reason=job.get("reason"),
                    start_date=job.get("start_date"),
                    end_date=job.get("end_date"),
                )
                for job in jobs
            ),
        )


class SessionCalls:
    """The ``/sessions`` calls, behind RuntimeService's session methods."""

    def __init__(self, api: ApiClient):
        self._api = api

    def open(self, mode: str, backend: str, max_time: int | None) -> SessionInfo:
        body = {"mode": mode, "backend": backend, "max_time": max_time}
        response = self._api.request("POST", "/sessions", resource="backend", json=body)
        return SessionInfo.from_json(response.json())

    def get(self, session_id: str) -> SessionInfo:
        return SessionInfo.from_json(
            self._api.get_json(f"/sessions/{session_id}", resource="session")
        )

    def list(self, limit: int, offset: int) -> tuple[list[SessionInfo], int]:
        body = self._api.get_json("/sessions", limit=limit, offset=offset)
        found = [SessionInfo.from_json(item) for item in body.get("sessions", [])]
        return found, int(body.get("total", 0))

    def end(self, session_id: str, how: str) -> SessionInfo:
        """``how``: ``close`` (no new jobs) or ``cancel`` (and its pending jobs cancelled)."""
        response = self._api.request("POST", f"/sessions/{session_id}/{how}", resource="session")
        return SessionInfo.from_json(response.json())
