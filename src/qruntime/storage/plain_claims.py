"""The claim of queued jobs (and the dispatcher's scan of the queue) on the plain DB-API
connection: the statements :class:`~qruntime.storage.job_claims.JobClaims` sends for a claim,
written once per dialect, with the same conditions, locks (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL) and effects. Jobs of sessions and batches, and held (Ray) jobs, stay on
``JobClaims``: the service layer falls back to it when the queue's heads include them.

Time is the database's, as :func:`~qruntime.storage.clock.database_now` reads it: on
PostgreSQL ``now()`` (the start of the transaction) in the SQL itself, on SQLite this host's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from qruntime.domain.job import JobStatus
from qruntime.domain.sessions import SessionMode
from qruntime.storage.database import Database
from qruntime.storage.hot_reads import with_owner_name
from qruntime.storage.job_claims import QueuedJob
from qruntime.storage.models import JOBS, utcnow
from qruntime.storage.plain_sql import PlainSQL, RowReader, Transaction, bind_processor
from qruntime.storage.records import StoredJob
from qruntime.storage.signals import CHANNEL, Signal, SignalKind

T = TypeVar("T")

#: Not held by a live replica (``_claimable``).
_CLAIMABLE = "(owner_replica IS NULL OR lease_expires_at IS NULL OR lease_expires_at < {now})"
#: A session's job may start once none of it runs and every earlier one ended; a batch's any time.
_STARTABLE_IN_GROUPS = (
    "SELECT g.id FROM (SELECT jobs.id AS id, jobs.session_id AS session_id, "
    "job_groups.mode AS mode, row_number() OVER (PARTITION BY jobs.session_id "
    "ORDER BY jobs.created_at, jobs.id) AS turn FROM jobs "
    "JOIN job_groups ON job_groups.id = jobs.session_id "
    "WHERE jobs.status = :queued AND jobs.session_id IS NOT NULL) AS g "
    "WHERE g.mode != :session_mode OR (g.turn = 1 AND NOT EXISTS (SELECT 1 FROM jobs AS running "
    "WHERE running.session_id = g.session_id AND running.status = :running))"
)
#: Every queued job, claimable or not (of a session waiting its turn, held by a replica), up
#: to ``:bound``: a claim that starts that many leaves none (:attr:`ClaimTransaction.queued`).
_QUEUED_UP_TO = (
    "(SELECT count(*) FROM (SELECT 1 FROM jobs WHERE status = :queued LIMIT :bound) AS q)"
)
_HEADS = (
    f"SELECT id, owner_id, resources, session_id, {_QUEUED_UP_TO} FROM (SELECT id, owner_id, "
    "created_at, resources, session_id, row_number() OVER (PARTITION BY owner_id "
    "ORDER BY created_at, id) AS rank FROM jobs WHERE status = :queued "
    f"AND (session_id IS NULL OR id IN ({_STARTABLE_IN_GROUPS})) AND {_CLAIMABLE}) AS ranked "
    "WHERE rank <= :per_owner ORDER BY created_at, id"
)
_RUNNING_PER_OWNER = (
    "SELECT owner_id, count(*) FROM jobs WHERE (status = :running OR (status = :queued "
    "AND owner_replica IS NOT NULL AND lease_expires_at >= {now})) AND owner_id IN ({owners}) "
    "GROUP BY owner_id"
)
_LOCK_QUEUED = (
    "SELECT id, owner_id, resources, session_id FROM jobs WHERE id IN ({ids}) "
    f"AND status = :queued AND {_CLAIMABLE} ORDER BY created_at, id"
)
_LOCK_OWNERS = "SELECT id FROM users WHERE id IN ({owners}) ORDER BY id FOR UPDATE"
_START = (
    "UPDATE jobs SET status = :running, started_at = :started_at, owner_replica = :replica, "
    "lease_expires_at = {until} WHERE id IN ({ids}) AND status = :queued RETURNING id"
)
#: PostgreSQL: the start, the started jobs' rows and each one's signal in one round trip.
_START_AND_READ = (
    "WITH started AS ({start}) SELECT {columns}, users.name AS owner_name{signal} FROM started "
    "JOIN users ON users.id = started.owner_id ORDER BY started.created_at, started.id"
)
_SIGNAL_EACH = ", pg_notify(:channel, :head || started.id || :tail)"


class PlainClaims:
    """Claims for one database; :meth:`transaction` runs one claim."""

    def __init__(self, db: Database):
        self._sql = PlainSQL(db)
        self.jobs = RowReader(self._sql, with_owner_name(JOBS))
        self.lease_time = bind_processor(self._sql, JOBS.c.lease_expires_at)
        self.start_time = bind_processor(self._sql, JOBS.c.started_at)
        columns = ", ".join(f"jobs.{column.name}" for column in JOBS.columns)
        self.select_jobs = (
            f"SELECT {columns}, users.name AS owner_name FROM jobs "
            "JOIN users ON users.id = jobs.owner_id WHERE jobs.id IN ({ids}) "
            "ORDER BY jobs.created_at, jobs.id"
        )
        self.started_columns = ", ".join(f"started.{column.name}" for column in JOBS.columns)

    def transaction(self, work: Callable[[ClaimTransaction], T]) -> T:
        """Run ``work`` in one transaction, committed when it returns."""
        return self._sql.transaction(lambda tx: work(ClaimTransaction(self, tx)))


class ClaimTransaction:
    """What a claim asks of the database, as :class:`JobClaims` offers it, inside one
    transaction. Their ``now`` is ignored: the transaction keeps its own time."""

    def __init__(self, claims: PlainClaims, tx: Transaction):
        self._claims = claims
        self._tx = tx
        self._sqlite = tx.sql.sqlite
        self._now = utcnow() if self._sqlite else None
        #: Jobs QUEUED as the heads were read (up to their ``per_owner`` + 1); None if no head.
        self.queued: int | None = None

    def current_time(self) -> datetime:
        """As :func:`database_now` in this transaction."""
        if self._now is None:
            (row,) = self._tx.fetch("SELECT now()")
            self._now = row[0]
        return self._now

    def queued_heads(self, per_owner: int, *, now: datetime | None = None) -> list[QueuedJob]:
        rows = self._tx.fetch(
            self._timed(_HEADS),
            self._values(queued=True, running=True, session_mode=SessionMode.SESSION.value)
            | {"per_owner": per_owner, "bound": per_owner + 1},
        )
        self.queued = int(rows[0][4]) if rows else None
        return [QueuedJob(*row[:4]) for row in rows]

    def running_per_owner(
        self, owner_ids: Collection[int], *, now: datetime | None = None
    ) -> Counter[int]:
        if not owner_ids:
            return Counter()
        owners, values = _listed("owner", sorted(owner_ids))
        sql = self._timed(_RUNNING_PER_OWNER).replace("{owners}", owners)
        rows = self._tx.fetch(sql, self._values(queued=True, running=True) | values)
        return Counter({owner: int(count) for owner, count in rows})

    def lock_queued(
        self, job_ids: Collection[str], *, now: datetime | None = None
    ) -> list[QueuedJob]:
        ids, values = _listed("id", list(job_ids))
        sql = self._timed(_LOCK_QUEUED).replace("{ids}", ids)
        if not self._sqlite:  # skipped, not waited for: another replica is claiming them
            sql += " FOR UPDATE SKIP LOCKED"
        rows = self._tx.fetch(sql, self._values(queued=True) | values)
        return [QueuedJob(*row) for row in rows]

    def lock_owners(self, owner_ids: Collection[int]) -> None:
        """As ``lock_owners``: the users' rows, in id order (PostgreSQL; SQLite has one writer)."""
        if owner_ids and not self._sqlite:
            owners, values = _listed("owner", sorted(owner_ids))
            self._tx.fetch(_LOCK_OWNERS.replace("{owners}", owners), values)

    def start(
        self,
        job_ids: Sequence[str],
        *,
        replica_id: str,
        lease_seconds: float,
        signal_sender: str | None = None,
    ) -> list[StoredJob]:
        """Mark queued jobs RUNNING on ``replica_id`` with a lease from now; those no longer
        queued are left out. With ``signal_sender`` each started job's RUNNING signal goes
        with the commit (PostgreSQL, in the same statement; SQLite has no other replicas)."""
        if not job_ids:
            return []
        ids, values = _listed("id", list(job_ids))
        if self._sqlite:
            until_time = self.current_time() + timedelta(seconds=lease_seconds)
            until, lease = ":until", {"until": self._claims.lease_time(until_time)}
        else:
            until, lease = "now() + make_interval(secs => :lease)", {"lease": lease_seconds}
        sql = _START.replace("{until}", until).replace("{ids}", ids)
        values |= self._values(queued=True, running=True) | lease
        values |= {"replica": replica_id, "started_at": self._claims.start_time(utcnow())}
        if not self._sqlite:
            return self._start_and_read(sql, values, signal_sender)
        started = [row[0] for row in self._tx.fetch(sql, values)]
        if not started:
            return []
        ids, values = _listed("id", started)
        rows = self._tx.fetch(self._claims.select_jobs.replace("{ids}", ids), values)
        return [StoredJob.from_row(row) for row in self._claims.jobs.rows(rows)]

    def _start_and_read(
        self, start: str, values: dict[str, object], signal_sender: str | None
    ) -> list[StoredJob]:
        """PostgreSQL: the start, the started rows and their signals as one statement (a
        data-modifying WITH), where they were three round trips."""
        signal = ""
        if signal_sender is not None:
            signal = _SIGNAL_EACH
            head, tail = Signal.around_job_id(
                SignalKind.CHANGED, signal_sender, JobStatus.RUNNING.value
            )
            values |= {"channel": CHANNEL, "head": head, "tail": tail}
        every_column = start.removesuffix("RETURNING id") + "RETURNING *"
        sql = _START_AND_READ.format(
            start=every_column, columns=self._claims.started_columns, signal=signal
        )
        rows = self._tx.fetch(sql, values)
        if signal:
            rows = [row[:-1] for row in rows]
        return [StoredJob.from_row(row) for row in self._claims.jobs.rows(rows)]

    def _timed(self, sql: str) -> str:
        return sql.replace("{now}", ":now" if self._sqlite else "now()")

    def _values(self, *, queued: bool = False, running: bool = False, **more: str) -> dict:
        values: dict[str, object] = dict(more)
        if queued:
            values["queued"] = JobStatus.QUEUED.value
        if running:
            values["running"] = JobStatus.RUNNING.value
        if self._sqlite:
            values["now"] = self._claims.lease_time(self.current_time())
        return values


def _listed(prefix: str, items: Sequence[object]) -> tuple[str, dict[str, object]]:
    """``:prefix0, :prefix1, ...`` and their values, for an ``IN (...)``."""
    names = [f"{prefix}{i}" for i in range(len(items))]
    return ", ".join(f":{name}" for name in names), dict(zip(names, items, strict=True))
