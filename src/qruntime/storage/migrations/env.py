"""Alembic environment: runs on the connection ``Database.migrate`` hands over.

Developers may also point the ``alembic`` command at a URL (``sqlalchemy.url``) to write new
revisions; the connection then gets the same per-dialect setup as the server's.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from qruntime.storage.database import Database
from qruntime.storage.models import Base


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("qruntime migrations need a connection or sqlalchemy.url")
    database = Database(url)
    try:
        with database.engine.begin() as connection:
            run(connection)
    finally:
        database.dispose()


if context.is_offline_mode():
    raise RuntimeError("qruntime migrations run online only")
main()
