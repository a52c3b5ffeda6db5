"""The server commands of the ``qruntime`` CLI, end to end: the installed command as a subprocess,
talking through the SDK to one real ``qruntime serve`` (admin account from its accounts file)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Iterator

import httpx
import pytest

from repo_paths import PROGRAMS, QRUNTIME
from server_harness import ServerProcess
from server_support import create_user, metadata, submit, upload, wait_until

#: How the 2021 service printed ``service.program('hello-world')`` (../shared/reference).
REFERENCE = PROGRAMS.parent / "reference" / "program-str.txt"
DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
HELLO_INPUTS = '{"iterations": 2}'

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("cli-server")
    server = ServerProcess(base / "data", base / "accounts.json", max_concurrent_jobs=2)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def cli(server: ServerProcess) -> Cli:
    """Run ``qruntime ARGS`` with the server's account file, so no flag is needed."""

    def run(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [QRUNTIME, *map(str, args)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**server.env(), **(env or {})},
        )

    return run


@pytest.fixture(scope="module")
def admin(server: ServerProcess) -> Iterator[httpx.Client]:
    """Raw HTTP, for setting the scene and checking what the CLI did."""
    with server.client() as client:
        yield client


@pytest.fixture(scope="module")
def uploaded(cli: Cli) -> subprocess.CompletedProcess[str]:
    return cli("upload", PROGRAMS / "hello_world.py", PROGRAMS / "hello_world.json")


@pytest.fixture(scope="module")
def hello_id(uploaded: subprocess.CompletedProcess[str]) -> str:
    assert uploaded.returncode == 0, uploaded.stderr
    return uploaded.stdout.strip()


def job_count(admin: httpx.Client) -> int:
    return admin.get("/jobs", params={"limit": 0}).json()["total"]


def assert_error(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    """Refused cleanly: the exit status, one ``error:`` line, no traceback, nothing on stdout."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr.startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout == ""
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


# --- programs --------------------------------------------------------------------------------


def test_upload_prints_only_the_new_id(uploaded, hello_id):
    assert uploaded.stdout == f"{hello_id}\n"
    assert re.fullmatch(r"hello-world-[a-z0-9]{6}", hello_id)


def test_programs_lists_it_and_detailed_shows_parameters(cli, hello_id):
    short = cli("programs")
    assert short.returncode == 0, short.stderr
    assert f"{hello_id}:\n  Name: hello-world\n  Description: A sample runtime program.\n" in (
        short.stdout
    )
    assert "Input parameters:" not in short.stdout
    detailed = cli("programs", "--detailed", "--limit", 0)
    assert detailed.returncode == 0, detailed.stderr
    assert "Input parameters:" in detailed.stdout
    assert "        - iterations:" in detailed.stdout


def test_program_prints_the_reference_layout(cli, hello_id):
    proc = cli("program", hello_id)
    assert proc.returncode == 0, proc.stderr
    expected = DATE.sub("DATE", REFERENCE.read_text()).replace("hello-world:", f"{hello_id}:", 1)
    assert DATE.sub("DATE", proc.stdout) == expected


def test_update_then_delete(cli, admin):
    program_id = upload(admin, "sleeps_forever")["id"]
    proc = cli("update", program_id, "--description", "Sleeps, updated.", "--public")
    assert proc.returncode == 0, proc.stderr
    body = admin.get(f"/programs/{program_id}").json()
    assert (body["description"], body["is_public"]) == ("Sleeps, updated.", True)

    proc = cli("delete", program_id)
    assert proc.returncode == 0, proc.stderr
    assert admin.get(f"/programs/{program_id}").status_code == 404
    assert_error(cli("delete", program_id), 2, f"no program has the id or name '{program_id}'")


# --- running jobs ----------------------------------------------------------------------------


def test_run_prints_each_interim_then_the_result(cli, hello_id):
    proc = cli("run", hello_id, "--inputs", HELLO_INPUTS, "--backend", "fake_manila")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split(" ", 1)[0] for line in lines[:2]] == ["[1]", "[2]"]
    assert lines[2:] == ['"All done!"']
    interims = [json.loads(line.split(" ", 1)[1]) for line in lines[:2]]
    assert [i["iteration"] for i in interims] == [0, 1]
    assert all(sum(i["counts"].values()) == 1024 for i in interims)
    assert re.search(r"^job j-\w+: DONE$", proc.stderr, re.MULTILINE), proc.stderr


def test_run_of_a_failing_program_exits_1_with_its_traceback(cli, tmp_path):
    meta = tmp_path / "raises_key_error.json"
    meta.write_text(json.dumps(metadata("raises_key_error")))
    program_id = cli("upload", PROGRAMS / "raises_key_error.py", meta).stdout.strip()
    proc = cli("run", program_id)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert proc.stdout.startswith('[1] {"step": "about to fail"}\n')
    assert "failed (PROGRAM FAILED)" in proc.stderr
    assert "Traceback (most recent call last)" in proc.stderr
    assert "KeyError: 'optimization_level'" in proc.stderr


def test_invalid_inputs_exit_2_and_create_no_job(cli, admin, hello_id):
    before = job_count(admin)
    proc = cli("run", hello_id, "--inputs", '{"iterations": -1}')
    assert_error(proc, 2, "error: invalid job inputs: inputs.iterations: -1 is less than")
    assert proc.stderr.count("inputs.iterations") == 1  # once: not again as a list item
    assert job_count(admin) == before


def test_detach_then_result_jobs_and_job(cli, hello_id):
    detached = cli("run", hello_id, "--inputs", '{"iterations": 1}', "--detach")
    assert detached.returncode == 0, detached.stderr
    job_id = detached.stdout.strip()
    assert re.fullmatch(r"j-\w+", job_id)

    result = cli("result", job_id, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"type": "result", "data": "All done!"}

    listing = cli("jobs", "--finished", "--program", hello_id, "--limit", 0)
    assert listing.returncode == 0, listing.stderr
    row = next(line for line in listing.stdout.splitlines() if job_id in line)
    assert hello_id in row and "aer_simulator" in row and "DONE" in row

    details = cli("job", job_id, "--json")
    assert details.returncode == 0, details.stderr
    body = json.loads(details.stdout)
    assert (body["status"], body["inputs"], body["program_id"]) == (
        "DONE",
        {"iterations": 1},
        hello_id,
    )


def test_cancel_logs_and_job_details(cli, admin, server):
    program_id = upload(admin, "sleeps_forever")["id"]
    job_id = submit(admin, program_id)["id"]
    wait_until(
        lambda: "going to sleep" in admin.get(f"/jobs/{job_id}/logs").text,
        what="the program's first log line",
        server=server,
    )

    proc = cli("cancel", job_id)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"job {job_id}: CANCELLED (CANCELLED BY USER)\n"

    details = cli("job", job_id)
    assert details.returncode == 0, details.stderr
    assert "  Status: CANCELLED (CANCELLED BY USER)\n" in details.stdout
    logs = cli("logs", job_id)
    assert logs.returncode == 0, logs.stderr
    assert "going to sleep" in logs.stdout
    assert_error(cli("result", job_id), 1, "was cancelled (CANCELLED BY USER)")


# --- backends, users, tokens, connection -----------------------------------------------------


def test_backends_from_the_server(cli):
    proc = cli("backends", "--json")
    assert proc.returncode == 0, proc.stderr
    by_name = {b["name"]: b for b in json.loads(proc.stdout)}
    assert by_name["aer_simulator"]["noisy"] is False
    assert by_name["fake_manila"]["num_qubits"] == 5


def test_create_user_prints_a_working_token(cli, admin, hello_id):
    public_id = upload(admin, "hello_world", is_public=True)["id"]
    proc = cli("admin", "create-user", "cli-alice")
    assert proc.returncode == 0, proc.stderr
    token = proc.stdout.strip()
    assert proc.stdout == f"{token}\n" and token.startswith("qrt_")

    listing = cli("programs", "--token", token, "--json", "--limit", 0)
    assert listing.returncode == 0, listing.stderr
    seen = {p["id"] for p in json.loads(listing.stdout)}
    assert public_id in seen
    assert hello_id not in seen  # the admin's private program


def test_open_user_may_not_upload(cli, admin):
    token = create_user(admin, "cli-olivia", "open")["token"]
    proc = cli("upload", PROGRAMS / "hello_world.py", "--token", token)
    assert_error(proc, 2, "'open' role", "not upload")


def test_revoked_token_is_refused(cli, admin):
    issued = create_user(admin, "cli-rita")
    proc = cli("admin", "revoke-token", issued["token_id"])
    assert proc.returncode == 0, proc.stderr
    assert_error(cli("programs", "--token", issued["token"]), 2, "revoked token", "hint: ")


def test_unreachable_server_exits_3_with_a_hint(cli):
    proc = cli("programs", "--url", "http://127.0.0.1:1")
    assert_error(proc, 3, "cannot reach the qruntime server at http://127.0.0.1:1")
    assert "start it with: qruntime serve" in proc.stderr


def test_account_save_writes_the_account_file(cli, server, tmp_path):
    accounts = tmp_path / "accounts.json"
    env = {"QRUNTIME_ACCOUNTS_FILE": str(accounts)}
    proc = cli("account", "save", "--url", server.url, "--token", server.admin_token, env=env)
    assert proc.returncode == 0, proc.stderr
    saved = json.loads(accounts.read_text())
    assert saved["accounts"]["default"] == {"url": server.url, "token": server.admin_token}
    assert accounts.stat().st_mode & 0o777 == 0o600


# --- names where ids go, nearest-name suggestions --------------------------------------------

TAKES_SHOTS = "def main(backend, user_messenger, shots=100):\n    return shots\n"


def write_program(directory, name: str, description: str = "Returns its shots."):
    module = name.replace("-", "_")
    source = directory / f"{module}.py"
    source.write_text(TAKES_SHOTS)
    meta = {"name": name, "description": description, "max_execution_time": 60}
    (directory / f"{module}.json").write_text(json.dumps(meta))
    return source


def test_names_work_where_ids_do_and_uploads_do_not_pile_up(cli, admin, tmp_path):
    source = write_program(tmp_path, "name-lookup")
    program_id = cli("upload", source).stdout.strip()  # metadata: the .json beside it
    assert re.fullmatch(r"name-lookup-[a-z0-9]{6}", program_id)

    ran = cli("run", "name-lookup", "--inputs", '{"shots": 7}')
    assert (ran.returncode, ran.stdout) == (0, "7\n"), ran.stderr
    shown = cli("program", "name-lookup")
    assert shown.returncode == 0 and shown.stdout.startswith(f"{program_id}:\n"), shown.stderr
    listing = cli("jobs", "--program", "name-lookup", "--json")
    assert [job["program_id"] for job in json.loads(listing.stdout)] == [program_id]
    misspelt = cli("run", "name-lookup", "--inputs", '{"shot": 7}')
    assert_error(misspelt, 2, "unknown input 'shot'; did you mean 'shots'?")

    before = admin.get("/programs", params={"limit": 0}).json()["total"]
    again = cli("upload", source)
    assert_error(again, 2, f"you already own a program named 'name-lookup' ({program_id})")
    assert "--replace" in again.stderr
    write_program(tmp_path, "name-lookup", description="Replaced in place.")
    replaced = cli("upload", source, "--replace")
    assert (replaced.returncode, replaced.stdout) == (0, f"{program_id}\n"), replaced.stderr
    assert admin.get(f"/programs/{program_id}").json()["description"] == "Replaced in place."
    assert admin.get("/programs", params={"limit": 0}).json()["total"] == before

    copy_id = cli("upload", source, "--copy").stdout.strip()
    assert copy_id not in ("", program_id)
    ambiguous = cli("run", "name-lookup")
    assert_error(ambiguous, 2, "2 of your programs are named 'name-lookup'; pass one of their ids")
    assert program_id in ambiguous.stderr and copy_id in ambiguous.stderr
    assert cli("delete", copy_id).returncode == 0

    unknown = cli("run", "name-lookp")
    assert_error(unknown, 2, "no program has the id or name 'name-lookp'; the nearest:")
    assert f"  {program_id}  (name name-lookup, yours, private" in unknown.stderr
    assert cli("delete", "name-lookup").returncode == 0


def test_own_programs_come_before_public_ones_of_the_same_name(cli, admin, tmp_path):
    public_id = upload(admin, "hello_world", name="shared-name", is_public=True)["id"]
    token = create_user(admin, "cli-nora")["token"]
    seen = cli("program", "shared-name", "--token", token, "--json")
    assert json.loads(seen.stdout)["id"] == public_id, seen.stderr
    own_id = cli("upload", write_program(tmp_path, "shared-name"), "--token", token).stdout.strip()
    seen = cli("program", "shared-name", "--token", token, "--json")
    assert json.loads(seen.stdout)["id"] == own_id, seen.stderr


def test_mistyped_job_ids_backends_and_commands_get_the_nearest_name(cli, hello_id):
    job_id = cli("run", hello_id, "--inputs", HELLO_INPUTS, "--detach").stdout.strip()
    typo = job_id[:-1] + ("0" if job_id[-1] != "0" else "1")
    assert_error(cli("job", typo), 2, f"job '{typo}' not found; did you mean '{job_id}'?")
    assert_error(cli("logs", typo), 2, f"did you mean '{job_id}'?")

    backend = cli("run", hello_id, "--inputs", HELLO_INPUTS, "--backend", "fake_manilla")
    assert_error(backend, 2, "unknown backend 'fake_manilla'; did you mean 'fake_manila'?")
    assert "qruntime backends" in backend.stderr

    command = cli("progams")
    assert command.returncode == 2
    assert "No such command 'progams'. Did you mean 'programs'" in command.stderr
