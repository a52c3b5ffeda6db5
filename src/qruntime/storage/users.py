"""Users and their bearer tokens (stored as hashes only)."""

from __future__ import annotations

import builtins
import secrets

from sqlalchemy import ColumnElement, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from qruntime.domain.errors import DuplicateError
from qruntime.storage.models import TOKENS, USERS, utcnow
from qruntime.storage.records import StoredToken, StoredUser


def new_token_id() -> str:
    return "tok_" + secrets.token_hex(6)


class UserRepository:
    """Reads and writes users and tokens inside the caller's session; never commits."""

    def __init__(self, session: Session):
        self._session = session

    def create(self, name: str, role: str) -> StoredUser:
        now = utcnow()
        try:
            with self._session.begin_nested():
                user_id = self._session.execute(
                    insert(USERS).values(name=name, role=role, created_at=now).returning(USERS.c.id)
                ).scalar_one()
        except IntegrityError as exc:
            if self.get_by_name(name) is not None:
                raise DuplicateError(f"user {name!r} already exists") from exc
            raise
        return StoredUser(id=user_id, name=name, role=role, created_at=now)

    def get(self, user_id: int) -> StoredUser | None:
        return self._one(USERS.c.id == user_id)

    def get_by_name(self, name: str) -> StoredUser | None:
        return self._one(USERS.c.name == name)

    def list(self) -> builtins.list[StoredUser]:
        rows = self._session.execute(select(USERS).order_by(USERS.c.name))
        return [StoredUser.from_row(row) for row in rows]

    def count(self) -> int:
        return self._session.execute(select(func.count()).select_from(USERS)).scalar_one()

    def add_token(self, user_id: int, token_hash: str) -> StoredToken:
        token = StoredToken(
            id=new_token_id(), user_id=user_id, created_at=utcnow(), revoked_at=None
        )
        self._session.execute(
            insert(TOKENS).values(
                id=token.id, user_id=user_id, token_hash=token_hash, created_at=token.created_at
            )
        )
        return token

    def user_for_token(self, token_hash: str) -> StoredUser | None:
        """The token's user, or None when the token is unknown or revoked."""
        row = self._session.execute(
            select(USERS)
            .join(TOKENS, TOKENS.c.user_id == USERS.c.id)
            .where(TOKENS.c.token_hash == token_hash, TOKENS.c.revoked_at.is_(None))
        ).first()
        return StoredUser.from_row(row) if row is not None else None

    def token_id_for(self, token_hash: str) -> tuple[StoredUser, str] | None:
        """The live token's user and token id (what a short-lived access token names)."""
        row = self._session.execute(
            select(USERS, TOKENS.c.id.label("token_id"))
            .join(TOKENS, TOKENS.c.user_id == USERS.c.id)
            .where(TOKENS.c.token_hash == token_hash, TOKENS.c.revoked_at.is_(None))
        ).first()
        return (StoredUser.from_row(row), row.token_id) if row is not None else None

    def user_for_token_id(self, user_id: int, token_id: str) -> StoredUser | None:
        """The user of a live token given by id (an access token's origin must still live)."""
        row = self._session.execute(
            select(USERS)
            .join(TOKENS, TOKENS.c.user_id == USERS.c.id)
            .where(TOKENS.c.id == token_id, USERS.c.id == user_id, TOKENS.c.revoked_at.is_(None))
        ).first()
        return StoredUser.from_row(row) if row is not None else None

    def tokens_of(self, user_id: int) -> builtins.list[StoredToken]:
        rows = self._session.execute(
            select(TOKENS)
            .where(TOKENS.c.user_id == user_id)
            .order_by(TOKENS.c.created_at, TOKENS.c.id)
        )
        return [StoredToken.from_row(row) for row in rows]

    def revoke_token(self, token_id: str) -> bool:
        """False when the token is unknown or already revoked."""
        return self._revoke(TOKENS.c.id == token_id)

    def revoke_token_by_hash(self, token_hash: str) -> bool:
        return self._revoke(TOKENS.c.token_hash == token_hash)

    def _one(self, where: ColumnElement[bool]) -> StoredUser | None:
        row = self._session.execute(select(USERS).where(where)).first()
        return StoredUser.from_row(row) if row is not None else None

    def _revoke(self, which: ColumnElement[bool]) -> bool:
        result = self._session.execute(
            update(TOKENS).where(which, TOKENS.c.revoked_at.is_(None)).values(revoked_at=utcnow())
        )
        return result.rowcount > 0
