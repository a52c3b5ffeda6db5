"""Cross-replica wake-ups over PostgreSQL ``LISTEN/NOTIFY``; the tables stay the record.

A signal only says "look again": which job changed and how, never the data itself. It is
sent inside the transaction that made the change, so PostgreSQL delivers it exactly when the
change is committed (and never for a rolled-back one). SQLite has one server: no signals.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum

import psycopg
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

log = logging.getLogger("qruntime.signals")

#: The one channel every replica of a database listens on.
CHANNEL = "qruntime_jobs"
#: The ``detail`` of a CHANGED signal for a deleted job.
DELETED = "DELETED"
#: How often a quiet listener checks that its connection is still alive (seconds).
LISTEN_CHECK_SECONDS = 10.0


class SignalKind(StrEnum):
    #: A job was queued: dispatchers with free slots claim.
    QUEUED = "q"
    #: A job's row changed (status, result, deletion); ``detail`` is the new status.
    CHANGED = "s"
    #: Interim results were stored; ``detail`` is the last sequence number.
    INTERIMS = "i"
    #: Someone asked to cancel a running job; ``detail`` is the replica that owns it.
    CANCEL = "c"


@dataclass(frozen=True)
class Signal:
    kind: SignalKind
    job_id: str
    #: The replica (or agent) that sent it; a replica ignores its own.
    sender: str
    detail: str = ""

    def payload(self) -> str:
        return f"{self.kind.value}:{self.sender}:{self.job_id}:{self.detail}"

    @staticmethod
    def around_job_id(kind: SignalKind, sender: str, detail: str = "") -> tuple[str, str]:
        """The payload's text before and after the job id, for SQL that sends one such signal
        per row it changes (``head || id || tail``)."""
        return f"{kind.value}:{sender}:", f":{detail}"

    @classmethod
    def parse(cls, payload: str) -> Signal | None:
        """None for anything this version does not understand (a newer replica's signal)."""
        parts = payload.split(":", 3)
        if len(parts) != 4:
            return None
        kind, sender, job_id, detail = parts
        try:
            return cls(SignalKind(kind), job_id, sender, detail)
        except ValueError:
            return None


def send_signal(session: Session, signal: Signal) -> None:
    """Queue ``signal`` for delivery when the session's transaction commits (PostgreSQL)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(select(func.pg_notify(CHANNEL, signal.payload())))


class Signals:
    """Sends one replica's (or agent's) signals, each inside the caller's transaction."""

    def __init__(self, sender: str):
        self.sender = sender

    def queued(self, session: Session, job_id: str) -> None:
        send_signal(session, Signal(SignalKind.QUEUED, job_id, self.sender))

    def changed(self, session: Session, job_id: str, status: str) -> None:
        send_signal(session, Signal(SignalKind.CHANGED, job_id, self.sender, status))

    def interims(self, session: Session, job_id: str, last_seq: int) -> None:
        send_signal(session, Signal(SignalKind.INTERIMS, job_id, self.sender, str(last_seq)))

    def cancel(self, session: Session, job_id: str, owner_replica: str) -> None:
        send_signal(session, Signal(SignalKind.CANCEL, job_id, self.sender, owner_replica))


class SignalListener:
    """One dedicated connection that LISTENs; :meth:`signals` raises when it is lost."""

    def __init__(self, url: str, *, name: str = "qruntime-listener"):
        """``name`` is the connection's ``application_name`` in ``pg_stat_activity``."""
        # psycopg takes the libpq form of the SQLAlchemy URL (no "+psycopg" driver suffix).
        self._conninfo = (
            make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        )
        self._name = name
        self._connection: psycopg.AsyncConnection | None = None

    async def connect(self) -> None:
        """Connect and LISTEN; signals committed from now on will be received."""
        await self.aclose()
        self._connection = await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True, application_name=self._name
        )
        await self._connection.execute(f"LISTEN {CHANNEL}")

    async def signals(self) -> AsyncIterator[Signal]:
        """Every signal from now on; raises ``psycopg.OperationalError`` if the link drops."""
        connection = self._connection
        if connection is None:
            raise RuntimeError("connect() first")
        while True:
            received = False
            async for notify in connection.notifies(timeout=LISTEN_CHECK_SECONDS):
                received = True
                signal = Signal.parse(notify.payload)
                if signal is None:
                    log.debug("ignored an unknown signal %r", notify.payload)
                    continue
                yield signal
            if not received:  # quiet for a while: make sure the link is still there
                await connection.execute("SELECT 1")

    async def aclose(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.close()
