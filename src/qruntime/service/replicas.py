"""This server as one replica among several on a database: its registration and heartbeat.

A replica is one ``qruntime serve`` process with a fresh id each start. Its row says where it
runs (host, pid, URL, data directory, executor) and when it last beat. An earlier run from
the same host and data directory whose process is gone is this replica's previous life: its
jobs need not wait for their leases to run out (see :mod:`qruntime.service.leases`).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from qruntime.execution.pids import pid_alive
from qruntime.storage import Database
from qruntime.storage.clock import database_now
from qruntime.storage.records import StoredReplica
from qruntime.storage.replicas import ReplicaRepository

log = logging.getLogger("qruntime.replicas")


@dataclass(frozen=True)
class ReplicaIdentity:
    id: str
    host: str
    pid: int
    url: str
    executor: str
    data_dir: str

    @classmethod
    def of_this_process(cls, *, url: str, executor: str, data_dir: Path) -> ReplicaIdentity:
        return cls(
            id=f"r-{uuid.uuid4().hex[:12]}",
            host=socket.gethostname(),
            pid=os.getpid(),
            url=url,
            executor=executor,
            data_dir=str(Path(data_dir).resolve()),
        )


class ReplicaRegistry:
    """The replica's own row; all database work is synchronous (call it from a thread)."""

    def __init__(self, db: Database, identity: ReplicaIdentity, *, single_server: bool):
        """``single_server``: the database cannot be shared (SQLite), so every other row is a
        leftover of a server that is gone."""
        self._db = db
        self.identity = identity
        self._single_server = single_server

    def register(self) -> list[str]:
        """Add this replica; return the ids of earlier runs known to be dead (their rows go)."""
        me = self.identity
        with self._db.session() as session:
            replicas = ReplicaRepository(session)
            if self._single_server:
                earlier = [r for r in replicas.list() if r.id != me.id]
            else:
                earlier = [r for r in replicas.on_host(me.host, me.data_dir) if _is_gone(r)]
            for replica in earlier:
                replicas.remove(replica.id)
            self._insert(replicas, database_now(session))
        if earlier:
            log.info("earlier runs of this server are gone: %s", ", ".join(r.id for r in earlier))
        return [replica.id for replica in earlier]

    def beat(self, session: Session) -> datetime:
        """Record a heartbeat in ``session`` (re-registering if another replica removed the row
        as silent); returns the database's clock."""
        replicas = ReplicaRepository(session)
        now = database_now(session)
        if not replicas.beat(self.identity.id, now):
            log.warning(
                "replica %s had been removed as silent; registering again", self.identity.id
            )
            self._insert(replicas, now)
        return now

    def _insert(self, replicas: ReplicaRepository, now: datetime) -> None:
        me = self.identity
        replicas.register(
            id=me.id,
            host=me.host,
            pid=me.pid,
            url=me.url,
            executor=me.executor,
            data_dir=me.data_dir,
            now=now,
        )

    def deregister(self) -> None:
        with self._db.session() as session:
            ReplicaRepository(session).remove(self.identity.id)

    def list(self) -> list[StoredReplica]:
        with self._db.session(readonly=True) as session:
            return ReplicaRepository(session).list()


def _is_gone(replica: StoredReplica) -> bool:
    """An earlier run on this host whose process no longer exists.

    A live process with its pid may be a reused pid or the same server still running; either
    way it is not known to be dead, and its jobs wait for their leases. Our own pid recorded
    by another run (a restarted container is pid 1 again) proves nothing either.
    """
    return replica.pid != os.getpid() and not pid_alive(replica.pid)
