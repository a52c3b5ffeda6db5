"""A job's events as one ordered stream: stored interim results after a sequence number, then
live ones, status changes, and a final item; a view of the database, woken by the hub."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from qruntime.domain.errors import NotFoundError
from qruntime.domain.job import JobReason, JobStatus
from qruntime.service.job_end import INLINE_RESULT_MAX_BYTES as INLINE_RESULT_MAX_BYTES
from qruntime.service.job_end import JobEnd, inline_result
from qruntime.service.stream_hub import StreamHub, Watch
from qruntime.storage import Database, StoredInterim, StoredJob
from qruntime.storage.hot_reads import HotReads

#: Default seconds between keep-alive pings on a quiet stream (it also re-reads the database).
PING_SECONDS = 15.0


@dataclass(frozen=True)
class StreamStatus:
    status: JobStatus
    reason: JobReason | None


@dataclass(frozen=True)
class StreamPing:
    """Nothing happened for a while; keeps proxies and clients from dropping the connection."""


@dataclass(frozen=True)
class StreamFinal:
    status: JobStatus
    reason: JobReason | None
    error_message: str | None
    result: str | None = None  # the stored result text of a DONE job, if it is small

    @classmethod
    def of(cls, end: JobEnd) -> StreamFinal:
        return cls(end.status, end.reason, end.error_message, end.result)


StreamItem = StoredInterim | StreamStatus | StreamPing | StreamFinal


@dataclass(frozen=True)
class FirstRead:
    """A read the caller already made for the stream: ``watch`` snapshotted before it."""

    watch: Watch
    job: StoredJob
    interims: list[StoredInterim]


async def follow_job(
    db: Database,
    hub: StreamHub,
    job_id: str,
    *,
    since: int = 0,
    ping_seconds: float = PING_SECONDS,
    first: FirstRead | None = None,
) -> AsyncIterator[list[StreamItem]]:
    """Yield each interim with ``seq > since`` exactly once, in order, then the final item.

    Items come in lists, one per read of the database, so that a reader can send what one
    read found in one write. Status items cover QUEUED and RUNNING; the terminal status comes
    only with the final item, after the last interim.

    Ends without a final item if the job is deleted meanwhile (a reconnect then gets 404).
    ``first``, when given, stands for the first read of the database.
    """
    watch = first.watch if first is not None else hub.watch(job_id)
    last_status: JobStatus | None = None
    from_memory: list[StoredInterim] | None = None
    while True:
        items: list[StreamItem] = []
        if from_memory is not None:  # only interims were stored, and the hub still has them
            interims = from_memory
        else:
            if first is not None:  # the caller's read, after its snapshot: the first round's
                job, interims, first = first.job, first.interims, None
            else:
                watch.snapshot()
                try:
                    job, interims = await asyncio.to_thread(_read, db, job_id, since)
                except NotFoundError:
                    return
            if job.status != last_status and not job.status.is_terminal():
                last_status = job.status
                items.append(StreamStatus(job.status, job.reason))
        items += interims
        if interims:
            since = interims[-1].seq
        if from_memory is None and job.status.is_terminal():
            items.append(
                StreamFinal(job.status, job.reason, job.error_message, _inline_result(job))
            )
            yield items
            return
        if items:
            yield items
        if not await watch.wait(ping_seconds):
            yield [StreamPing()]
            from_memory = None
            continue
        if watch.ended is not None:  # it ended here while we waited: no read of the job
            last = watch.ended.interims_after(since)
            if last is not None:
                yield [*last, StreamFinal.of(watch.ended.end)]
                return
        from_memory = _from_memory(hub, watch, job_id, since)


def _from_memory(
    hub: StreamHub, watch: Watch, job_id: str, since: int
) -> list[StoredInterim] | None:
    """What the hub holds after ``since``, if only interims changed and it holds them all.

    Checked and snapshotted in one turn of the loop, so no change can slip in between.
    """
    if watch.state_changed:
        return None
    interims = hub.recent(job_id, since)
    if interims is not None:
        watch.snapshot()
    return interims


def _inline_result(job: StoredJob) -> str | None:
    return inline_result(job.status, job.result)


def _read(db: Database, job_id: str, since: int) -> tuple[StoredJob, list[StoredInterim]]:
    """Status first, then interims: a job seen finished has all of its interims stored."""
    job, interims = HotReads.of(db).job_and_interims(job_id, after=since)
    if job is None:
        raise NotFoundError("job", job_id)
    return job, interims
