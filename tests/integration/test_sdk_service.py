"""The SDK against a real server: callbacks, waiting, failures, cancellation and refusals."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from qiskit.providers import JobStatus

from qruntime import RuntimeService
from qruntime.client import (
    RuntimeInvalidInputsError,
    RuntimeJobCancelledError,
    RuntimeJobFailureError,
    RuntimeJobTimeoutError,
    RuntimeProgramNotFound,
)
from server_support import PROGRAMS, metadata, running_server


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory):
    with (
        running_server(tmp_path_factory.mktemp("sdk")) as server,
        RuntimeService(url=server.url, token=server.admin_token) as service,
    ):
        yield service


def upload(service: RuntimeService, module: str, **overrides) -> str:
    return service.upload_program(PROGRAMS / f"{module}.py", metadata(module, **overrides))


def test_callback_gets_every_interim_once_in_order_and_result_waits(service):
    program_id = upload(service, "slow_publisher")
    seen: list[int] = []
    job = service.run(
        program_id, {"n": 6, "delay": 0.1}, callback=lambda job_id, msg: seen.append(msg["i"])
    )
    assert job.result(timeout=90) == {"published": 6}
    job.wait_for_final_state(timeout=10)
    assert seen == [0, 1, 2, 3, 4, 5]
    assert job.status() is JobStatus.DONE
    assert [m["i"] for m in job.interim_results()] == seen


def test_a_callback_that_raises_does_not_stop_the_stream(service, caplog):
    program_id = upload(service, "slow_publisher")
    seen: list[int] = []

    def flaky(job_id: str, message: dict) -> None:
        seen.append(message["i"])
        if message["i"] == 1:
            raise RuntimeError("callback bug")

    job = service.run(program_id, {"n": 4, "delay": 0.05}, callback=flaky)
    job.result(timeout=90)
    job.wait_for_final_state(timeout=10)
    assert seen == [0, 1, 2, 3]
    assert "callback bug" in caplog.text


def test_a_failed_job_raises_with_the_programs_traceback(service):
    program_id = upload(service, "raises_key_error")
    job = service.run(program_id, {}, callback=lambda *_: None)
    with pytest.raises(RuntimeJobFailureError) as failure:
        job.result(timeout=90)
    assert "KeyError" in str(failure.value) and "Traceback" in str(failure.value)
    assert job.status() is JobStatus.ERROR
    assert "KeyError" in (job.error_message() or "")


def test_cancel_and_time_limit_end_the_job_as_cancelled(service):
    program_id = upload(service, "sleeps_forever", max_execution_time=60)
    job = service.run(program_id, {})
    waiter = threading.Thread(target=lambda: job.wait_for_final_state(timeout=90))
    waiter.start()
    job.cancel()
    waiter.join(timeout=90)
    with pytest.raises(RuntimeJobCancelledError, match="CANCELLED BY USER"):
        job.result(timeout=10)

    limited = service.run(program_id, {}, max_execution_time=1)
    with pytest.raises(RuntimeJobCancelledError, match="RAN TOO LONG"):
        limited.result(timeout=90)


def test_result_timeout_is_reported(service):
    program_id = upload(service, "sleeps_forever", max_execution_time=60)
    job = service.run(program_id, {})
    with pytest.raises(RuntimeJobTimeoutError):
        job.result(timeout=0.5)
    job.cancel()


def test_refusals_name_the_problem(service):
    program_id = service.upload_program(PROGRAMS / "hello_world.py", PROGRAMS / "hello_world.json")
    with pytest.raises(RuntimeInvalidInputsError, match="iterations"):
        service.run(program_id, {"iterations": -1})
    with pytest.raises(RuntimeProgramNotFound):
        service.run("no-such-program", {})
    with pytest.raises(RuntimeProgramNotFound):
        service.program("no-such-program")


def test_program_round_trip(service, tmp_path: Path):
    program_id = service.upload_program(PROGRAMS / "hello_world.py", PROGRAMS / "hello_world.json")
    service.update_program(program_id, description="Updated.")
    program = service.program(program_id, refresh=True)
    assert program.description == "Updated." and not program.is_public
    service.set_program_visibility(program_id, True)
    assert service.program(program_id, refresh=True).is_public
    assert program_id in [p.program_id for p in service.programs(limit=None)]
    service.delete_program(program_id)
    with pytest.raises(RuntimeProgramNotFound):
        service.program(program_id, refresh=True)


def test_jobs_in_turn_share_one_connection(service, monkeypatch):
    """Each stream is read to its end after the final event, so its connection is reused:
    closed half-read, it was dropped and every next request opened a new one."""
    program_id = upload(service, "slow_publisher")
    service.run(program_id, {"n": 1, "delay": 0}).result(timeout=90)  # a connection in the pool
    connects: list[object] = []
    opened = socket.create_connection

    def counted(*args, **kwargs):
        connects.append(args[0])
        return opened(*args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", counted)
    for n in (2, 3):
        assert service.run(program_id, {"n": n, "delay": 0}).result(timeout=90) == {"published": n}
        assert list(service.job_events(service.jobs(limit=1)[0].job_id()))[-1].status == "DONE"
    assert connects == []
