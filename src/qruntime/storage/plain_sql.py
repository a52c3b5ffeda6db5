"""SQL sent on a pooled DB-API connection, for the few statements of every job's life.

Through an ORM session each such statement costs ~20x what the database itself spends
(statement building, cache keys, session and event machinery). Here the SQL is written once,
translated once per dialect's parameter style, and values go in and out through the schema's
own column types (``bind_processor`` / ``result_processor``), so rows read the same as the
repositories'. Each call is one transaction.
"""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg
from sqlalchemy import Column, Float

from qruntime.storage.database import Database

_NAMED = re.compile(r":([a-z_][a-z_0-9]*)")
#: A statement and its parameters; a list of parameter sets is an executemany.
Statement = tuple[str, Any]
T = TypeVar("T")


class PlainSQL:
    """Transactions on the plain DB-API connection of ``db``'s pool."""

    def __init__(self, db: Database):
        self._db = db
        self.dialect = db.engine.dialect
        self.sqlite = self.dialect.name == "sqlite"
        self.integrity_error: type[Exception] = self.dialect.dbapi.IntegrityError  # type: ignore[union-attr]
        self._texts: dict[str, tuple[str, list[str] | None]] = {}

    def write(self, statements: Sequence[Statement], *, then: Sequence[Statement] = ()) -> int:
        """Run ``statements``, then ``then`` only if the first changed a row; commit.

        The first statement's row count. Anything raised rolls everything back.
        """
        return self._run(statements, then=then, write=True)

    def write_after(
        self,
        reads: Sequence[Statement],
        decide: Callable[[list[list[tuple]]], Sequence[Statement]],
    ) -> None:
        """One writing transaction: ``reads``, then the statements ``decide`` makes of their
        rows (it may raise, which rolls back), then commit."""

        def run(cursor: Any) -> None:
            found = [self._fetch(cursor, sql, parameters) for sql, parameters in reads]
            for sql, parameters in decide(found):
                self._execute(cursor, sql, parameters)

        self._in_transaction(run, write=True)

    def transaction(self, work: Callable[[Transaction], T]) -> T:
        """One writing transaction in which ``work`` reads and writes as it goes; committed
        when it returns, rolled back if it raises."""
        return self._in_transaction(lambda cursor: work(Transaction(self, cursor)), write=True)

    def write_alone(self, sql: str, parameters: Any) -> list[tuple]:
        """One writing statement, its rows. On PostgreSQL it runs on its own (autocommit: one
        round trip, no BEGIN and COMMIT); a connection found dead under it runs it again on
        another, so only for a statement whose second run changes nothing (a conditional
        UPDATE). SQLite runs it in a transaction of its own."""
        if self.sqlite:
            return self.transaction(lambda tx: tx.fetch(sql, parameters))

        def alone(cursor: Any) -> list[tuple]:
            return self._fetch(cursor, sql, parameters)

        return self._in_transaction(alone, write=False)

    def read(self, statements: Sequence[Statement]) -> list[list[tuple]]:
        """Each statement's rows, read in order, each statement on its own (autocommit: it sees
        what was committed before it, as in a READ COMMITTED transaction; on SQLite a reader
        never takes the write lock)."""

        def run(cursor: Any) -> list[list[tuple]]:
            return [self._fetch(cursor, sql, parameters) for sql, parameters in statements]

        return self._in_transaction(run, write=False)  # committed, as a read-only session ends

    def _run(
        self, statements: Sequence[Statement], *, then: Sequence[Statement], write: bool
    ) -> int:
        def run(cursor: Any) -> int:
            changed = -1
            for sql, parameters in statements:
                self._execute(cursor, sql, parameters)
                if changed < 0:
                    changed = cursor.rowcount
            if changed > 0:
                for sql, parameters in then:
                    self._execute(cursor, sql, parameters)
            return changed

        return self._in_transaction(run, write=write)

    def _in_transaction(self, work: Callable[[Any], T], *, write: bool) -> T:
        """``work`` on a cursor of a pooled connection: committed when it returns, rolled back
        if it raises; the connection goes back to the pool either way.

        On PostgreSQL the checkout skips the pool's ping (a round trip per transaction): a
        connection that the first round trip finds dead, before anything was done, is dropped
        and the work runs again on a pinged checkout, which reconnects as any checkout does.
        """
        if self.sqlite:
            return self._on(self._db.raw_connection(), work, write=write, retry=False)
        try:
            return self._on(self._db.raw_connection(ping=False), work, write=write, retry=True)
        except _DeadConnection:
            return self._on(self._db.raw_connection(), work, write=write, retry=False)

    def _on(self, connection: Any, work: Callable[[Any], T], *, write: bool, retry: bool) -> T:
        try:
            cursor = self._cursor(connection)
            try:
                try:
                    self._begin(connection, cursor, write=write)
                except Exception as error:
                    self._if_dead(connection, error, retry=retry)
                    raise
                try:
                    done = work(cursor)
                    self._end(connection, commit=True)
                    return done
                except BaseException as error:
                    # A read did nothing, so it may run again; a write's BEGIN went through.
                    self._if_dead(connection, error, retry=retry and not write)
                    self._end(connection, commit=False)
                    raise
            finally:
                cursor.close()
        finally:
            self._release(connection)

    def _if_dead(self, connection: Any, error: BaseException, *, retry: bool) -> None:
        """A dead PostgreSQL connection leaves the pool; :class:`_DeadConnection` if the work
        may run again on another, else ``error`` as it is."""
        dbapi = connection.dbapi_connection
        if self.sqlite or dbapi is None or not dbapi.closed:
            return
        connection.invalidate(error)
        if retry:
            raise _DeadConnection() from error
        raise error

    def _begin(self, connection: Any, cursor: Any, *, write: bool) -> None:
        if self.sqlite:
            # As Database.session does (see _sqlite_begin): a writer takes the write lock at
            # once, so it queues on busy_timeout.
            if write:
                self._execute(cursor, "PRAGMA query_only = 0")  # a reader's may have set it
                self._execute(cursor, "BEGIN IMMEDIATE")
            return
        # Reads each statement on its own (under READ COMMITTED each statement of a transaction
        # sees what was committed before it anyway): no BEGIN and COMMIT round trips. A write
        # sends its BEGIN itself, the first round trip, where a dead connection shows.
        connection.dbapi_connection.autocommit = True
        if write:
            cursor.execute("BEGIN")

    def _release(self, connection: Any) -> None:
        """Back to the pool as it came (the ORM's sessions expect psycopg's own BEGIN)."""
        dbapi = connection.dbapi_connection
        if not self.sqlite and dbapi is not None and not dbapi.closed:
            dbapi.autocommit = False
        connection.close()

    def _end(self, connection: Any, *, commit: bool) -> None:
        """Every transaction ends here (benchmarks count them)."""
        if commit:
            connection.commit()
        else:
            connection.rollback()

    def _execute(self, cursor: Any, sql: str, parameters: Any = ()) -> None:
        """Every statement goes through here (benchmarks count them)."""
        many = isinstance(parameters, list)
        text, names = self._text(sql)
        if names is not None:  # PostgreSQL: the values in their placeholders' order
            parameters = (
                [_ordered(p, names) for p in parameters] if many else _ordered(parameters, names)
            )
        if many:
            cursor.executemany(text, parameters)
        else:
            cursor.execute(text, parameters)

    def _fetch(self, cursor: Any, sql: str, parameters: Any) -> list[tuple]:
        self._execute(cursor, sql, parameters)
        return cursor.fetchall()

    def _text(self, sql: str) -> tuple[str, list[str] | None]:
        """sqlite3 takes ``:name`` as it is. For psycopg each name becomes PostgreSQL's own
        ``$n`` (a raw cursor's): psycopg would parse ``%(name)s`` out of the text again at
        every call of a statement over 50 parameters or 4 KiB (an interim batch's insert)."""
        found = self._texts.get(sql)
        if found is None:
            if self.sqlite:
                found = (sql, None)
            else:
                names: dict[str, str] = {}

                def placeholder(match: re.Match[str]) -> str:
                    return names.setdefault(match.group(1), f"${len(names) + 1}")

                found = (_NAMED.sub(placeholder, sql), list(names))
            self._texts[sql] = found
        return found

    def _cursor(self, connection: Any) -> Any:
        return (
            connection.cursor() if self.sqlite else psycopg.RawCursor(connection.dbapi_connection)
        )


def _ordered(parameters: Any, names: list[str]) -> tuple | None:
    return tuple(parameters[name] for name in names) if names else None


class _DeadConnection(Exception):
    """The checkout's connection was found dead before anything was done on it."""


class Transaction:
    """The statements of one :meth:`PlainSQL.transaction`, on its cursor."""

    def __init__(self, sql: PlainSQL, cursor: Any):
        self.sql = sql
        self._cursor = cursor

    def fetch(self, sql: str, parameters: Any = ()) -> list[tuple]:
        return self.sql._fetch(self._cursor, sql, parameters)

    def execute(self, sql: str, parameters: Any = ()) -> int:
        """The number of rows the statement changed."""
        self.sql._execute(self._cursor, sql, parameters)
        return int(self._cursor.rowcount)


class RowReader:
    """Turns raw DB-API rows of known columns into named rows of Python values, as
    SQLAlchemy would return them (aware datetimes, decoded JSON, booleans)."""

    def __init__(self, sql: PlainSQL, columns: Sequence[tuple[str, Column[Any]]]):
        self.names = [name for name, _ in columns]
        self._row = namedtuple("Row", self.names)  # type: ignore[misc]
        dialect = sql.dialect
        self._processors = [
            # Both drivers return floats as floats; SQLAlchemy's Float wants the driver's type
            # code to decide that, which a plain cursor does not hand over.
            None
            if isinstance(column.type, Float)
            else column.type.dialect_impl(dialect).result_processor(dialect, None)
            for _, column in columns
        ]

    def rows(self, raw: Sequence[tuple]) -> list[Any]:
        processors, make = self._processors, self._row
        return [
            make(*(p(v) if p is not None else v for p, v in zip(processors, row, strict=True)))
            for row in raw
        ]


def bind_processor(sql: PlainSQL, column: Column[Any]) -> Callable[[Any], Any]:
    """How ``column``'s type stores a Python value on this dialect."""
    processor = column.type.dialect_impl(sql.dialect).bind_processor(sql.dialect)
    return processor or _same


def _same(value: Any) -> Any:
    return value
