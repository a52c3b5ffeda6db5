"""Use cases for users and tokens: authentication and the admin's user management."""

from __future__ import annotations

from dataclasses import dataclass

from qruntime.domain.errors import (
    ForbiddenError,
    NotAuthenticatedError,
    NotFoundError,
    Problem,
    ValidationFailed,
)
from qruntime.domain.text import repair_text
from qruntime.domain.users import Role, check_user_name, parse_role
from qruntime.service.auth_failures import FailedAuthLimiter
from qruntime.service.principal import Principal
from qruntime.service.tokens import hash_token, new_token
from qruntime.storage import Database, StoredToken, StoredUser, UserRepository

#: Failed authentications per client address and minute (QRUNTIME_MAX_FAILED_AUTHS_PER_MINUTE).
DEFAULT_MAX_FAILED_AUTHS = 30


@dataclass(frozen=True)
class IssuedToken:
    """A token as shown once to the admin who asked for it; only its hash is kept."""

    user: StoredUser
    token: str
    token_id: str


class UserService:
    def __init__(self, db: Database, *, failed_auths: FailedAuthLimiter | None = None):
        self._db = db
        self.failed_auths = failed_auths or FailedAuthLimiter(DEFAULT_MAX_FAILED_AUTHS)

    def authenticate(self, token: str | None, *, source: str | None = None) -> Principal:
        """The token's user; ``source`` (the client's address) counts towards the limit on
        failed authentications, and a source over it is refused whatever it sends."""
        if not token:
            raise NotAuthenticatedError(
                "missing bearer token: send 'Authorization: Bearer <token>'"
            )
        self.failed_auths.check(source)
        with self._db.session(readonly=True) as session:
            user = UserRepository(session).user_for_token(hash_token(repair_text(token)))
        if user is None:
            self.failed_auths.record_failure(source)
            raise NotAuthenticatedError("unknown or revoked token")
        return Principal(user.id, user.name, Role(user.role))

    def create_user(
        self, caller: Principal | None, name: str, role: object = Role.USER
    ) -> IssuedToken:
        """Create a user with a first token; ``caller`` None is the server's own bootstrap."""
        if caller is not None:
            _require_admin(caller)
        name = check_user_name(name)
        parsed = parse_role(role)
        token = new_token()
        with self._db.session() as session:
            users = UserRepository(session)
            user = users.create(name, parsed.value)
            stored = users.add_token(user.id, hash_token(token))
        return IssuedToken(user, token, stored.id)

    def issue_token(self, caller: Principal, name: str) -> IssuedToken:
        _require_admin(caller)
        token = new_token()
        with self._db.session() as session:
            users = UserRepository(session)
            user = _user(users, name)
            stored = users.add_token(user.id, hash_token(token))
        return IssuedToken(user, token, stored.id)

    def revoke_token(
        self, caller: Principal, *, token_id: str | None = None, token: str | None = None
    ) -> None:
        _require_admin(caller)
        with self._db.session() as session:
            users = UserRepository(session)
            if token_id:
                revoked = users.revoke_token(token_id)
            elif token:
                revoked = users.revoke_token_by_hash(hash_token(token))
            else:
                raise ValidationFailed(Problem("token", "give either token_id or token"))
        if not revoked:
            raise NotFoundError("token", token_id or "(given value)")

    def list_users(self, caller: Principal) -> list[StoredUser]:
        _require_admin(caller)
        with self._db.session(readonly=True) as session:
            return UserRepository(session).list()

    def tokens_of(self, caller: Principal, name: str) -> list[StoredToken]:
        _require_admin(caller)
        with self._db.session(readonly=True) as session:
            users = UserRepository(session)
            return users.tokens_of(_user(users, name).id)

    def me(self, caller: Principal) -> StoredUser:
        with self._db.session(readonly=True) as session:
            user = UserRepository(session).get(caller.user_id)
        if user is None:
            raise NotAuthenticatedError("this token's user no longer exists")
        return user


def _require_admin(caller: Principal) -> None:
    if not caller.is_admin:
        raise ForbiddenError("only admins may manage users and tokens")


def _user(users: UserRepository, name: str) -> StoredUser:
    user = users.get_by_name(name)
    if user is None:
        raise NotFoundError("user", name)
    return user
