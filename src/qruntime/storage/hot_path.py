"""The writes of every job's life (its submit, interim batches, outcome) on the plain DB-API
connection.

They run for every job, interim results hundreds of times a second, so they go through
:class:`PlainSQL` (one transaction per call), with the same effects as the repository's
:meth:`JobRepository.add`, :meth:`JobRepository.add_interims` and :meth:`JobRepository.finish`
(which stay for everything else).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

from qruntime.domain.errors import DuplicateError, NotFoundError
from qruntime.domain.job import JobReason, JobStatus
from qruntime.storage.database import Database
from qruntime.storage.jobs import new_job_row
from qruntime.storage.models import INTERIMS, JOBS, utcnow
from qruntime.storage.plain_sql import PlainSQL, Statement, Transaction, bind_processor
from qruntime.storage.records import StoredInterim, StoredJob
from qruntime.storage.signals import CHANNEL, Signal

_ADD_INTERIM = (
    "INSERT INTO interim_results (job_id, seq, data, created_at) "
    "VALUES (:job_id, :seq, :data, :created_at)"
)
#: On PostgreSQL up to this many of a batch's rows go in one INSERT: a round trip per
#: statement, not per row as psycopg's executemany sends them (SQLite's executemany steps one
#: prepared statement, cheaper than a long one); at most this many statement texts exist.
INTERIMS_PER_INSERT = 64
_INSERTS: dict[int, str] = {}
_COUNT_INTERIMS = (
    "UPDATE jobs SET interim_count = CASE WHEN interim_count < :last THEN :last "
    "ELSE interim_count END, stored_bytes = stored_bytes + :size WHERE id = :job_id"
)
_FINISH = (
    "UPDATE jobs SET status = :status, reason = :reason, error_message = :error_message, "
    "result = :result, ended_at = :ended_at, stored_bytes = stored_bytes + :size "
    "WHERE id = :job_id AND status IN (:queued, :running)"
)
_EXISTS = "SELECT 1 FROM jobs WHERE id = :job_id"
_INTERIM_COUNT = "SELECT interim_count FROM jobs WHERE id = :job_id"
#: Taken before the owner's jobs are counted, as ``lock_owners`` does (PostgreSQL).
_LOCK_OWNER = "SELECT id FROM users WHERE id = :owner_id FOR UPDATE"
#: The owner's queued jobs and stored bytes (as ``count_queued`` and ``stored_bytes_of``).
_USAGE = (
    "SELECT (SELECT count(*) FROM jobs WHERE owner_id = :owner_id AND status = :queued), "
    "(SELECT coalesce(sum(stored_bytes + log_bytes), 0) FROM jobs WHERE owner_id = :owner_id), "
    "(SELECT coalesce(sum(length(source) + length(description) + length(CAST(spec AS VARCHAR))),"
    " 0) FROM programs WHERE owner_id = :owner_id)"
)
#: Told the owner's queued jobs and stored bytes; raises to refuse the job.
Admission = Callable[[int, int], None]
_SIGNAL = "pg_notify(:channel, :payload)"
_NOTIFY = f"SELECT {_SIGNAL}"


class HotPath:
    """A job's frequent writes; each call is one transaction, committed before it returns."""

    def __init__(self, db: Database):
        self._sql = PlainSQL(db)
        self._interim_time = bind_processor(self._sql, INTERIMS.c.created_at)
        self._ended_time = bind_processor(self._sql, JOBS.c.ended_at)
        self._job_binds = {c.name: bind_processor(self._sql, c) for c in JOBS.columns}

    def submit(
        self, *, owner_name: str, admit: Admission, signal: Signal | None = None, **fields: Any
    ) -> StoredJob:
        """Queue a job (``fields`` as :func:`new_job_row` takes them) in one transaction, once
        ``admit`` let it in, told the owner's queued jobs and stored bytes as they are under the
        owner's row lock (so a cap holds on every replica). A taken id raises DuplicateError."""
        row = new_job_row(**fields)
        binds = self._job_binds
        stored = {name: binds[name](value) for name, value in row.items()}
        owner = {"owner_id": row["owner_id"], "queued": JobStatus.QUEUED.value}
        reads = [(_USAGE, owner)] if self._sql.sqlite else [(_LOCK_OWNER, owner), (_USAGE, owner)]
        insert = f"INSERT INTO jobs ({', '.join(row)}) VALUES ({', '.join(':' + n for n in row)})"

        def admitted(found: list[list[tuple]]) -> list[Statement]:
            queued, job_bytes, program_bytes = found[-1][0]
            admit(int(queued), int(job_bytes) + int(program_bytes))
            return self._with_signal([(insert, stored)], signal)

        try:
            self._sql.write_after(reads, admitted)
        except self._sql.integrity_error as exc:
            if self._exists(row["id"]):
                raise DuplicateError(f"a job with id {row['id']!r} already exists") from exc
            raise
        everything = dict.fromkeys((c.name for c in JOBS.columns), None)
        return StoredJob.from_row(SimpleNamespace(**everything | row, owner_name=owner_name))

    def add_interims(
        self, job_id: str, items: Sequence[tuple[int, str]], signal: Signal | None = None
    ) -> list[StoredInterim]:
        """Store ``(seq, data)`` results and count them on the job; ``signal`` goes with the
        commit (PostgreSQL). A stored ``seq`` raises DuplicateError, a missing job
        NotFoundError, and nothing is stored."""
        if not items:
            return []
        created_at = utcnow()
        stamp = self._interim_time(created_at)
        if self._sql.sqlite:
            rows = [{"job_id": job_id, "seq": s, "data": d, "created_at": stamp} for s, d in items]
            inserts: list[Statement] = [(_ADD_INTERIM, rows)]
        else:
            inserts = [
                _insert(job_id, stamp, items[start : start + INTERIMS_PER_INSERT])
                for start in range(0, len(items), INTERIMS_PER_INSERT)
            ]
        count = {
            "job_id": job_id,
            "last": max(seq for seq, _ in items),
            "size": sum(len(data) for _, data in items),
        }
        try:
            self._sql.write(self._with_signal([*inserts, (_COUNT_INTERIMS, count)], signal, fold=2))
        except self._sql.integrity_error as exc:
            if not self._exists(job_id):
                raise NotFoundError("job", job_id) from exc
            seqs = ", ".join(str(seq) for seq, _ in items)
            message = f"job {job_id!r} already has one of interim results {seqs}"
            raise DuplicateError(message) from exc
        return [StoredInterim(job_id, seq, data, created_at) for seq, data in items]

    def finish(
        self,
        job_id: str,
        status: JobStatus,
        *,
        reason: JobReason | None = None,
        error_message: str | None = None,
        result: str | None = None,
        signal: Signal | None = None,
    ) -> int | None:
        """End a queued or running job: its ``interim_count`` as this transaction left it (no
        interim is stored after the outcome); None (and no change, no signal) if it already
        ended or is missing: a terminal status never changes again."""
        status = JobStatus(status)
        if not status.is_terminal():
            raise ValueError(f"finish() needs a terminal status, not {status}")
        values = {
            "job_id": job_id,
            "status": status.value,
            "reason": JobReason(reason).value if reason is not None else None,
            "error_message": error_message,
            "result": result,
            "ended_at": self._ended_time(utcnow()),
            "size": len(result or "") + len(error_message or ""),
            "queued": JobStatus.QUEUED.value,
            "running": JobStatus.RUNNING.value,
        }
        if not self._sql.sqlite:  # the outcome, its count and its signal: one round trip
            ended = f"{_FINISH} RETURNING interim_count"
            if signal is not None:
                ended = f"WITH ended AS ({ended}) SELECT interim_count, {_SIGNAL} FROM ended"
                values |= {"channel": CHANNEL, "payload": signal.payload()}
            rows = self._sql.write_alone(ended, values)  # run again, it matches no row
            return int(rows[0][0]) if rows else None

        def ended_here(tx: Transaction) -> int | None:
            if tx.execute(_FINISH, values) == 0:
                return None
            return int(tx.fetch(_INTERIM_COUNT, {"job_id": job_id})[0][0])

        return self._sql.transaction(ended_here)

    def _with_signal(
        self, writes: list[Statement], signal: Signal | None, *, fold: int = 1
    ) -> list[Statement]:
        """``writes``, then ``signal``'s NOTIFY (PostgreSQL; SQLite has no other replicas).
        There the last ``fold`` writes and the NOTIFY go as one statement, a round trip each
        fewer: a data-modifying WITH runs to completion whether its rows are read or not. The
        folded writes' parameters share one namespace (a name they share has one value)."""
        if self._sql.sqlite:
            return writes
        kept, folded = writes[:-fold], writes[-fold:]
        tail, values = "SELECT 1", dict[str, Any]()
        if signal is not None:
            tail, values = _NOTIFY, {"channel": CHANNEL, "payload": signal.payload()}
        parts = ", ".join(f"w{n} AS ({sql})" for n, (sql, _) in enumerate(folded))
        for _, parameters in folded:
            values |= parameters
        return [*kept, (f"WITH {parts} {tail}", values)]

    def _exists(self, job_id: str) -> bool:
        return bool(self._sql.read([(_EXISTS, {"job_id": job_id})])[0])


def _insert(job_id: str, stamp: object, items: Sequence[tuple[int, str]]) -> Statement:
    """One INSERT of these results (at most ``INTERIMS_PER_INSERT``)."""
    sql = _INSERTS.get(len(items))
    if sql is None:
        rows = ", ".join(f"(:job_id, :seq{n}, :data{n}, :created_at)" for n in range(len(items)))
        sql = _INSERTS.setdefault(
            len(items), f"INSERT INTO interim_results (job_id, seq, data, created_at) VALUES {rows}"
        )
    values: dict[str, object] = {"job_id": job_id, "created_at": stamp}
    for n, (seq, data) in enumerate(items):
        values[f"seq{n}"] = seq
        values[f"data{n}"] = data
    return sql, values
