"""Follow a job's event stream to its final event, across dropped connections.

The reader remembers the last interim ``seq`` it handed out and reconnects with
``Last-Event-ID``/``?since=`` after a drop, so each interim result arrives exactly once and in
order. A read timeout longer than the server's keep-alive ping counts as a drop.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, SSEError

from qruntime.client import alarms
from qruntime.client.exceptions import (
    RuntimeConnectionError,
    RuntimeRequestError,
    RuntimeServerError,
)
from qruntime.client.transport import RETRYABLE_STATUSES, ApiClient

__all__ = [
    "FinalMessage",
    "InterimMessage",
    "JobEventStream",
    "StatusMessage",
    "StreamFollower",
    "StreamOptions",
]

logger = logging.getLogger("qruntime.client")


@dataclass(frozen=True)
class InterimMessage:
    seq: int
    data: Any  # JSON value holding RuntimeEncoder envelopes, not yet decoded


@dataclass(frozen=True)
class StatusMessage:
    status: str
    reason: str | None


@dataclass(frozen=True)
class FinalMessage:
    status: str
    reason: str | None
    error_message: str | None
    result_text: str | None = None  # a DONE job's result (RuntimeEncoder JSON), if small


Message = InterimMessage | StatusMessage | FinalMessage


@dataclass(frozen=True)
class StreamOptions:
    """How patiently to follow a stream; the read timeout must exceed the 15 s ping interval."""

    read_timeout: float = 60.0
    first_delay: float = 0.1
    max_delay: float = 5.0
    give_up_after: float = 300.0


class JobEventStream:
    """Iterates one job's messages until ``final``; ``close()`` (any thread) ends it early."""

    def __init__(
        self, api: ApiClient, job_id: str, *, since: int = 0, options: StreamOptions | None = None
    ) -> None:
        self.job_id = job_id
        self.last_seq = since
        self._api = api
        self._options = options or StreamOptions()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._response: httpx.Response | None = None

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        """Stop following; a read blocked in another thread returns at once and the reader exits.

        The reading thread closes the response itself; from here the socket is only shut down,
        which wakes the read. Without a socket (test transports) the response is closed here.
        """
        self._stop.set()
        with self._lock:
            response = self._response
        if response is None or _shut_down_socket(response):
            return
        try:
            response.close()
        except Exception:  # the reader may be closing it at the same moment; it is ending anyway
            logger.debug("job %s: error while closing the stream", self.job_id, exc_info=True)

    def __iter__(self) -> Iterator[Message]:
        attempt = 0
        outage_since: float | None = None
        while not self._stop.is_set():
            progressed = False
            try:
                with self._api.event_stream(
                    f"/jobs/{self.job_id}/stream",
                    params={"since": self.last_seq},
                    headers={"Last-Event-ID": str(self.last_seq)} if self.last_seq else {},
                    read_timeout=self._options.read_timeout,
                ) as source:
                    self._set_response(source.response)
                    events = source.iter_sse()
                    for sse in events:
                        message = self._parse(sse)
                        if message is None:
                            continue
                        progressed = True
                        if isinstance(message, FinalMessage):
                            _drain(events, source.response)  # the connection back in the pool
                            yield message
                            return
                        yield message
                problem = "the stream ended before its final event"
            except Exception as exc:
                if self._stop.is_set():
                    return
                problem = self._retryable_problem(exc)
            finally:
                self._set_response(None)
            if self._stop.is_set():
                return
            if progressed:
                attempt, outage_since = 0, None
            now = time.monotonic()
            outage_since = now if outage_since is None else outage_since
            if now - outage_since > self._options.give_up_after:
                raise RuntimeConnectionError(
                    f"lost the event stream of job {self.job_id} for more than "
                    f"{self._options.give_up_after:.0f} s: {problem}"
                )
            delay = min(self._options.first_delay * 2**attempt, self._options.max_delay)
            attempt += 1
            logger.info(
                "job %s: %s; reconnecting after seq %d in %.2f s",
                self.job_id,
                problem,
                self.last_seq,
                delay,
            )
            self._stop.wait(delay)

    def _set_response(self, response: httpx.Response | None) -> None:
        with self._lock:
            self._response = response
        if response is not None and self._stop.is_set():
            response.close()

    def _retryable_problem(self, exc: Exception) -> str:
        """Describe a transient failure, or re-raise one that waiting will not cure."""
        if isinstance(exc, httpx.TransportError | RuntimeConnectionError):
            return f"connection problem ({type(exc).__name__}: {exc})"
        if isinstance(exc, RuntimeServerError) and exc.status_code in RETRYABLE_STATUSES:
            return f"server unavailable (HTTP {exc.status_code})"
        if isinstance(exc, SSEError):
            raise RuntimeRequestError(f"job {self.job_id}: not an event stream: {exc}") from exc
        raise exc

    def _parse(self, sse: ServerSentEvent) -> Message | None:
        if sse.event not in ("interim", "status", "final"):
            return None
        try:
            payload = json.loads(sse.data)
            if sse.event == "interim":
                seq = int(payload.get("seq", sse.id))
                if seq <= self.last_seq:
                    return None  # already delivered before a reconnect
                self.last_seq = seq
                return InterimMessage(seq, payload.get("data"))
            if sse.event == "status":
                return StatusMessage(str(payload["status"]), payload.get("reason"))
            result = payload.get("result")
            return FinalMessage(
                str(payload["status"]),
                payload.get("reason"),
                payload.get("error_message"),
                result if isinstance(result, str) else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            logger.warning("job %s: ignoring a malformed %r event", self.job_id, sse.event)
            return None


#: How long the end of a stream may take after its final event before the connection is dropped.
DRAIN_SECONDS = 1.0


def _drain(events: Iterator[ServerSentEvent], response: httpx.Response) -> None:
    """Read the response to its end, so that its connection goes back to the pool: closed
    half-read, it is dropped, and the next request (the next job's POST) pays a new TCP
    connection on both sides. The server ends the response in the turn that sent the final
    event; one that an intermediary holds open is cut after ``DRAIN_SECONDS``, not the read
    timeout, and its connection dropped."""
    watchdog = alarms.call_at(time.monotonic() + DRAIN_SECONDS, _shut_down_socket, response)
    try:
        with contextlib.suppress(Exception):  # the final event is in hand; a failure here is moot
            for _ in events:
                pass
    finally:
        watchdog.cancel()


def _shut_down_socket(response: httpx.Response) -> bool:
    """Wake a read blocked in another thread (closing a socket does not; shutting it down does)."""
    network_stream = response.extensions.get("network_stream")
    sock = network_stream.get_extra_info("socket") if network_stream is not None else None
    if sock is None:
        return False
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    return True


class StreamFollower:
    """Runs a JobEventStream on a daemon thread (``start``) or the caller's (``run_here``) and
    records how it ended.

    ``done`` is set when the stream ended: ``final`` holds the final message, or ``error`` the
    exception that stopped it; both are None when it was stopped on purpose. ``last_seq`` is
    the last interim result handed to the callback: one read from the stream but dropped
    because the follower was stopped is not counted, so a follower started again after it
    begins with that one.
    """

    def __init__(
        self,
        stream: JobEventStream,
        *,
        on_interim: Callable[[int, Any], None] | None = None,
        on_status: Callable[[StatusMessage | FinalMessage], None] | None = None,
    ) -> None:
        self.stream = stream
        self.final: FinalMessage | None = None
        self.error: Exception | None = None
        self.done = threading.Event()
        self._delivered = stream.last_seq
        self._on_interim = on_interim
        self._on_status = on_status
        self._thread: threading.Thread | None = None

    @property
    def last_seq(self) -> int:
        return self._delivered

    def start(self) -> StreamFollower:
        self._thread = threading.Thread(
            target=self._run, name=f"qruntime-stream-{self.stream.job_id}", daemon=True
        )
        self._thread.start()
        return self

    def run_here(self, deadline: float | None = None) -> None:
        """Follow the stream in the calling thread (no thread of its own to start and wake),
        until it ends or ``deadline`` (``time.monotonic()``) closes it."""
        alarm = None if deadline is None else alarms.call_at(deadline, self.stream.close)
        try:
            self._run()
        finally:
            if alarm is not None:
                alarm.cancel()

    def is_running(self) -> bool:
        return not self.done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)

    def stop(self, join_timeout: float | None = 0.5) -> None:
        """Stop following; waits briefly for the thread unless called from inside it."""
        self.stream.close()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread() and thread.is_alive():
            thread.join(join_timeout)

    def _run(self) -> None:
        try:
            for message in self.stream:
                if self.stream.closed:
                    break
                if isinstance(message, InterimMessage):
                    if self._on_interim is not None:
                        self._on_interim(message.seq, message.data)
                    self._delivered = message.seq  # only now: the callback has it
                    continue
                if isinstance(message, FinalMessage):
                    self.final = message
                if self._on_status is not None:
                    self._on_status(message)
        except Exception as exc:
            logger.debug("job %s: stream stopped by an error", self.stream.job_id, exc_info=True)
            self.error = exc
        finally:
            self.done.set()
