"""Persistence: SQLAlchemy models, repositories returning frozen records, Alembic migrations.

SQLite (WAL) by default, PostgreSQL by URL. Storage holds no business rules: callers decide
who may do what; repositories only refuse what would corrupt the data.
"""

from qruntime.storage.database import Database, open_database, sqlite_url
from qruntime.storage.jobs import JobRepository
from qruntime.storage.programs import ProgramRepository
from qruntime.storage.records import (
    StoredInterim,
    StoredJob,
    StoredLogLine,
    StoredProgram,
    StoredReplica,
    StoredToken,
    StoredUser,
)
from qruntime.storage.users import UserRepository

__all__ = [
    "Database",
    "JobRepository",
    "ProgramRepository",
    "StoredInterim",
    "StoredJob",
    "StoredLogLine",
    "StoredProgram",
    "StoredReplica",
    "StoredToken",
    "StoredUser",
    "UserRepository",
    "open_database",
    "sqlite_url",
]
