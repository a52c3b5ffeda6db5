"""Stores a running job's events, then wakes whoever follows the job.

The one writer of a job's life after it started: batches of interim results, output lines
(buffered, see :mod:`qruntime.service.log_buffer`) and the outcome. It needs only a
:class:`~qruntime.storage.Database` and a notifier, so the process that runs a job (a replica's
scheduler, or an agent on another machine that built its own ``Database`` from the URL) can
record it without passing through the replica that dispatched it.

Each commit is followed by one call on the notifier: ``notify_interims`` after interim
results, ``notify_ended`` after the outcome (``notify`` where it changed nothing). Output lines
wake nobody (streams do not carry them). On PostgreSQL each of those commits also carries a
signal (:mod:`qruntime.storage.signals`) from ``sender``, which wakes the streams and the
dispatcher of every other replica. Use it from one event loop; the database work runs in
worker threads, but for a small outcome on a SQLite file, written on the loop when no other
writer holds the lock (:mod:`qruntime.storage.loop_sqlite`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from qruntime.domain.events import InterimEvent, JobEvent, LogEvent, ResultEvent, TerminalEvent
from qruntime.domain.job import JobReason, JobStatus
from qruntime.domain.text import published_json_problem, repair_text
from qruntime.execution.limits import unstorable
from qruntime.service.job_end import JobEnd, inline_result
from qruntime.service.log_buffer import LOG_FLUSH_SECONDS, LogBuffer
from qruntime.storage import Database, JobRepository, StoredInterim
from qruntime.storage.hot_path import HotPath
from qruntime.storage.loop_sqlite import LoopSQLite, is_busy
from qruntime.storage.signals import Signal, SignalKind, Signals

#: An outcome up to this size (its result or message) may be written on the event loop:
#: checking and storing it takes the loop ~0.3 ms; a larger one goes to a thread.
LOOP_OUTCOME_MAX_BYTES = 16 * 1024


class JobNotifier(Protocol):
    """Told after each commit; :class:`~qruntime.service.stream_hub.StreamHub` is one."""

    def notify(self, job_id: str) -> None:
        """The job's row changed (here: its outcome was stored)."""

    def notify_interims(self, job_id: str, interims: Sequence[StoredInterim]) -> None:
        """These interim results were just committed, in order."""

    def notify_ended(self, job_id: str, end: JobEnd) -> None:
        """The job's outcome was just committed, as ``end`` says."""


class NoNotifier:
    """For a recorder whose readers learn of changes some other way."""

    def notify(self, job_id: str) -> None:
        pass

    def notify_interims(self, job_id: str, interims: Sequence[StoredInterim]) -> None:
        pass

    def notify_ended(self, job_id: str, end: JobEnd) -> None:
        pass


class JobRecorder:
    """Persists job events in order, one transaction per call, and notifies after each."""

    def __init__(
        self,
        db: Database,
        notifier: JobNotifier | None = None,
        *,
        max_log_bytes: int,
        sender: str = "recorder",
    ):
        """``sender`` names the writer in its signals: a replica ignores the ones it sent."""
        self._db = db
        self._hot = HotPath(db)  # interim batches and outcomes: the plain DB-API path
        self._on_loop = LoopSQLite.of(db)
        self._notifier: JobNotifier = notifier if notifier is not None else NoNotifier()
        self._signals = Signals(sender)
        self._max_log_bytes = max_log_bytes
        self._logs: dict[str, LogBuffer] = {}
        self._flushes: set[asyncio.Future[None]] = set()

    async def record(self, job_id: str, batch: Sequence[JobEvent]) -> None:
        """One batch as :func:`~qruntime.service.event_batches.batched` yields them: interim
        results together, any other event alone."""
        first = batch[0]
        if isinstance(first, InterimEvent):
            await self.record_interims(job_id, batch)  # type: ignore[arg-type]
        elif isinstance(first, LogEvent):
            self.record_log(job_id, first)
        else:
            await self.record_outcome(job_id, first)

    async def record_interims(
        self, job_id: str, events: Sequence[InterimEvent]
    ) -> list[StoredInterim]:
        """Store a batch of interim results in one transaction, then notify.

        Output printed before them is stored too, so logs never lag behind the results.
        A ``seq`` stored already raises :class:`~qruntime.domain.errors.DuplicateError`.
        """
        stored = await asyncio.to_thread(self._add_interims, job_id, events)
        self._notifier.notify_interims(job_id, stored)
        await self.flush(job_id)
        return stored

    def record_log(self, job_id: str, event: LogEvent) -> None:
        """Buffer an output line; it is stored within LOG_FLUSH_SECONDS (or sooner, before the
        next interim result or the outcome). Only the newest ``max_log_bytes`` are kept."""
        buffer = self._logs.setdefault(job_id, LogBuffer(self._max_log_bytes))
        # Program output is kept even when it is not valid text: NUL becomes U+FFFD.
        buffer.add(event.stream, repair_text(event.text))  # at most the cap: no flush by size
        if not buffer.flush_scheduled:
            buffer.flush_scheduled = True
            asyncio.get_running_loop().call_later(LOG_FLUSH_SECONDS, self._flush_soon, job_id)

    async def begin(self, job_id: str, node: str) -> bool:
        """Claim the job's start for ``node``; False if another node started it or it ended."""
        return await asyncio.to_thread(self._mark_started, job_id, node)

    async def record_outcome(self, job_id: str, event: TerminalEvent) -> bool:
        """Store the waiting output, then the job's end, then notify.

        False (and nothing changed) when the job had already ended or is gone: a terminal
        status never changes again.
        """
        await self.flush(job_id)
        try:
            end = self._finish_on_loop(job_id, event)
        except _InAThread:
            end = await asyncio.to_thread(self._finish_with, job_id, event)
        if end is None:
            self._notifier.notify(job_id)
        else:
            self._notifier.notify_ended(job_id, end)
        return end is not None

    async def flush(self, job_id: str) -> None:
        """Store the job's waiting output; one flush at a time per job keeps lines in order."""
        buffer = self._logs.get(job_id)
        if buffer is None:
            return
        async with buffer.lock:
            buffer.flush_scheduled = False
            if buffer:
                lines, dropped = buffer.take()
                await asyncio.to_thread(self._append_logs, job_id, lines, dropped)

    async def close(self, job_id: str) -> None:
        """Flush and forget the job's buffer; call once nothing more will be recorded for it."""
        try:
            await self.flush(job_id)
        finally:
            self._logs.pop(job_id, None)

    def discard(self, job_id: str) -> None:
        """Forget the job's waiting output unstored: someone else records the job now."""
        self._logs.pop(job_id, None)

    def _finish_on_loop(self, job_id: str, event: TerminalEvent) -> JobEnd | None:
        """The outcome written right here; :class:`_InAThread` where it must not be (no loop
        connection, a large outcome, another writer holding the lock: nothing written)."""
        on_loop = self._on_loop
        if on_loop is None or _outcome_bytes(event) > LOOP_OUTCOME_MAX_BYTES:
            raise _InAThread
        try:
            return self._finish_with(job_id, event, on_loop.hot)
        except Exception as error:
            if is_busy(error):
                raise _InAThread from error
            raise

    def _flush_soon(self, job_id: str) -> None:
        task = asyncio.ensure_future(self.flush(job_id))
        self._flushes.add(task)  # a task nobody references may be collected mid-flight
        task.add_done_callback(self._flushes.discard)

    # Database work, run in worker threads.

    def _add_interims(self, job_id: str, events: Sequence[InterimEvent]) -> list[StoredInterim]:
        last = events[-1].seq if events else 0
        signal = Signal(SignalKind.INTERIMS, job_id, self._signals.sender, str(last))
        return self._hot.add_interims(job_id, [(e.seq, e.data) for e in events], signal)

    def _mark_started(self, job_id: str, node: str) -> bool:
        with self._db.session() as session:
            return JobRepository(session).mark_started_on(job_id, node)

    def _append_logs(self, job_id: str, lines: list[tuple[str, str]], dropped: int) -> None:
        with self._db.session() as session:
            JobRepository(session).append_logs(
                job_id, lines, cap_bytes=self._max_log_bytes, already_dropped=dropped
            )

    def _finish_with(
        self, job_id: str, event: TerminalEvent, hot: HotPath | None = None
    ) -> JobEnd | None:
        if isinstance(event, ResultEvent):
            status, reason, message, result = JobStatus.DONE, None, None, event.data
            problem = published_json_problem(event.data)
            if problem is not None:  # a program that wrote its own frames; the worker refuses it
                status, reason, result = JobStatus.ERROR, JobReason.PROGRAM_FAILED, None
                message = unstorable("the value returned by main()", problem)
        else:
            status, reason, message, result = event.status, event.reason, event.message, None
        if message:  # a traceback may quote any text the program made
            message = repair_text(message)
        signal = Signal(SignalKind.CHANGED, job_id, self._signals.sender, status.value)
        message = message or None
        last_seq = (hot or self._hot).finish(
            job_id, status, reason=reason, error_message=message, result=result, signal=signal
        )
        if last_seq is None:
            return None
        status, reason = JobStatus(status), JobReason(reason) if reason is not None else None
        return JobEnd(status, reason, message, inline_result(status, result), last_seq)


class _InAThread(Exception):
    """This outcome is written in a worker thread, not on the loop."""


def _outcome_bytes(event: TerminalEvent) -> int:
    if isinstance(event, ResultEvent):
        return len(event.data)
    return len(event.message or "")
