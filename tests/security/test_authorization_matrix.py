"""The authorization matrix: every route of the app, for every kind of caller, over HTTP.

The routes come from the app's own route table (``create_app``), not from a list kept here:
a route without a row in ``TABLE`` is a failing cell (and ``test_the_table_covers_every_route``
fails), and so is a row whose route no longer exists. Each cell sends its request to one real
``qruntime serve`` process and checks the status (and, for the JSON API, the error body; for
pages, the redirect target).

Callers. JSON API (bearer header): no token, malformed tokens (a garbage token, ``Bearer``
with nothing after it, the owner's real token under another scheme or under none), the
owner's revoked token, another user, an ``open``-role user, the owner, the owner's dashboard
cookie instead of the header, an admin. Dashboard pages (session cookie): the same, with the
owner's *bearer header* instead of the cookie (pages take the cookie only), and for POST forms
a forged form as well (no form token, another session's form token, another site's Origin or
Referer).

Resources: ``owner`` has a private and a public program and one job that ran to DONE. One
long job of the admin's holds the server's only job slot, so the jobs the cells submit stay
QUEUED (no worker starts for them). Every cell that may change or delete a program, job or
token gets a fresh one of its own; the cells that must be refused share one per row, so a
refusal that did not happen shows in its own cell and cannot spoil the owner's fixtures.
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import json
import re
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from compat_cells import (
    API_KEY_GRANT,
    TOKEN_EXCHANGE,
    compat_attempts,
    is_compat,
    is_v1,
    ws_outcome,
)
from qiskit import QuantumCircuit
from qiskit_ibm_runtime import RuntimeEncoder
from sqlalchemy import create_engine, event, inspect, text

from executors import EXECUTORS, started_server
from qruntime.api import create_app
from qruntime.backends.registry import BackendRegistry
from qruntime.domain.errors import NotAuthenticatedError
from qruntime.service.container import Services
from qruntime.service.jobs import new_job_id
from qruntime.service.tokens import hash_token
from qruntime.service.users import UserService
from qruntime.settings import Settings
from qruntime.storage import Database, sqlite_url
from qruntime.web import csrf as csrf_module
from server_harness import ServerProcess
from server_support import (
    Clients,
    assert_error,
    create_user,
    metadata,
    source_b64,
    submit,
    upload,
    wait_for_job,
)

SRC = Path(__file__).resolve().parents[2] / "src" / "qruntime"
COOKIE = "qruntime_session"
TOKEN_FIELD = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
EVIL = "https://evil.example"
HOME = "/ui/programs"

# --- callers -----------------------------------------------------------------------------------

ANONYMOUS = "anonymous"
MALFORMED = "malformed token"
REVOKED = "revoked token"
OTHER = "other user"
OPEN = "open-role user"
OWNER = "owner"
OWNER_COOKIE = "owner via cookie"
OWNER_BEARER = "owner via bearer header"
ADMIN = "admin"
FORGED = "owner, forged form"

#: The JSON API reads ``Authorization: Bearer``; the cookie only for GET and HEAD.
API_CALLERS = (ANONYMOUS, MALFORMED, REVOKED, OTHER, OPEN, OWNER, OWNER_COOKIE, ADMIN)
#: Dashboard pages read the session cookie and nothing else.
PAGE_CALLERS = (ANONYMOUS, MALFORMED, REVOKED, OTHER, OPEN, OWNER, OWNER_BEARER, ADMIN)
#: Dashboard forms also need their form token and our origin.
FORM_CALLERS = (*PAGE_CALLERS, FORGED)
NOT_SIGNED_IN = (ANONYMOUS, MALFORMED, REVOKED)
#: The callers ``compat_cells`` needs to tell apart.
COMPAT_CALLERS = {
    "anonymous": ANONYMOUS,
    "malformed": MALFORMED,
    "cookie": OWNER_COOKIE,
    "owner": OWNER,
}


def is_page(path: str) -> bool:
    return path == "/" or path == "/ui" or path.startswith("/ui/")


def callers_of(method: str, path: str) -> tuple[str, ...]:
    if not is_page(path):
        return API_CALLERS
    return FORM_CALLERS if method == "POST" else PAGE_CALLERS


# --- the route table, from the app itself --------------------------------------------------------


def app_routes() -> dict[tuple[str, str], bool]:
    """Every ``(method, path)`` the app serves, with whether it is in the OpenAPI schema.

    The app is built but never started (no database, no scheduler, no server); an empty
    backend registry spares the seconds the default one takes, and no route depends on it.
    HEAD is left out where GET is there (Starlette answers HEAD on every GET route); a mount
    (the static files) is a ``GET <prefix>/{path}`` route.
    """
    try:
        from fastapi.routing import iter_route_contexts  # FastAPI >= 0.16x: lazy includes
    except ImportError:  # pragma: no cover - older FastAPI lists its routes flat
        iter_route_contexts = None
    from starlette.routing import Mount, WebSocketRoute

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        services = Services.build(settings, registry=BackendRegistry([]))
        try:
            app = create_app(settings, services=services)
            routes = list(iter_route_contexts(app.routes) if iter_route_contexts else app.routes)
        finally:
            services.db.dispose()
    found: dict[tuple[str, str], bool] = {}
    for route in routes:
        if isinstance(getattr(route, "original_route", route), Mount):
            found[("GET", f"{route.path}/{{path}}")] = False
            continue
        if isinstance(getattr(route, "original_route", route), WebSocketRoute):
            found[("WS", route.path)] = False
            continue
        methods = set(route.methods or ())
        if "GET" in methods:
            methods.discard("HEAD")
        for method in methods:
            found[(method, route.path)] = bool(getattr(route, "include_in_schema", False))
    return found


ROUTES = app_routes()

# --- what each cell expects --------------------------------------------------------------------


@dataclass(frozen=True)
class Redirect:
    """A redirect; ``location`` may name the call's path parameters and ``{next}`` (the
    sign-in page's way back); ``prefix`` when the end is not known in advance (a new job id)."""

    status: int
    location: str
    prefix: bool = False

    def __str__(self) -> str:
        return f"{self.status} → {self.location}{'…' if self.prefix else ''}"


Expected = int | Redirect

#: No valid session on a page: the sign-in page, which comes back here afterwards.
SIGN_IN = Redirect(303, "/ui/sign-in?next={next}")


def refused(expected: Expected) -> bool:
    return expected == SIGN_IN or (isinstance(expected, int) and expected >= 400)


@dataclass(frozen=True)
class Call:
    """What a cell sends besides its credentials: path parameters and a body."""

    params: dict[str, str] = field(default_factory=dict)
    json: Any = None
    form: dict[str, str] | None = None
    content: bytes | None = None
    query: dict[str, str] | None = None


Target = Callable[["World"], Call]


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    target: Target
    expected: dict[str, Expected]
    variant: str | None = None
    #: POST /ui/sign-in: the caller's token travels in the form, not in a cookie (and on
    #: POST /api/users/loginWithToken, in the JSON body).
    signs_in: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, self.path)

    @property
    def fresh(self) -> bool:
        return getattr(self.target, "fresh", False)


def everyone(method: str, path: str, expected: Expected, target: Target | None = None) -> Row:
    """A route that needs no credentials: the same answer for every caller."""
    callers = callers_of(method, path)
    return Row(method, path, target or nothing, dict.fromkeys(callers, expected))


def health_row() -> Row:
    """Anyone may ask for ``/health``; a token sent must be valid (401), as on every route."""
    row = everyone("GET", "/health", 200)
    row.expected[MALFORMED] = row.expected[REVOKED] = 401
    return row


#: What the four signed-in callers get, in this order: (other user, open-role user, owner, admin).
Answers = tuple[Expected, Expected, Expected, Expected]
SIGNED_IN = (OTHER, OPEN, OWNER, ADMIN)


def same(expected: Expected) -> Answers:
    return (expected, expected, expected, expected)


def owner_and_admin(success: Expected) -> Answers:
    """Another user's private program, or anyone's job: it does not exist for the others."""
    return (404, 404, success, success)


def admin_only(success: Expected) -> Answers:
    return (403, 403, 403, success)


def api(
    method: str,
    path: str,
    answers: Answers,
    target: Target | None = None,
    variant: str | None = None,
) -> Row:
    """A JSON API route: 401 without a valid token; the cookie stands in for GET only."""
    expected: dict[str, Expected] = dict.fromkeys(NOT_SIGNED_IN, 401)
    expected |= dict(zip(SIGNED_IN, answers, strict=True))
    expected[OWNER_COOKIE] = expected[OWNER] if method == "GET" else 401
    return Row(method, path, target or nothing, expected, variant)


def page(
    method: str,
    path: str,
    answers: Answers,
    target: Target | None = None,
    variant: str | None = None,
) -> Row:
    """A dashboard page or form: no session → sign in; a forged form → 403."""
    expected: dict[str, Expected] = dict.fromkeys((*NOT_SIGNED_IN, OWNER_BEARER), SIGN_IN)
    expected |= dict(zip(SIGNED_IN, answers, strict=True))
    if method == "POST":
        expected[FORGED] = 403
    return Row(method, path, target or nothing, expected, variant)


def compat(
    method: str,
    path: str,
    answers: Answers,
    target: Target | None = None,
    variant: str | None = None,
) -> Row:
    """A 2021-client route (or websocket): 401 without a valid X-Access-Token; neither the
    cookie nor a bearer header stands in for it."""
    expected: dict[str, Expected] = dict.fromkeys((*NOT_SIGNED_IN, OWNER_COOKIE), 401)
    expected |= dict(zip(SIGNED_IN, answers, strict=True))
    return Row(method, path, target or nothing, expected, variant)


def v1(
    method: str,
    path: str,
    answers: Answers,
    target: Target | None = None,
    variant: str | None = None,
) -> Row:
    """A route of today's qiskit-ibm-runtime: a bearer token (a qruntime token or an access
    token from /identity/token); the dashboard's cookie never stands in for it."""
    expected: dict[str, Expected] = dict.fromkeys((*NOT_SIGNED_IN, OWNER_COOKIE), 401)
    expected |= dict(zip(SIGNED_IN, answers, strict=True))
    return Row(method, path, target or nothing, expected, variant)


# --- targets: fill a route's path parameters and body ------------------------------------------


def nothing(world: World) -> Call:
    return Call()


def private_program(world: World) -> Call:
    return Call({"program_id": world.private_program})


def public_program(world: World) -> Call:
    return Call({"program_id": world.public_program})


def fresh(target: Target) -> Target:
    """A target that makes a new resource: each cell that may change or delete it gets its own
    (the cells that must be refused share one per row; see ``World.call_for``)."""
    target.fresh = True  # type: ignore[attr-defined]
    return target


@fresh
def fresh_private_program(world: World) -> Call:
    return Call({"program_id": world.new_program(public=False)})


@fresh
def fresh_public_program(world: World) -> Call:
    return Call({"program_id": world.new_program(public=True)})


def done_job(world: World) -> Call:
    return Call({"job_id": world.done_job})


@fresh
def fresh_queued_job(world: World) -> Call:
    return Call({"job_id": world.queued_job()})


@fresh
def fresh_finished_job(world: World) -> Call:
    return Call({"job_id": world.finished_job()})


SESSION_BODY = {"mode": "batch", "backend": "aer_simulator"}


def owners_session(world: World) -> Call:
    """The owner's one session, opened (natively) on first use."""
    if world.session is None:
        world.session = world.new_session()
    return Call({"session_id": world.session})


@fresh
def fresh_session(world: World) -> Call:
    return Call({"session_id": world.new_session()})


def a_backend(world: World) -> Call:
    return Call({"name": "aer_simulator"})


def the_owner(world: World) -> Call:
    return Call({"name": "owner"})


def new_program_body(world: World) -> Call:
    return Call(json={"data": source_b64("hello_world"), "metadata": metadata("hello_world")})


def with_json(target: Target, body: Any) -> Target:
    def build(world: World) -> Call:
        return Call(target(world).params, json=body)

    build.fresh = getattr(target, "fresh", False)  # type: ignore[attr-defined]
    return build


def with_form(target: Target, form: dict[str, str]) -> Target:
    def build(world: World) -> Call:
        return Call(target(world).params, form=dict(form))

    build.fresh = getattr(target, "fresh", False)  # type: ignore[attr-defined]
    return build


def job_body(target: Target) -> Target:
    def build(world: World) -> Call:
        program_id = target(world).params["program_id"]
        return Call(
            json={"program_id": program_id, "backend": "aer_simulator", "inputs": {"iterations": 0}}
        )

    return build


def v1_sampler_body(world: World) -> Call:
    """A SamplerV2 job as the client sends it (its own encoder), on the public sampler."""
    circuit = QuantumCircuit(1)
    circuit.measure_all()
    body = {"program_id": "sampler", "backend": "aer_simulator", "params": {"pubs": [[circuit]]}}
    return Call(content=json.dumps(body, cls=RuntimeEncoder).encode())


def the_plan(world: World) -> Call:
    return Call({"entry": "qruntime-plan"})


def new_user_body(world: World) -> Call:
    return Call(json={"name": world.unique("newcomer"), "role": "user"})


@fresh
def revocable_token(world: World) -> Call:
    return Call(json={"token_id": world.issue_token("owner")["token_id"]})


PATCH = {"description": "Changed by the authorization matrix."}
HELLO_SOURCE = {"data": source_b64("hello_world")}
RUN_FORM = {"backend": "aer_simulator", "inputs": '{"iterations": 0}', "max_execution_time": ""}
NEW_JOB_PAGE = Redirect(303, "/ui/jobs/j-", prefix=True)
PROGRAM_PAGE = Redirect(303, "/ui/programs/{program_id}")
JOB_PAGE = Redirect(303, "/ui/jobs/{job_id}")


PROJECT = {"hub": "ibm-q", "group": "open", "project": "main"}
DEVICES = "/api/Network/{hub}/Groups/{group}/Projects/{project}/devices"
COMPAT_PATCH = {"description": "Changed by the authorization matrix, as the 2021 client does."}


def the_project(world: World) -> Call:
    return Call(dict(PROJECT))


def a_device(world: World) -> Call:
    return Call({**PROJECT, "name": "ibmq_manila"})


def compat_program_body(world: World) -> Call:
    meta = metadata("hello_world")
    body = {
        "name": meta["name"],
        "description": meta["description"],
        "cost": meta["max_execution_time"],
        "spec": meta.get("spec"),
        "data": source_b64("hello_world"),
    }
    return Call(json=body)


def with_content(target: Target, content: bytes) -> Target:
    def build(world: World) -> Call:
        return Call(target(world).params, content=content)

    build.fresh = getattr(target, "fresh", False)  # type: ignore[attr-defined]
    return build


JOBS = "/api/Network/{hub}/Groups/{group}/Projects/{project}/Jobs"
BELL_QOBJ = (SRC.parents[1] / "tests" / "fixtures" / "ibmq2021" / "bell_qobj.json").read_bytes()


def remote_job_body(world: World) -> Call:
    return Call(dict(PROJECT), json={"backend": {"name": "ibmq_qasm_simulator"}})


def a_qobj_upload(world: World) -> Call:
    """A fresh job id each time (the create step names it), the Bell circuit's Qobj."""
    params = {**PROJECT, "job_id": new_job_id()}
    return Call(params, content=BELL_QOBJ, query={"backend": "ibmq_qasm_simulator"})


def in_project(target: Target) -> Target:
    def build(world: World) -> Call:
        call = target(world)
        return Call({**PROJECT, **call.params}, call.json, call.form, call.content, call.query)

    build.fresh = getattr(target, "fresh", False)  # type: ignore[attr-defined]
    return build


def compat_job_body(target: Target) -> Target:
    def build(world: World) -> Call:
        program_id = target(world).params["program_id"]
        params = {"iterations": 0}
        return Call(
            json={"program_id": program_id, "backend": "ibmq_qasm_simulator", "params": params}
        )

    return build


def compat_program_rows(
    method: str, path: str, *, fresh: bool, body: Any = None, content: bytes | None = None
) -> list[Row]:
    """``program_rows`` for the 2021 client's routes."""
    private = fresh_private_program if fresh else private_program
    public = fresh_public_program if fresh else public_program
    if body is not None:
        private, public = with_json(private, body), with_json(public, body)
    if content is not None:
        private, public = with_content(private, content), with_content(public, content)
    success = 204 if method == "DELETE" else 200
    others = 200 if method == "GET" else 403
    return [
        compat(method, path, owner_and_admin(success), private, "private"),
        compat(method, path, (others, others, success, success), public, "public"),
    ]


def program_rows(method: str, path: str, *, fresh: bool, body: Any = None) -> list[Row]:
    """A route on one program: 404 for the others while it is private; once it is public they
    may read it (and run it) but changing it is 403."""
    private = fresh_private_program if fresh else private_program
    public = fresh_public_program if fresh else public_program
    if body is not None:
        private, public = with_json(private, body), with_json(public, body)
    success = 204 if method == "DELETE" else 200
    others = 200 if method == "GET" else 403
    return [
        api(method, path, owner_and_admin(success), private, "private"),
        api(method, path, (others, others, success, success), public, "public"),
    ]


# fmt: off
TABLE: list[Row] = [
    # --- no credentials needed
    health_row(),
    everyone("GET", "/openapi.json", 200),
    everyone("GET", "/docs", 200),
    everyone("GET", "/docs/oauth2-redirect", 200),
    everyone("GET", "/redoc", 200),
    # --- programs                                    (other, open, owner, admin)
    api("POST", "/programs",                          (201, 403, 201, 201), new_program_body),
    api("GET", "/programs",                           same(200)),
    *program_rows("GET", "/programs/{program_id}", fresh=False),
    *program_rows("PATCH", "/programs/{program_id}", fresh=False, body=PATCH),
    *program_rows("PUT", "/programs/{program_id}/data", fresh=False, body=HELLO_SOURCE),
    *program_rows("PUT", "/programs/{program_id}/public", fresh=True),
    *program_rows("PUT", "/programs/{program_id}/private", fresh=True),
    *program_rows("DELETE", "/programs/{program_id}", fresh=True),
    # --- jobs: whoever sees a program may run it (open-role users too); jobs are private
    api("POST", "/jobs", owner_and_admin(201), job_body(private_program), "private program"),
    api("POST", "/jobs", same(201), job_body(public_program), "public program"),
    api("GET", "/jobs",                               same(200)),
    api("GET", "/jobs/{job_id}",                      owner_and_admin(200), done_job),
    api("GET", "/jobs/{job_id}/results",              owner_and_admin(200), done_job),
    api("GET", "/jobs/{job_id}/interim_results",      owner_and_admin(200), done_job),
    api("GET", "/jobs/{job_id}/logs",                 owner_and_admin(200), done_job),
    api("GET", "/jobs/{job_id}/stream",               owner_and_admin(200), done_job),
    api("POST", "/jobs/{job_id}/cancel",              owner_and_admin(200), fresh_queued_job),
    api("DELETE", "/jobs/{job_id}",                   owner_and_admin(204), fresh_finished_job),
    # --- sessions and batches: anyone who may run jobs opens them; they are private
    api("POST", "/sessions",                          same(201),
        lambda world: Call(json=SESSION_BODY)),
    api("GET", "/sessions",                           same(200)),
    api("GET", "/sessions/{session_id}",              owner_and_admin(200), owners_session),
    api("POST", "/sessions/{session_id}/close",       owner_and_admin(200), fresh_session),
    api("POST", "/sessions/{session_id}/cancel",      owner_and_admin(200), fresh_session),
    # --- backends, users, tokens
    api("GET", "/backends",                           same(200)),
    api("GET", "/environment",                        same(200)),
    api("GET", "/backends/{name}",                    same(200), a_backend),
    api("GET", "/users/me",                           same(200)),
    api("POST", "/users",                             admin_only(201), new_user_body),
    api("GET", "/users",                              admin_only(200)),
    api("POST", "/users/{name}/tokens",               admin_only(201), the_owner),
    api("GET", "/users/{name}/tokens",                admin_only(200), the_owner),
    api("POST", "/tokens/revoke",                     admin_only(204), revocable_token),
    # --- the dashboard's entry points and files need no session
    everyone("GET", "/", Redirect(307, HOME)),
    everyone("GET", "/ui", Redirect(307, HOME)),
    everyone("GET", "/ui/", Redirect(307, HOME)),
    everyone("GET", "/ui/vendor/plotly.min.js", 200),
    everyone("GET", "/ui/static/{path}", 200, lambda world: Call({"path": "app.css"})),
    everyone("GET", "/ui/{path:path}", 404, lambda world: Call({"path": "no-such-page"})),
    # --- signing in: the token is typed into the form (a bearer header is not a sign-in)
    Row("GET", "/ui/sign-in", nothing,
        dict.fromkeys((*NOT_SIGNED_IN, OWNER_BEARER), 200)
        | dict.fromkeys(SIGNED_IN, Redirect(303, HOME))),
    Row("POST", "/ui/sign-in", nothing,
        dict.fromkeys((*NOT_SIGNED_IN, OWNER_BEARER), 401)
        | dict.fromkeys(SIGNED_IN, Redirect(303, HOME))
        | {FORGED: 403},
        signs_in=True),
    page("POST", "/ui/sign-out",                      same(Redirect(303, "/ui/sign-in"))),
    # --- pages and forms: the same rules as the API behind them
    #                                                 (other, open, owner, admin)
    page("GET", "/ui/programs",                       same(200)),
    page("GET", "/ui/programs/{program_id}",          owner_and_admin(200), private_program,
         "private"),
    page("GET", "/ui/programs/{program_id}",          same(200), public_program, "public"),
    page("POST", "/ui/programs/{program_id}/run",     owner_and_admin(NEW_JOB_PAGE),
         with_form(private_program, RUN_FORM), "private"),
    page("POST", "/ui/programs/{program_id}/run",     same(NEW_JOB_PAGE),
         with_form(public_program, RUN_FORM), "public"),
    page("POST", "/ui/programs/{program_id}/visibility", owner_and_admin(PROGRAM_PAGE),
         with_form(fresh_private_program, {"public": "true"}), "private"),
    page("POST", "/ui/programs/{program_id}/visibility", (403, 403, PROGRAM_PAGE, PROGRAM_PAGE),
         with_form(fresh_public_program, {"public": "false"}), "public"),
    page("GET", "/ui/jobs",                           same(200)),
    page("GET", "/ui/jobs/{job_id}",                  owner_and_admin(200), done_job),
    page("POST", "/ui/jobs/{job_id}/cancel",          owner_and_admin(JOB_PAGE), fresh_queued_job),
    page("GET", "/ui/sessions",                       same(200)),
    page("GET", "/ui/sessions/{session_id}",          owner_and_admin(200), owners_session),
    page("GET", "/ui/backends",                       same(200)),
    page("GET", "/ui/backends/{name}",                same(200), a_backend),
    page("GET", "/ui/cluster",                        same(200)),
    # --- the 2021 IBM Quantum client (docs/compat.md): the same rules, its own token header
    everyone("GET", "/api/version", 200),
    Row("POST", "/api/users/loginWithToken", nothing,
        dict.fromkeys((*NOT_SIGNED_IN, OWNER_COOKIE), 401) | dict.fromkeys(SIGNED_IN, 200),
        signs_in=True),
    compat("GET", "/api/users/me",                    same(200)),
    compat("GET", "/api/Network",                     same(200)),
    compat("POST", "/api/runtime/logout",             same(204)),
    compat("GET", DEVICES + "/v/1",                   same(200), the_project),
    compat("GET", DEVICES + "/{name}/properties",     same(200), a_device),
    compat("GET", DEVICES + "/{name}/defaults",       same(200), a_device),
    compat("GET", DEVICES + "/{name}/queue/status",   same(200), a_device),
    compat("GET", DEVICES + "/{name}/jobsLimit",      same(200), a_device),
    compat("POST", "/api/runtime/programs",           (201, 403, 201, 201), compat_program_body),
    compat("GET", "/api/runtime/programs",            same(200)),
    *compat_program_rows("GET", "/api/runtime/programs/{program_id}", fresh=False),
    *compat_program_rows("PATCH", "/api/runtime/programs/{program_id}", fresh=False,
                         body=COMPAT_PATCH),
    *compat_program_rows("PUT", "/api/runtime/programs/{program_id}/data", fresh=False,
                         content=source_b64("hello_world").encode()),
    *compat_program_rows("PUT", "/api/runtime/programs/{program_id}/public", fresh=True),
    *compat_program_rows("PUT", "/api/runtime/programs/{program_id}/private", fresh=True),
    *compat_program_rows("DELETE", "/api/runtime/programs/{program_id}", fresh=True),
    compat("POST", "/api/runtime/jobs", owner_and_admin(200), compat_job_body(private_program),
           "private program"),
    compat("POST", "/api/runtime/jobs", same(200), compat_job_body(public_program),
           "public program"),
    compat("GET", "/api/runtime/jobs",                same(200)),
    compat("GET", "/api/runtime/jobs/{job_id}",       owner_and_admin(200), done_job),
    compat("GET", "/api/runtime/jobs/{job_id}/results", owner_and_admin(200), done_job),
    compat("GET", "/api/runtime/jobs/{job_id}/logs",  owner_and_admin(200), done_job),
    compat("POST", "/api/runtime/jobs/{job_id}/cancel", owner_and_admin(204), fresh_queued_job),
    compat("DELETE", "/api/runtime/jobs/{job_id}",    owner_and_admin(204), fresh_finished_job),
    compat("POST", JOBS,                              same(200), remote_job_body),
    compat("GET", JOBS + "/status/v/1",               same(200), the_project),
    compat("PUT", JOBS + "/{job_id}/qobj",            same(200), a_qobj_upload),
    compat("POST", JOBS + "/{job_id}/jobDataUploaded", owner_and_admin(200), in_project(done_job)),
    compat("GET", JOBS + "/{job_id}/v/1",             owner_and_admin(200), in_project(done_job)),
    compat("GET", JOBS + "/{job_id}/status/v/1",      owner_and_admin(200), in_project(done_job)),
    compat("GET", JOBS + "/{job_id}/properties",      owner_and_admin(200), in_project(done_job)),
    compat("POST", JOBS + "/{job_id}/cancel",         owner_and_admin(200),
           in_project(fresh_queued_job)),
    compat("DELETE", JOBS + "/{job_id}",              owner_and_admin(204),
           in_project(fresh_finished_job)),
    compat("WS", "/api/runtime/stream/jobs/{job_id}", owner_and_admin(200), done_job),
    compat("WS", "/api/ws/jobs/{job_id}/status/v/1",  owner_and_admin(200), done_job),
    # --- today's qiskit-ibm-runtime (docs/compat.md): bearer tokens, the native API's rules
    Row("POST", TOKEN_EXCHANGE, nothing,
        dict.fromkeys((*NOT_SIGNED_IN, OWNER_COOKIE), 401) | dict.fromkeys(SIGNED_IN, 200),
        signs_in=True),
    v1("POST", "/global-search/v3/resources/search",  same(200)),
    v1("GET", "/global-catalog/{entry}",              same(200), the_plan),
    v1("GET", "/api/v1/backends",                     same(200)),
    v1("GET", "/api/v1/backends/{name}/configuration", same(200), a_backend),
    v1("GET", "/api/v1/backends/{name}/properties",   same(200), a_backend),
    v1("GET", "/api/v1/backends/{name}/status",       same(200), a_backend),
    v1("GET", "/api/v1/instances/usage",              same(200)),
    v1("POST", "/api/v1/jobs",                        same(200), v1_sampler_body),
    v1("GET", "/api/v1/jobs",                         same(200)),
    v1("GET", "/api/v1/jobs/{job_id}",                owner_and_admin(200), done_job),
    v1("GET", "/api/v1/jobs/{job_id}/results",        owner_and_admin(200), done_job),
    v1("GET", "/api/v1/jobs/{job_id}/logs",           owner_and_admin(200), done_job),
    v1("GET", "/api/v1/jobs/{job_id}/metrics",        owner_and_admin(200), done_job),
    v1("PUT", "/api/v1/jobs/{job_id}/tags",           owner_and_admin(204),
       lambda world: Call({"job_id": world.done_job}, json={"tags": ["matrix"]})),
    v1("POST", "/api/v1/jobs/{job_id}/cancel",        owner_and_admin(204), fresh_queued_job),
    v1("DELETE", "/api/v1/jobs/{job_id}",             owner_and_admin(204), fresh_finished_job),
    v1("POST", "/api/v1/sessions",                    same(200),
       lambda world: Call(json={"backend": "aer_simulator", "mode": "dedicated"})),
    v1("GET", "/api/v1/sessions/{session_id}",        owner_and_admin(200), owners_session),
    v1("PATCH", "/api/v1/sessions/{session_id}",      owner_and_admin(204),
       with_json(fresh_session, {"accepting_jobs": False})),
    v1("DELETE", "/api/v1/sessions/{session_id}/close", owner_and_admin(204), fresh_session),
]
# fmt: on

# --- the server and what lives on it -----------------------------------------------------------


@dataclass
class World:
    """The server, the callers' credentials and the owner's resources the cells act on."""

    server: ServerProcess
    http: httpx.Client
    admin: httpx.Client
    owner: httpx.Client
    tokens: dict[str, str]
    form_tokens: dict[str, str]
    private_program: str
    public_program: str
    done_job: str
    #: The admin's long job that takes the only job slot once ``done_job`` has finished.
    blocker: str
    serial: Iterator[int] = field(default_factory=itertools.count)
    settled: bool = False
    spares: dict[tuple[str, str, str | None], Call] = field(default_factory=dict)
    access_tokens: dict[str, str] = field(default_factory=dict)
    session: str | None = None

    def call_for(self, row: Row, expected: Expected) -> Call:
        """A cell's target; a fresh resource only where the cell may change it."""
        if not (row.fresh and refused(expected)):
            return row.target(self)
        key = (*row.key, row.variant)
        if key not in self.spares:
            self.spares[key] = row.target(self)
        return self.spares[key]

    def jobs_settled(self) -> None:
        """Wait (once) for ``done_job`` to be DONE and the blocker to hold the job slot; the
        cells that touch jobs come last, so the job runs while the others are checked."""
        if self.settled:
            return
        wait_for_job(self.admin, self.blocker, ("RUNNING",), server=self.server)
        done = self.owner.get(f"/jobs/{self.done_job}").json()
        assert done["status"] == "DONE", done
        self.settled = True

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{next(self.serial)}"

    def new_program(self, *, public: bool) -> str:
        return upload(self.owner, "hello_world", is_public=public)["id"]

    def access_token(self, caller: str) -> str:
        """The caller's token exchanged for an access token, as the client does (cached)."""
        if caller not in self.access_tokens:
            form = {"grant_type": API_KEY_GRANT, "apikey": self.tokens[caller]}
            response = self.http.post(TOKEN_EXCHANGE, data=form)
            assert response.status_code == 200, response.text
            self.access_tokens[caller] = response.json()["access_token"]
        return self.access_tokens[caller]

    def queued_job(self) -> str:
        """Stays QUEUED: the only job slot is taken (see ``world``)."""
        return submit(self.owner, self.private_program, {"iterations": 0})["id"]

    def finished_job(self) -> str:
        job_id = self.queued_job()
        cancelled = self.owner.post(f"/jobs/{job_id}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "CANCELLED", cancelled.text
        return job_id

    def new_session(self) -> str:
        response = self.owner.post("/sessions", json=SESSION_BODY)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def issue_token(self, name: str) -> dict[str, str]:
        response = self.admin.post(f"/users/{name}/tokens")
        assert response.status_code == 201, response.text
        return response.json()


@pytest.fixture(scope="module", params=EXECUTORS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One job slot, so that one long job keeps every job the cells submit QUEUED."""
    base = tmp_path_factory.mktemp(f"authorization-{request.param}")
    catalogue = ["--catalogue", str(SRC.parents[1] / "runtime")]  # circuit-runner, for Qobj jobs
    with ExitStack() as stack:
        yield started_server(request, base, stack, max_concurrent_jobs=1, extra_args=catalogue)


def read_form_token(server: ServerProcess, token: str) -> str:
    """A session's CSRF token, read from a page's form as a browser would."""
    with httpx.Client(base_url=server.url, headers={"Cookie": f"{COOKIE}={token}"}) as browser:
        page = browser.get(HOME)
    assert page.status_code == 200, page.text
    match = TOKEN_FIELD.search(page.text)
    assert match is not None, page.text
    return match.group(1)


@pytest.fixture(scope="module")
def world(server: ServerProcess, clients: Clients, admin: httpx.Client) -> Iterator[World]:
    tokens = {ADMIN: server.admin_token}
    for identity, name, role in ((OWNER, "owner", "user"), (OTHER, "other", "user")):
        tokens[identity] = create_user(admin, name, role)["token"]
    tokens[OPEN] = create_user(admin, "reader", "open")["token"]
    owner = clients(tokens[OWNER])

    private = upload(owner, "hello_world")["id"]
    public = upload(owner, "hello_world", is_public=True)["id"]
    # The owner's one real job runs first; the admin's sleeper then takes the only job slot
    # for the rest of the module (see World.jobs_settled).
    sleeper = upload(admin, "sleeps_forever")["id"]
    done = submit(owner, private, {"iterations": 1})["id"]
    blocker = submit(admin, sleeper, {"seconds": 3600})["id"]

    issued = admin.post("/users/owner/tokens").json()
    revoked = admin.post("/tokens/revoke", json={"token_id": issued["token_id"]})
    assert revoked.status_code == 204, revoked.text
    tokens[REVOKED] = issued["token"]

    form_tokens = {who: read_form_token(server, tokens[who]) for who in (OTHER, OPEN, OWNER, ADMIN)}
    with httpx.Client(base_url=server.url, timeout=60, follow_redirects=False) as http:
        yield World(server, http, admin, owner, tokens, form_tokens, private, public, done, blocker)


# --- sending a cell's requests -----------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One request of a cell: most cells send one; malformed and forged ones try several."""

    how: str
    headers: dict[str, str] = field(default_factory=dict)
    form: dict[str, str] = field(default_factory=dict)


def api_attempts(world: World, caller: str) -> list[Attempt]:
    owner = world.tokens[OWNER]
    if caller == ANONYMOUS:
        return [Attempt("no Authorization header")]
    if caller == MALFORMED:
        return [
            Attempt("Bearer not-a-token", {"Authorization": "Bearer not-a-token"}),
            Attempt("Bearer with no token", {"Authorization": "Bearer"}),
            Attempt("owner's token as Basic", {"Authorization": f"Basic {owner}"}),
            Attempt("owner's token with no scheme", {"Authorization": owner}),
        ]
    if caller == OWNER_COOKIE:
        return [Attempt("cookie only", {"Cookie": f"{COOKIE}={owner}", "Origin": world.server.url})]
    return [Attempt("bearer", {"Authorization": f"Bearer {world.tokens[caller]}"})]


def v1_attempts(world: World, caller: str, *, once: bool) -> list[Attempt]:
    """The native API's attempts, and for signed-in callers also their exchanged access token
    (what the client sends; only that one where a cell's fresh resource allows ``once``); the
    owner's token as ``apikey`` is one more malformed one."""
    attempts = api_attempts(world, caller)
    if once and caller in SIGNED_IN:
        attempts = []
    if caller == MALFORMED:
        owner = world.tokens[OWNER]
        attempts.append(Attempt("owner's token as apikey", {"Authorization": f"apikey {owner}"}))
    if caller in SIGNED_IN:
        access = world.access_token(caller)
        attempts.append(Attempt("access token", {"Authorization": f"Bearer {access}"}))
    return attempts


def exchange_attempts(world: World, caller: str) -> list[Attempt]:
    """The token travels in the exchange's form as the client's API key."""
    if caller == ANONYMOUS:
        return [Attempt("no apikey", {}, {"grant_type": API_KEY_GRANT, "apikey": ""})]
    owner = world.tokens[OWNER]
    if caller == MALFORMED:
        return [Attempt("garbage apikey", {}, {"grant_type": API_KEY_GRANT, "apikey": "x"})]
    if caller == OWNER_COOKIE:
        cookie = {"Cookie": f"{COOKIE}={owner}"}
        return [Attempt("cookie only", cookie, {"grant_type": API_KEY_GRANT, "apikey": ""})]
    form = {"grant_type": API_KEY_GRANT, "apikey": world.tokens[caller]}
    return [Attempt("apikey", {}, form)]


def page_attempts(world: World, caller: str, method: str, signs_in: bool) -> list[Attempt]:
    """Cookie sessions, each form with its session's form token and our own Origin."""
    ours = {"Origin": world.server.url}

    def session(token: str, form_token: str | None = None, **headers: str) -> dict[str, Any]:
        sent = {**ours, "Cookie": f"{COOKIE}={token}", **headers}
        return {"headers": sent, "form": {"csrf_token": form_token} if form_token else {}}

    if signs_in:  # the token is typed into the sign-in form; there is no session yet
        owner = world.tokens[OWNER]
        if caller == FORGED:
            return [
                Attempt("another site's Origin", {"Origin": EVIL}, {"token": owner}),
                Attempt("another site's Referer", {"Referer": f"{EVIL}/x"}, {"token": owner}),
            ]
        if caller == OWNER_BEARER:
            headers = {**ours, "Authorization": f"Bearer {owner}"}
            return [Attempt("bearer header, empty form", headers, {"token": ""})]
        typed = {
            ANONYMOUS: [("empty form", "")],
            MALFORMED: [("not-a-token", "not-a-token"), ("blank", "   ")],
        }.get(caller) or [("its token", world.tokens[caller])]
        return [Attempt(how, ours, {"token": value}) for how, value in typed]
    if caller == ANONYMOUS:
        return [Attempt("no cookie", ours)]
    if caller == MALFORMED:
        return [
            Attempt("cookie not-a-token", **session("not-a-token")),
            Attempt("empty cookie", **session("")),
        ]
    if caller == REVOKED:
        return [Attempt("revoked cookie", **session(world.tokens[REVOKED]))]
    if caller == OWNER_BEARER:
        bearer = {**ours, "Authorization": f"Bearer {world.tokens[OWNER]}"}
        return [Attempt("bearer header, no cookie", bearer)]
    if caller == FORGED:
        owner = world.tokens[OWNER]
        mine, admins = world.form_tokens[OWNER], world.form_tokens[ADMIN]
        return [
            Attempt("no form token", **session(owner)),
            Attempt("another session's form token", **session(owner, admins)),
            Attempt("another site's Origin", **session(owner, mine, Origin=EVIL)),
            Attempt("another site's Referer", **session(owner, mine, Origin="", Referer=EVIL)),
        ]
    form_token = world.form_tokens[caller] if method == "POST" else None
    return [Attempt("cookie", **session(world.tokens[caller], form_token))]


def fill(path: str, params: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        return quote(params[match.group(1)], safe="")

    return re.sub(r"\{(\w+)(?::\w+)?\}", value, path)


def check(
    row: Row, caller: str, expected: Expected, call: Call, url: str, response: httpx.Response
) -> None:
    where = f"{row.method} {url} as {caller}"
    if isinstance(expected, Redirect):
        assert response.status_code == expected.status, (where, response.status_code, response.text)
        next_path = quote(url if row.method == "GET" else HOME, safe="/")
        wanted = expected.location.format(next=next_path, **call.params)
        location = response.headers.get("location", "")
        matches = location.startswith(wanted) if expected.prefix else location == wanted
        assert matches, (where, location, wanted)
        return
    assert response.status_code == expected, (where, response.status_code, response.text[:500])
    if expected < 400:
        return
    if is_page(row.path):
        assert "text/html" in response.headers["content-type"], (where, response.headers)
        return
    code = {400: "bad_request", 401: "not_authenticated", 403: "forbidden", 404: "not_found"}[
        expected
    ]
    assert_error(response, expected, code)
    if expected == 401:
        assert response.headers.get("www-authenticate") == "Bearer", (where, response.headers)


# --- the cells ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    key: tuple[str, str]
    caller: str
    row: Row | None

    @property
    def id(self) -> str:
        method, path = self.key
        variant = f" ({self.row.variant})" if self.row and self.row.variant else ""
        return f"{method} {path}{variant} as {self.caller}"


def uses_jobs(key: tuple[str, str]) -> bool:
    """Cells that read the finished job or submit jobs (they wait for ``jobs_settled``)."""
    return "/jobs" in key[1].lower() or key[1].endswith("/run")


def cells() -> list[Cell]:
    """One cell per route of the app and caller; a route with no row still gets a cell that
    fails, so a new endpoint shows up as a red cell instead of a silent gap."""
    rows: dict[tuple[str, str], list[Row]] = {}
    for row in TABLE:
        rows.setdefault(row.key, []).append(row)
    found = []
    for key in sorted(ROUTES, key=lambda k: (uses_jobs(k), k[1], k[0])):
        if key not in rows:
            found.append(Cell(key, "(no row in TABLE)", None))
            continue
        for row in rows[key]:
            found += [Cell(key, caller, row) for caller in row.expected]
    return found


CELLS = cells()


@pytest.mark.parametrize("cell", CELLS, ids=[cell.id for cell in CELLS])
def test_authorization(cell: Cell, world: World) -> None:
    assert cell.row is not None, f"{cell.key} has no row in TABLE: say who may call it"
    row = cell.row
    expected = row.expected[cell.caller]
    if uses_jobs(cell.key):
        world.jobs_settled()
    call = world.call_for(row, expected)
    url = fill(row.path, call.params)
    if is_compat(row.path):
        compat_calls = compat_attempts(world.tokens, cell.caller, COMPAT_CALLERS)
        if row.method == "WS":
            for attempt in compat_calls:
                outcome = ws_outcome(world.server.url, url, attempt)
                assert outcome == expected, (cell.id, attempt.how, outcome)
            return
        attempts = [Attempt(a.how, a.headers, {"apiToken": a.token}) for a in compat_calls]
    elif row.path == TOKEN_EXCHANGE:
        attempts = exchange_attempts(world, cell.caller)
    elif is_v1(row.path):
        attempts = v1_attempts(world, cell.caller, once=row.fresh)
    elif is_page(row.path):
        attempts = page_attempts(world, cell.caller, row.method, row.signs_in)
    else:
        attempts = api_attempts(world, cell.caller)
    for attempt in attempts:
        form = {**(call.form or {}), **attempt.form} if row.method == "POST" else None
        headers = {k: v for k, v in attempt.headers.items() if v}
        data = form if is_page(row.path) or row.path == TOKEN_EXCHANGE else None
        body = dict(attempt.form) if is_compat(row.path) and row.signs_in else call.json
        request = world.http.build_request(
            row.method,
            url,
            headers=headers,
            json=body,
            data=data,
            content=call.content,
            params=call.query,
        )
        response = world.http.send(request, stream=True)
        try:
            if response.status_code >= 400 or isinstance(expected, Redirect):
                response.read()
            check(row, f"{cell.caller} ({attempt.how})", expected, call, url, response)
        finally:
            response.close()
            world.http.cookies.clear()  # a sign-in sets the cookie; the next cell must not send it


# --- the table itself --------------------------------------------------------------------------


def table_gaps(routes: set[tuple[str, str]], table: list[Row]) -> list[str]:
    """What is wrong between the app's routes and the table; empty when they agree."""
    keys = {row.key for row in table}
    gaps = [f"no row in TABLE for {method} {path}" for method, path in sorted(routes - keys)]
    gaps += [f"row for {m} {p}, which the app no longer has" for m, p in sorted(keys - routes)]
    for row in table:
        if set(row.expected) != set(callers_of(*row.key)):
            gaps.append(f"{row.key} ({row.variant}) names {sorted(row.expected)}")
    variants = [(row.key, row.variant) for row in table]
    twice = {variant for variant in variants if variants.count(variant) > 1}
    gaps += [f"two rows for {key} ({variant})" for key, variant in sorted(twice, key=str)]
    return gaps


def test_the_table_covers_every_route() -> None:
    """Every route of the app has a row, every row a route, every row every caller."""
    assert table_gaps(set(ROUTES), TABLE) == []


def test_a_new_or_removed_route_fails_the_table() -> None:
    """The check above notices a route added without a row, and a row left for a route that
    went away (and the matrix gets a failing cell for the new route)."""
    added = {*ROUTES, ("POST", "/programs/{program_id}/share")}
    assert table_gaps(added, TABLE) == ["no row in TABLE for POST /programs/{program_id}/share"]
    removed = set(ROUTES) - {("GET", "/users")}
    assert table_gaps(removed, TABLE) == ["row for GET /users, which the app no longer has"]
    assert [c.id for c in CELLS if c.row is None] == []


def test_the_server_serves_the_route_table(world: World) -> None:
    """The real server's OpenAPI schema lists exactly the app's API routes the table covers."""
    response = world.http.get("/openapi.json")
    assert response.status_code == 200
    served = {
        (method.upper(), path)
        for path, operations in response.json()["paths"].items()
        for method in operations
    }
    assert served == {key for key, in_schema in ROUTES.items() if in_schema}


def bearer(world: World, caller: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[caller]}"}


def cookie(world: World, caller: str) -> dict[str, str]:
    return {"Cookie": f"{COOKIE}={world.tokens[caller]}"}


def test_what_others_may_not_see_looks_missing(world: World) -> None:
    """Another user's private program or job answers exactly as an id that does not exist
    (the same 404 body but for the id, on the API and on the pages): it tells them nothing."""
    cases = [
        ("/programs/{}", bearer, world.private_program, "hello-world-zz9zz9"),
        ("/jobs/{}", bearer, world.done_job, "j-" + "0" * 20),
        ("/ui/programs/{}", cookie, world.private_program, "hello-world-zz9zz9"),
        ("/ui/jobs/{}", cookie, world.done_job, "j-" + "0" * 20),
    ]
    for path, credentials, hidden, made_up in cases:
        for caller in (OTHER, OPEN):
            seen = world.http.get(path.format(hidden), headers=credentials(world, caller))
            missing = world.http.get(path.format(made_up), headers=credentials(world, caller))
            assert seen.status_code == missing.status_code == 404, (path, caller)
            assert seen.text == missing.text.replace(made_up, hidden), (path, caller)


def test_the_source_is_for_its_owner_and_admins_only(world: World) -> None:
    """A public program runs for everyone, but only its owner and admins get its source."""
    program = world.public_program
    for caller, sees in ((OTHER, False), (OPEN, False), (OWNER, True), (ADMIN, True)):
        api = world.http.get(f"/programs/{program}", headers=bearer(world, caller))
        assert api.status_code == 200 and (api.json()["data"] is not None) == sees, caller
        page = world.http.get(f"/ui/programs/{program}", headers=cookie(world, caller))
        assert page.status_code == 200 and ('id="source"' in page.text) == sees, caller
        listed = world.http.get("/programs", headers=bearer(world, caller)).json()["programs"]
        assert listed and all(p["data"] is None for p in listed), caller


# --- tokens at rest and how they are compared --------------------------------------------------


def test_tokens_are_stored_as_sha256_only(world: World) -> None:
    """The database holds the sha256 hex of each token and never a token itself: not in the
    tokens table, not anywhere in the database files (WAL included), not in the server log."""
    data_dir = world.server.data_dir
    tokens = [world.tokens[who] for who in (ADMIN, OWNER, OTHER, OPEN, REVOKED)]
    if world.server.database_url is None:
        columns, rows, everything = _sqlite_contents(data_dir / "qruntime.db")
    else:
        columns, rows, everything = _database_contents(world.server.database_url)
    assert "token_hash" in columns and "token" not in columns, columns
    hashes = {dict(zip(columns, row, strict=True))["token_hash"] for row in rows}
    assert all(re.fullmatch(r"[0-9a-f]{64}", value) for value in hashes), hashes
    for token in tokens:
        assert hashlib.sha256(token.encode()).hexdigest() in hashes
        assert not any(token in text for text in everything)
    files = [path for path in data_dir.iterdir() if path.name.startswith("qruntime.db")]
    assert files or world.server.database_url is not None
    for path in files:
        raw = path.read_bytes()
        assert not any(token.encode() in raw for token in tokens), path
    log = world.server.log()
    assert not any(token in log for token in tokens)


def _sqlite_contents(path: Path) -> tuple[list[str], list[Any], list[str]]:
    """The tokens table's columns and rows, and every table's rows as text, read raw."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        columns = [row[1] for row in connection.execute("PRAGMA table_info(tokens)")]
        rows = connection.execute("SELECT * FROM tokens").fetchall()
        tables = [
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        everything = [
            repr(connection.execute(f'SELECT * FROM "{table}"').fetchall())
            for table in tables
            if not table.startswith("sqlite_")
        ]
    finally:
        connection.close()
    return columns, rows, everything


def _database_contents(url: str) -> tuple[list[str], list[Any], list[str]]:
    """The same as :func:`_sqlite_contents` for a server on PostgreSQL."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            tables = inspect(connection).get_table_names()
            columns = [c["name"] for c in inspect(connection).get_columns("tokens")]
            rows = [tuple(r) for r in connection.execute(text("SELECT * FROM tokens"))]
            everything = [
                repr(connection.execute(text(f'SELECT * FROM "{table}"')).fetchall())
                for table in tables
            ]
    finally:
        engine.dispose()
    return columns, rows, everything


def test_authentication_looks_tokens_up_by_their_sha256(tmp_path: Path) -> None:
    """The presented token is hashed and the hash looked up (an index lookup, no byte-by-byte
    comparison of secrets in Python): the token itself never reaches the database."""
    db = Database(sqlite_url(tmp_path / "users.db"))
    try:
        db.migrate()
        users = UserService(db)
        alice = users.create_user(None, "alice")
        sent: list[str] = []

        def spy(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
            sent.append(f"{statement} {parameters!r}")

        event.listen(db.engine, "before_cursor_execute", spy)
        assert users.authenticate(alice.token).name == "alice"
        wrong = alice.token[:-1] + ("A" if alice.token[-1] != "A" else "B")
        with pytest.raises(NotAuthenticatedError):
            users.authenticate(wrong)
        assert any(hash_token(alice.token) in text for text in sent), sent
        assert any(hash_token(wrong) in text for text in sent), sent
        assert not any(alice.token in text or wrong in text for text in sent), sent
    finally:
        db.dispose()


def test_form_tokens_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dashboard's CSRF check goes through ``hmac.compare_digest``."""
    calls: list[tuple[str, str]] = []
    real = csrf_module.hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(csrf_module.hmac, "compare_digest", spy)
    secret = csrf_module.new_secret()
    good = csrf_module.form_token(secret, "qrt_session")
    csrf_module.check_form_token(good, good)
    with pytest.raises(csrf_module.CrossSiteRequestError):
        csrf_module.check_form_token(good, "0" * 64)
    assert calls == [(good, good), ("0" * 64, good)]


#: Names that hold secrets or values derived from them.
SECRET_NAME = re.compile(r"token|secret|password|digest|signature|csrf", re.IGNORECASE)


def secret_comparisons(tree: ast.AST) -> Iterator[ast.Compare]:
    """``==``/``!=`` with a secret-looking operand, outside SQL expressions (``X.c.col == v``
    builds a query: the database looks the value up, Python compares nothing)."""

    def names(node: ast.expr) -> list[str]:
        found = []
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name):
                found.append(sub.id)
            elif isinstance(sub, ast.Attribute):
                found.append(sub.attr)
        return found

    def is_column(node: ast.expr) -> bool:
        return (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "c"
        )

    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        if not any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
            continue
        operands = [node.left, *node.comparators]
        if any(is_column(operand) for operand in operands):
            continue
        if any(isinstance(operand, ast.Constant) for operand in operands):
            continue  # against a literal such as "" or None: no secret on the other side
        if any(SECRET_NAME.search(name) for operand in operands for name in names(operand)):
            yield node


def test_no_secret_is_compared_with_eq() -> None:
    """Nothing in the server compares a token, secret or digest with ``==``: such checks use
    ``hmac.compare_digest`` (or a database lookup by hash)."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        found += [
            f"{path.relative_to(SRC)}:{node.lineno}: {ast.unparse(node)}"
            for node in secret_comparisons(tree)
        ]
    assert not found, "compare secrets with hmac.compare_digest:\n" + "\n".join(found)


def test_the_secret_scan_finds_an_eq_comparison() -> None:
    """The scan above would see the mistake it looks for."""
    bad = ast.parse("def check(expected, sent_token):\n    return sent_token == expected\n")
    good = ast.parse("hmac.compare_digest(submitted_token, expected)\nTOKENS.c.token_hash == h\n")
    assert len(list(secret_comparisons(bad))) == 1
    assert not list(secret_comparisons(good))


def test_a_qobj_upload_under_a_taken_job_id(world: World) -> None:
    """The 2021 client names its job before it uploads the Qobj: an id another user's job has
    does not exist for the uploader (404, as everywhere), and the owner's own is a 409."""
    url = fill(JOBS + "/{job_id}/qobj", {**PROJECT, "job_id": world.done_job})
    params = {"backend": "ibmq_qasm_simulator"}
    for caller, status, code in ((OTHER, 404, "not_found"), (OWNER, 409, "duplicate")):
        headers = {"X-Access-Token": world.tokens[caller]}
        response = world.http.put(url, params=params, headers=headers, content=BELL_QOBJ)
        assert_error(response, status, code)
