"""A submitted job: its status, result, interim results and logs, and waiting for it.

Waiting never polls: it blocks on the ``final`` event of the job's stream, shared with the
callback stream when one runs, and otherwise read in the waiting thread itself.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from weakref import WeakSet

from qruntime.client.exceptions import (
    RuntimeInvalidStateError,
    RuntimeJobCancelledError,
    RuntimeJobFailureError,
    RuntimeJobTimeoutError,
)
from qruntime.client.stream import (
    FinalMessage,
    JobEventStream,
    StatusMessage,
    StreamFollower,
    StreamOptions,
)
from qruntime.client.transport import ApiClient
from qruntime.client.wire import Decoder, decode_text, decode_value, parse_date

if TYPE_CHECKING:
    from qiskit.providers import JobStatus

__all__ = ["RuntimeJob"]

logger = logging.getLogger("qruntime.client")

_FINAL = frozenset({"DONE", "ERROR", "CANCELLED"})

InterimCallback = Callable[[str, Any], None]


class RuntimeJob:
    """Handle on one job; cheap to create, it talks to the server only when asked."""

    def __init__(
        self,
        api: ApiClient,
        body: Mapping[str, Any],
        *,
        decoder: Decoder | None = None,
        stream_options: StreamOptions | None = None,
        followers: WeakSet[StreamFollower] | None = None,
    ) -> None:
        self._api = api
        self._decoder = decoder
        self._stream_options = stream_options
        self._followers = followers if followers is not None else WeakSet()
        self._lock = threading.RLock()
        self._streamer: StreamFollower | None = None
        self._waiter: StreamFollower | None = None
        self._result_text: str | None = None
        self._job_id: str = body["id"]
        self._status = "QUEUED"
        self._reason: str | None = None
        self._error_message: str | None = None
        self._update(body)

    # --- what the server said about the job ----------------------------------------------

    def job_id(self) -> str:
        return self._job_id

    @property
    def program_id(self) -> str:
        return self._program_id

    def backend(self) -> str:
        """Name of the backend the job runs on."""
        return self._backend

    @property
    def inputs(self) -> Any:
        """The job's inputs, decoded as the program receives them."""
        return decode_value(self._raw_inputs)

    @property
    def reason(self) -> str | None:
        """Why the job ended as it did (``RAN TOO LONG``, ``PROGRAM FAILED``...), if it did."""
        return self._reason

    def status(self) -> JobStatus:
        """Current status, fetched from the server unless the job already reached a final one."""
        from qiskit.providers import JobStatus  # qiskit's import costs a second; not every use

        name = self.status_name()
        return JobStatus[name] if name in JobStatus.__members__ else JobStatus.INITIALIZING

    def status_name(self) -> str:
        """The server's name of the current status (``QUEUED`` ... ``CANCELLED``), as
        :meth:`status` fetches it, without importing qiskit."""
        if self._status not in _FINAL:
            self._update(self._api.get_json(f"/jobs/{self._job_id}", resource="job"))
        return self._status

    def error_message(self) -> str | None:
        """The server's account of a failure or cancellation; None while fine or done."""
        if self.status_name() not in ("ERROR", "CANCELLED"):
            return None
        return self._error_message or f"job {self._job_id} {self._status} ({self._reason})"

    # --- results --------------------------------------------------------------------------

    def result(self, timeout: float | None = None, decoder: Decoder | None = None) -> Any:
        """Wait for the job to finish and return its decoded result."""
        self.wait_for_final_state(timeout)
        self._raise_unless_done()
        if self._result_text is None:
            response = self._api.request("GET", f"/jobs/{self._job_id}/results", resource="job")
            self._result_text = response.text
        return decode_text(self._result_text, decoder or self._decoder)

    def interim_results(self, decoder: Decoder | None = None) -> list[Any]:
        """Every interim result published so far, in order."""
        body = self._api.get_json(f"/jobs/{self._job_id}/interim_results", resource="job", since=0)
        return [
            decode_value(item["data"], decoder or self._decoder) for item in body["interim_results"]
        ]

    def logs(self) -> str:
        """What the program printed (stdout and stderr), as the server keeps it."""
        return self._api.request("GET", f"/jobs/{self._job_id}/logs", resource="job").text

    def cancel(self) -> None:
        """Cancel the job; RuntimeInvalidStateError if it has already finished."""
        body = self._api.request("POST", f"/jobs/{self._job_id}/cancel", resource="job").json()
        self._update(body)

    def wait_for_final_state(self, timeout: float | None = None) -> None:
        """Block until the job is DONE, ERROR or CANCELLED, or raise RuntimeJobTimeoutError."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._status not in _FINAL:
            follower, owned, fresh = self._final_source()
            if fresh:  # nobody reads this job's stream yet: read it here, no thread to wake
                follower.run_here(deadline)
                ended = follower.final is not None or follower.error is not None
                in_time = ended or deadline is None or time.monotonic() < deadline
            else:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                in_time = follower.wait(remaining)
            if not in_time:
                if owned:
                    self._drop_waiter(follower)
                raise RuntimeJobTimeoutError(
                    f"job {self._job_id} did not finish within {timeout} s "
                    f"(last known status {self._status}); it keeps running"
                )
            if follower.error is not None:
                if owned:
                    self._drop_waiter(follower)
                raise follower.error
            # A callback stream stopped on purpose ends without a final message: look again.

    # --- streaming ------------------------------------------------------------------------

    def stream_results(self, callback: InterimCallback, decoder: Decoder | None = None) -> None:
        """Call ``callback(job_id, interim_result)`` for each interim result, on a thread."""
        with self._lock:
            if self._streamer is not None and self._streamer.is_running():
                raise RuntimeInvalidStateError(
                    f"results of job {self._job_id} are already being streamed; "
                    "call cancel_result_streaming() first"
                )
            since = self._streamer.last_seq if self._streamer is not None else 0

            def deliver(seq: int, data: Any) -> None:
                self._deliver(callback, decoder or self._decoder, seq, data)

            self._streamer = self._new_follower(since, deliver).start()

    def cancel_result_streaming(self) -> None:
        """Stop calling the callback; the job itself keeps running."""
        with self._lock:
            streamer = self._streamer
        if streamer is not None:
            streamer.stop()

    # --- internals ------------------------------------------------------------------------

    def _deliver(
        self, callback: InterimCallback, decoder: Decoder | None, seq: int, data: Any
    ) -> None:
        try:
            value = decode_value(data, decoder)
        except Exception:
            logger.exception("job %s: cannot decode interim result %d", self._job_id, seq)
            return
        try:
            callback(self._job_id, value)
        except Exception:
            logger.exception(
                "job %s: the interim-result callback raised on result %d; streaming continues",
                self._job_id,
                seq,
            )

    def _final_source(self) -> tuple[StreamFollower, bool, bool]:
        """The follower whose final event to wait on, whether waiting owns it, and whether it
        is new (not yet running: the caller reads it in its own thread)."""
        with self._lock:
            streamer = self._streamer
            if streamer is not None and (streamer.is_running() or streamer.final is not None):
                return streamer, False, False
            fresh = self._waiter is None or (
                self._waiter.done.is_set() and self._waiter.final is None
            )
            if fresh:
                self._waiter = self._new_follower(self._interim_count, None)
            return self._waiter, True, fresh

    def _drop_waiter(self, follower: StreamFollower) -> None:
        with self._lock:
            if self._waiter is follower:
                self._waiter = None
        follower.stop(join_timeout=0.2)

    def _new_follower(
        self, since: int, on_interim: Callable[[int, Any], None] | None
    ) -> StreamFollower:
        stream = JobEventStream(self._api, self._job_id, since=since, options=self._stream_options)
        follower = StreamFollower(stream, on_interim=on_interim, on_status=self._apply_event)
        self._followers.add(follower)
        return follower

    def _apply_event(self, message: StatusMessage | FinalMessage) -> None:
        """The final message is authoritative (it alone carries the error message)."""
        if isinstance(message, FinalMessage):
            self._error_message = message.error_message
            if message.result_text is not None:
                self._result_text = message.result_text  # saves GET /results
        elif self._status in _FINAL:
            return
        self._reason = message.reason
        self._status = message.status

    def _update(self, body: Mapping[str, Any]) -> None:
        """Take the fields of a job object; a final status, once seen, never changes back."""
        self._program_id = body.get("program_id", "")
        self.program_name: str | None = body.get("program_name")
        self.owner: str | None = body.get("owner")
        self._backend = body.get("backend", "")
        self._raw_inputs = body.get("inputs") or {}
        self.max_execution_time: int | None = body.get("max_execution_time")
        self.creation_date: dt.datetime | None = parse_date(body.get("creation_date"))
        self.start_date: dt.datetime | None = parse_date(body.get("start_date"))
        self.end_date: dt.datetime | None = parse_date(body.get("end_date"))
        #: The session or batch the job was submitted in (``RuntimeService.session``).
        self.session_id: str | None = body.get("session_id")
        self._interim_count = int(body.get("interim_count") or 0)
        if self._status not in _FINAL:
            self._reason = body.get("reason")
            self._error_message = body.get("error_message")
            self._status = body.get("status", self._status)

    def _raise_unless_done(self) -> None:
        if self._status == "ERROR":
            detail = f":\n{self._error_message}" if self._error_message else ""
            raise RuntimeJobFailureError(
                f"job {self._job_id} failed ({self._reason}){detail}",
                job_id=self._job_id,
                reason=self._reason,
                error_message=self._error_message,
            )
        if self._status == "CANCELLED":
            detail = f": {self._error_message}" if self._error_message else ""
            raise RuntimeJobCancelledError(
                f"job {self._job_id} was cancelled ({self._reason}){detail}; it has no result",
                job_id=self._job_id,
                reason=self._reason,
            )

    def __repr__(self) -> str:
        return f"<RuntimeJob({self._job_id!r}, {self._program_id!r}, {self._status})>"
