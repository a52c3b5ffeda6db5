"""RuntimeService against a fake server (httpx.MockTransport): programs, credentials, errors."""

import base64
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import qruntime
import qruntime.client
from qruntime.accounts import save_account
from qruntime.client import (
    BackendInfo,
    RuntimeBackendError,
    RuntimeBackendNotFound,
    RuntimeConnectionError,
    RuntimeDuplicateProgramError,
    RuntimeInvalidInputsError,
    RuntimeInvalidProgramError,
    RuntimeInvalidStateError,
    RuntimeJobNotFound,
    RuntimeNotAuthorizedError,
    RuntimeProgramNotFound,
    RuntimeRequestError,
    RuntimeServerError,
    RuntimeService,
    load_account,
)
from qruntime.client.transport import ApiClient

PROGRAMS = Path(__file__).parent.parent / "fixtures" / "programs"
URL = "http://qruntime.test"
TOKEN = "qrt_test"
NOW = "2021-07-02T13:45:13Z"


class FakeProgramServer:
    """Enough of docs/api.md's program endpoints, with a page size cap to exercise paging."""

    def __init__(self, page_cap: int = 3) -> None:
        self.programs: dict[str, dict] = {}
        self.requests: list[httpx.Request] = []
        self.page_cap = page_cap
        self._counter = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return error(401, "not_authenticated", "missing or unknown token")
        parts = request.url.path.strip("/").split("/")
        body = json.loads(request.content) if request.content else None
        if parts[0] == "backends":
            return httpx.Response(200, json={"backends": [backend_json()]})
        if parts == ["programs"] and request.method == "POST":
            return self.create(body)
        if parts == ["programs"]:
            limit = min(int(request.url.params["limit"]), self.page_cap)
            offset = int(request.url.params["offset"])
            ordered = sorted(self.programs.values(), key=lambda p: (p["name"], p["id"]))
            page = [{**p, "data": None} for p in ordered[offset : offset + limit]]
            return httpx.Response(200, json={"programs": page, "total": len(ordered)})
        program = self.programs.get(parts[1])
        if program is None:
            return error(404, "not_found", f"program {parts[1]!r} not found")
        if len(parts) == 3 and parts[2] in ("public", "private"):
            program["is_public"] = parts[2] == "public"
        elif len(parts) == 3 and parts[2] == "data":
            program["data"] = body["data"]
        elif request.method == "PATCH":
            program.update(body)
        elif request.method == "DELETE":
            del self.programs[parts[1]]
            return httpx.Response(204)
        return httpx.Response(200, json=program)

    def create(self, body: dict) -> httpx.Response:
        meta = body["metadata"]
        self._counter += 1
        program_id = meta["name"] if body["bare_name"] else f"{meta['name']}-{self._counter:06d}"
        if program_id in self.programs:
            return error(409, "duplicate", f"program id {program_id!r} is taken")
        self.programs[program_id] = {
            "id": program_id,
            "name": meta["name"],
            "description": meta.get("description", ""),
            "max_execution_time": meta["max_execution_time"],
            "version": meta.get("version"),
            "is_public": meta.get("is_public", False),
            "owner": "alice",
            "spec": meta.get("spec", {}),
            "creation_date": NOW,
            "update_date": NOW,
            "data": body["data"],
        }
        return httpx.Response(201, json=self.programs[program_id])

    def sent(self, method: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method]


def error(status: int, code: str, message: str, problems=()) -> httpx.Response:
    body = {"error": {"code": code, "message": message, "problems": list(problems)}}
    return httpx.Response(status, json=body)


def backend_json(name="aer_simulator") -> dict:
    return {
        "name": name,
        "description": "ideal simulator",
        "num_qubits": 30,
        "basis_gates": ["cx", "rz"],
        "coupling_map_edges": None,
        "noisy": False,
        "simulator": True,
        "device": None,
    }


@pytest.fixture(autouse=True)
def isolated_accounts(tmp_path, monkeypatch):
    monkeypatch.setenv("QRUNTIME_ACCOUNTS_FILE", str(tmp_path / "accounts.json"))
    monkeypatch.delenv("QRUNTIME_URL", raising=False)
    monkeypatch.delenv("QRUNTIME_TOKEN", raising=False)


@pytest.fixture
def server() -> FakeProgramServer:
    return FakeProgramServer()


@pytest.fixture
def service(server):
    with RuntimeService(URL, TOKEN, transport=httpx.MockTransport(server)) as svc:
        yield svc


# --- upload -----------------------------------------------------------------------------------


def test_upload_from_paths_sends_base64_source_and_metadata(service, server):
    program_id = service.upload_program(
        data=str(PROGRAMS / "hello_world.py"), metadata=str(PROGRAMS / "hello_world.json")
    )
    assert program_id.startswith("hello-world-")
    sent = json.loads(server.sent("POST")[0].content)
    assert base64.b64decode(sent["data"]).decode() == (PROGRAMS / "hello_world.py").read_text()
    assert sent["metadata"]["name"] == "hello-world" and sent["bare_name"] is False
    assert service.program(program_id).data.startswith((PROGRAMS / "hello_world.py").read_text())


def test_upload_from_text_and_dict_and_path_objects(service, server):
    meta = json.loads((PROGRAMS / "hello_world.json").read_text())
    source = "def main(backend, user_messenger, **kwargs):\n    return 1\n"
    first = service.upload_program(source, meta)
    second = service.upload_program(PROGRAMS / "hello_world.py", PROGRAMS / "hello_world.json")
    third = service.upload_program(PROGRAMS / "hello_world.py")  # metadata: the .json beside it
    assert len({first, second, third}) == 3
    assert base64.b64decode(json.loads(server.sent("POST")[0].content)["data"]).decode() == source


def test_bare_name_duplicate(service):
    service.upload_program(PROGRAMS / "hello_world.py", bare_name=True)
    with pytest.raises(RuntimeDuplicateProgramError, match="taken") as info:
        service.upload_program(PROGRAMS / "hello_world.py", bare_name=True)
    assert info.value.status_code == 409 and info.value.code == "duplicate"


@pytest.mark.parametrize(
    ("data", "metadata", "match"),
    [
        (PROGRAMS / "hello_world.py", {"name": "hello_world", "max_execution_time": 60}, "name"),
        (PROGRAMS / "hello_world.py", {"name": "ok"}, "max_execution_time"),
        (PROGRAMS / "no_main.py", PROGRAMS / "hello_world.json", "main"),
        ("def main(:\n", PROGRAMS / "hello_world.json", "syntax error"),
        ("def main(b, m):\n    pass\n", None, "metadata is required"),
    ],
)
def test_local_validation_fails_before_any_request(service, server, data, metadata, match):
    with pytest.raises(RuntimeInvalidProgramError, match=match) as info:
        service.upload_program(data, metadata)
    assert info.value.status_code is None and info.value.problems
    assert server.requests == []


def test_invalid_metadata_file_is_reported(service, server, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    with pytest.raises(RuntimeInvalidProgramError, match="not valid JSON"):
        service.upload_program(PROGRAMS / "hello_world.py", bad)
    assert server.requests == []


# --- listing, caching, printing ----------------------------------------------------------------


def upload_many(service, count: int) -> list[str]:
    meta = json.loads((PROGRAMS / "hello_world.json").read_text())
    ids = []
    for i in range(count):
        ids.append(
            service.upload_program(PROGRAMS / "hello_world.py", {**meta, "name": f"p{i:02d}"})
        )
    return ids


def test_limit_none_pages_through_everything(service, server):
    ids = upload_many(service, 8)
    listed = service.programs(limit=None)
    assert [p.program_id for p in listed] == sorted(ids)
    offsets = [int(r.url.params["offset"]) for r in server.sent("GET")]
    assert offsets == [0, 3, 6]


def test_limit_and_skip_and_cache(service, server):
    ids = upload_many(service, 5)
    assert [p.program_id for p in service.programs(limit=2, skip=1)] == sorted(ids)[1:3]
    requests = len(server.requests)
    assert [p.name for p in service.programs(limit=2)] == ["p00", "p01"]
    assert len(server.requests) == requests  # served from the cache
    service.programs(refresh=True, limit=2)
    assert len(server.requests) == requests + 1


def test_program_cache_and_refresh(service, server):
    (program_id,) = upload_many(service, 1)
    server.programs[program_id]["description"] = "changed on the server"
    assert service.program(program_id).description == "A sample runtime program."
    assert service.program(program_id, refresh=True).description == "changed on the server"


def test_pprint_programs_short_and_detailed(service, capsys):
    (program_id,) = upload_many(service, 1)
    service.pprint_programs(refresh=True)
    assert capsys.readouterr().out == (
        f"{program_id}:\n  Name: p00\n  Description: A sample runtime program.\n"
    )
    service.pprint_programs(detailed=True)
    assert "  Backend requirements:\n    Minimum number of qubits: 5\n" in capsys.readouterr().out


def test_update_delete_and_visibility(service, server):
    (program_id,) = upload_many(service, 1)
    service.update_program(program_id, description="New words.", max_execution_time=120)
    patch = json.loads(server.sent("PATCH")[-1].content)
    assert patch == {"description": "New words.", "max_execution_time": 120}
    assert service.program(program_id).description == "New words."

    service.update_program(program_id, data="def main(backend, user_messenger):\n    pass\n")
    assert server.sent("PUT")[-1].url.path == f"/programs/{program_id}/data"

    legacy = {"parameters": [{"name": "shots", "type": "int", "required": True}]}
    service.update_program(program_id, metadata=legacy)
    spec = json.loads(server.sent("PATCH")[-1].content)["spec"]
    assert spec["parameters"]["properties"] == {"shots": {"type": "integer"}}
    assert spec["backend_requirements"] == {"min_num_qubits": 5}  # rest of the spec kept

    with pytest.raises(RuntimeInvalidProgramError, match="max_execution_time"):
        service.update_program(program_id, max_execution_time=-5)
    with pytest.raises(ValueError, match="nothing to update"):
        service.update_program(program_id)

    service.set_program_visibility(program_id, True)
    assert service.program(program_id).is_public is True
    service.delete_program(program_id)
    with pytest.raises(RuntimeProgramNotFound, match="not found"):
        service.program(program_id)


def test_backends(service):
    (backend,) = service.backends()
    assert backend == BackendInfo.from_json(backend_json())
    assert backend.num_qubits == 30 and backend.basis_gates == ("cx", "rz")


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "call", "expected"),
    [
        (404, "not_found", lambda s: s.program("x"), RuntimeProgramNotFound),
        (404, "not_found", lambda s: s.job("x"), RuntimeJobNotFound),
        (404, "not_found", lambda s: s.backend("x"), RuntimeBackendNotFound),
        (404, "not_found", lambda s: s.run("x", {}), RuntimeProgramNotFound),
        (
            409,
            "duplicate",
            lambda s: s.set_program_visibility("x", True),
            RuntimeDuplicateProgramError,
        ),
        (409, "invalid_state", lambda s: s.delete_job("x"), RuntimeInvalidStateError),
        (401, "not_authenticated", lambda s: s.backends(), RuntimeNotAuthorizedError),
        (403, "forbidden", lambda s: s.delete_program("x"), RuntimeNotAuthorizedError),
        (400, "invalid_inputs", lambda s: s.run("x", {}), RuntimeInvalidInputsError),
        (400, "invalid_metadata", lambda s: s.delete_program("x"), RuntimeInvalidProgramError),
        (400, "unknown_backend", lambda s: s.run("x", {}), RuntimeBackendError),
        (400, "backend_requirements", lambda s: s.run("x", {}), RuntimeBackendError),
        (400, "bad_request", lambda s: s.backends(), RuntimeRequestError),
        (413, "too_large", lambda s: s.run("x", {}), RuntimeRequestError),
        (422, "bad_request", lambda s: s.run("x", {}), RuntimeRequestError),
        (500, "internal", lambda s: s.delete_job("x"), RuntimeServerError),
    ],
)
def test_error_mapping(status, code, call, expected):
    problems = [{"location": "inputs.iterations", "message": "-1 is less than the minimum of 0"}]
    message = f"server says {code}: iterations"

    def handler(request):
        return error(status, code, message, problems)

    transport = httpx.MockTransport(handler)
    with (
        RuntimeService(URL, TOKEN, transport=transport) as svc,
        pytest.raises(expected, match=f"server says {code}") as info,
    ):
        call(svc)
    assert (info.value.status_code, info.value.code) == (status, code)
    assert [str(p) for p in info.value.problems] == [
        "inputs.iterations: -1 is less than the minimum of 0"
    ]


def test_non_json_error_body_still_maps():
    def handler(request):
        return httpx.Response(404, text="<html>nope</html>")

    transport = httpx.MockTransport(handler)
    with (
        RuntimeService(URL, TOKEN, transport=transport) as svc,
        pytest.raises(RuntimeProgramNotFound, match=r"HTTP 404.*nope") as info,
    ):
        svc.program("x")
    assert info.value.code is None


def test_retries_idempotent_requests_only():
    answers = {"GET": [503, 502, 200], "POST": [503]}
    seen = []

    def handler(request):
        seen.append(request.method)
        status = answers[request.method].pop(0)
        return httpx.Response(status, json={"backends": []} if status == 200 else {})

    api = ApiClient(URL, TOKEN, transport=httpx.MockTransport(handler), backoff=0)
    try:
        assert api.get_json("/backends") == {"backends": []}
        with pytest.raises(RuntimeServerError):
            api.request("POST", "/jobs", json={})
    finally:
        api.close()
    assert seen == ["GET", "GET", "GET", "POST"]


def test_connection_errors_retry_when_safe_and_then_raise():
    attempts = []

    def handler(request):
        attempts.append(request.method)
        if request.method == "POST":
            raise httpx.ReadError("connection reset", request=request)
        raise httpx.ConnectError("connection refused", request=request)

    api = ApiClient(URL, TOKEN, transport=httpx.MockTransport(handler), retries=2, backoff=0)
    try:
        with pytest.raises(RuntimeConnectionError, match=r"cannot reach.*refused"):
            api.request("GET", "/backends")
        with pytest.raises(RuntimeConnectionError, match="reset"):
            api.request("POST", "/jobs", json={})
    finally:
        api.close()
    assert attempts == ["GET", "GET", "GET", "POST"]


# --- credentials ------------------------------------------------------------------------------


def seen_credentials(**kwargs) -> tuple[str, str | None]:
    requests = []

    def handler(request):
        requests.append(request)
        return httpx.Response(200, json={"backends": []})

    with RuntimeService(transport=httpx.MockTransport(handler), **kwargs) as svc:
        svc.backends()
    request = requests[0]
    return f"{request.url.scheme}://{request.url.host}", request.headers.get("authorization")


def test_credentials_come_from_args_env_then_saved_account(monkeypatch):
    save_account("http://saved.test", "saved-token")
    save_account("http://other.test", "other-token", name="other", set_default=False)
    assert seen_credentials() == ("http://saved.test", "Bearer saved-token")
    assert seen_credentials(name="other") == ("http://other.test", "Bearer other-token")
    monkeypatch.setenv("QRUNTIME_URL", "http://env.test")
    monkeypatch.setenv("QRUNTIME_TOKEN", "env-token")
    assert seen_credentials() == ("http://env.test", "Bearer env-token")
    assert seen_credentials(url="http://arg.test", token="arg") == ("http://arg.test", "Bearer arg")
    monkeypatch.delenv("QRUNTIME_TOKEN")
    # A saved token is never sent to another server.
    assert seen_credentials() == ("http://env.test", None)


def test_no_credentials_anywhere_says_how_to_save_them():
    with pytest.raises(qruntime.AccountNotFoundError, match="save_account"):
        RuntimeService()


def test_save_account_and_load_account_provider():
    RuntimeService.save_account(url=URL, token=TOKEN)
    provider = load_account()
    try:
        assert isinstance(provider.runtime, RuntimeService)
        assert provider.runtime.url == URL
    finally:
        provider.close()


# --- package surface --------------------------------------------------------------------------


def test_exports_resolve():
    for name in qruntime.client.__all__:
        assert getattr(qruntime.client, name) is not None
    for name in qruntime.__all__:
        assert getattr(qruntime, name) is not None
    assert qruntime.RuntimeService is RuntimeService
    with pytest.raises(AttributeError):
        _ = qruntime.NoSuchThing


def test_importing_qruntime_does_not_import_httpx():
    code = "import sys, qruntime; print('httpx' in sys.modules, 'qruntime.client' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
