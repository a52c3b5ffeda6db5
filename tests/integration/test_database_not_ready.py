"""``qruntime serve`` on a database that is not ready: a missing PostgreSQL database is created
when the role may; otherwise a few lines name the database and what to do, never a traceback."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from storage_support import POSTGRES_URL, fresh_database

from repo_paths import QRUNTIME
from server_harness import ServerProcess, free_port


def serve(tmp_path: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    server = ServerProcess(tmp_path / "data", tmp_path / "accounts.json")
    return subprocess.run(
        [QRUNTIME, "serve", "--port", str(free_port()), "--data-dir", str(server.data_dir),
         "--database-url", database_url, "--log-level", "warning"],
        capture_output=True, text=True, timeout=120, env=server.env(),
    )  # fmt: skip


def assert_short_refusal(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr.startswith("error: not starting: "), proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) <= 3, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


def postgres(database: str, user: str = "postgres", port: int | None = None) -> str:
    url = make_url(POSTGRES_URL).set(database=database, username=user)
    if port is not None:
        url = url.set(port=port)
    return url.render_as_string(hide_password=False)


def run_sql(statement: str) -> None:
    engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(statement)
    finally:
        engine.dispose()


def test_a_missing_database_is_created_when_the_role_may(tmp_path: Path) -> None:
    name = f"qrt_test_{uuid.uuid4().hex[:10]}"
    server = ServerProcess(
        tmp_path / "data", tmp_path / "accounts.json", database_url=postgres(name)
    )
    try:
        server.start()
        assert f"created the PostgreSQL database '{name}'" in server.log()
        with server.client() as admin:
            assert admin.get("/health").json()["database"] == "postgresql"
    finally:
        server.stop()
        run_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_missing_database_the_role_may_not_create_names_the_createdb_command(
    tmp_path: Path,
) -> None:
    role = f"qrt_test_role_{uuid.uuid4().hex[:8]}"
    run_sql(f'CREATE ROLE "{role}" LOGIN NOCREATEDB')
    try:
        proc = serve(tmp_path, postgres("qrt_test_missing", user=role))
    finally:
        run_sql(f'DROP ROLE IF EXISTS "{role}"')
    assert_short_refusal(
        proc,
        "the PostgreSQL database 'qrt_test_missing' on 127.0.0.1:5432 does not exist",
        "permission denied to create database",
        f"create it with: createdb -h 127.0.0.1 -p 5432 -U {role} qrt_test_missing",
    )


def test_a_refused_login_and_a_refused_connection_are_a_few_lines(tmp_path: Path) -> None:
    # The test server trusts every login it knows, so an unknown role stands for a bad password.
    login = serve(tmp_path / "a", postgres("test", user="qrt_no_such_role"))
    assert_short_refusal(
        login, "refused the login of role 'qrt_no_such_role'", "check the user and password"
    )
    unreachable = serve(tmp_path / "b", postgres("test", port=1))
    assert_short_refusal(
        unreachable, "cannot reach PostgreSQL at 127.0.0.1:1", "Connection refused"
    )


def test_a_database_a_newer_qruntime_migrated_is_refused(tmp_path: Path) -> None:
    with fresh_database("sqlite", tmp_path) as database:
        with database.engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
        url = database.url
    proc = serve(tmp_path, url)
    assert_short_refusal(
        proc, "has schema revision '0099_future', which this qruntime does not know", "upgrade"
    )
