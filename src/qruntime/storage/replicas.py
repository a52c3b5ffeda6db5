"""The replica registry: one row per running ``qruntime serve``, kept fresh by its heartbeat."""

from __future__ import annotations

import builtins
from datetime import datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from qruntime.domain.job import JobStatus
from qruntime.storage.models import JOBS, REPLICAS
from qruntime.storage.records import StoredReplica


class ReplicaRepository:
    """Registers, beats and removes replicas inside the caller's session; never commits."""

    def __init__(self, session: Session):
        self._session = session

    def register(
        self,
        *,
        id: str,
        host: str,
        pid: int,
        url: str,
        executor: str,
        data_dir: str,
        now: datetime,
    ) -> StoredReplica:
        self._session.execute(
            insert(REPLICAS).values(
                id=id,
                host=host,
                pid=pid,
                url=url,
                executor=executor,
                data_dir=data_dir,
                started_at=now,
                heartbeat_at=now,
            )
        )
        replica = self.get(id)
        assert replica is not None
        return replica

    def beat(self, replica_id: str, now: datetime) -> bool:
        """Record a heartbeat; False when the row is gone (another replica found it dead)."""
        result = self._session.execute(
            update(REPLICAS).where(REPLICAS.c.id == replica_id).values(heartbeat_at=now)
        )
        return result.rowcount > 0

    def get(self, replica_id: str) -> StoredReplica | None:
        row = self._session.execute(select(REPLICAS).where(REPLICAS.c.id == replica_id)).first()
        return StoredReplica.from_row(row) if row is not None else None

    def list(self) -> builtins.list[StoredReplica]:
        """Every registered replica, oldest first, with how many RUNNING jobs each owns."""
        running = dict(
            self._session.execute(
                select(JOBS.c.owner_replica, func.count())
                .where(JOBS.c.status == JobStatus.RUNNING.value)
                .group_by(JOBS.c.owner_replica)
            ).all()
        )
        rows = self._session.execute(
            select(REPLICAS).order_by(REPLICAS.c.started_at, REPLICAS.c.id)
        )
        return [StoredReplica.from_row(row, running.get(row.id, 0)) for row in rows]

    def on_host(self, host: str, data_dir: str) -> builtins.list[StoredReplica]:
        """Replicas registered from this host and data directory (earlier runs of one server)."""
        rows = self._session.execute(
            select(REPLICAS).where(REPLICAS.c.host == host, REPLICAS.c.data_dir == data_dir)
        )
        return [StoredReplica.from_row(row) for row in rows]

    def remove(self, replica_id: str) -> bool:
        result = self._session.execute(delete(REPLICAS).where(REPLICAS.c.id == replica_id))
        return result.rowcount > 0

    def remove_silent(self, *, before: datetime) -> builtins.list[str]:
        """Drop replicas with no heartbeat since ``before`` that own no RUNNING job."""
        owning = select(JOBS.c.owner_replica).where(
            JOBS.c.status == JobStatus.RUNNING.value, JOBS.c.owner_replica.is_not(None)
        )
        rows = self._session.execute(
            delete(REPLICAS)
            .where(REPLICAS.c.heartbeat_at < before, REPLICAS.c.id.not_in(owning))
            .returning(REPLICAS.c.id)
        )
        return sorted(rows.scalars())
