"""``qruntime serve`` in this process, counting every SQL statement and transaction it runs.

The counts go to ``$QRUNTIME_BENCH_COUNTS`` (JSON) whenever the process gets SIGUSR1, so a
benchmark can read them before and after a phase (``statements.py``); ``threads`` names each
live thread by its native id (``throughput_cpu.py`` groups the server's CPU by pool).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections import Counter

from sqlalchemy import event
from sqlalchemy.engine import Engine

COUNTS: Counter[str] = Counter()
_LOCK = threading.Lock()
#: With QRUNTIME_BENCH_TRACE set, each statement's first line goes to that file too.
_TRACE_PATH = os.environ.get("QRUNTIME_BENCH_TRACE")
_TRACE = open(_TRACE_PATH, "a") if _TRACE_PATH else None  # noqa: SIM115


def _kind(statement: str) -> str:
    word = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "?"
    return word if word in ("SELECT", "INSERT", "UPDATE", "DELETE") else "other"


@event.listens_for(Engine, "before_cursor_execute")
def _statement(conn, cursor, statement, parameters, context, executemany):
    with _LOCK:
        COUNTS["statements"] += 1
        COUNTS[_kind(statement)] += 1
        if _TRACE is not None:
            line = " ".join(statement.split())[:110]
            _TRACE.write(f"{threading.current_thread().name[:12]:12} {line}\n")
            _TRACE.flush()


@event.listens_for(Engine, "commit")
def _commit(conn):
    with _LOCK:
        COUNTS["commits"] += 1
        if _TRACE is not None:
            _TRACE.write("COMMIT\n")


@event.listens_for(Engine, "rollback")
def _rollback(conn):
    with _LOCK:
        COUNTS["rollbacks"] += 1


def _count_plain_sql() -> None:
    """The job's hot path (storage/plain_sql.py) bypasses SQLAlchemy's events: count it too,
    each statement (PRAGMA and BEGIN included, as the events count them) and transaction."""
    from qruntime.storage.plain_sql import PlainSQL

    execute, end = PlainSQL._execute, PlainSQL._end

    def counted_execute(self, cursor, sql, parameters=()):
        with _LOCK:
            COUNTS["statements"] += 1
            COUNTS[_kind(sql)] += 1
            if _TRACE is not None:
                line = " ".join(sql.split())[:110]
                _TRACE.write(f"{threading.current_thread().name[:12]:12} {line}\n")
        return execute(self, cursor, sql, parameters)

    def counted_end(self, connection, *, commit):
        with _LOCK:
            COUNTS["commits" if commit else "rollbacks"] += 1
            if _TRACE is not None:
                _TRACE.write("COMMIT\n" if commit else "ROLLBACK\n")
        return end(self, connection, commit=commit)

    PlainSQL._execute = counted_execute
    PlainSQL._end = counted_end


def _count_loop() -> None:
    """With QRUNTIME_BENCH_LOOP set: every callback the event loop runs (a task's step, a
    timer, a transport's read) and every hand-off from another thread to the loop. It costs
    CPU per callback, so CPU figures of such a run are not comparable with others."""
    import asyncio.base_events
    import asyncio.events

    run = asyncio.events.Handle._run
    threadsafe = asyncio.base_events.BaseEventLoop.call_soon_threadsafe

    def counted_run(self):
        COUNTS["loop callbacks"] += 1  # the loop's thread only: no lock needed
        return run(self)

    def counted_threadsafe(self, callback, *args, context=None):
        with _LOCK:
            COUNTS["thread hand-offs"] += 1
        return threadsafe(self, callback, *args, context=context)

    asyncio.events.Handle._run = counted_run
    asyncio.base_events.BaseEventLoop.call_soon_threadsafe = counted_threadsafe


def _dump(_signum: int, _frame: object) -> None:
    with _LOCK:
        counts: dict[str, object] = dict(COUNTS)
    counts["threads"] = {str(t.native_id): t.name for t in threading.enumerate()}
    text = json.dumps(counts)
    path = os.environ["QRUNTIME_BENCH_COUNTS"]
    with open(path + ".tmp", "w") as out:
        out.write(text)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    signal.signal(signal.SIGUSR1, _dump)
    _count_plain_sql()
    if os.environ.get("QRUNTIME_BENCH_LOOP"):
        _count_loop()
    from qruntime.cli import app

    sys.argv = ["qruntime", *sys.argv[1:]]
    app()
