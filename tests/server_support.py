"""Helpers for the tests that drive a real ``qruntime serve`` process over raw HTTP.

Only ``httpx`` and ``httpx_sse`` talk to the server here: these tests check the REST contract
in ``docs/api.md``, not the SDK.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, connect_sse

from server_harness import ServerProcess

PROGRAMS = Path(__file__).resolve().parent / "fixtures" / "programs"
TERMINAL = ("DONE", "ERROR", "CANCELLED")
JOB_TIMEOUT = 90.0


# --- servers and clients ---------------------------------------------------------------------


@contextmanager
def running_server(base: Path, **options: Any) -> Iterator[ServerProcess]:
    """A started server under ``base``; always stopped (and its log kept in ``base``)."""
    accounts_file = options.pop("accounts_file", base / "accounts.json")
    server = ServerProcess(data_dir=base / "data", accounts_file=accounts_file, **options)
    try:
        server.start()
        yield server
    finally:
        server.stop()


class Clients:
    """Hands out authenticated clients for one server and closes them all at the end."""

    def __init__(self, server: ServerProcess):
        self.server = server
        self._open: list[httpx.Client] = []
        self._admin: httpx.Client | None = None

    def __call__(self, token: str | None = None) -> httpx.Client:
        client = self.server.client(token)
        self._open.append(client)
        return client

    def anonymous(self, headers: dict[str, str] | None = None) -> httpx.Client:
        client = httpx.Client(base_url=self.server.url, headers=headers or {}, timeout=60)
        self._open.append(client)
        return client

    def user(self, name: str, role: str = "user") -> httpx.Client:
        """Create ``name`` through the admin API and return a client with its first token."""
        return self(create_user(self.admin, name, role)["token"])

    @property
    def admin(self) -> httpx.Client:
        if self._admin is None:
            self._admin = self()
        return self._admin

    def close(self) -> None:
        for client in self._open:
            client.close()
        self._open.clear()
        self._admin = None


@contextmanager
def clients_for(server: ServerProcess) -> Iterator[Clients]:
    clients = Clients(server)
    try:
        yield clients
    finally:
        clients.close()


def create_user(admin: httpx.Client, name: str, role: str = "user") -> dict[str, Any]:
    response = admin.post("/users", json={"name": name, "role": role})
    assert response.status_code == 201, response.text
    return response.json()


# --- programs and jobs -----------------------------------------------------------------------


def source_b64(module: str) -> str:
    return base64.b64encode((PROGRAMS / f"{module}.py").read_bytes()).decode()


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


def metadata(module: str, **overrides: Any) -> dict[str, Any]:
    """The fixture's ``<module>.json`` if there is one, else a minimal valid metadata dict."""
    path = PROGRAMS / f"{module}.json"
    if path.exists():
        meta = json.loads(path.read_text())
    else:
        meta = {
            "name": module.replace("_", "-"),
            "description": f"The {module} test fixture.",
            "max_execution_time": 300,
            "spec": {"parameters": {"type": "object"}},
        }
    meta = copy.deepcopy(meta)
    meta.update(overrides)
    return meta


def upload(
    client: httpx.Client, module: str, *, bare_name: bool = False, **overrides: Any
) -> dict[str, Any]:
    body = {"data": source_b64(module), "metadata": metadata(module, **overrides)}
    if bare_name:
        body["bare_name"] = True
    response = client.post("/programs", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def submit(
    client: httpx.Client,
    program_id: str,
    inputs: dict[str, Any] | None = None,
    *,
    backend: str = "aer_simulator",
    **extra: Any,
) -> dict[str, Any]:
    body = {"program_id": program_id, "backend": backend, "inputs": inputs or {}, **extra}
    response = client.post("/jobs", json=body)
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["status"] == "QUEUED", job
    return job


def get_job(client: httpx.Client, job_id: str) -> dict[str, Any]:
    response = client.get(f"/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()


def wait_until(
    check: Callable[[], Any],
    *,
    timeout: float = JOB_TIMEOUT,
    interval: float = 0.1,
    what: str = "condition",
    server: ServerProcess | None = None,
) -> Any:
    """Poll ``check`` until it returns something truthy; a generous deadline, not a benchmark."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    log = f"\n--- server log ---\n{server.log()}" if server is not None else ""
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last: {last!r}){log}")


def wait_for_job(
    client: httpx.Client,
    job_id: str,
    statuses: tuple[str, ...] = TERMINAL,
    *,
    timeout: float = JOB_TIMEOUT,
    server: ServerProcess | None = None,
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        job = get_job(client, job_id)
        return job if job["status"] in statuses else None

    return wait_until(
        reached, timeout=timeout, what=f"job {job_id} to be {'/'.join(statuses)}", server=server
    )


def run_to_end(
    client: httpx.Client,
    program_id: str,
    inputs: dict[str, Any] | None = None,
    *,
    server: ServerProcess | None = None,
    **extra: Any,
) -> dict[str, Any]:
    job = submit(client, program_id, inputs, **extra)
    return wait_for_job(client, job["id"], server=server)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The one error shape of docs/api.md; returns the ``error`` object."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "problems"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["problems"], list), error
    for problem in error["problems"]:
        assert set(problem) == {"location", "message"}, problem
    return error


def counts(admin: httpx.Client) -> tuple[int, int]:
    """How many programs and jobs the server stores (the admin sees everything)."""
    programs = admin.get("/programs", params={"limit": 0})
    jobs = admin.get("/jobs", params={"limit": 0})
    assert programs.status_code == 200 and jobs.status_code == 200, (programs.text, jobs.text)
    return programs.json()["total"], jobs.json()["total"]


# --- streams ---------------------------------------------------------------------------------


def read_stream(
    client: httpx.Client,
    job_id: str,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
    stop_after_interims: int | None = None,
) -> list[ServerSentEvent]:
    """Every event of ``GET /jobs/{id}/stream`` until the server ends it (after ``final``),
    or until ``stop_after_interims`` interim events arrived, when the client hangs up."""
    events: list[ServerSentEvent] = []
    interims = 0
    with connect_sse(
        client, "GET", f"/jobs/{job_id}/stream", headers=dict(headers or {}), params=params
    ) as source:
        assert source.response.status_code == 200, source.response.read()
        for event in source.iter_sse():
            events.append(event)
            if event.event == "interim":
                interims += 1
                if stop_after_interims is not None and interims >= stop_after_interims:
                    break
    return events


def interim_seqs(events: list[ServerSentEvent]) -> list[int]:
    """The ``seq`` of each interim event, after checking that its SSE ``id`` equals it."""
    seqs = []
    for event in events:
        if event.event != "interim":
            continue
        payload = event.json()
        assert set(payload) == {"seq", "data"}, payload
        assert event.id == str(payload["seq"]), (event.id, payload)
        seqs.append(payload["seq"])
    return seqs


def finals(events: list[ServerSentEvent]) -> list[dict[str, Any]]:
    return [event.json() for event in events if event.event == "final"]


# --- worker processes ------------------------------------------------------------------------


def job_supervisors(server: ServerProcess) -> list[int]:
    """The processes whose workers run the server's jobs: the server itself, or with the Ray
    executor its agents on the Ray nodes (as ``GET /health`` lists them)."""
    assert server.process is not None
    executor = server.health().get("executor", {})
    if executor.get("kind") == "ray":
        return [agent["pid"] for agent in executor.get("agents", [])]
    return [server.process.pid]


def worker_pids(*supervisor_pids: int) -> list[int]:
    """Live workers running a job for the supervisors with these pids (a server, or its Ray
    agents): spawned ones (the supervisor passes its pid as the last argument) and forked ones
    (named ``qruntime-job``, children of its zygote); other tests' workers and idle pool
    workers never match."""
    supervisors = {str(pid) for pid in supervisor_pids}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = [
                a.decode(errors="replace") for a in (entry / "cmdline").read_bytes().split(b"\0")
            ]
        except OSError:
            continue
        args = [a for a in args if a]
        if "qruntime.execution.worker" in args and args[-1] in supervisors:
            found.append(int(entry.name))  # spawned: python -m qruntime.execution.worker
        elif (
            _comm(entry.name) == "qruntime-job" and str(_parent(_parent(entry.name))) in supervisors
        ):
            found.append(int(entry.name))  # forked by the server's zygote, running a job
    return found


def _comm(pid: str | int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _parent(pid: str | int | None) -> int | None:
    if pid is None:
        return None
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    return None


# --- scenarios shared by the SQLite and PostgreSQL servers -----------------------------------


def stored_job_state(server: ServerProcess, job_id: str) -> tuple[str, list[tuple[int, Any]]]:
    """Read a job's status and interim results straight from the database while the server
    is down (the only way to see what the killed server left behind)."""
    from qruntime.storage import Database, JobRepository, sqlite_url

    database = Database(server.database_url or sqlite_url(server.data_dir / "qruntime.db"))
    try:
        with database.session(readonly=True) as session:
            jobs = JobRepository(session)
            job = jobs.get(job_id)
            assert job is not None, job_id
            interims = [(i.seq, json.loads(i.data)) for i in jobs.interims(job_id)]
            return str(job.status), interims
    finally:
        database.dispose()


def stored_bytes_of_job(server: ServerProcess, job_id: str) -> tuple[int, int]:
    """A job's ``stored_bytes`` and what its inputs, source, result, error message and interim
    results add up to (characters, as the writes count them): equal when the count is right."""
    from sqlalchemy import text

    from qruntime.storage import Database, sqlite_url

    database = Database(server.database_url or sqlite_url(server.data_dir / "qruntime.db"))
    query = text(
        "SELECT stored_bytes, length(inputs) + length(source) + coalesce(length(result), 0) "
        "+ coalesce(length(error_message), 0) + (SELECT coalesce(sum(length(data)), 0) "
        "FROM interim_results WHERE job_id = :id) FROM jobs WHERE id = :id"
    )
    try:
        with database.session(readonly=True) as session:
            counted, actual = session.execute(query, {"id": job_id}).one()
            return int(counted), int(actual)
    finally:
        database.dispose()


def check_run_and_stream(server: ServerProcess, client: httpx.Client) -> None:
    """Upload hello-world, run it to DONE, read its results, interim results and stream."""
    program = upload(client, "hello_world")
    job = run_to_end(client, program["id"], {"iterations": 2}, server=server)
    assert job["status"] == "DONE", job
    assert job["interim_count"] == 2
    assert client.get(f"/jobs/{job['id']}/results").json() == "All done!"
    stored = client.get(f"/jobs/{job['id']}/interim_results").json()["interim_results"]
    assert [i["seq"] for i in stored] == [1, 2]
    assert [i["data"]["iteration"] for i in stored] == [0, 1]
    events = read_stream(client, job["id"])
    assert interim_seqs(events) == [1, 2]
    assert [e.json()["data"] for e in events if e.event == "interim"] == [i["data"] for i in stored]
    done = {"status": "DONE", "reason": None, "error_message": None, "result": '"All done!"'}
    assert finals(events) == [done]
    assert interim_seqs(read_stream(client, job["id"], headers={"Last-Event-ID": "1"})) == [2]


def check_kill_and_restart(server: ServerProcess, client: httpx.Client) -> None:
    """SIGKILL a server (max_concurrent_jobs=1) with one job running and two queued, then
    restart it on the same database: the running job is ERROR/INTERRUPTED with its interim
    results intact, its worker died with the server, and the queued jobs run to DONE."""
    assert server.max_concurrent_jobs == 1
    publisher = upload(client, "slow_publisher")["id"]
    hello = upload(client, "hello_world")["id"]
    running = submit(client, publisher, {"n": 1000, "delay": 0.2})
    wait_until(
        lambda: get_job(client, running["id"])["interim_count"] >= 3,
        what="the publisher to publish 3 interim results",
        server=server,
    )
    queued = [submit(client, hello, {"iterations": 0}) for _ in range(2)]
    for job in queued:
        assert get_job(client, job["id"])["status"] == "QUEUED"
    assert server.process is not None
    server_pid = server.process.pid
    workers = worker_pids(server_pid)
    assert len(workers) == 1, (workers, server.log())

    server.kill()
    wait_until(
        lambda: not worker_pids(server_pid),
        timeout=15,
        what=f"worker {workers} to die with its server",
    )
    status, at_kill = stored_job_state(server, running["id"])
    assert status == "RUNNING", status
    assert len(at_kill) >= 3
    assert at_kill == [(k + 1, {"i": k}) for k in range(len(at_kill))]
    for job in queued:
        assert stored_job_state(server, job["id"]) == ("QUEUED", [])

    server.start()
    assert server.process.pid != server_pid
    interrupted = get_job(client, running["id"])
    assert interrupted["status"] == "ERROR", interrupted
    assert interrupted["reason"] == "INTERRUPTED", interrupted
    assert "server stopped" in (interrupted["error_message"] or ""), interrupted
    # One recovery, the lease keeper's, which knows the earlier run of this data directory.
    assert "since restarted from the same data directory" in interrupted["error_message"]
    assert server.log().count(running["id"]) == 1, server.log()
    assert interrupted["end_date"] is not None
    assert interrupted["interim_count"] == len(at_kill)
    counted, actual = stored_bytes_of_job(server, running["id"])
    assert counted == actual, (counted, actual)  # its end's message counted too

    def stored_interims() -> list[tuple[int, Any]]:
        body = client.get(f"/jobs/{running['id']}/interim_results").json()
        return [(i["seq"], i["data"]) for i in body["interim_results"]]

    assert stored_interims() == at_kill
    error = client.get(f"/jobs/{running['id']}/results")
    assert error.status_code == 409 and error.json()["error"]["code"] == "invalid_state"
    events = read_stream(client, running["id"])
    assert interim_seqs(events) == [seq for seq, _ in at_kill]
    [final] = finals(events)
    assert final["status"] == "ERROR" and final["reason"] == "INTERRUPTED", final

    for job in queued:
        done = wait_for_job(client, job["id"], server=server)
        assert done["status"] == "DONE", done
        assert client.get(f"/jobs/{job['id']}/results").json() == "All done!"
    # Well after the restart, the interrupted job has not gained a single interim result.
    time.sleep(1.0)
    assert stored_interims() == at_kill
    assert get_job(client, running["id"])["status"] == "ERROR"
    assert not worker_pids(server_pid)
