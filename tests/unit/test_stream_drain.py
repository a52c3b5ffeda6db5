"""After the final event the SDK reads the stream to its end (to reuse the connection), but a
response that something holds open past the final event does not hold the result back."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from qruntime.client.stream import DRAIN_SECONDS, FinalMessage, JobEventStream, StreamOptions
from qruntime.client.transport import ApiClient

FINAL = json.dumps({"status": "DONE", "reason": None, "error_message": None, "result": "42"})
HEAD = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def _chunk(text: str) -> bytes:
    data = text.encode()
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


@pytest.fixture
def held_open_stream() -> Iterator[tuple[str, threading.Event]]:
    """An HTTP server whose stream sends its final event and then never ends the response."""
    listener = socket.create_server(("127.0.0.1", 0))
    release = threading.Event()

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            request = b""
            while b"\r\n\r\n" not in request:
                request += connection.recv(4096)
            connection.sendall(HEAD.encode() + _chunk(f"event: final\ndata: {FINAL}\n\n"))
            release.wait(120)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", release
    finally:
        release.set()
        thread.join(10)
        listener.close()


def test_a_response_held_open_after_the_final_event_does_not_hold_the_result_back(
    held_open_stream: tuple[str, threading.Event],
) -> None:
    url, _ = held_open_stream
    api = ApiClient(url, "qrt_token")
    stream = JobEventStream(api, "job-1", options=StreamOptions(read_timeout=120))
    started = time.monotonic()
    messages = list(stream)
    waited = time.monotonic() - started
    assert messages == [FinalMessage("DONE", None, None, "42")]
    # The read timeout is 120 s: only the drain's own bound can have ended the wait.
    assert waited < DRAIN_SECONDS + 30, waited
