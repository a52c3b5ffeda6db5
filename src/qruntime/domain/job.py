"""Job lifecycle values shared by the executor, the scheduler, storage and the SDK."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    """Where a job is in its life; the last three never change once reached."""

    #: Accepted and waiting for a worker.
    QUEUED = "QUEUED"
    #: A worker process is executing the program.
    RUNNING = "RUNNING"
    #: ``main`` returned and its result is stored.
    DONE = "DONE"
    #: The program raised, crashed or broke the protocol; ``reason`` says which.
    ERROR = "ERROR"
    #: Stopped on purpose: by its owner or for running past its time limit.
    CANCELLED = "CANCELLED"

    def is_terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({JobStatus.DONE, JobStatus.ERROR, JobStatus.CANCELLED})


class JobReason(StrEnum):
    """Why a job ended the way it did, shown next to its status."""

    #: ``main`` raised, or its result could not be encoded.
    PROGRAM_FAILED = "PROGRAM FAILED"
    #: The worker process died without reporting (signal, ``os._exit``, out of memory).
    PROCESS_CRASHED = "PROCESS CRASHED"
    #: The worker sent something on the event pipe that is not a valid message.
    PROTOCOL_VIOLATION = "PROTOCOL VIOLATION"
    #: The job exceeded its ``max_execution_time``.
    RAN_TOO_LONG = "RAN TOO LONG"
    #: Its owner (or an admin) cancelled it.
    CANCELLED_BY_USER = "CANCELLED BY USER"
    #: The server stopped while the job was running.
    INTERRUPTED = "INTERRUPTED"
    #: Its session or batch reached its ``max_time`` before the job could start.
    SESSION_ENDED = "SESSION ENDED"
