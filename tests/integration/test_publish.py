"""``qruntime publish`` to two real servers standing for staging and production."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text
from storage_support import fresh_database

from qruntime import RuntimeService
from repo_paths import QRUNTIME
from server_harness import ServerProcess
from server_support import running_server, wait_until

REPO = Path(__file__).resolve().parents[2]
SMALL_PROGRAMS = ("hello_world", "sample_program")


@pytest.fixture(scope="module")
def staging(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("staging")) as server:
        yield server


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("production")) as server:
        yield server


def make_repo(base: Path, modules: tuple[str, ...] = SMALL_PROGRAMS, cloud: str = "[]") -> Path:
    """A catalogue repository: runtime/, tests/programs/ and program_config.yaml."""
    (base / "runtime").mkdir(parents=True)
    (base / "tests" / "programs").mkdir(parents=True)
    for module in modules:
        for suffix in (".py", ".json"):
            shutil.copy(REPO / "runtime" / f"{module}{suffix}", base / "runtime")
        (base / "tests" / "programs" / f"test_{module}.py").write_text("")
    (base / "program_config.yaml").write_text(
        "environments:\n"
        "  staging: {url_env: STAGING_URL, token_env: STAGING_TOKEN}\n"
        "  production: {url_env: PRODUCTION_URL, token_env: PRODUCTION_TOKEN}\n"
        "  cloud: {url_env: CLOUD_URL, token_env: CLOUD_TOKEN}\n"
        "programs: all\n"
        f"cloud_runtime_programs: {cloud}\n"
    )
    return base


def publish(
    repo: Path, environments: dict[str, ServerProcess], *args: str
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    for name, server in environments.items():
        env[f"{name.upper()}_URL"] = server.url
        env[f"{name.upper()}_TOKEN"] = server.admin_token
    return subprocess.run(
        [QRUNTIME, "publish", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def published(server: ServerProcess) -> dict[str, tuple[bool, str]]:
    """Bare-named programs on ``server``: id -> (is_public, description)."""
    with RuntimeService(server.url, server.admin_token) as service:
        return {
            p.program_id: (p.is_public, p.description)
            for p in service.programs(refresh=True, limit=None)
            if p.program_id == p.name
        }


def clear(*servers: ServerProcess) -> None:
    for server in servers:
        with RuntimeService(server.url, server.admin_token) as service:
            for program_id in published(server):
                service.delete_program(program_id)


@pytest.fixture
def both(staging: ServerProcess, production: ServerProcess) -> Iterator[dict[str, ServerProcess]]:
    clear(staging, production)
    yield {"staging": staging, "production": production}


def test_publish_creates_then_changes_nothing_then_updates_and_prunes(tmp_path, both):
    repo = make_repo(tmp_path)
    staging, production = both["staging"], both["production"]

    first = publish(repo, both, "--env", "staging", "--env", "production")
    assert first.returncode == 0, first.stderr
    assert "create     hello-world" in first.stdout
    assert first.stdout.count("done: 2 created, 0 updated, 0 unchanged, 0 removed") == 2
    for server in (staging, production):
        assert set(published(server)) == {"hello-world", "sample-program"}
        assert all(is_public for is_public, _ in published(server).values())

    second = publish(repo, both, "--env", "staging", "--env", "production")
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("done: 0 created, 0 updated, 2 unchanged, 0 removed") == 2

    metadata_file = repo / "runtime" / "hello_world.json"
    metadata = json.loads(metadata_file.read_text())
    metadata["description"] = "A newer description."
    metadata_file.write_text(json.dumps(metadata))
    (repo / "runtime" / "sample_program.py").unlink()
    (repo / "runtime" / "sample_program.json").unlink()

    dry = publish(repo, both, "--env", "staging", "--env", "production", "--dry-run", "--prune")
    assert dry.returncode == 0, dry.stderr
    assert "update     hello-world  (source or metadata changed)" in dry.stdout
    assert "remove     sample-program" in dry.stdout
    assert dry.stdout.count("dry run: nothing changed") == 2
    assert published(staging)["hello-world"][1] != "A newer description."

    kept = publish(repo, both, "--env", "staging")
    assert "done: 0 created, 1 updated, 0 unchanged, 0 removed" in kept.stdout
    assert published(staging)["hello-world"] == (True, "A newer description.")
    assert "sample-program" in published(staging)  # not removed without --prune

    pruned = publish(repo, both, "--env", "staging", "--env", "production", "--prune")
    assert pruned.returncode == 0, pruned.stderr
    assert "done: 0 created, 0 updated, 1 unchanged, 1 removed" in pruned.stdout
    assert "done: 0 created, 1 updated, 0 unchanged, 1 removed" in pruned.stdout
    for server in (staging, production):
        assert published(server) == {"hello-world": (True, "A newer description.")}


def test_programs_that_other_users_uploaded_are_never_pruned(tmp_path, both):
    staging = both["staging"]
    with RuntimeService(staging.url, staging.admin_token) as admin:
        token = admin.users.create(f"author{os.getpid()}").token
    with RuntimeService(staging.url, token) as author:
        own_id = author.upload_program(
            REPO / "runtime" / "hello_world.py", REPO / "runtime" / "hello_world.json"
        )
        author.set_program_visibility(own_id, True)

    result = publish(make_repo(tmp_path), both, "--env", "staging", "--prune")

    assert result.returncode == 0, result.stderr
    with RuntimeService(staging.url, token) as author:
        assert author.program(own_id, refresh=True).is_public


def test_the_cloud_environment_gets_only_cloud_runtime_programs(tmp_path, both):
    repo = make_repo(tmp_path, cloud="[hello-world]")
    environments = {"cloud": both["staging"]}

    result = publish(repo, environments, "--env", "cloud")

    assert result.returncode == 0, result.stderr
    assert set(published(both["staging"])) == {"hello-world"}


def test_a_catalogue_problem_refuses_before_anything_is_published(tmp_path, both):
    repo = make_repo(tmp_path)
    (repo / "tests" / "programs" / "test_sample_program.py").unlink()
    metadata_file = repo / "runtime" / "hello_world.json"
    metadata = json.loads(metadata_file.read_text())
    metadata["name"] = "hello-word"
    metadata_file.write_text(json.dumps(metadata))

    result = publish(repo, both)

    assert result.returncode == 1
    mismatch = "runtime/hello_world.json: name 'hello-word' does not match the file name"
    assert mismatch in result.stdout
    assert "has no test file tests/programs/test_sample_program.py" in result.stdout
    assert "not publishing: 2 problem(s)" in result.stderr
    assert published(both["staging"]) == {} and published(both["production"]) == {}


def test_a_missing_token_variable_refuses_before_any_environment_changes(tmp_path, both):
    repo = make_repo(tmp_path)

    result = publish(repo, {"staging": both["staging"]})  # production's variables are unset

    assert result.returncode == 2
    assert "PRODUCTION_URL, PRODUCTION_TOKEN" in result.stderr
    assert published(both["staging"]) == {}


def test_a_config_selecting_an_unknown_program_is_refused(tmp_path, both):
    repo = make_repo(tmp_path, cloud="[hello-world, qaoa-typo]")

    result = publish(repo, both, "--env", "staging")

    assert result.returncode == 1
    assert "selects 'qaoa-typo', which is not in" in result.stdout
    assert published(both["staging"]) == {}


def test_a_broken_config_names_the_key(tmp_path, both):
    repo = make_repo(tmp_path)
    (repo / "program_config.yaml").write_text("environments:\n  staging: {url_env: X}\n")

    result = publish(repo, both)

    assert result.returncode == 2
    assert "environments.staging.token_env: Field required" in result.stderr


def test_an_unknown_environment_is_refused(tmp_path, both):
    result = publish(make_repo(tmp_path), both, "--env", "qa")

    assert result.returncode == 2
    assert "unknown environment(s) qa; the config has staging, production, cloud" in result.stderr


def test_serve_publishes_the_catalogue_at_every_start(tmp_path):
    repo = make_repo(tmp_path / "repo")
    server = ServerProcess(
        data_dir=tmp_path / "data",
        accounts_file=tmp_path / "accounts.json",
        extra_args=["--catalogue", str(repo / "runtime")],
    )
    server.start()
    try:
        assert set(published(server)) == {"hello-world", "sample-program"}
        with RuntimeService(server.url, server.admin_token) as admin:
            hello = admin.program("hello-world", refresh=True)
        server.stop()
        metadata_file = repo / "runtime" / "hello_world.json"
        metadata = json.loads(metadata_file.read_text())
        metadata["description"] = "Changed between starts."
        metadata_file.write_text(json.dumps(metadata))
        server.start()
        with RuntimeService(server.url, server.admin_token) as admin:
            again = admin.program("hello-world", refresh=True)
            unchanged = admin.program("sample-program", refresh=True)
        assert again.description == "Changed between starts."
        assert again.creation_date == hello.creation_date
        assert unchanged.is_public
    finally:
        server.stop()


def test_serve_refuses_to_start_with_a_broken_catalogue(tmp_path):
    repo = make_repo(tmp_path / "repo")
    (repo / "runtime" / "sample_program.json").unlink()

    result = subprocess.run(
        [QRUNTIME, "serve", "--data-dir", str(tmp_path / "data"), "--catalogue", "runtime"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert "runtime/sample_program.py: has no metadata file sample_program.json" in result.stderr
    assert not (tmp_path / "data").exists()


def test_two_replicas_starting_at_once_publish_the_catalogue_once(tmp_path):
    """Both replicas of one PostgreSQL database start with --catalogue at the same moment:
    both start (they publish in turn), and each program exists once."""
    repo = make_repo(tmp_path / "repo")
    with fresh_database("postgresql", tmp_path) as database:
        replicas = [
            ServerProcess(
                data_dir=tmp_path / name / "data",
                accounts_file=tmp_path / name / "accounts.json",
                database_url=database.url,
                extra_args=["--catalogue", str(repo / "runtime")],
            )
            for name in ("a", "b")
        ]
        try:
            # Programs are locked against writes until both replicas have planned their
            # publishing and wait: then they race for the same bare names.
            with database.engine.connect() as locker, ThreadPoolExecutor(2) as pool:
                locker.execute(text("LOCK TABLE programs IN EXCLUSIVE MODE"))
                starting = [pool.submit(replica.start) for replica in replicas]
                wait_until(
                    lambda: waiting_on_locks(database) >= 2,
                    timeout=60,
                    what="both replicas to wait on the catalogue",
                )
                locker.rollback()
                for start in starting:
                    start.result()
            [creator] = [r for r in replicas if (r.data_dir / "admin-token").exists()]
            for replica in replicas:
                with RuntimeService(replica.url, creator.admin_token) as admin:
                    names = sorted(p.program_id for p in admin.programs(refresh=True, limit=None))
                assert names == ["hello-world", "sample-program"], names
        finally:
            for replica in replicas:
                replica.stop()


def waiting_on_locks(database) -> int:
    with database.engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
        ).scalar_one()
