"""LocalExecutor end to end: real worker processes, one per job, and everything they can do."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qiskit import QuantumCircuit

from qruntime.domain.events import (
    CancelledEvent,
    ErrorEvent,
    InterimEvent,
    JobEvent,
    LogEvent,
    ResultEvent,
)
from qruntime.domain.job import JobReason, JobStatus
from qruntime.execution import JobRequest, LocalExecutor, LocalExecutorConfig
from qruntime.execution.output_lines import MAX_LINE_BYTES
from qruntime.execution.warm_pool import WarmPoolConfig
from qruntime.serialization import RuntimeDecoder, RuntimeEncoder

PROGRAMS = Path(__file__).resolve().parents[1] / "fixtures" / "programs"

#: Generous bound for "promptly": a worker start is 1-2 s, more on a loaded machine.
PROMPT_S = 15.0


# --- helpers -----------------------------------------------------------------------------------


def fixture_source(stem: str) -> str:
    return (PROGRAMS / f"{stem}.py").read_text()


def make_request(
    *,
    stem: str | None = None,
    source: str | None = None,
    inputs: dict[str, Any] | None = None,
    backend: str = "aer_simulator",
    max_execution_time: float = 120.0,
    program_name: str | None = None,
    job_id: str | None = None,
) -> JobRequest:
    """A request for a fixture program (by file stem) or for inline source text."""
    if source is None:
        assert stem is not None
        source = fixture_source(stem)
    if program_name is None:
        program_name = (stem or "inline-program").replace("_", "-")
    return JobRequest(
        job_id=job_id or f"job-{uuid.uuid4().hex[:12]}",
        source=textwrap.dedent(source),
        backend_name=backend,
        inputs=json.dumps(inputs or {}, cls=RuntimeEncoder),
        max_execution_time=max_execution_time,
        program_name=program_name,
    )


class Run:
    """Every event of one job, and when the first and the last arrived."""

    def __init__(self, events: list[JobEvent], started: float, first: float, last: float):
        self.events = events
        self.started = started
        self.first = first
        self.last = last

    @property
    def terminal(self) -> JobEvent:
        return self.events[-1]

    @property
    def interims(self) -> list[InterimEvent]:
        return [e for e in self.events if isinstance(e, InterimEvent)]

    def logs(self, stream: str = "stdout") -> list[str]:
        return [e.text for e in self.events if isinstance(e, LogEvent) and e.stream == stream]

    def data(self) -> list[Any]:
        return [json.loads(e.data, cls=RuntimeDecoder) for e in self.interims]

    def result(self) -> Any:
        assert isinstance(self.terminal, ResultEvent), self.terminal
        return json.loads(self.terminal.data, cls=RuntimeDecoder)

    def pid(self) -> int:
        """The worker's pid, which the inline programs print as ``pid <n>``."""
        return pid_from(self.logs())


def pid_from(lines: Sequence[str], prefix: str = "pid ") -> int:
    found = [int(line.removeprefix(prefix)) for line in lines if line.startswith(prefix)]
    assert len(found) == 1, lines
    return found[0]


def check_shape(events: list[JobEvent]) -> None:
    """Exactly one terminal event, last; interims numbered 1..n in order."""
    assert events, "no events at all"
    assert events[-1].terminal
    assert [e for e in events if e.terminal] == [events[-1]]
    seqs = [e.seq for e in events if isinstance(e, InterimEvent)]
    assert seqs == list(range(1, len(seqs) + 1))


async def collect(executor: LocalExecutor, request: JobRequest) -> Run:
    started = time.monotonic()
    events: list[JobEvent] = []
    first = None
    async for event in executor.run(request):
        if first is None:
            first = time.monotonic()
        events.append(event)
    last = time.monotonic()
    check_shape(events)
    assert request.job_id not in executor.running_jobs()
    return Run(events, started, first or last, last)


def _proc_stat(pid: int | str) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state first), or None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rsplit(")", 1)[1].split()


def process_gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (a zombie waiting for a non-reaping init counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    fields = _proc_stat(pid)
    return fields is None or fields[0] in {"Z", "X"}


def live_group_members(pgid: int) -> list[int]:
    """Pids of running (non-zombie) processes in process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(entry.name)
            if fields is not None and fields[0] not in {"Z", "X"} and int(fields[2]) == pgid:
                members.append(int(entry.name))
    return members


async def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not process_gone(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def assert_worker_gone(pid: int) -> None:
    """The worker was reaped by the executor, and nothing of its process group still runs."""
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped, not even a zombie
    deadline = time.monotonic() + 5.0
    while members := live_group_members(pid):
        assert time.monotonic() < deadline, f"process group {pid} still has {members}"
        await asyncio.sleep(0.05)


@pytest.fixture(params=["spawn", "warm-pool"])
async def executor(request: pytest.FixtureRequest) -> AsyncIterator[LocalExecutor]:
    """Every test runs both ways: a fresh Python per job, and a worker forked by the zygote."""
    pool = WarmPoolConfig(size=1) if request.param == "warm-pool" else None
    executor = LocalExecutor(LocalExecutorConfig(pool=pool))
    yield executor
    await executor.aclose()


# --- inline programs ---------------------------------------------------------------------------

SLEEPER = """
    import os
    import time


    def main(backend, user_messenger, seconds=600, **kwargs):
        print(f"pid {os.getpid()}", flush=True)
        time.sleep(seconds)
        return "woke up"
"""

PUBLISH_THEN_SLEEP = """
    import os
    import time


    def main(backend, user_messenger, **kwargs):
        user_messenger.publish({"pid": os.getpid()})
        time.sleep(600)
        return "woke up"
"""

LONG_LINE_BYTES = 3 * MAX_LINE_BYTES + 1234

PRINTS_LINES = f"""
    import sys


    def main(backend, user_messenger, **kwargs):
        print("first line")
        print("second line")
        print()
        print("  indented \\t tab")
        print("".join(chr(97 + i % 26) for i in range({LONG_LINE_BYTES})))
        sys.stdout.write("windows line\\r\\n")
        print("caf\\u00e9 \\u2603")
        for i in range(50):
            print(f"numbered {{i}}")
        sys.stdout.write("no newline at the end")
        return len(sys.argv)
"""

TAGGED = """
    import pathlib
    import time


    def main(backend, user_messenger, tag, count, rendezvous=None, **kwargs):
        if rendezvous:  # wait (bounded) until every peer has started, so the jobs overlap
            meeting = pathlib.Path(rendezvous)
            (meeting / tag).touch()
            deadline = time.monotonic() + 60
            while len(list(meeting.iterdir())) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
        for i in range(count):
            print(f"{tag} line {i}", flush=True)
            user_messenger.publish({"tag": tag, "i": i})
            time.sleep(0.05)
        return {"tag": tag, "backend": backend.name}
"""

ECHO_INPUTS = """
    def main(backend, user_messenger, **kwargs):
        return {
            "types": {key: type(value).__name__ for key, value in kwargs.items()},
            "values": kwargs,
        }
"""

SPAWNS_GRANDCHILD = """
    import os
    import subprocess


    def main(backend, user_messenger, quiet=False, **kwargs):
        output = subprocess.DEVNULL if quiet else None  # None: inherit the worker's pipes
        child = subprocess.Popen(["sleep", "600"], stdout=output, stderr=output)
        print(f"pid {os.getpid()}", flush=True)
        print(f"grandchild {child.pid}", flush=True)
        return "left a child behind"
"""


# --- the happy path ----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["aer_simulator", "fake_manila"])
async def test_hello_world(executor: LocalExecutor, backend: str) -> None:
    request = make_request(stem="hello_world", inputs={"iterations": 3}, backend=backend)
    run = await collect(executor, request)
    assert [type(e) for e in run.events] == [InterimEvent] * 3 + [ResultEvent]
    assert [e.seq for e in run.interims] == [1, 2, 3]
    for iteration, data in enumerate(run.data()):
        assert set(data) == {"iteration", "counts"}
        assert data["iteration"] == iteration
        counts = data["counts"]
        assert sum(counts.values()) == 1024
        assert all(len(key) == 5 and set(key) <= {"0", "1"} for key in counts)
    assert run.result() == "All done!"
    assert run.terminal.status is JobStatus.DONE


# --- program failures --------------------------------------------------------------------------


async def test_key_error_traceback_points_at_the_program(executor: LocalExecutor) -> None:
    run = await collect(executor, make_request(stem="raises_key_error"))
    assert [type(e) for e in run.events] == [InterimEvent, ErrorEvent]
    assert run.data() == [{"step": "about to fail"}]
    error = run.terminal
    assert isinstance(error, ErrorEvent)
    assert error.reason is JobReason.PROGRAM_FAILED
    assert error.status is JobStatus.ERROR
    message = error.message
    assert message.startswith("Traceback (most recent call last):")
    assert 'File "raises_key_error.py", line 7, in main' in message
    assert 'return settings["optimization_level"]' in message
    assert message.endswith("KeyError: 'optimization_level'")
    assert "qruntime/execution" not in message
    assert "worker.py" not in message
    assert message.count('File "') == 1


async def test_unencodable_result_fails_the_program(executor: LocalExecutor) -> None:
    run = await collect(executor, make_request(stem="returns_unencodable"))
    assert len(run.events) == 1
    error = run.terminal
    assert isinstance(error, ErrorEvent)
    assert error.reason is JobReason.PROGRAM_FAILED
    assert "could not be encoded by RuntimeEncoder" in error.message
    assert "Opaque" in error.message


async def test_unknown_backend_is_named(executor: LocalExecutor) -> None:
    run = await collect(executor, make_request(stem="hello_world", backend="fake_atlantis"))
    assert len(run.events) == 1
    error = run.terminal
    assert isinstance(error, ErrorEvent)
    assert error.reason is JobReason.PROGRAM_FAILED
    assert error.message.startswith("the job could not be set up: UnknownBackendError: ")
    assert "'fake_atlantis'" in error.message


# --- results and output ------------------------------------------------------------------------


async def test_final_result_via_publish(executor: LocalExecutor) -> None:
    run = await collect(executor, make_request(stem="final_via_publish"))
    assert [type(e) for e in run.events if not isinstance(e, LogEvent)] == [
        InterimEvent,
        ResultEvent,
    ]
    assert run.logs("stderr") == ["to stderr"]
    assert run.logs("stdout") == []
    assert run.data() == [{"progress": 0.5}]
    result = run.result()
    assert set(result) == {"energy", "values"}
    assert isinstance(result["energy"], np.float32)
    assert result["energy"] == np.float32(-1.5)
    assert isinstance(result["values"], np.ndarray)
    np.testing.assert_array_equal(result["values"], np.arange(3))
    assert result["values"].dtype == np.arange(3).dtype


async def test_stdout_lines_arrive_in_order(executor: LocalExecutor) -> None:
    run = await collect(executor, make_request(source=PRINTS_LINES, program_name="prints-lines"))
    assert all(isinstance(e, LogEvent) for e in run.events[:-1])
    assert run.logs("stderr") == []
    assert run.result() == 1  # sys.argv is just the program's file name
    lines = run.logs("stdout")
    long_line = "".join(chr(97 + i % 26) for i in range(LONG_LINE_BYTES))
    head, pieces, tail = lines[:4], lines[4:-53], lines[-53:]
    assert head == ["first line", "second line", "", "  indented \t tab"]
    assert "".join(pieces) == long_line
    assert len(pieces) >= 2
    # pieces are cut at the limit from the start of the line
    assert all(len(piece) == MAX_LINE_BYTES for piece in pieces[:-1])
    assert 0 < len(pieces[-1]) < 2 * MAX_LINE_BYTES
    assert tail == [
        "windows line",
        "caf\u00e9 \u2603",
        *(f"numbered {i}" for i in range(50)),
        "no newline at the end",
    ]


async def test_inputs_arrive_decoded(executor: LocalExecutor) -> None:
    circuit = QuantumCircuit(2, name="bell")
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure_all()
    inputs = {
        "array": np.array([[1.5, 2.0], [3.0, -4.25]]),
        "number": 3 - 2j,
        "circuit": circuit,
        "plain": {"nested": [1, "two", None, True]},
    }
    run = await collect(executor, make_request(source=ECHO_INPUTS, inputs=inputs))
    result = run.result()
    assert result["types"] == {
        "array": "ndarray",
        "number": "complex",
        "circuit": "QuantumCircuit",
        "plain": "dict",
    }
    values = result["values"]
    np.testing.assert_array_equal(values["array"], inputs["array"])
    assert values["array"].dtype == np.float64
    assert values["number"] == 3 - 2j
    assert isinstance(values["circuit"], QuantumCircuit)
    assert values["circuit"] == circuit
    assert values["circuit"].name == "bell"
    assert values["plain"] == {"nested": [1, "two", None, True]}


async def test_two_jobs_at_once_keep_their_events_apart(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    meet = str(tmp_path)
    first = make_request(
        source=TAGGED, inputs={"tag": "alpha", "count": 6, "rendezvous": meet}, job_id="job-alpha"
    )
    second = make_request(
        source=TAGGED,
        inputs={"tag": "beta", "count": 4, "rendezvous": meet},
        job_id="job-beta",
        backend="fake_manila",
    )
    alpha, beta = await asyncio.gather(collect(executor, first), collect(executor, second))
    assert alpha.first < beta.last and beta.first < alpha.last  # they really overlapped
    for run, tag, count, backend in (
        (alpha, "alpha", 6, "aer_simulator"),
        (beta, "beta", 4, "fake_manila"),
    ):
        assert [e.seq for e in run.interims] == list(range(1, count + 1))
        assert run.data() == [{"tag": tag, "i": i} for i in range(count)]
        assert run.logs() == [f"{tag} line {i}" for i in range(count)]
        assert run.result() == {"tag": tag, "backend": backend}
    assert executor.running_jobs() == []


async def test_the_same_job_id_cannot_run_twice(executor: LocalExecutor) -> None:
    request = make_request(source=SLEEPER, job_id="job-twice")
    events = executor.run(request)
    first = await anext(events)
    assert first == LogEvent(first.text, "stdout")
    with pytest.raises(ValueError, match="already running"):
        await anext(executor.run(request))
    assert await executor.cancel("job-twice")
    rest = [event async for event in events]
    assert isinstance(rest[-1], CancelledEvent)
    await assert_worker_gone(pid_from([first.text]))


# --- time limits and cancellation --------------------------------------------------------------


async def test_running_past_max_execution_time(executor: LocalExecutor) -> None:
    request = make_request(source=SLEEPER, max_execution_time=1)
    run = await collect(executor, request)
    assert [type(e) for e in run.events] == [LogEvent, CancelledEvent]
    cancelled = run.terminal
    assert isinstance(cancelled, CancelledEvent)
    assert cancelled.reason is JobReason.RAN_TOO_LONG
    assert cancelled.status is JobStatus.CANCELLED
    assert cancelled.message == "the job ran longer than its max_execution_time of 1 s"
    assert run.last - run.started >= 1.0
    assert run.last - run.first < PROMPT_S
    await assert_worker_gone(run.pid())


async def test_cancel_while_sleeping(executor: LocalExecutor) -> None:
    request = make_request(source=SLEEPER)
    assert await executor.cancel(request.job_id) is False  # not started yet
    events: list[JobEvent] = []
    cancelled_at = None
    async for event in executor.run(request):
        events.append(event)
        if isinstance(event, LogEvent) and event.text.startswith("pid "):
            assert executor.running_jobs() == [request.job_id]
            pid = pid_from([event.text])
            assert live_group_members(pid) == [pid]  # the worker leads its own group
            cancelled_at = time.monotonic()
            assert await executor.cancel(request.job_id) is True
            assert await executor.cancel(request.job_id) is True  # still stopping: idempotent
    check_shape(events)
    assert cancelled_at is not None
    assert time.monotonic() - cancelled_at < PROMPT_S
    assert [type(e) for e in events] == [LogEvent, CancelledEvent]
    assert events[-1] == CancelledEvent(JobReason.CANCELLED_BY_USER, "cancelled by request")
    await assert_worker_gone(pid_from([events[0].text]))
    assert await executor.cancel(request.job_id) is False  # finished
    assert await executor.cancel("no-such-job") is False
    assert executor.running_jobs() == []


async def test_closing_the_iterator_early_kills_the_worker(executor: LocalExecutor) -> None:
    request = make_request(source=PUBLISH_THEN_SLEEP)
    events = executor.run(request)
    pid = None
    async for event in events:
        if isinstance(event, InterimEvent):
            pid = json.loads(event.data)["pid"]
            break
    assert pid is not None
    assert not process_gone(pid)
    await events.aclose()
    await assert_worker_gone(pid)
    assert executor.running_jobs() == []
    assert await executor.cancel(request.job_id) is False


async def check_grandchild_run(executor: LocalExecutor, request: JobRequest) -> None:
    events: list[JobEvent] = []
    try:
        run = await collect(executor, request)
        events = run.events
        assert run.result() == "left a child behind"
        assert run.last - run.first < PROMPT_S
        await assert_worker_gone(run.pid())
        grandchild = pid_from(run.logs(), prefix="grandchild ")
        assert await wait_gone(grandchild), f"grandchild {grandchild} survived the job"
    finally:
        logs = [e.text for e in events if isinstance(e, LogEvent)]
        for line in logs:
            if line.startswith("grandchild "):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(line.removeprefix("grandchild ")), signal.SIGKILL)


async def test_grandchild_processes_are_killed_with_the_job(executor: LocalExecutor) -> None:
    request = make_request(source=SPAWNS_GRANDCHILD, inputs={"quiet": True})
    await check_grandchild_run(executor, request)


async def test_grandchild_holding_the_output_pipes_does_not_delay_the_job(
    executor: LocalExecutor,
) -> None:
    request = make_request(source=SPAWNS_GRANDCHILD, max_execution_time=3)
    await check_grandchild_run(executor, request)


# --- crashes and protocol violations -----------------------------------------------------------


async def test_crashes_are_described_and_the_executor_keeps_working(
    executor: LocalExecutor,
) -> None:
    expected = {
        "exit": "the job's process exited with status 3 before sending a result",
        "abort": "killed by signal SIGABRT",
        "segfault": "killed by signal SIGSEGV: a segmentation fault",
    }
    for how, words in expected.items():
        run = await collect(executor, make_request(stem="hard_exit", inputs={"how": how}))
        assert run.logs() == [f"about to {how}"]
        error = run.terminal
        assert isinstance(error, ErrorEvent), how
        assert error.reason is JobReason.PROCESS_CRASHED, how
        assert words in error.message, (how, error.message)
    run = await collect(executor, make_request(stem="hello_world", inputs={"iterations": 1}))
    assert [type(e) for e in run.events] == [InterimEvent, ResultEvent]
    assert run.result() == "All done!"


async def test_garbage_on_the_event_pipe(executor: LocalExecutor) -> None:
    run = await collect(executor, make_request(stem="bad_pipe", inputs={"how": "garbage"}))
    assert len(run.events) == 1
    error = run.terminal
    assert isinstance(error, ErrorEvent)
    assert error.reason is JobReason.PROTOCOL_VIOLATION
    assert error.message.startswith("the job's event pipe carried invalid data: ")
    assert "exceeds the limit" in error.message  # b"\xff\xfe t" read as a frame length


async def test_closed_event_pipe(executor: LocalExecutor) -> None:
    run = await collect(executor, make_request(stem="bad_pipe", inputs={"how": "close"}))
    assert len(run.events) == 1
    error = run.terminal
    assert isinstance(error, ErrorEvent)
    assert error.reason is JobReason.PROCESS_CRASHED
    assert "event pipe was closed" in error.message
