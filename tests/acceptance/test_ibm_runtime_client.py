"""Today's qiskit-ibm-runtime against qruntime, unmodified, as a user drives it: one module-wide
server with the catalogue, the client in this process, pointed at the server only by the
documented recipe (docs/compat.md): ``IAM_URL``, ``GLOBAL_SEARCH_URL``, ``GLOBAL_CATALOG_URL``
and ``QiskitRuntimeService(channel, url, token, instance, url_resolver)``.
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from client_venvs import BUILD_WAIT_TIMEOUT, IBM_RUNTIME_OLDEST, client_python
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.quantum_info import SparsePauliOp
from qiskit.transpiler import generate_preset_pass_manager
from qiskit_ibm_runtime import (
    Batch,
    EstimatorV2,
    QiskitRuntimeService,
    RuntimeEncoder,
    SamplerV2,
    Session,
)
from qiskit_ibm_runtime.accounts import InvalidAccountError
from qiskit_ibm_runtime.api.exceptions import RequestsApiError
from qiskit_ibm_runtime.exceptions import (
    IBMInputValueError,
    IBMRuntimeError,
    RuntimeInvalidStateError,
    RuntimeJobMaxTimeoutError,
    RuntimeJobNotFound,
)

from qruntime.client import RuntimeService
from server_harness import QRUNTIME, ServerProcess
from server_support import create_user

REPO = Path(__file__).resolve().parents[2]
#: A small device of the kind IBM offers today (27 qubits, ecr): quick to transpile for.
DEVICE = "ibm_peekskill"

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def recipe_env(url: str) -> dict[str, str]:
    """The environment the recipe sets: where the client's IBM Cloud look-ups go."""
    return {
        "IAM_URL": url,
        "GLOBAL_SEARCH_URL": f"{url}/global-search",
        "GLOBAL_CATALOG_URL": f"{url}/global-catalog",
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("ibm-runtime-client")
    server = ServerProcess(
        base / "data", base / "accounts.json", extra_args=["--catalogue", str(REPO / "runtime")]
    )
    server.start()
    saved = {name: os.environ.get(name) for name in recipe_env(server.url)}
    os.environ.update(recipe_env(server.url))
    yield server
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    server.stop()


@pytest.fixture(scope="module")
def users(server: ServerProcess) -> dict[str, dict[str, Any]]:
    """alice and bob: a token and the instance CRN each, as ``GET /users/me`` shows it."""
    found = {}
    with server.client() as admin:
        for name in ("alice", "bob"):
            token = create_user(admin, name)["token"]
            with server.client(token) as own:
                found[name] = {"token": token, "instance": own.get("/users/me").json()["instance"]}
    return found


@pytest.fixture(scope="module")
def qruntime_cli_env(server: ServerProcess) -> dict[str, str]:
    """The CLI's environment: the account file the server saved its admin's account in."""
    return server.env()


def service_for(server: ServerProcess, user: dict[str, Any]) -> QiskitRuntimeService:
    return QiskitRuntimeService(
        channel="ibm_quantum_platform",
        url=f"{server.url}/api/v1",
        token=user["token"],
        instance=user["instance"],
        url_resolver=lambda url, *args: url,
    )


@pytest.fixture(scope="module")
def alice(server: ServerProcess, users: dict[str, dict[str, Any]]) -> QiskitRuntimeService:
    return service_for(server, users["alice"])


@pytest.fixture(scope="module")
def bob(server: ServerProcess, users: dict[str, dict[str, Any]]) -> QiskitRuntimeService:
    return service_for(server, users["bob"])


def test_the_service_lists_the_callers_instance_and_its_backends(
    alice: QiskitRuntimeService, users: dict[str, dict[str, Any]], server: ServerProcess
) -> None:
    assert users["alice"]["instance"].startswith("crn:v1:")
    assert users["alice"]["instance"] != users["bob"]["instance"]
    page = httpx.get(
        f"{server.url}/ui/programs", cookies={"qruntime_session": users["alice"]["token"]}
    )
    assert page.status_code == 200 and users["alice"]["instance"] in page.text, (
        "not on the dashboard"
    )
    assert [i["crn"] for i in alice.instances()] == [users["alice"]["instance"]]
    names = [backend.name for backend in alice.backends()]
    assert names[0] == "aer_simulator" and DEVICE in names and "ibm_brisbane" in names
    assert "ibm_lima" not in names, "a retired cx device is offered"
    devices = alice.backends(simulator=False, min_num_qubits=150)
    assert devices and all(b.num_qubits >= 150 for b in devices)
    assert [b.name for b in alice.backends(name=DEVICE)] == [DEVICE]
    backend = alice.backend(DEVICE)
    assert backend.num_qubits == backend.target.num_qubits == 27
    assert "ecr" in backend.target.operation_names
    assert backend.configuration().n_qubits == 27
    assert backend.properties().t1(0) > 0
    status = backend.status()
    assert status.operational and status.status_msg == "active" and status.pending_jobs == 0
    assert alice.least_busy(min_num_qubits=150).num_qubits >= 150


def test_a_saved_account_makes_the_service(
    server: ServerProcess, users: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """The client saves no ``url_resolver``: it is passed again at construction (the recipe)."""
    accounts = tmp_path / "qiskit-ibm.json"
    QiskitRuntimeService.save_account(
        channel="ibm_quantum_platform",
        url=f"{server.url}/api/v1",
        token=users["bob"]["token"],
        instance=users["bob"]["instance"],
        filename=str(accounts),
        set_as_default=True,
    )
    service = QiskitRuntimeService(filename=str(accounts), url_resolver=lambda url, *args: url)
    assert service.active_instance() == users["bob"]["instance"]
    assert service.backend("aer_simulator").num_qubits > 0


def test_sampler_counts_are_the_exact_distribution(alice: QiskitRuntimeService) -> None:
    """Deterministic circuits: every shot gives the one outcome; one PUB sweeps a parameter."""
    backend = alice.backend("aer_simulator")
    fixed = QuantumCircuit(3)
    fixed.x(0)
    fixed.x(2)
    fixed.measure_all()
    theta = Parameter("theta")
    swept = QuantumCircuit(1)
    swept.rx(theta, 0)
    swept.measure_all()
    sampler = SamplerV2(mode=backend)
    sampler.options.default_shots = 300
    job = sampler.run([fixed, (swept, [[0.0], [math.pi]], 50)])
    result = job.result()
    assert result[0].data.meas.get_counts() == {"101": 300}
    sweep = result[1].data.meas
    assert sweep.shape == (2,)
    assert sweep[0].get_counts() == {"0": 50} and sweep[1].get_counts() == {"1": 50}
    assert job.status() == "DONE" and job.primitive_id == "sampler"


def test_estimator_values_are_exact_with_their_standard_errors(
    alice: QiskitRuntimeService,
) -> None:
    bell = QuantumCircuit(2)
    bell.h(0)
    bell.cx(0, 1)
    estimator = EstimatorV2(mode=alice.backend("aer_simulator"))
    estimator.options.default_precision = 0.02
    estimator.options.seed_estimator = 11
    result = estimator.run([(bell, ["ZZ", "XX", "YY"])]).result()
    np.testing.assert_allclose(result[0].data.evs, [1.0, 1.0, -1.0])
    np.testing.assert_allclose(result[0].data.stds, [0.0, 0.0, 0.0], atol=1e-12)
    assert result[0].metadata["target_precision"] == 0.02


def test_device_jobs_need_isa_circuits_and_take_the_pass_managers(
    alice: QiskitRuntimeService, users: dict[str, dict[str, Any]], server: ServerProcess
) -> None:
    backend = alice.backend(DEVICE)
    bell = QuantumCircuit(2)
    bell.h(0)
    bell.cx(0, 1)
    bell.measure_all()
    with pytest.raises(IBMInputValueError, match="target hardware"):
        SamplerV2(mode=backend).run([bell])  # the client's own check, as against IBM
    isa = generate_preset_pass_manager(backend=backend, optimization_level=1).run(bell)
    sampler = SamplerV2(mode=backend)
    sampler.options.default_shots = 400
    sampler.options.simulator.seed_simulator = 3
    counts = sampler.run([isa]).result()[0].data.meas.get_counts()
    assert sum(counts.values()) == 400
    assert counts.get("00", 0) + counts.get("11", 0) > 300  # noisy, but a Bell state
    # The server checks too: a request that skips the client's check is refused alike.
    refused = raw_run(server, users["alice"], DEVICE, bell)
    assert refused.status_code == 400, refused.text
    assert "target hardware" in refused.text and "pubs[0]" in refused.text


def raw_run(
    server: ServerProcess,
    user: dict[str, Any],
    backend: str,
    circuit: QuantumCircuit,
    session_id: str | None = None,
) -> httpx.Response:
    """A sampler job sent as the client sends it, but past the client's own checks."""
    access = httpx.post(
        f"{server.url}/identity/token",
        data={"grant_type": "urn:ibm:params:oauth:grant-type:apikey", "apikey": user["token"]},
    ).json()["access_token"]
    body: dict[str, Any] = {
        "program_id": "sampler",
        "backend": backend,
        "params": {"pubs": [[circuit]]},
    }
    if session_id is not None:
        body["session_id"] = session_id
    return httpx.post(
        f"{server.url}/api/v1/jobs",
        content=json.dumps(body, cls=RuntimeEncoder),
        headers={
            "Authorization": f"Bearer {access}",
            "Service-CRN": user["instance"],
            "Content-Type": "application/json",
        },
    )


def test_options_qruntime_does_not_apply_are_refused_by_name(
    alice: QiskitRuntimeService,
) -> None:
    circuit = QuantumCircuit(1)
    circuit.measure_all()
    sampler = SamplerV2(mode=alice.backend("aer_simulator"))
    sampler.options.twirling.enable_gates = True
    with pytest.raises(IBMRuntimeError, match=r"options\.twirling\.enable_gates: is not supported"):
        sampler.run([circuit])
    with pytest.raises(RequestsApiError, match="max_ttl"):
        Session(backend=alice.backend(DEVICE), max_time="9h")  # over the 8 h IBM allows too
    estimator = EstimatorV2(mode=alice.backend("aer_simulator"))
    estimator.options.resilience_level = 2
    with pytest.raises(IBMRuntimeError, match="resilience_level"):
        estimator.run([(QuantumCircuit(1), "Z")])


def test_jobs_are_listed_read_cancelled_and_private_to_their_owner(
    alice: QiskitRuntimeService, bob: QiskitRuntimeService, server: ServerProcess
) -> None:
    circuit = QuantumCircuit(2)
    circuit.h([0, 1])
    circuit.measure_all()
    tagged = SamplerV2(mode=alice.backend("aer_simulator"))
    tagged.options.environment.job_tags = ["experiment-7", "100%_sure"]
    done = tagged.run([circuit])
    done.result()
    # A job big enough to be still queued or running when it is cancelled.
    wide = QuantumCircuit(24)
    wide.h(range(24))
    for qubit in range(23):
        wide.cx(qubit, qubit + 1)
    wide.measure_all()
    slow = SamplerV2(mode=alice.backend("aer_simulator")).run([(wide, None, 1_000_000)])
    slow.cancel()
    assert slow.status() == "CANCELLED"
    with pytest.raises(RuntimeInvalidStateError, match="cancelled"):
        slow.result()
    again = alice.job(done.job_id())
    assert again.status() == "DONE" and again.primitive_id == "sampler"
    assert again.backend().name == "aer_simulator"
    assert again.metrics()["usage"]["status"] == "final" and again.usage() >= 0
    assert isinstance(again.logs(), str)
    listed = [job.job_id() for job in alice.jobs(limit=5, program_id="sampler")]
    assert listed.index(slow.job_id()) < listed.index(done.job_id()), "not newest first"
    oldest = alice.jobs(limit=1, descending=False, pending=False)
    assert oldest and oldest[0].creation_date <= again.creation_date
    assert not alice.jobs(backend_name=DEVICE, pending=True)
    assert alice.job(done.job_id()).tags == ["experiment-7", "100%_sure"]
    assert [j.job_id() for j in alice.jobs(job_tags=["100%_sure"])] == [done.job_id()]
    assert not alice.jobs(job_tags=["100%"]), "a tag matched part of another"
    assert again.update_tags(["reviewed"]) == ["reviewed"]
    assert [j.job_id() for j in alice.jobs(job_tags=["reviewed"])] == [done.job_id()]
    # bob sees none of alice's jobs, and cannot act in her instance
    with pytest.raises(RuntimeJobNotFound):
        bob.job(done.job_id())
    assert done.job_id() not in [job.job_id() for job in bob.jobs(limit=50)]


def test_wrong_tokens_and_instances_are_refused(
    server: ServerProcess, users: dict[str, dict[str, Any]]
) -> None:
    wrong = {"token": "qrt_not-a-token", "instance": users["alice"]["instance"]}
    with warnings.catch_warnings(), pytest.raises(InvalidAccountError, match=r"valid API token"):
        warnings.simplefilter("ignore")
        service_for(server, wrong)
    someone_else = {"token": users["bob"]["token"], "instance": users["alice"]["instance"]}
    with pytest.raises(IBMInputValueError, match="does not have access"):
        service_for(server, someone_else)
    exchange = httpx.post(
        f"{server.url}/identity/token",
        data={"grant_type": "urn:ibm:params:oauth:grant-type:apikey", "apikey": "qrt_wrong"},
    )
    assert exchange.status_code == 401, exchange.text
    forged = httpx.get(
        f"{server.url}/api/v1/backends",
        headers={"Authorization": "Bearer e30.e30.c2ln"},  # a JWT's shape, no valid signature
    )
    assert forged.status_code == 401, forged.text


def test_the_oldest_supported_client_is_the_one_pyproject_declares() -> None:
    """The oldest-client venv pins exactly pyproject's lower bound, so the bound is tested."""
    pinned = re.search(r"^qiskit-ibm-runtime==(\S+)$", IBM_RUNTIME_OLDEST[0].read_text(), re.M)
    declared = re.search(r'"qiskit-ibm-runtime>=(\S+)"', (REPO / "pyproject.toml").read_text())
    assert pinned and declared, "a pin in the requirements file and a bound in pyproject.toml"
    assert pinned.group(1).removesuffix(".0") == declared.group(1).removesuffix(".0")


@pytest.mark.timeout(BUILD_WAIT_TIMEOUT)  # may wait for the client venv's build (conftest.py)
@pytest.mark.parametrize("client", ["pinned", "oldest"])
def test_the_readme_script_runs_as_written_for_ibm(
    server: ServerProcess, tmp_path: Path, qruntime_cli_env: dict[str, str], client: str
) -> None:
    """examples/ibm_runtime_quickstart.py in its own process, with the README's environment
    and the instance ``qruntime account show`` prints (the server saved the admin's account);
    with the client qruntime installs and with the oldest it supports, in a venv of its own."""
    python = sys.executable if client == "pinned" else str(client_python(IBM_RUNTIME_OLDEST))
    shown = subprocess.run(
        [QRUNTIME, "account", "show"], capture_output=True, text=True, env=qruntime_cli_env
    )
    assert shown.returncode == 0, shown.stderr
    instance = re.search(r"^instance: (crn:\S+)$", shown.stdout, re.MULTILINE)
    assert instance, shown.stdout
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),  # no saved qiskit-ibm account of the machine's user
        **recipe_env(server.url),
        "QRUNTIME_API": f"{server.url}/api/v1",
        "QRUNTIME_TOKEN": server.admin_token,
        "QRUNTIME_INSTANCE": instance.group(1),
        "PYTHONWARNINGS": "ignore",
    }
    ran = subprocess.run(
        [python, str(REPO / "examples" / "ibm_runtime_quickstart.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    lines = ran.stdout.splitlines()
    assert re.fullmatch(r"backend: ibm_\w+ 1\d\d qubits", lines[0]), lines
    counts = re.fullmatch(r"sampler job j-\w+ DONE counts: (\{.*\})", lines[1])
    assert counts, lines
    bell = ast.literal_eval(counts.group(1))
    assert sum(bell.values()) == 1000 and bell.get("00", 0) + bell.get("11", 0) > 800, bell
    values = re.fullmatch(r"estimator <ZZ>, <XX>: \[(.*), (.*)\]", lines[2])
    assert values and all(0.8 <= float(v) <= 1.0 for v in values.groups()), lines
    session = re.fullmatch(r"session (\S+) jobs: DONE 200 shots, <ZZ> (\S+)", lines[3])
    assert session and 0.8 <= float(session.group(2)) <= 1.0, lines
    grouped = native_session(server, {"token": server.admin_token}, session.group(1))
    assert len(grouped["jobs"]) == 2, grouped


@pytest.fixture(scope="module")
def device_circuits(alice: QiskitRuntimeService) -> dict[str, Any]:
    """ISA circuits for the device (a session needs one: the client opens none on a
    simulator): a Bell pair measured, unmeasured with its ZZ, and a wide one that runs long."""
    backend = alice.backend(DEVICE)
    manager = generate_preset_pass_manager(backend=backend, optimization_level=1)
    bell = QuantumCircuit(2)
    bell.h(0)
    bell.cx(0, 1)
    unmeasured = manager.run(bell)
    measured = bell.copy()
    measured.measure_all()
    wide = QuantumCircuit(20)
    wide.h(range(20))
    for qubit in range(19):
        wide.cx(qubit, qubit + 1)
    wide.measure_all()
    return {
        "backend": backend,
        "bell": manager.run(measured),
        "unmeasured": unmeasured,
        "zz": SparsePauliOp("ZZ").apply_layout(unmeasured.layout),
        "wide": manager.run(wide),
    }


def native_session(server: ServerProcess, user: dict[str, Any], session_id: str) -> Any:
    """The session as the native API shows it to its owner, with its jobs."""
    with server.client(user["token"]) as native:
        shown = native.get(f"/sessions/{session_id}")
    assert shown.status_code == 200, shown.text
    return shown.json()


def test_a_session_runs_its_jobs_one_after_another_and_closes(
    alice: QiskitRuntimeService,
    bob: QiskitRuntimeService,
    server: ServerProcess,
    users: dict[str, dict[str, Any]],
    device_circuits: dict[str, Any],
) -> None:
    circuits = device_circuits
    with Session(backend=circuits["backend"]) as session:
        sampler = SamplerV2(mode=session)
        sampler.options.default_shots = 50
        estimator = EstimatorV2(mode=session)
        estimator.options.default_precision = 0.2
        jobs = [
            sampler.run([circuits["bell"]]),
            estimator.run([(circuits["unmeasured"], circuits["zz"])]),
            sampler.run([circuits["bell"]]),
        ]
        assert session.status() in ("Pending", "In progress, accepting new jobs")
        results = [job.result() for job in jobs]
    assert sum(results[0][0].data.meas.get_counts().values()) == 50
    assert results[1][0].data.evs.shape == ()
    assert {job.session_id for job in jobs} == {session.session_id}
    assert session.status() == "Closed", session.details()  # closed by the block, drained
    assert session.details()["mode"] == "dedicated" and session.usage() >= 0
    shown = native_session(server, users["alice"], session.session_id)
    assert shown["mode"] == "session" and shown["state"] == "closed", shown
    assert [job["id"] for job in shown["jobs"]] == [job.job_id() for job in jobs]
    for before, after in zip(shown["jobs"], shown["jobs"][1:], strict=False):
        assert after["start_date"] >= before["end_date"], shown["jobs"]  # one after another
    assert [j.job_id() for j in alice.jobs(session_id=session.session_id)] == [
        job.job_id() for job in reversed(jobs)
    ]
    refused = raw_run(server, users["alice"], DEVICE, circuits["bell"], session.session_id)
    assert refused.status_code == 409 and "was closed" in refused.text, refused.text
    cookie = {"qruntime_session": users["alice"]["token"]}
    page = httpx.get(f"{server.url}/ui/jobs/{jobs[0].job_id()}", cookies=cookie)
    assert f'href="/ui/sessions/{session.session_id}"' in page.text, "no session on the job page"
    listed = httpx.get(f"{server.url}/ui/sessions", cookies=cookie)
    assert f'data-session-id="{session.session_id}"' in listed.text
    one = httpx.get(f"{server.url}/ui/sessions/{session.session_id}", cookies=cookie)
    assert all(f'data-job-id="{job.job_id()}"' in one.text for job in jobs), one.text
    with RuntimeService(url=server.url, token=users["alice"]["token"]) as native_sdk:
        seen = native_sdk.session(session.session_id)
        assert seen.jobs is not None and [j.id for j in seen.jobs] == [j.job_id() for j in jobs]
        assert session.session_id in [s.id for s in native_sdk.sessions(limit=50)]
        assert native_sdk.job(jobs[1].job_id()).session_id == session.session_id
    env = {**os.environ, "QRUNTIME_URL": server.url, "QRUNTIME_TOKEN": users["alice"]["token"]}
    shown_cli = subprocess.run(
        [QRUNTIME, "sessions", "show", session.session_id], capture_output=True, text=True, env=env
    )
    assert shown_cli.returncode == 0, shown_cli.stderr
    assert f"session {session.session_id} on {DEVICE.replace('ibm_', 'fake_')}: closed" in (
        shown_cli.stdout
    )
    assert all(job.job_id() in shown_cli.stdout for job in jobs), shown_cli.stdout
    with pytest.raises(IBMInputValueError, match="not found"):
        Session.from_id(session.session_id, bob)  # another user's session does not exist
    theirs = raw_run(server, users["bob"], DEVICE, circuits["bell"], session.session_id)
    assert theirs.status_code == 404, theirs.text


def test_a_batch_groups_its_jobs_and_a_cancelled_session_cancels_them(
    alice: QiskitRuntimeService,
    server: ServerProcess,
    users: dict[str, dict[str, Any]],
    device_circuits: dict[str, Any],
) -> None:
    circuits = device_circuits
    with Batch(backend=circuits["backend"]) as batch:
        sampler = SamplerV2(mode=batch)
        sampler.options.default_shots = 20
        jobs = [sampler.run([circuits["bell"]]) for _ in range(2)]
        for job in jobs:
            job.result()
    assert batch.details()["mode"] == "batch" and batch.status() == "Closed"
    shown = native_session(server, users["alice"], batch.session_id)
    assert shown["mode"] == "batch" and [j["id"] for j in shown["jobs"]] == [
        job.job_id() for job in jobs
    ]
    assert shown["jobs"][0]["start_date"] <= shown["jobs"][1]["start_date"]

    session = Session(backend=circuits["backend"])
    slow = SamplerV2(mode=session).run([(circuits["wide"], None, 1_000_000)])
    waiting = SamplerV2(mode=session).run([circuits["bell"]])
    session.cancel()
    assert slow.status() == "CANCELLED" and waiting.status() == "CANCELLED"
    assert session.status() == "Cancelled"
    with pytest.raises(IBMRuntimeError, match="closed"):
        SamplerV2(mode=session).run([circuits["bell"]])
    refused = raw_run(server, users["alice"], DEVICE, circuits["bell"], session.session_id)
    assert refused.status_code == 409 and "was cancelled" in refused.text, refused.text


def test_a_session_out_of_time_refuses_jobs_and_cancels_those_waiting(
    alice: QiskitRuntimeService,
    server: ServerProcess,
    users: dict[str, dict[str, Any]],
    device_circuits: dict[str, Any],
) -> None:
    """Its clock starts with its first job: that one runs on (to its own time limit), the
    next one never starts, and no more are taken. The second is submitted while the session
    still accepts jobs: its 4 s leave room for a loaded machine (with 1 s, the client's own
    work between the two submits outlasted the session on CI-like load)."""
    circuits = device_circuits
    session = Session(backend=circuits["backend"], max_time=4)
    long_one = SamplerV2(mode=session)
    long_one.options.max_execution_time = 8
    first = long_one.run([(circuits["wide"], None, 1_000_000)])
    second = SamplerV2(mode=session).run([circuits["bell"]])
    with pytest.raises(RuntimeJobMaxTimeoutError):
        first.result()
    second.wait_for_final_state()
    assert second.status() == "CANCELLED"
    shown = native_session(server, users["alice"], session.session_id)
    assert shown["state"] == "closed" and not shown["accepting_jobs"], shown
    assert [j["reason"] for j in shown["jobs"]] == ["RAN TOO LONG", "SESSION ENDED"]
    assert second.job_id() in [j["id"] for j in shown["jobs"]]
    refused = raw_run(server, users["alice"], DEVICE, circuits["bell"], session.session_id)
    assert refused.status_code == 409 and "max_time of 4 s" in refused.text, refused.text
