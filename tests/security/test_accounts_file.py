"""The server's own files are hidden from jobs wherever the operator puts them, and a setting
that cannot be honoured stops the server at start, naming the setting.

With ``QRUNTIME_ACCOUNTS_FILE`` directly in ``/tmp``, the sandbox covers ``/tmp`` and brings
back only the job's own directory: jobs run, and the account file is out of their reach.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from repo_paths import installation_names_in_tmp
from security.database_servers import BACKINGS, server_on
from server_harness import QRUNTIME, ServerProcess
from server_support import clients_for, run_to_end, upload


@pytest.fixture(scope="module", params=BACKINGS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    accounts = Path("/tmp") / f"qrt-accounts-{uuid.uuid4().hex[:12]}.json"
    with ExitStack() as stack:
        stack.callback(accounts.unlink, missing_ok=True)
        yield stack.enter_context(
            server_on(
                request.param, tmp_path_factory, "accounts", request=request, accounts_file=accounts
            )
        )


@pytest.fixture(scope="module")
def user(server: ServerProcess) -> Iterator[httpx.Client]:
    with clients_for(server) as clients:
        yield clients.user(f"u{uuid.uuid4().hex[:8]}")


def test_jobs_run_with_the_account_file_in_tmp_and_cannot_read_it(server, user):
    assert server.accounts_file.exists()  # the server saved the admin's account there
    hello = upload(user, "hello_world")["id"]
    reader = upload(user, "hostile/read_files", name="read-files")["id"]

    done = run_to_end(user, hello, {"iterations": 1}, server=server)
    job = run_to_end(user, reader, {"paths": [str(server.accounts_file), "/tmp"]}, server=server)

    assert done["status"] == "DONE", done
    assert job["status"] == "DONE", job
    outcome = user.get(f"/jobs/{job['id']}/results").json()
    assert outcome[str(server.accounts_file)].startswith("denied"), outcome
    listed = set(outcome["/tmp"].removeprefix("listed: ").split(",")) - installation_names_in_tmp()
    assert server.accounts_file.name not in listed, outcome
    assert all(name.startswith("qruntime-job") for name in listed), outcome  # its own only


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("QRUNTIME_ACCOUNTS_FILE", "/etc/qrt-accounts-{token}.json"),
        ("QRUNTIME_DATA_DIR", "/proc"),  # refused; nothing could be written there anyway
    ],
)
def test_a_setting_the_sandbox_cannot_honour_stops_the_server_naming_it(tmp_path, variable, value):
    value = value.format(token=uuid.uuid4().hex[:12])
    env = ServerProcess(data_dir=tmp_path / "data", accounts_file=tmp_path / "a.json").env()
    env[variable] = value
    done = subprocess.run(
        [QRUNTIME, "serve", "--port", "0"], env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 2, (done.stdout, done.stderr)
    assert variable in done.stderr and "not starting" in done.stderr, done.stderr
    if variable == "QRUNTIME_ACCOUNTS_FILE":
        assert not Path(value).exists()
