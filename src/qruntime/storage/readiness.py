"""Before a server starts: can it reach its database, and is the schema one it knows?

Each way a database is not ready (missing, login refused, unreachable, migrated by a newer
qruntime) becomes a few lines that name the database and what to do, not a driver traceback.
A missing PostgreSQL database is created when the role may create databases.
"""

from __future__ import annotations

import logging
import re

from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from qruntime.domain.errors import QRuntimeError
from qruntime.storage.database import alembic_config

log = logging.getLogger("qruntime.server")

#: Seconds to wait for a PostgreSQL server before calling it unreachable.
CONNECT_TIMEOUT_SECONDS = 10
#: What psycopg puts before the server's own words.
_PG_PREAMBLE = re.compile(
    r"^(connection failed: )?(connection to server at .*? failed: )?(FATAL:\s+)?"
)
#: Databases to connect to for ``CREATE DATABASE`` (they exist on every PostgreSQL server).
_MAINTENANCE_DATABASES = ("postgres", "template1")


class DatabaseNotReadyError(QRuntimeError):
    """The database cannot be used as it is; the message says why and what to do."""


def check_database_ready(url: str) -> None:
    """Connect once (creating a missing PostgreSQL database if allowed) and check the schema."""
    parsed = make_url(url)
    engine = create_engine(url, poolclass=NullPool, **_connect_args(parsed))
    try:
        try:
            connection = engine.connect()
        except DBAPIError as exc:
            if parsed.get_backend_name() != "postgresql" or not _missing_database(exc):
                raise DatabaseNotReadyError(_connection_problem(parsed, exc)) from None
            _create_database(parsed, exc)
            connection = engine.connect()
        with connection:
            revision = MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as exc:
        raise DatabaseNotReadyError(_connection_problem(parsed, exc)) from None
    finally:
        engine.dispose()
    _check_revision(parsed, revision)


def _check_revision(url: URL, revision: str | None) -> None:
    script = ScriptDirectory.from_config(alembic_config())
    known = {rev.revision for rev in script.walk_revisions()}
    if revision is None or revision in known:
        return
    raise DatabaseNotReadyError(
        f"{_describe(url)} has schema revision {revision!r}, which this qruntime does not "
        f"know (its newest is {script.get_current_head()!r}): a newer qruntime migrated it.\n"
        "  upgrade qruntime (pip install -U qruntime), or use another --database-url"
    )


def _create_database(url: URL, missing: DBAPIError) -> None:
    """``CREATE DATABASE`` through a maintenance database, or say how to create it by hand."""
    name = url.database or ""
    refusal = ""
    for maintenance in _MAINTENANCE_DATABASES:
        admin = create_engine(
            url.set(database=maintenance),
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            **_connect_args(url),
        )
        try:
            with admin.connect() as connection:
                quoted = connection.dialect.identifier_preparer.quote(name)
                connection.exec_driver_sql(f"CREATE DATABASE {quoted}")
            log.warning("created the PostgreSQL database %r (it did not exist)", name)
            return
        except DBAPIError as exc:
            refusal = _first_line(exc)
        finally:
            admin.dispose()
    raise DatabaseNotReadyError(
        f"{_describe(url)} does not exist, and role {url.username or 'default'!r} could not "
        f"create it ({refusal}).\n  create it with: {_createdb_command(url)}"
    ) from None


def _connection_problem(url: URL, exc: SQLAlchemyError) -> str:
    text = _first_line(exc)
    lowered = str(getattr(exc, "orig", exc)).lower()
    if "password authentication failed" in lowered or re.search(
        r'role "[^"]*" does not exist', lowered
    ):
        return (
            f"{_describe(url)} refused the login of role {url.username!r}: {text}\n"
            "  check the user and password in --database-url (or QRUNTIME_DATABASE_URL)"
        )
    if "no pg_hba.conf entry" in lowered or "authentication" in lowered:
        return f"{_describe(url)} refused the login: {text}\n  check pg_hba.conf and the role"
    if url.get_backend_name() == "postgresql" and (
        "connection refused" in lowered
        or "could not translate host name" in lowered
        or "timeout" in lowered
        or "no route to host" in lowered
    ):
        return (
            f"cannot reach PostgreSQL at {url.host or 'localhost'}:{url.port or 5432}: {text}\n"
            "  is it running, and is --database-url (or QRUNTIME_DATABASE_URL) right?"
        )
    return f"cannot open {_describe(url)}: {text}"


def _missing_database(exc: DBAPIError) -> bool:
    return re.search(r'database "[^"]*" does not exist', str(exc.orig)) is not None


def _first_line(exc: BaseException) -> str:
    """The driver's own words, without SQLAlchemy's wrapping, background link or SQL."""
    orig = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    text = lines[0] if lines else type(orig).__name__
    return _PG_PREAMBLE.sub("", text)


def _describe(url: URL) -> str:
    if url.get_backend_name() == "sqlite":
        return f"the SQLite database {url.database}"
    return (
        f"the PostgreSQL database {url.database!r} on {url.host or 'localhost'}:{url.port or 5432}"
    )


def _createdb_command(url: URL) -> str:
    parts = ["createdb"]
    if url.host:
        parts += ["-h", url.host]
    if url.port:
        parts += ["-p", str(url.port)]
    if url.username:
        parts += ["-U", url.username]
    parts.append(url.database or "")
    return " ".join(parts)


def _connect_args(url: URL) -> dict:
    if url.get_backend_name() == "postgresql":
        return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_SECONDS}}
    return {}
