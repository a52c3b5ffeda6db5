"""Secrets shared by every replica of a database, made by whichever replica needs one first."""

from __future__ import annotations

import secrets

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from qruntime.storage.models import SERVER_SECRETS, utcnow


def shared_secret(session: Session, name: str) -> bytes:
    """The secret ``name`` (32 random bytes), created now if no replica has made it yet."""
    found = session.execute(
        select(SERVER_SECRETS.c.value).where(SERVER_SECRETS.c.name == name)
    ).scalar_one_or_none()
    if found is None:
        try:
            with session.begin_nested():
                session.execute(
                    insert(SERVER_SECRETS).values(
                        name=name, value=secrets.token_hex(32), created_at=utcnow()
                    )
                )
        except IntegrityError:  # another replica made it at the same moment: use theirs
            pass
        found = session.execute(
            select(SERVER_SECRETS.c.value).where(SERVER_SECRETS.c.name == name)
        ).scalar_one()
    return bytes.fromhex(found)
