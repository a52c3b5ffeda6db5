"""``RuntimeService``: the SDK entry point for programs, jobs and backends on one server."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from weakref import WeakSet

import httpx

from qruntime.accounts import Account, AccountNotFoundError, load_account_config
from qruntime.accounts import save_account as _save_account
from qruntime.client.exceptions import RuntimeInvalidInputsError
from qruntime.client.job import RuntimeJob
from qruntime.client.program import ParameterNamespace, RuntimeProgram
from qruntime.client.sessions import SessionCalls, SessionInfo
from qruntime.client.stream import JobEventStream, StreamFollower, StreamOptions
from qruntime.client.transport import ApiClient
from qruntime.client.uploads import (
    MetadataArg,
    encode_source,
    metadata_changes,
    read_metadata,
    read_source,
    validated_patch,
)
from qruntime.client.users import UserAdmin
from qruntime.client.wire import Decoder
from qruntime.domain.errors import Problem, SerializationError
from qruntime.serialization import encode

__all__ = ["DEFAULT_BACKEND", "BackendInfo", "RuntimeService"]

DEFAULT_BACKEND = "aer_simulator"
URL_ENV = "QRUNTIME_URL"
TOKEN_ENV = "QRUNTIME_TOKEN"
_OPTION_KEYS = ("backend_name", "backend")


@dataclass(frozen=True)
class BackendInfo:
    """A backend as ``GET /backends`` lists it."""

    name: str
    num_qubits: int
    description: str = ""
    basis_gates: tuple[str, ...] = ()
    #: Number of directed coupling-map edges; None means all-to-all connectivity.
    coupling_map_edges: int | None = None
    noisy: bool = False
    simulator: bool = True
    device: str | None = None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> BackendInfo:
        edges = body.get("coupling_map_edges")
        return cls(
            name=body["name"],
            num_qubits=int(body.get("num_qubits") or 0),
            description=body.get("description") or "",
            basis_gates=tuple(body.get("basis_gates") or ()),
            coupling_map_edges=None if edges is None else int(edges),
            noisy=bool(body.get("noisy", False)),
            simulator=bool(body.get("simulator", True)),
            device=body.get("device"),
        )


class RuntimeService:
    """Upload, list and run runtime programs on a qruntime server.

    Credentials: explicit ``url``/``token`` first, then the saved account ``name`` when given,
    else ``QRUNTIME_URL``/``QRUNTIME_TOKEN``, else the default saved account.
    """

    _PAGE_SIZE = 100

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        name: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
    ) -> None:
        url, token, account = _resolve_credentials(url, token, name)
        self._api = ApiClient(
            url, token, transport=transport, timeout=timeout, account_name=account
        )
        self._stream_options = StreamOptions()
        self._followers: WeakSet[StreamFollower] = WeakSet()
        self._programs: dict[str, RuntimeProgram] = {}
        self._program_list: list[RuntimeProgram] = []
        self._program_total: int | None = None

    @property
    def url(self) -> str:
        return self._api.url

    @staticmethod
    def save_account(
        url: str,
        token: str,
        name: str | None = None,
        overwrite: bool = False,
        set_default: bool = True,
    ) -> Account:
        """Save credentials to the local account file (mode 0600) for later sessions."""
        return _save_account(url, token, name=name, overwrite=overwrite, set_default=set_default)

    def close(self) -> None:
        """Stop every result stream this service started and close its connections."""
        for follower in list(self._followers):
            follower.stop()
        self._api.close()

    def __enter__(self) -> RuntimeService:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RuntimeService({self.url!r})>"

    # --- programs -------------------------------------------------------------------------

    def upload_program(
        self,
        data: str | bytes | Path,
        metadata: MetadataArg = None,
        *,
        bare_name: bool = False,
    ) -> str:
        """Upload a program (source text or a ``.py`` path) and return its id."""
        source, path = read_source(data)
        meta = read_metadata(metadata, path)
        body = {"data": encode_source(source), "metadata": meta, "bare_name": bare_name}
        program = RuntimeProgram.from_json(
            self._api.request("POST", "/programs", resource="program", json=body).json()
        )
        self._forget_list()
        self._programs[program.program_id] = program
        return program.program_id

    def update_program(
        self,
        program_id: str,
        data: str | bytes | Path | None = None,
        metadata: MetadataArg = None,
        name: str | None = None,
        description: str | None = None,
        max_execution_time: int | None = None,
        spec: dict[str, Any] | None = None,
    ) -> None:
        """Replace a program's source and/or change its metadata; kwargs override ``metadata``."""
        explicit = {
            "name": name,
            "description": description,
            "max_execution_time": max_execution_time,
            "spec": spec,
        }
        changes, spec_updates = metadata_changes(metadata, explicit)
        if data is None and not changes and not spec_updates:
            raise ValueError(
                "nothing to update: pass data, metadata, name, description, "
                "max_execution_time or spec"
            )
        source = read_source(data)[0] if data is not None else None
        is_public = changes.pop("is_public", None)
        patch = None
        if changes or spec_updates:
            current = self.program(program_id, refresh=True).metadata
            patch = validated_patch(current, changes, spec_updates)
        path = f"/programs/{program_id}"
        if source is not None:
            body = {"data": encode_source(source)}
            self._api.request("PUT", f"{path}/data", resource="program", json=body)
        if patch:
            self._api.request("PATCH", path, resource="program", json=patch)
        if is_public is not None:
            self.set_program_visibility(program_id, bool(is_public))
        self._forget(program_id)

    def program(self, program_id: str, refresh: bool = False) -> RuntimeProgram:
        """One program, from the cache unless ``refresh``."""
        if refresh or program_id not in self._programs:
            body = self._api.get_json(f"/programs/{program_id}", resource="program")
            self._programs[program_id] = RuntimeProgram.from_json(body)
        return self._programs[program_id]

    def programs(
        self, refresh: bool = False, limit: int | None = 20, skip: int = 0
    ) -> list[RuntimeProgram]:
        """Programs visible to you, ordered by name; ``limit=None`` returns all of them."""
        if refresh:
            self._forget_list()
        end = None if limit is None else skip + limit
        while not self._list_covers(end):
            have = len(self._program_list)
            page_size = self._PAGE_SIZE if end is None else max(1, end - have)
            body = self._api.get_json("/programs", limit=min(page_size, 1000), offset=have)
            page = [RuntimeProgram.from_json(item) for item in body.get("programs", [])]
            self._program_list.extend(page)
            self._program_total = int(body.get("total", len(self._program_list)))
            if not page:
                self._program_total = len(self._program_list)
            for program in page:
                self._programs.setdefault(program.program_id, program)
        return self._program_list[skip:end]

    def pprint_programs(
        self, refresh: bool = False, detailed: bool = False, limit: int | None = 20, skip: int = 0
    ) -> None:
        """Print programs: id, name and description, or everything when ``detailed``."""
        for program in self.programs(refresh, limit, skip):
            if detailed:
                print(str(program))
            else:
                print(f"{program.program_id}:")
                print(f"  Name: {program.name}")
                print(f"  Description: {program.description}")

    def delete_program(self, program_id: str) -> None:
        self._api.request("DELETE", f"/programs/{program_id}", resource="program")
        self._forget(program_id)

    def set_program_visibility(self, program_id: str, public: bool) -> None:
        """Publish a program (``public=True``) or make it private again."""
        path = f"/programs/{program_id}/{'public' if public else 'private'}"
        body = self._api.request("PUT", path, resource="program").json()
        self._forget_list()
        self._programs[program_id] = RuntimeProgram.from_json(body)

    # --- jobs -----------------------------------------------------------------------------

    def run(
        self,
        program_id: str,
        inputs: dict[str, Any] | ParameterNamespace | None,
        options: dict[str, Any] | None = None,
        callback: Callable[[str, Any], None] | None = None,
        result_decoder: Decoder | None = None,
        *,
        max_execution_time: int | None = None,
        session_id: str | None = None,
    ) -> RuntimeJob:
        """Start a job (in your session or batch ``session_id``, on its backend);
        ``callback(job_id, interim_result)`` gets each interim result."""
        if isinstance(inputs, ParameterNamespace):
            inputs.validate()
            inputs = inputs.to_dict()
        elif inputs is None:
            inputs = {}
        body = {
            "program_id": program_id,
            "backend": _backend_from(options),
            "inputs": _encode_inputs(inputs),
            "max_execution_time": max_execution_time,
        }
        if session_id is not None:
            body["session_id"] = session_id
        response = self._api.request("POST", "/jobs", resource="program", json=body)
        job = self._job(response.json(), result_decoder)
        if callback is not None:
            job.stream_results(callback)
        return job

    def job(self, job_id: str) -> RuntimeJob:
        return self._job(self._api.get_json(f"/jobs/{job_id}", resource="job"))

    def jobs(
        self,
        limit: int | None = 10,
        skip: int = 0,
        pending: bool | None = None,
        program_id: str | None = None,
    ) -> list[RuntimeJob]:
        """Your jobs, newest first; ``pending`` True: queued or running, False: finished."""
        flag = None if pending is None else str(pending).lower()
        found: list[RuntimeJob] = []
        while limit is None or len(found) < limit:
            want = self._PAGE_SIZE if limit is None else limit - len(found)
            body = self._api.get_json(
                "/jobs",
                limit=min(want, 1000),
                offset=skip + len(found),
                pending=flag,
                program_id=program_id,
            )
            page = body.get("jobs", [])
            found.extend(self._job(item) for item in page)
            if not page or skip + len(found) >= int(body.get("total", 0)):
                break
        return found

    def delete_job(self, job_id: str) -> None:
        self._api.request("DELETE", f"/jobs/{job_id}", resource="job")

    # --- sessions and batches -----------------------------------------------------------

    def open_session(
        self, mode: str = "session", backend: str = DEFAULT_BACKEND, max_time: int | None = None
    ) -> SessionInfo:
        """A new session (``mode="session"``: one job after another) or batch; pass its id to
        :meth:`run` as ``session_id``. ``max_time`` counts from its first job's start."""
        return SessionCalls(self._api).open(mode, backend, max_time)

    def session(self, session_id: str) -> SessionInfo:
        """One of your sessions or batches, with its jobs in submission order."""
        return SessionCalls(self._api).get(session_id)

    def sessions(self, limit: int | None = 10, skip: int = 0) -> list[SessionInfo]:
        """Your sessions and batches (admins: everyone's), newest first; None: the latest
        1000."""
        return SessionCalls(self._api).list(min(limit or 1000, 1000), skip)[0]

    def close_session(self, session_id: str) -> SessionInfo:
        """Accept no new jobs; those queued and running still run."""
        return SessionCalls(self._api).end(session_id, "close")

    def cancel_session(self, session_id: str) -> SessionInfo:
        """Accept no new jobs and cancel its queued and running ones."""
        return SessionCalls(self._api).end(session_id, "cancel")

    def backends(self) -> list[BackendInfo]:
        body = self._api.get_json("/backends")
        return [BackendInfo.from_json(item) for item in body.get("backends", [])]

    def backend(self, name: str) -> BackendInfo:
        return BackendInfo.from_json(self._api.get_json(f"/backends/{name}", resource="backend"))

    def job_events(self, job_id: str, since: int = 0) -> JobEventStream:
        """A job's interim results after ``since`` and its status changes, up to the final one;
        resumes by itself across dropped connections."""
        return JobEventStream(self._api, job_id, since=since, options=self._stream_options)

    def environment(self) -> dict[str, Any]:
        """What jobs can import: ``python`` (its version) and ``packages`` (name, version)."""
        return dict(self._api.get_json("/environment"))

    def current_user(self) -> dict[str, Any]:
        """Who the token belongs to: ``name``, ``role``, ``creation_date``."""
        return dict(self._api.get_json("/users/me"))

    @property
    def users(self) -> UserAdmin:
        """User and token management (admins only)."""
        return UserAdmin(self._api)

    # --- internals ------------------------------------------------------------------------

    def _job(self, body: dict[str, Any], decoder: Decoder | None = None) -> RuntimeJob:
        return RuntimeJob(
            self._api,
            body,
            decoder=decoder,
            stream_options=self._stream_options,
            followers=self._followers,
        )

    def _list_covers(self, end: int | None) -> bool:
        if self._program_total is None:
            return False
        have = len(self._program_list)
        return have >= self._program_total or (end is not None and have >= end)

    def _forget(self, program_id: str) -> None:
        self._programs.pop(program_id, None)
        self._forget_list()

    def _forget_list(self) -> None:
        self._program_list = []
        self._program_total = None


def _resolve_credentials(
    url: str | None, token: str | None, name: str | None
) -> tuple[str, str | None, str | None]:
    """Pick url and token, and the saved account the url came from (if it did).

    A saved token is only ever sent to the url saved with it.
    """
    if name is not None:
        account = load_account_config(name)
        return url or account.url, token or account.token, None if url else account.name
    url = url or os.environ.get(URL_ENV) or None
    token = token or os.environ.get(TOKEN_ENV) or None
    if url is not None and token is not None:
        return url, token, None
    try:
        account = load_account_config()
    except AccountNotFoundError:
        if url is None:
            raise
        return url, token, None
    if url is None:
        return account.url, token or account.token, account.name
    same_server = account.url.rstrip("/") == url.rstrip("/")
    return url, token or (account.token if same_server else None), None


def _backend_from(options: dict[str, Any] | None) -> str:
    if options is None:
        return DEFAULT_BACKEND
    if not isinstance(options, dict):
        options = dict(vars(options))
    unknown = sorted(set(options) - set(_OPTION_KEYS))
    if unknown:
        raise ValueError(f"unknown run option(s) {unknown}; supported: {', '.join(_OPTION_KEYS)}")
    return options.get("backend_name") or options.get("backend") or DEFAULT_BACKEND


def _encode_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    """Inputs as JSON holding RuntimeEncoder envelopes; a value that cannot be sent is named."""
    if not isinstance(inputs, dict):
        raise TypeError(f"inputs must be a dict or a ParameterNamespace, got {type(inputs)}")
    problems = []
    encoded: dict[str, Any] = {}
    for key, value in inputs.items():
        try:
            encoded[key] = json.loads(encode(value))
        except (SerializationError, TypeError, ValueError) as exc:
            problems.append(Problem(f"inputs.{key}", str(exc)))
    if problems:
        lines = "; ".join(str(p) for p in problems)
        raise RuntimeInvalidInputsError(f"invalid job inputs: {lines}", problems=problems)
    return encoded
