"""SQLite work done on the event loop itself, for the short steps on a job's path (its
outcome, a stream's first read), where a hand-off to a worker thread and back costs two waits
for the GIL and a core (~0.5 ms each under load).

It must never make the loop wait: the connection is its own, with no busy timeout (a write
lock held elsewhere raises at once, :func:`is_busy`, and the caller takes a thread as before)
and no automatic WAL checkpoint (its fsync stays with the pool's connections, in threads); a
reader never waits in WAL mode. A file database only: ``sqlite://`` in memory is one shared
connection. What a read decodes holds the GIL in a thread as much as here.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

from sqlalchemy import event

from qruntime.storage.database import Database
from qruntime.storage.hot_path import HotPath
from qruntime.storage.hot_reads import HotReads

_PER_DATABASE: dict[Database, LoopSQLite] = {}
_LOCK = threading.Lock()


class LoopSQLite:
    """The hot path's writes and reads on a connection for the event loop's thread alone."""

    def __init__(self, db: Database):
        self._db = Database(db.url)  # an engine and pool of its own, so pragmas stay its own
        event.listen(self._db.engine, "connect", _never_wait)
        self._db.raw_connection().close()  # connected now, not on the loop at its first use
        self.hot = HotPath(self._db)
        self.reads = HotReads(self._db)

    @classmethod
    def of(cls, db: Database) -> LoopSQLite | None:
        """The one for ``db``, a SQLite file; None elsewhere (PostgreSQL waits on the network)."""
        if db.dialect != "sqlite" or db.engine.url.database in (None, "", ":memory:"):
            return None
        with _LOCK:
            found = _PER_DATABASE.get(db)
            if found is None:
                found = _PER_DATABASE[db] = cls(db)
            return found


def is_busy(error: BaseException) -> bool:
    """Another connection holds the lock: nothing was done, a thread may do it instead."""
    return isinstance(error, sqlite3.OperationalError) and getattr(
        error, "sqlite_errorcode", None
    ) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _never_wait(dbapi_connection: Any, _record: Any) -> None:
    """After the usual pragmas (the engine's first ``connect`` listener)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout = 0")
        cursor.execute("PRAGMA wal_autocheckpoint = 0")
    finally:
        cursor.close()
