"""Jobs and what they publish: numbered interim results and capped log lines.

Status changes are conditional UPDATEs, so concurrent callers (scheduler, supervisor, API)
cannot both win a transition, and a terminal status never changes again.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, case, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from qruntime.domain.errors import DuplicateError, NotFoundError
from qruntime.domain.job import JobReason, JobStatus
from qruntime.storage.models import INTERIMS, JOBS, LOG_LINES, USERS, utcnow
from qruntime.storage.records import StoredInterim, StoredJob, StoredLogLine

_ACTIVE = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


def select_jobs() -> Select[Any]:
    """Jobs with their owner's name, as StoredJob.from_row expects them."""
    return select(JOBS, USERS.c.name.label("owner_name")).join(USERS, USERS.c.id == JOBS.c.owner_id)


def lock_owners(session: Session, owner_ids: Collection[int]) -> None:
    """Lock these users' rows until the transaction ends (PostgreSQL; SQLite has one writer).

    Submits and claims that count a user's jobs take it first, so two of them on different
    replicas count one after the other. Always in id order, so they cannot deadlock.
    """
    if owner_ids and session.get_bind().dialect.name != "sqlite":
        session.execute(
            select(USERS.c.id)
            .where(USERS.c.id.in_(owner_ids))
            .order_by(USERS.c.id)
            .with_for_update()
        )


def new_job_row(
    *,
    id: str,
    program_id: str,
    program_name: str,
    owner_id: int,
    backend: str,
    inputs: str,
    source: str,
    max_execution_time: float,
    resources: str | None = None,
    tags: Sequence[str] = (),
    session_id: str | None = None,
) -> dict[str, Any]:
    """The columns of a job just submitted (``QUEUED``), as every path that adds one stores it."""
    return {
        "id": id,
        "program_id": program_id,
        "program_name": program_name,
        "owner_id": owner_id,
        "backend": backend,
        "status": JobStatus.QUEUED.value,
        "inputs": inputs,
        "source": source,
        "max_execution_time": max_execution_time,
        "resources": resources,
        "tags": json.dumps(list(tags)) if tags else None,
        "session_id": session_id,
        "created_at": utcnow(),
        "interim_count": 0,
        "log_bytes": 0,
        "log_truncated": False,
        "stored_bytes": len(inputs) + len(source),
    }


class JobRepository:
    """Stores jobs and their events inside the caller's session; never commits."""

    def __init__(self, session: Session):
        self._session = session

    # --- jobs -----------------------------------------------------------------------------

    def add(
        self,
        *,
        id: str,
        program_id: str,
        program_name: str,
        owner_id: int,
        backend: str,
        inputs: str,
        source: str,
        max_execution_time: float,
        resources: str | None = None,
        tags: Sequence[str] = (),
        session_id: str | None = None,
    ) -> StoredJob:
        """A new ``QUEUED`` job; ``source`` is the program's source at submit time.

        An ``id`` that is taken raises DuplicateError (callers may choose ids ahead).
        """
        row = new_job_row(
            id=id,
            program_id=program_id,
            program_name=program_name,
            owner_id=owner_id,
            backend=backend,
            inputs=inputs,
            source=source,
            max_execution_time=max_execution_time,
            resources=resources,
            tags=tags,
            session_id=session_id,
        )
        try:
            with self._session.begin_nested():
                self._session.execute(insert(JOBS).values(**row))
        except IntegrityError as exc:
            if self._exists(id):
                raise DuplicateError(f"a job with id {id!r} already exists") from exc
            raise
        return self._require(id)

    def get(self, job_id: str) -> StoredJob | None:
        row = self._session.execute(select_jobs().where(JOBS.c.id == job_id)).first()
        return StoredJob.from_row(row) if row is not None else None

    def list(
        self,
        *,
        owner_id: int | None,
        limit: int | None,
        offset: int = 0,
        statuses: Collection[JobStatus] | None = None,
        program_id: str | None = None,
        backend: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        oldest_first: bool = False,
        tags: Sequence[str] = (),
        session_id: str | None = None,
    ) -> tuple[builtins.list[StoredJob], int]:
        """One page, newest first (or oldest), and the number of all matches; ``owner_id``
        None = all. The creation bounds include their moments."""
        where: builtins.list[ColumnElement[bool]] = []
        if owner_id is not None:
            where.append(JOBS.c.owner_id == owner_id)
        if statuses is not None:
            where.append(JOBS.c.status.in_([JobStatus(s).value for s in statuses]))
        if program_id is not None:
            where.append(JOBS.c.program_id == program_id)
        if backend is not None:
            where.append(JOBS.c.backend == backend)
        if session_id is not None:
            where.append(JOBS.c.session_id == session_id)
        if created_after is not None:
            where.append(JOBS.c.created_at >= created_after)
        if created_before is not None:
            where.append(JOBS.c.created_at <= created_before)
        for tag in tags:  # every tag given: its JSON string inside the stored JSON list
            pattern = "%" + _like_escaped(json.dumps(tag)) + "%"
            where.append(JOBS.c.tags.like(pattern, escape="\\"))
        total = self._session.execute(
            select(func.count()).select_from(JOBS).where(*where)
        ).scalar_one()
        order = (
            (JOBS.c.created_at.asc(), JOBS.c.id.asc())
            if oldest_first
            else (JOBS.c.created_at.desc(), JOBS.c.id.desc())
        )
        query = select_jobs().where(*where).order_by(*order).limit(limit).offset(offset)
        return [StoredJob.from_row(row) for row in self._session.execute(query)], total

    def set_tags(self, job_id: str, tags: Sequence[str]) -> bool:
        """Replace the job's tags; False when there is no such job."""
        result = self._session.execute(
            update(JOBS)
            .where(JOBS.c.id == job_id)
            .values(tags=json.dumps(list(tags)) if tags else None)
        )
        return result.rowcount > 0

    def count_queued(self, owner_id: int) -> int:
        """The user's QUEUED jobs, counted under :func:`lock_owners` so a cap holds on every
        replica: a concurrent submit by the same user waits for this transaction."""
        lock_owners(self._session, [owner_id])
        query = select(func.count()).where(
            JOBS.c.owner_id == owner_id, JOBS.c.status == JobStatus.QUEUED.value
        )
        return self._session.execute(query).scalar_one()

    def finish(
        self,
        job_id: str,
        status: JobStatus,
        *,
        reason: JobReason | None = None,
        error_message: str | None = None,
        result: str | None = None,
    ) -> StoredJob | None:
        """End a queued or running job; None (and no change) if it already ended or is missing."""
        ended = self.end(job_id, status, reason=reason, error_message=error_message, result=result)
        return self._require(job_id) if ended else None

    def end(
        self,
        job_id: str,
        status: JobStatus,
        *,
        reason: JobReason | None = None,
        error_message: str | None = None,
        result: str | None = None,
    ) -> bool:
        """:meth:`finish` reading back nothing: a Ray agent's role may read only job tables."""
        status = JobStatus(status)
        if not status.is_terminal():
            raise ValueError(f"finish() needs a terminal status, not {status}")
        updated = self._session.execute(
            update(JOBS)
            .where(JOBS.c.id == job_id, JOBS.c.status.in_(_ACTIVE))
            .values(
                status=status.value,
                reason=JobReason(reason).value if reason is not None else None,
                error_message=error_message,
                result=result,
                ended_at=utcnow(),
                stored_bytes=JOBS.c.stored_bytes + len(result or "") + len(error_message or ""),
            )
        )
        return bool(updated.rowcount)

    def mark_started_on(self, job_id: str, node: str) -> bool:
        """Record that ``node``'s agent starts the running job; False (nothing changed) when an
        agent started it already, or it is not running: then it must not be started."""
        updated = self._session.execute(
            update(JOBS)
            .where(
                JOBS.c.id == job_id,
                JOBS.c.status == JobStatus.RUNNING.value,
                JOBS.c.started_on.is_(None),
            )
            .values(started_on=node)
        )
        return bool(updated.rowcount)

    def cancel_queued(
        self, job_id: str, message: str, *, reason: JobReason = JobReason.CANCELLED_BY_USER
    ) -> StoredJob | None:
        """Cancel a job only while it is still queued; None if it started, ended or is missing."""
        updated = self._session.execute(
            update(JOBS)
            .where(JOBS.c.id == job_id, JOBS.c.status == JobStatus.QUEUED.value)
            .values(
                status=JobStatus.CANCELLED.value,
                reason=JobReason(reason).value,
                error_message=message,
                ended_at=utcnow(),
                stored_bytes=JOBS.c.stored_bytes + len(message),
            )
        )
        return self._require(job_id) if updated.rowcount else None

    def delete_finished_before(self, cutoff: datetime, *, limit: int) -> int:
        """Delete up to ``limit`` finished jobs that ended before ``cutoff``; how many went."""
        ids = self._session.execute(
            select(JOBS.c.id)
            .where(JOBS.c.status.not_in(_ACTIVE), JOBS.c.ended_at < cutoff)
            .order_by(JOBS.c.ended_at)
            .limit(limit)
        ).scalars()
        ids = builtins.list(ids)
        if ids:
            self._session.execute(delete(JOBS).where(JOBS.c.id.in_(ids)))
        return len(ids)

    def delete(self, job_id: str) -> bool:
        """Delete a job with its interim results and log lines (ON DELETE CASCADE)."""
        result = self._session.execute(delete(JOBS).where(JOBS.c.id == job_id))
        return result.rowcount > 0

    # --- interim results ------------------------------------------------------------------

    def add_interims(
        self, job_id: str, items: Sequence[tuple[int, str]]
    ) -> builtins.list[StoredInterim]:
        """Store several interim results ``(seq, data)`` at once (one statement, one update)."""
        if not items:
            return []
        created_at = utcnow()
        rows = [
            {"job_id": job_id, "seq": seq, "data": data, "created_at": created_at}
            for seq, data in items
        ]
        try:
            with self._session.begin_nested():
                self._session.execute(insert(INTERIMS), rows)
        except IntegrityError as exc:
            if not self._exists(job_id):
                raise NotFoundError("job", job_id) from exc
            seqs = ", ".join(str(seq) for seq, _ in items)
            message = f"job {job_id!r} already has one of interim results {seqs}"
            raise DuplicateError(message) from exc
        last = max(seq for seq, _ in items)
        self._count_interims(job_id, last, sum(len(data) for _, data in items))
        return [StoredInterim(job_id, seq, data, created_at) for seq, data in items]

    def _count_interims(self, job_id: str, last: int, size: int) -> None:
        """One UPDATE: the highest sequence number so far, and the bytes the batch added."""
        self._session.execute(
            update(JOBS)
            .where(JOBS.c.id == job_id)
            .values(
                interim_count=case((JOBS.c.interim_count < last, last), else_=JOBS.c.interim_count),
                stored_bytes=JOBS.c.stored_bytes + size,
            )
        )

    def interims(self, job_id: str, *, after: int = 0) -> builtins.list[StoredInterim]:
        """Interim results with ``seq > after``, in order."""
        query = (
            select(INTERIMS)
            .where(INTERIMS.c.job_id == job_id, INTERIMS.c.seq > after)
            .order_by(INTERIMS.c.seq)
        )
        return [StoredInterim.from_row(row) for row in self._session.execute(query)]

    # --- logs -----------------------------------------------------------------------------

    def append_logs(
        self,
        job_id: str,
        lines: Sequence[tuple[str, str]],
        *,
        cap_bytes: int,
        already_dropped: int = 0,
    ) -> int:
        """Store ``(stream, text)`` lines, then drop the oldest until the log fits ``cap_bytes``.

        The newest output is what explains a failure, so it is kept; a log that lost lines is
        marked truncated. Returns how many bytes were dropped.
        """
        row = self._session.execute(
            select(JOBS.c.log_bytes).where(JOBS.c.id == job_id).with_for_update()
        ).first()
        if row is None:
            raise NotFoundError("job", job_id)
        sizes = [_utf8_size(text) for _, text in lines]
        dropped = already_dropped
        while lines and sum(sizes) > cap_bytes:  # lines that would be dropped at once
            dropped += sizes.pop(0)
            lines = lines[1:]
        stored = row.log_bytes
        if dropped and stored:  # output newer than every stored line was dropped: keep none
            self._session.execute(delete(LOG_LINES).where(LOG_LINES.c.job_id == job_id))
            dropped += stored
            stored = 0
        if lines:
            now = utcnow()
            self._session.execute(
                insert(LOG_LINES),
                [{"job_id": job_id, "stream": st, "text": t, "created_at": now} for st, t in lines],
            )
        total = stored + sum(sizes)
        if total > cap_bytes:
            oldest = self._session.execute(
                select(LOG_LINES.c.id, LOG_LINES.c.text)
                .where(LOG_LINES.c.job_id == job_id)
                .order_by(LOG_LINES.c.id)
            )
            boundary = None
            for line_id, text in oldest:
                if total <= cap_bytes:
                    break
                size = _utf8_size(text)
                total -= size
                dropped += size
                boundary = line_id
            if boundary is not None:
                self._session.execute(
                    delete(LOG_LINES).where(
                        LOG_LINES.c.job_id == job_id, LOG_LINES.c.id <= boundary
                    )
                )
        values: dict[str, Any] = {"log_bytes": total}
        if dropped:
            values["log_truncated"] = True
        self._session.execute(update(JOBS).where(JOBS.c.id == job_id).values(**values))
        return dropped

    def logs(self, job_id: str) -> builtins.list[StoredLogLine]:
        """The job's stored log lines in the order they were appended."""
        query = select(LOG_LINES).where(LOG_LINES.c.job_id == job_id).order_by(LOG_LINES.c.id)
        return [StoredLogLine.from_row(row) for row in self._session.execute(query)]

    # --- helpers --------------------------------------------------------------------------

    def _exists(self, job_id: str) -> bool:
        query = select(JOBS.c.id).where(JOBS.c.id == job_id)
        return self._session.execute(query).first() is not None

    def _require(self, job_id: str) -> StoredJob:
        job = self.get(job_id)
        if job is None:  # pragma: no cover - only after a write in this very transaction
            raise NotFoundError("job", job_id)
        return job


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8", errors="surrogatepass"))


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
