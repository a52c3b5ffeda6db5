"""Helpers for the fault tests: stream readers that survive drops, and database snapshots."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, connect_sse

from qruntime.storage import Database, JobRepository, sqlite_url
from server_harness import ServerProcess

#: How long a stream reader keeps reconnecting before it gives up (a restart takes seconds).
RECONNECT_GIVE_UP = 120.0


@dataclass
class StoredState:
    status: str
    reason: str | None
    error_message: str | None
    interims: list[tuple[int, Any]]


def database_url(server: ServerProcess) -> str:
    return server.database_url or sqlite_url(server.data_dir / "qruntime.db")


def snapshot_jobs(server: ServerProcess, job_ids: Iterable[str]) -> dict[str, StoredState]:
    """Each job's status and interim results, read straight from the database (for a server
    that is down: what the killed process left behind)."""
    database = Database(database_url(server))
    try:
        with database.session(readonly=True) as session:
            jobs = JobRepository(session)
            states = {}
            for job_id in job_ids:
                job = jobs.get(job_id)
                assert job is not None, f"job {job_id} is missing from the database"
                states[job_id] = StoredState(
                    str(job.status),
                    str(job.reason) if job.reason is not None else None,
                    job.error_message,
                    [(i.seq, json.loads(i.data)) for i in jobs.interims(job_id)],
                )
            return states
    finally:
        database.dispose()


def api_interims(client: httpx.Client, job_id: str) -> list[tuple[int, Any]]:
    response = client.get(f"/jobs/{job_id}/interim_results")
    assert response.status_code == 200, response.text
    return [(i["seq"], i["data"]) for i in response.json()["interim_results"]]


@dataclass
class RawStreamReader:
    """Follows ``GET /jobs/{id}/stream`` on a thread with plain httpx, reconnecting with
    ``Last-Event-ID`` after any drop, until the ``final`` event.

    It keeps every event exactly as received and never filters duplicates, so the events
    show what the server sent.
    """

    base_url: str
    token: str
    job_id: str
    events: list[ServerSentEvent] = field(default_factory=list)
    connections: int = 0
    drops: list[str] = field(default_factory=list)
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def start(self) -> RawStreamReader:
        threading.Thread(target=self._run, name=f"raw-{self.job_id}", daemon=True).start()
        return self

    @property
    def final(self) -> dict[str, Any] | None:
        finals = [e.json() for e in self.events if e.event == "final"]
        return finals[-1] if finals else None

    def interims(self) -> list[tuple[int, Any]]:
        return [(e.json()["seq"], e.json()["data"]) for e in self.events if e.event == "interim"]

    def _last_seq(self) -> int:
        seqs = [int(e.id) for e in self.events if e.event == "interim"]
        return seqs[-1] if seqs else 0

    def _run(self) -> None:
        deadline = time.monotonic() + RECONNECT_GIVE_UP
        headers = {"Authorization": f"Bearer {self.token}"}
        timeout = httpx.Timeout(30.0, read=60.0)
        try:
            with httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout) as client:
                while self.final is None:
                    if time.monotonic() > deadline:
                        raise AssertionError(f"no final event after {RECONNECT_GIVE_UP:g} s")
                    last = self._last_seq()
                    resume = {"Last-Event-ID": str(last)} if last else {}
                    try:
                        with connect_sse(
                            client, "GET", f"/jobs/{self.job_id}/stream", headers=resume
                        ) as source:
                            self.connections += 1
                            status = source.response.status_code
                            assert status == 200, (status, source.response.read())
                            for event in source.iter_sse():
                                self.events.append(event)
                                if event.event == "final":
                                    return
                        self.drops.append("the stream ended without a final event")
                    except httpx.TransportError as exc:
                        self.drops.append(f"{type(exc).__name__}: {exc}")
                    time.sleep(0.1)
        except BaseException as exc:  # reported by the test through .error
            self.error = exc
        finally:
            self.done.set()


def assert_complete(interims: list[tuple[int, Any]], count: int | None = None) -> None:
    """Interim results of ``slow_publisher``: seq 1..n in order, each ``{"i": seq - 1}``."""
    expected = len(interims) if count is None else count
    assert interims == [(k + 1, {"i": k}) for k in range(expected)], interims
