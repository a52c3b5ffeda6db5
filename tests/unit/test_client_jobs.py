"""RuntimeJob against a fake server: submission, status, results, streaming with resume, waiting."""

import json
import logging
import threading
import time

import httpx
import numpy as np
import pytest
from qiskit.providers import JobStatus

from qruntime.client import (
    RuntimeInvalidInputsError,
    RuntimeInvalidStateError,
    RuntimeJobCancelledError,
    RuntimeJobFailureError,
    RuntimeJobNotFound,
    RuntimeJobTimeoutError,
    RuntimeProgram,
    RuntimeService,
)
from qruntime.serialization import RuntimeDecoder, encode

URL = "http://qruntime.test"
JOB_ID = "j-1"
SSE = {"content-type": "text/event-stream"}
TRACEBACK = "Traceback (most recent call last):\n  File \"program.py\", line 3\nKeyError: 'x'"


def sse(event: str, data: dict, event_id: int | None = None) -> bytes:
    head = f"event: {event}\n" + (f"id: {event_id}\n" if event_id is not None else "")
    return f"{head}data: {json.dumps(data)}\n\n".encode()


class EndlessStream(httpx.SyncByteStream):
    """An event stream that only ever pings, until the client closes it."""

    def __init__(self, head: bytes = b"") -> None:
        self.head = head
        self.closed = threading.Event()

    def __iter__(self):
        if self.head:
            yield self.head
        while not self.closed.wait(0.01):
            yield b": ping\n\n"

    def close(self) -> None:
        self.closed.set()


class FakeJobServer:
    """One job (``j-1``) behind docs/api.md's job endpoints; streams can drop or never end."""

    def __init__(self, status="DONE", interims=(), result=None, reason=None, error_message=None):
        self.status = status
        self.final = {"status": status, "reason": reason, "error_message": error_message}
        self.interims = [json.loads(encode(item)) for item in interims]
        self.result_text = encode(result)
        self.drops: list[int] = []  # per connection: interims to send before the body just ends
        self.stream_errors: list[int] = []  # per connection: an error status instead of a stream
        self.endless = False
        self.job_status = "QUEUED"  # what GET /jobs/{id} says
        self.posted: dict | None = None
        self.requests: list[httpx.Request] = []

    def job_json(self, status: str) -> dict:
        final = status in ("DONE", "ERROR", "CANCELLED")
        return {
            "id": JOB_ID,
            "program_id": "hello-world-abc123",
            "program_name": "hello-world",
            "owner": "alice",
            "backend": "aer_simulator",
            "status": status,
            "reason": self.final["reason"] if final else None,
            "error_message": self.final["error_message"] if final else None,
            "inputs": self.posted["inputs"] if self.posted else {"iterations": 2},
            "max_execution_time": 300,
            "creation_date": "2021-07-02T13:45:13Z",
            "start_date": None,
            "end_date": None,
            "interim_count": 0,
        }

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/jobs" and request.method == "POST":
            self.posted = json.loads(request.content)
            return httpx.Response(201, json=self.job_json("QUEUED"))
        if not path.startswith(f"/jobs/{JOB_ID}"):
            return error(404, "not_found", f"not found: {path}")
        tail = path.removeprefix(f"/jobs/{JOB_ID}")
        if tail == "/stream":
            return self.stream(request)
        if tail == "/results":
            if self.status != "DONE":
                return error(409, "invalid_state", f"job is {self.status}")
            return httpx.Response(200, text=self.result_text)
        if tail == "/interim_results":
            items = [{"seq": i, "data": d} for i, d in enumerate(self.interims, 1)]
            return httpx.Response(200, json={"interim_results": items})
        if tail == "/logs":
            return httpx.Response(200, text="hello from the program\n")
        if tail == "/cancel":
            if self.job_status in ("DONE", "ERROR", "CANCELLED"):
                return error(409, "invalid_state", "job has already finished")
            self.job_status = self.status = "CANCELLED"
            self.final = {
                "status": "CANCELLED",
                "reason": "CANCELLED BY USER",
                "error_message": None,
            }
            return httpx.Response(200, json=self.job_json("CANCELLED"))
        return httpx.Response(200, json=self.job_json(self.job_status))

    def stream(self, request: httpx.Request) -> httpx.Response:
        if self.stream_errors:
            status = self.stream_errors.pop(0)
            return error(status, "not_found" if status == 404 else "unavailable", "stream refused")
        since = int(request.url.params.get("since", 0))
        head = sse("status", {"status": "RUNNING", "reason": None})
        if self.endless:
            return httpx.Response(200, headers=SSE, stream=EndlessStream(head))
        pending = [(seq, d) for seq, d in enumerate(self.interims, 1) if seq > since]
        drop = self.drops.pop(0) if self.drops else None
        body = head + b"".join(
            sse("interim", {"seq": seq, "data": d}, seq) for seq, d in pending[:drop]
        )
        if drop is None:
            body += sse("final", self.final)
        return httpx.Response(200, headers=SSE, content=body)

    def streams(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path.endswith("/stream")]


def error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(
        status, json={"error": {"code": code, "message": message, "problems": []}}
    )


@pytest.fixture(autouse=True)
def no_stream_threads_left():
    yield
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        alive = [t for t in threading.enumerate() if t.name.startswith("qruntime-stream")]
        if not alive:
            return
        time.sleep(0.01)
    pytest.fail(f"stream threads still running: {alive}")


def make_service(server: FakeJobServer) -> RuntimeService:
    return RuntimeService(URL, "tok", transport=httpx.MockTransport(server))


@pytest.fixture
def server() -> FakeJobServer:
    return FakeJobServer(interims=[{"iteration": i} for i in range(1, 6)], result="All done!")


@pytest.fixture
def service(server):
    with make_service(server) as svc:
        yield svc


def test_run_sends_encoded_inputs_and_backend(service, server):
    job = service.run("hello-world-abc123", {"iterations": 2, "x": np.arange(3), "z": 1j})
    assert server.posted["backend"] == "aer_simulator"
    assert server.posted["inputs"]["iterations"] == 2
    assert server.posted["inputs"]["z"] == {"__type__": "complex", "__value__": [0.0, 1.0]}
    assert job.job_id() == JOB_ID and job.program_id == "hello-world-abc123"
    assert job.backend() == "aer_simulator"
    assert np.array_equal(job.inputs["x"], np.arange(3))
    assert job.creation_date.year == 2021

    service.run("p", {}, options={"backend_name": "fake_manila"}, max_execution_time=10)
    assert server.posted["backend"] == "fake_manila"
    assert server.posted["max_execution_time"] == 10
    with pytest.raises(ValueError, match="backend_nmae"):
        service.run("p", {}, options={"backend_nmae": "x"})


def test_run_accepts_a_validated_parameter_namespace(service, server):
    program = RuntimeProgram(
        "p",
        "p",
        parameters={"properties": {"iterations": {"type": "integer"}}, "required": ["iterations"]},
    )
    namespace = program.parameters()
    with pytest.raises(RuntimeInvalidInputsError, match="iterations"):
        service.run("p", inputs=namespace)
    assert server.posted is None
    namespace.iterations = 3
    service.run("p", inputs=namespace)
    assert server.posted["inputs"] == {"iterations": 3}


def test_unencodable_input_is_named_before_any_request(service, server):
    with pytest.raises(RuntimeInvalidInputsError, match=r"inputs\.bad"):
        service.run("p", {"bad": object()})
    assert server.requests == []


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("QUEUED", JobStatus.QUEUED),
        ("RUNNING", JobStatus.RUNNING),
        ("DONE", JobStatus.DONE),
        ("ERROR", JobStatus.ERROR),
        ("CANCELLED", JobStatus.CANCELLED),
    ],
)
def test_status_mapping(service, server, wire, expected):
    job = service.job(JOB_ID)
    server.job_status = wire
    assert job.status() is expected


def test_result_is_decoded(server):
    server.result_text = encode({"counts": np.array([1, 2, 3]), "amplitude": 0.5 - 0.25j})
    with make_service(server) as service:
        result = service.run("p", {}).result()
    assert np.array_equal(result["counts"], np.array([1, 2, 3]))
    assert result["amplitude"] == 0.5 - 0.25j
    assert len(server.streams()) == 1
    assert [r.url.path for r in server.requests].count(f"/jobs/{JOB_ID}/results") == 1


def test_a_result_carried_by_the_final_event_needs_no_second_request(server):
    server.result_text = encode({"counts": np.array([1, 2, 3])})
    server.final["result"] = server.result_text
    with make_service(server) as service:
        job = service.run("p", {})
        assert np.array_equal(job.result()["counts"], np.array([1, 2, 3]))
        assert np.array_equal(job.result()["counts"], np.array([1, 2, 3]))
    assert [r.url.path for r in server.requests] == ["/jobs", f"/jobs/{JOB_ID}/stream"]


def test_custom_decoders(service, server):
    class TaggingDecoder(RuntimeDecoder):
        def decode(self, s, *args, **kwargs):
            return ("tagged", super().decode(s, *args, **kwargs))

    class LegacyResultDecoder:
        @classmethod
        def decode(cls, raw: str):
            return raw.upper()

    job = service.run("p", {}, result_decoder=TaggingDecoder)
    assert job.result() == ("tagged", "All done!")
    assert job.result(decoder=LegacyResultDecoder) == '"ALL DONE!"'
    assert job.interim_results(decoder=LegacyResultDecoder)[0] == '{"ITERATION": 1}'


def test_failed_job_raises_with_the_traceback():
    server = FakeJobServer(status="ERROR", reason="PROGRAM FAILED", error_message=TRACEBACK)
    with make_service(server) as service:
        job = service.run("p", {})
        with pytest.raises(RuntimeJobFailureError, match="KeyError: 'x'") as info:
            job.result()
    assert info.value.reason == "PROGRAM FAILED" and "Traceback" in str(info.value)
    assert job.status() is JobStatus.ERROR and job.error_message() == TRACEBACK


def test_cancelled_job_says_why():
    server = FakeJobServer(status="CANCELLED", reason="RAN TOO LONG", error_message="ran over 1 s")
    with make_service(server) as service:
        job = service.run("p", {})
        with pytest.raises(RuntimeJobCancelledError, match="RAN TOO LONG") as info:
            job.result()
    assert isinstance(info.value, RuntimeInvalidStateError)
    assert job.reason == "RAN TOO LONG"


def test_interim_results_logs_and_error_message(service):
    job = service.run("p", {})
    assert job.interim_results() == [{"iteration": i} for i in range(1, 6)]
    assert job.logs() == "hello from the program\n"
    assert job.error_message() is None  # QUEUED


def test_cancel(service, server):
    job = service.run("p", {})
    job.cancel()
    assert job.status() is JobStatus.CANCELLED and job.reason == "CANCELLED BY USER"
    with pytest.raises(RuntimeInvalidStateError, match="already finished"):
        service.job(JOB_ID).cancel()


def test_callback_sees_every_interim_once_across_a_dropped_connection(server):
    server.drops = [2]  # the first connection ends after interims 1 and 2, with no final
    seen = []
    with make_service(server) as service:
        job = service.run("p", {}, callback=lambda job_id, data: seen.append((job_id, data)))
        assert job.result(timeout=5) == "All done!"
    assert seen == [(JOB_ID, {"iteration": i}) for i in range(1, 6)]
    first, second = server.streams()
    assert "last-event-id" not in first.headers and first.url.params["since"] == "0"
    assert second.headers["last-event-id"] == "2" and second.url.params["since"] == "2"


def test_waiting_reuses_the_callback_stream(service, server):
    seen = []
    job = service.run("p", {}, callback=lambda job_id, data: seen.append(data))
    job.wait_for_final_state(timeout=5)
    assert len(seen) == 5 and len(server.streams()) == 1


def test_callback_exception_is_logged_and_streaming_continues(service, caplog):
    seen = []

    def callback(job_id, data):
        seen.append(data["iteration"])
        if data["iteration"] == 2:
            raise RuntimeError("boom in callback")

    with caplog.at_level(logging.ERROR, logger="qruntime.client"):
        job = service.run("p", {}, callback=callback)
        job.wait_for_final_state(timeout=5)
    assert seen == [1, 2, 3, 4, 5]
    assert any("boom in callback" in r.exc_text for r in caplog.records if r.exc_text)


def test_waiting_reads_the_stream_in_the_waiting_thread(service, server):
    """No follower thread per job when nothing else reads the stream: none to start or wake."""
    readers = []
    plain = server.stream

    def stream(request):
        readers.append(threading.current_thread())
        return plain(request)

    server.stream = stream
    assert service.run("p", {}).result(timeout=5) == "All done!"
    assert readers == [threading.current_thread()]


def test_a_second_waiter_shares_the_stream_read_by_the_first(service, server):
    server.endless = True
    job = service.run("p", {})
    raised = []

    def wait_in_another_thread():
        try:
            job.wait_for_final_state(timeout=0.5)
        except RuntimeJobTimeoutError as exc:
            raised.append(exc)

    first = threading.Thread(target=wait_in_another_thread)
    first.start()
    time.sleep(0.1)
    with pytest.raises(RuntimeJobTimeoutError):
        job.wait_for_final_state(timeout=0.2)
    first.join(5)
    assert len(raised) == 1 and len(server.streams()) >= 1
    server.endless = False
    assert job.result(timeout=5) == "All done!"


def test_server_unavailable_stream_is_retried(service, server):
    server.stream_errors = [503]
    assert service.run("p", {}).result(timeout=5) == "All done!"
    assert len(server.streams()) == 2


def test_stream_refused_for_good_raises(service, server):
    server.stream_errors = [404]
    with pytest.raises(RuntimeJobNotFound):
        service.run("p", {}).result(timeout=5)


def test_result_timeout_on_a_never_ending_stream(service, server):
    server.endless = True
    job = service.run("p", {})
    started = time.monotonic()
    with pytest.raises(RuntimeJobTimeoutError, match=r"did not finish within 0\.5 s"):
        job.result(timeout=0.5)
    assert time.monotonic() - started < 1.5


def test_streaming_twice_is_refused_until_cancelled(service, server):
    server.endless = True
    job = service.run("p", {}, callback=lambda *args: None)
    with pytest.raises(RuntimeInvalidStateError, match="already being streamed"):
        job.stream_results(lambda *args: None)
    job.cancel_result_streaming()
    job.stream_results(lambda *args: None)
    service.close()  # stops the second stream too


class TimingOutStream(httpx.SyncByteStream):
    """Sends ``body``, then fails the way a read past the read timeout does."""

    def __init__(self, body: bytes, request: httpx.Request) -> None:
        self.body = body
        self.request = request

    def __iter__(self):
        yield self.body
        raise httpx.ReadTimeout("timed out", request=self.request)


def test_read_timeout_counts_as_a_drop(server):
    seen = []
    plain = server.stream

    def stream(request):
        if len(server.streams()) == 1:
            body = b"".join(
                sse("interim", {"seq": s, "data": server.interims[s - 1]}, s) for s in (1, 2, 3)
            )
            return httpx.Response(200, headers=SSE, stream=TimingOutStream(body, request))
        return plain(request)

    server.stream = stream
    with make_service(server) as service:
        job = service.run("p", {}, callback=lambda job_id, data: seen.append(data["iteration"]))
        job.wait_for_final_state(timeout=5)
    assert seen == [1, 2, 3, 4, 5]
    first, second = server.streams()
    assert first.extensions["timeout"]["read"] == 60.0  # longer than the 15 s server ping
    assert second.headers["last-event-id"] == "3"
