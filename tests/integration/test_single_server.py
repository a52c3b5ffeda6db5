"""One server per data directory and SQLite database: a second ``qruntime serve`` exits at once,
naming the running one, and leaves its running job alone; PostgreSQL replicas with their own
data directories start side by side."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

import pytest
from storage_support import fresh_database

from qruntime.service.container import Services
from qruntime.service.server_lock import ServerAlreadyRunningError
from qruntime.settings import Settings
from repo_paths import QRUNTIME
from server_harness import ServerProcess, free_port
from server_support import get_job, running_server, submit, upload, wait_for_job, wait_until


def second_serve(server: ServerProcess, *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [QRUNTIME, "serve", "--log-level", "warning", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        env=server.env(),
    )


def assert_refused(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr.startswith("error: not starting: "), proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


def test_a_second_server_on_the_same_data_dir_or_database_leaves_the_running_job_alone(
    tmp_path: Path,
) -> None:
    with running_server(tmp_path) as server, server.client() as admin:
        program_id = upload(admin, "sleeps_forever")["id"]
        job_id = submit(admin, program_id)["id"]
        wait_for_job(admin, job_id, ("RUNNING",), server=server)
        first = f"pid {server.process.pid}, {server.url}"

        same_port = second_serve(server, "--port", server.port, "--data-dir", server.data_dir)
        assert_refused(same_port, first, f"the data directory {server.data_dir}", "PostgreSQL")

        other_port = second_serve(server, "--port", free_port(), "--data-dir", server.data_dir)
        assert_refused(other_port, first, "the data directory", "--database-url postgresql")

        shared_sqlite = second_serve(
            server,
            "--port",
            free_port(),
            "--data-dir",
            tmp_path / "other",
            "--database-url",
            f"sqlite:///{server.data_dir / 'qruntime.db'}",
        )
        assert_refused(shared_sqlite, first, "the SQLite database", "PostgreSQL")

        taken_port = second_serve(server, "--port", server.port, "--data-dir", tmp_path / "third")
        assert_refused(taken_port, f"port {server.port} on 127.0.0.1 is already in use", "--port")
        assert not (tmp_path / "third" / "qruntime.db").exists()  # refused before any change

        # Every entry point takes the locks, not only `qruntime serve`: an app in-process too.
        for settings in (
            Settings(data_dir=server.data_dir, port=free_port()),
            Settings(
                data_dir=tmp_path / "in-process",
                port=free_port(),
                database_url=f"sqlite:///{server.data_dir / 'qruntime.db'}",
            ),
        ):
            services = Services.build(settings)  # what create_app's lifespan starts
            with pytest.raises(ServerAlreadyRunningError, match=re.escape(first)):
                asyncio.run(services.start())
            services.db.dispose()

        job = get_job(admin, job_id)
        assert (job["status"], job["reason"]) == ("RUNNING", None), job
        assert admin.get("/health").status_code == 200
        assert admin.post(f"/jobs/{job_id}/cancel").status_code == 200


def test_postgres_replicas_with_their_own_data_dirs_both_start(tmp_path: Path) -> None:
    with (
        fresh_database("postgresql", tmp_path) as database,
        running_server(tmp_path / "a", database_url=database.url) as first,
        running_server(tmp_path / "b", database_url=database.url) as second,
        first.client() as admin,
    ):
        program_id = upload(admin, "hello_world")["id"]
        token = first.admin_token
        with second.client(token) as same_admin:
            job_id = submit(same_admin, program_id, {"iterations": 1})["id"]
            wait_until(
                lambda: get_job(admin, job_id)["status"] == "DONE",
                what="the job submitted to the second replica",
                server=second,
            )
        same_dir = second_serve(
            first,
            "--port",
            free_port(),
            "--data-dir",
            first.data_dir,
            "--database-url",
            database.url,
        )
        assert_refused(same_dir, f"pid {first.process.pid}", "own --data-dir")
