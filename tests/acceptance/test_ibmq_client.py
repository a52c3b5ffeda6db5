"""The seed's own 2021 client against qruntime, unmodified: ``qiskit-ibmq-provider`` 0.20.2 in
its own cached venv (``client_venvs.py``) runs, as one process, the seed README's quickstart
block exactly as printed there, followed by ``tests/fixtures/ibmq2021/tour.py`` (the seed
tutorial's template uploaded, run and deleted, and the rest of the client's API). Every line it
prints is checked. The client only gets ``QE_TOKEN`` and ``QE_URL``, plus the test CA's file in
the two standard trust-store variables: the server speaks HTTPS, because that client streams
interim results only from an ``https`` runtime URL (docs/compat.md).
"""

from __future__ import annotations

import ast
import base64
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from client_venvs import BUILD_WAIT_TIMEOUT, client_python

from server_harness import ServerProcess

REPO = Path(__file__).resolve().parents[2]
#: The quickstart block of ../shared/seeds/runtime-programs-repo-readme.md, copied verbatim,
#: and the example the README runs with the 2021 client (the same text).
QUICKSTART = REPO / "tests" / "fixtures" / "seeds" / "quickstart_seed.py.txt"
EXAMPLE = REPO / "examples" / "quickstart_2021.py"
TOUR = REPO / "tests" / "fixtures" / "ibmq2021" / "tour.py"
SEPARATOR = "=" * 50
#: The values tour.py sends through a program that echoes them, each back as it went.
ALL_SAME = dict.fromkeys(("array", "complex", "set", "when", "op", "state", "sparse"), True)
CATALOGUE = sorted(json.loads(p.read_text())["name"] for p in (REPO / "runtime").glob("*.json"))

SAMPLE_PROGRAM = """\
sample-program:
  Name: sample-program
  Description: A sample runtime program that submits random circuits for user-specified \
iterations.
  Creation date: {created}
  Update date: {updated}
  Max execution time: 300
  Input parameters:
    Properties:
        - iterations:
            Type: integer
            Minimum: 0
            Description: Number of iterations to run. Each iteration generates a runs a random \
circuit.
            Required: True
  Interim results:
    Properties:
        - iteration:
            Type: integer
            Description: Iteration number.
            Required: False
        - counts:
            Description: Histogram data of the circuit result.
            Type: object
            Required: False
  Returns:
    Description: A string that says 'All done!'.
    Type: string"""


@pytest.fixture(scope="module")
def client() -> Path:
    return client_python()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("ibmq-client")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(base / "ca.pem")
    cert.private_key_pem.write_to_path(base / "key.pem")
    cert.cert_chain_pems[0].write_to_path(base / "cert.pem")
    server = ServerProcess(
        base / "data",
        base / "accounts.json",
        ca_file=base / "ca.pem",
        extra_args=[
            *("--catalogue", str(REPO / "runtime")),
            *("--tls-cert", str(base / "cert.pem"), "--tls-key", str(base / "key.pem")),
        ],
    )
    server.start()
    yield server
    server.stop()


def prepare_quickstart(server: ServerProcess) -> None:
    """What examples/prepare_quickstart.py does: the program the quickstart deletes."""
    metadata = json.loads((REPO / "runtime" / "sample_program.json").read_text())
    source = (REPO / "runtime" / "sample_program.py").read_bytes()
    body = {
        "data": base64.b64encode(source).decode(),
        "metadata": metadata | {"name": "id-to-delete"},
        "bare_name": True,
    }
    with server.client() as admin:
        assert admin.post("/programs", json=body).status_code == 201


def run_client(client: Path, server: ServerProcess, home: Path) -> subprocess.CompletedProcess:
    script = home / "quickstart_and_tour.py"
    script.write_text(EXAMPLE.read_text() + "\n" + TOUR.read_text())
    assert server.ca_file is not None
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),  # no ~/.qiskit/qiskitrc of the machine's user
        "QE_TOKEN": server.admin_token,
        "QE_URL": f"{server.url}/api",
        "REQUESTS_CA_BUNDLE": str(server.ca_file),
        "SSL_CERT_FILE": str(server.ca_file),
    }
    done = subprocess.run(
        [str(client), str(script)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    (home / "client.log").write_text(done.stdout + "\n--- stderr\n" + done.stderr)
    return done


def test_the_example_is_the_seed_quickstart_byte_for_byte() -> None:
    assert EXAMPLE.read_bytes() == QUICKSTART.read_bytes()


def checks(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        if line.startswith("CHECK "):
            name, _, value = line.removeprefix("CHECK ").partition(": ")
            found[name] = value
    return found


@pytest.mark.timeout(BUILD_WAIT_TIMEOUT)  # its fixture may wait for the client venv's build
def test_the_seed_quickstart_and_tutorial_run_on_the_2021_client(
    client: Path, server: ServerProcess, tmp_path: Path
) -> None:
    prepare_quickstart(server)

    done = run_client(client, server, tmp_path)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:] + server.log()[-3000:]
    lines = done.stdout.splitlines()
    with server.client() as admin:
        listing = admin.get("/programs", params={"limit": 100}).json()["programs"]
        programs = {program["id"]: program for program in listing}
        sample = programs["sample-program"]
        quickstart_jobs = admin.get("/jobs", params={"program_id": "sample-program"}).json()["jobs"]

    # print(program_id)
    uploaded = lines[0]
    assert re.fullmatch(r"sample-program-[a-z0-9]{6}", uploaded), lines[:5]
    assert uploaded in programs

    # provider.runtime.pprint_programs(refresh=True): every program, id-to-delete still there
    end = next(i for i, line in enumerate(lines) if line.startswith("  Creation date:")) - 3
    blocks = "\n".join(lines[1:end]).split(SEPARATOR)
    assert blocks[0] == ""
    listed = {}
    for block in blocks[1:]:
        head, name, description = block.strip("\n").split("\n")
        listed[head.removesuffix(":")] = (name, description)
    assert sorted(listed) == sorted([*CATALOGUE, "id-to-delete", uploaded])
    for program_id, (name, description) in listed.items():
        if program_id in programs:
            assert name == f"  Name: {programs[program_id]['name']}"
            assert description == f"  Description: {programs[program_id]['description']}"

    # print(provider.runtime.program(program_id='sample-program', refresh=True))
    expected = SAMPLE_PROGRAM.format(created=sample["creation_date"], updated=sample["update_date"])
    assert lines[end : end + len(expected.splitlines())] == expected.splitlines()

    # the callback printed each interim result of the quickstart's two iterations (and the
    # tutorial template's one), once; print(job.status())
    interims = [ast.literal_eval(line) for line in lines if line.startswith("{'iteration'")]
    assert [i["iteration"] for i in interims] == [0, 1]
    assert all(sum(i["counts"].values()) == 1024 for i in interims)
    assert all(re.fullmatch(r"[01]{5}", key) for i in interims for key in i["counts"])
    assert lines.count("This is an interim result.") == 1
    status = lines[end + len(expected.splitlines())]
    assert status in ("JobStatus.QUEUED", "JobStatus.RUNNING", "JobStatus.DONE"), status

    # the quickstart's job, as the server has it: on fake_montreal, done, "All done!"
    assert [(job["backend"], job["status"]) for job in quickstart_jobs] == [
        ("fake_montreal", "DONE")
    ]
    assert "id-to-delete" not in programs

    found = checks(lines)
    template_id = found["template uploaded"]
    assert re.fullmatch(r"program-template-[a-z0-9]{6}", template_id)
    assert found == {
        "quickstart result": "'All done!'",
        "providers": "[('ibm-q', 'open', 'main')]",
        "get_provider": "True",
        "template uploaded": template_id,
        "template result": "final result",
        "cancel finished runtime job": "True True",
        "logs": "''",
        "updated": "Updated by the tour.",
        "data updated": "True",
        "updated result": "updated 'updated ran'",
        "stream_results": "True",
        "public": "True",
        "private": "False",
        "jobs": "True True",
        "jobs paged": "3 True",
        "job": "True",
        "deleted": "False",
        "echoed": str(
            {k: True for k in ("array", "complex", "set", "when", "op", "state", "sparse")}
        ),
        "echoed interim": "1 "
        + str({k: True for k in ("array", "complex", "set", "when", "op", "state", "sparse")}),
        "instruction refused": "True True",
        "circuit result refused": "True True",
        "circuit interim": "[True]",
        "failure": "ERROR True True",
        "job deleted": "True",
        "cancelled": "CANCELLED CANCELLED",
        "backends": "True True 5 ['id', 'rz', 'sx', 'x', 'cx', 'reset']",
        "properties": "ibmq_lima 5 None",
        "status": "True 0",
        "defaults and limit": "None True",
        "run_circuits": "['00', '11'] 200",
        "mitigated": found["mitigated"],
        "execute": "DONE ['00', '11'] 300",
        "backend.run": "100 ibmq_lima",
        "cancel finished": "False True",
        "retrieve": "True",
        "backend jobs": "True True",
        "logout": "True",
    }
    total, likely = found["mitigated"].split()
    assert abs(float(total) - 1) < 1e-6 and likely == "True"
