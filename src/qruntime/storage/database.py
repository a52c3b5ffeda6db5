"""One place that knows how to connect: engine setup per dialect, sessions and migrations."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, create_engine, event, exc, text
from sqlalchemy.engine import Dialect, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import PoolProxiedConnection, StaticPool

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: Key of the pg advisory lock that serialises concurrent ``migrate()`` calls (any constant).
_MIGRATE_LOCK_KEY = 0x71_72_75_6E  # "qrun"

#: Execution option that marks a session's connection as read-only (see ``Database.session``).
_READONLY = "qruntime_readonly"
#: Set while a checkout skips the liveness ping (``Database.raw_connection(ping=False)``).
_UNPINGED = threading.local()

SQLITE_PRAGMAS = (
    # busy_timeout first: switching to WAL itself may have to wait for another connection.
    "PRAGMA busy_timeout = 10000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = NORMAL",
)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


class Database:
    """The engine plus a session factory; creating one does no I/O.

    ``sqlite://`` (in memory) shares one connection: fine for single-threaded tests only.
    """

    def __init__(self, url: str, *, echo: bool = False):
        self.url = url
        parsed = make_url(url)
        self.dialect: str = parsed.get_backend_name()
        if self.dialect == "sqlite":
            self.engine = _sqlite_engine(
                url, echo=echo, memory=parsed.database in (None, "", ":memory:")
            )
        else:
            self.engine = create_engine(url, echo=echo)
            event.listen(self.engine, "begin", _pg_begin)
            event.listen(self.engine, "checkout", _pinger(self.engine.dialect))
        self._sessions = sessionmaker(bind=self.engine, expire_on_commit=False)
        self._readonly_sessions = sessionmaker(
            bind=self.engine.execution_options(**{_READONLY: True}), expire_on_commit=False
        )

    def __repr__(self) -> str:
        return f"Database({self.engine.url!r})"

    @contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises.

        ``readonly=True`` refuses writes and, on SQLite, does not take the write lock, so
        long or frequent readers never hold up writers.
        """
        factory = self._readonly_sessions if readonly else self._sessions
        with factory() as session, session.begin():
            yield session

    def raw_connection(self, *, ping: bool = True) -> PoolProxiedConnection:
        """A pooled DB-API connection. On PostgreSQL a checkout first makes sure it is alive (a
        round trip, as ``pool_pre_ping`` does); ``ping=False`` skips that, for a caller that
        finds a dead connection by its own first round trip and tries again."""
        if ping:
            return self.engine.raw_connection()
        _UNPINGED.active = True
        try:
            return self.engine.raw_connection()
        finally:
            _UNPINGED.active = False

    def migrate(self) -> None:
        """Upgrade the schema to the newest revision; a no-op when it is already there."""
        with self.engine.begin() as connection:
            if self.dialect == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATE_LOCK_KEY}
                )
            command.upgrade(alembic_config(connection), "head")

    @contextmanager
    def exclusive(self, key: int) -> Iterator[None]:
        """Hold a cluster-wide lock named by ``key`` for the block (a PostgreSQL advisory lock
        on a connection of its own): replicas doing the same work take turns. SQLite has one
        server, so nothing to wait for."""
        if self.dialect != "postgresql":
            yield
            return
        with self.engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                connection.commit()

    def ping(self) -> None:
        """One round trip to the database; raises SQLAlchemyError when it cannot be reached."""
        with self.engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(url: str) -> Database:
    """A migrated, ready-to-use database."""
    database = Database(url)
    database.migrate()
    return database


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """Alembic settings built in code: the scripts ship inside the package, no alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _sqlite_engine(url: str, *, echo: bool, memory: bool) -> Engine:
    options: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
    if memory:
        options["poolclass"] = StaticPool  # one shared connection, or each thread sees its own db
    engine = create_engine(url, echo=echo, **options)
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take BEGIN away from the sqlite3 module so that _sqlite_begin decides how to start.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    """Writers start with the write lock (BEGIN IMMEDIATE), so they queue on busy_timeout.

    A deferred transaction that reads and then writes fails at once with "database is
    locked" when another writer committed in between; IMMEDIATE never reaches that state.
    """
    readonly = bool(connection.get_execution_options().get(_READONLY))
    connection.exec_driver_sql(f"PRAGMA query_only = {int(readonly)}")
    connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def _pinger(dialect: Dialect) -> Any:
    """``pool_pre_ping`` as a checkout event, so that a checkout may skip it: a dead
    connection invalidates the pool's older ones, and the checkout reconnects."""

    def ping(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if getattr(_UNPINGED, "active", False):
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                raise exc.InvalidatePoolError() from error
            raise

    return ping


def _pg_begin(connection: Connection) -> None:
    if connection.get_execution_options().get(_READONLY):
        connection.exec_driver_sql("SET TRANSACTION READ ONLY")
