"""The reads of every job's life on the plain DB-API connection (:class:`PlainSQL`): its
program at submit, the job itself (each request about it, each wake of its stream) and the
interim results a stream sends. The rows are the repositories' (``JobRepository.get``,
``JobRepository.interims``, ``ProgramRepository.get``), read without an ORM session.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Column, Table

from qruntime.storage.database import Database
from qruntime.storage.models import INTERIMS, JOBS, PROGRAMS, USERS
from qruntime.storage.plain_sql import PlainSQL, RowReader
from qruntime.storage.records import StoredInterim, StoredJob, StoredProgram


def with_owner_name(table: Table) -> list[tuple[str, Column[Any]]]:
    """The table's columns and its owner's name, as ``select_jobs`` reads them."""
    return [(column.name, column) for column in table.columns] + [("owner_name", USERS.c.name)]


def _select_with_owner(table: Table) -> str:
    columns = ", ".join(f"{table.name}.{column.name}" for column in table.columns)
    return (
        f"SELECT {columns}, users.name AS owner_name FROM {table.name} "
        f"JOIN users ON users.id = {table.name}.owner_id WHERE {table.name}.id = :id"
    )


_JOB = _select_with_owner(JOBS)
_PROGRAM = _select_with_owner(PROGRAMS)
_INTERIMS = (
    f"SELECT {', '.join(column.name for column in INTERIMS.columns)} FROM interim_results "
    "WHERE job_id = :job_id AND seq > :after ORDER BY seq"
)


class HotReads:
    """Reads only; each call is one :meth:`PlainSQL.read`."""

    @classmethod
    def of(cls, db: Database) -> HotReads:
        """The one instance for ``db`` (its row readers are built once)."""
        reads = _PER_DATABASE.get(db)
        if reads is None:
            reads = _PER_DATABASE.setdefault(db, cls(db))
        return reads

    def __init__(self, db: Database):
        self._sql = PlainSQL(db)
        self._jobs = RowReader(self._sql, with_owner_name(JOBS))
        self._programs = RowReader(self._sql, with_owner_name(PROGRAMS))
        self._interims = RowReader(self._sql, [(c.name, c) for c in INTERIMS.columns])

    def job(self, job_id: str) -> StoredJob | None:
        (rows,) = self._sql.read([(_JOB, {"id": job_id})])
        return self._job(rows)

    def job_and_few_interims(
        self, job_id: str, *, after: int, at_most: int
    ) -> tuple[StoredJob | None, list[StoredInterim] | None]:
        """As :meth:`job_and_interims` (the job read first), but the interims only if the job
        counted at most ``at_most`` after ``after``; None for them otherwise (none read)."""
        job = self.job(job_id)
        if job is None:
            return None, []
        if job.interim_count - after > at_most:
            return job, None
        (rows,) = self._sql.read([(_INTERIMS, {"job_id": job_id, "after": after})])
        return job, [StoredInterim.from_row(row) for row in self._interims.rows(rows)]

    def job_and_interims(
        self, job_id: str, *, after: int = 0
    ) -> tuple[StoredJob | None, list[StoredInterim]]:
        """The job, then its interim results with ``seq > after`` in order: read in this order,
        a job read as finished has every interim result read (they commit before its end)."""
        jobs, interims = self._sql.read(
            [(_JOB, {"id": job_id}), (_INTERIMS, {"job_id": job_id, "after": after})]
        )
        job = self._job(jobs)
        if job is None:
            return None, []
        return job, [StoredInterim.from_row(row) for row in self._interims.rows(interims)]

    def program(self, program_id: str) -> StoredProgram | None:
        (rows,) = self._sql.read([(_PROGRAM, {"id": program_id})])
        return StoredProgram.from_row(self._programs.rows(rows)[0]) if rows else None

    def _job(self, rows: list[tuple]) -> StoredJob | None:
        return StoredJob.from_row(self._jobs.rows(rows)[0]) if rows else None


_PER_DATABASE: WeakKeyDictionary[Database, HotReads] = WeakKeyDictionary()
