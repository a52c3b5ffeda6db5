"""Submit checks a job against its program as stored now: a change made through another
replica is seen by the next submit here, though this replica derived the old version."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from storage_support import BACKENDS, fresh_database

from qruntime.domain.errors import InvalidInputsError, NotFoundError
from qruntime.domain.users import Role
from qruntime.service.container import Services
from qruntime.service.jobs import InvalidJobRequestError
from qruntime.service.principal import Principal
from qruntime.settings import Settings

SOURCE = "def main(backend, user_messenger, n=0):\n    return n\n"


def parameters(kind: str) -> dict:
    return {"parameters": {"type": "object", "properties": {"n": {"type": kind}}}}


@pytest.mark.parametrize("kind", BACKENDS)
def test_a_program_changed_on_another_replica_is_checked_as_it_is_now(
    kind: str, tmp_path: Path
) -> None:
    with fresh_database(kind, tmp_path) as database:
        here, there = (
            Services.build(
                Settings(data_dir=tmp_path / name, database_url=database.url, worker_pool_size=0)
            )
            for name in ("here", "there")
        )
        try:
            issued = here.users.create_user(None, "alice", Role.USER)
            alice = Principal(issued.user.id, "alice", Role.USER)
            metadata = {"name": "echo", "max_execution_time": 60, "spec": parameters("integer")}
            data = base64.b64encode(SOURCE.encode()).decode()
            program = here.programs.upload(alice, data=data, metadata=metadata)

            def submit(inputs: dict, **options: float):
                return here.jobs.submit(
                    alice, program_id=program.id, backend="aer_simulator", inputs=inputs, **options
                )

            assert submit({"n": 1}).max_execution_time == 60  # derived here, and remembered
            there.programs.update(
                alice, program.id, {"spec": parameters("string"), "max_execution_time": 30}
            )
            with pytest.raises(InvalidInputsError) as refused:
                submit({"n": 1})
            assert [p.location for p in refused.value.problems] == ["inputs.n"]
            with pytest.raises(InvalidJobRequestError, match="max_execution_time of 30 s"):
                submit({"n": "one"}, max_execution_time=45)
            assert submit({"n": "one"}).max_execution_time == 30
            there.programs.delete(alice, program.id)
            with pytest.raises(NotFoundError):
                submit({"n": "one"})
        finally:
            here.db.dispose()
            there.db.dispose()
