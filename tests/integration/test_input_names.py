"""Input names a program's ``main`` does not take are refused at submit, with the nearest name;
programs stored before the server recorded ``main``'s parameters are checked from their source."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import inspect

from qruntime.client import RuntimeInvalidInputsError, RuntimeService
from qruntime.storage.database import Database, alembic_config, sqlite_url
from server_harness import ServerProcess
from server_support import assert_error, b64, counts, submit, wait_for_job

TAKES_SHOTS = "def main(backend, user_messenger, shots=100, *, seed=None):\n    return shots\n"
METADATA = {"name": "takes-shots", "max_execution_time": 60}


def test_unknown_names_are_refused_also_for_programs_stored_before_the_signature_was(
    tmp_path: Path,
) -> None:
    server = ServerProcess(tmp_path / "data", tmp_path / "accounts.json")
    server.start()
    try:
        with server.client() as admin:
            body = {"data": b64(TAKES_SHOTS), "metadata": METADATA}
            program_id = admin.post("/programs", json=body).json()["id"]
            before = counts(admin)
            refused = admin.post(
                "/jobs",
                json={"program_id": program_id, "backend": "aer_simulator", "inputs": {"shot": 1}},
            )
            error = assert_error(refused, 400, "invalid_inputs")
            assert error["problems"] == [
                {
                    "location": "inputs.shot",
                    "message": "unknown input 'shot'; did you mean 'shots'?",
                }
            ]
            with RuntimeService(server.url, server.admin_token) as service:
                try:
                    service.run(program_id, {"seeds": 1})
                except RuntimeInvalidInputsError as exc:
                    assert "unknown input 'seeds'; did you mean 'seed'?" in str(exc)
                else:
                    raise AssertionError("the SDK accepted an input main does not take")
            assert counts(admin) == before  # nothing stored
        server.stop()

        # As if stored by a server from before revision 0002: no recorded signature.
        database = Database(sqlite_url(server.data_dir / "qruntime.db"))
        with database.engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0001")
            columns = {c["name"] for c in inspect(connection).get_columns("programs")}
            assert "main_signature" not in columns
        database.dispose()

        server.start()
        with server.client() as admin:
            refused = admin.post(
                "/jobs",
                json={"program_id": program_id, "backend": "aer_simulator", "inputs": {"shot": 1}},
            )
            assert (
                "did you mean 'shots'?" in assert_error(refused, 400, "invalid_inputs")["message"]
            )
            job = submit(admin, program_id, {"shots": 3, "seed": 1})
            assert wait_for_job(admin, job["id"], server=server)["status"] == "DONE"
            assert admin.get(f"/jobs/{job['id']}/results").json() == 3
    finally:
        server.stop()
