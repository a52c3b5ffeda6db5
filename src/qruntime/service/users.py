"""Use cases for users and tokens: authentication and the admin's user management."""

from __future__ import annotations

import time
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
from qruntime.service import access_tokens
from qruntime.service.auth_failures import FailedAuthLimiter
from qruntime.service.principal import Principal
from qruntime.service.token_cache import TokenCache
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


@dataclass(frozen=True)
class AccessToken:
    """A short-lived bearer token exchanged for a qruntime token (``/identity/token``)."""

    token: str
    expires_in: int
    expiration: int


class UserService:
    def __init__(
        self,
        db: Database,
        *,
        failed_auths: FailedAuthLimiter | None = None,
        token_cache: TokenCache | None = None,
    ):
        self._db = db
        self.failed_auths = failed_auths or FailedAuthLimiter(DEFAULT_MAX_FAILED_AUTHS)
        self.tokens = token_cache if token_cache is not None else TokenCache()
        #: The key access tokens are signed with, the same on every replica (set at start).
        self.access_secret: bytes | None = None

    def authenticate(self, token: str | None, *, source: str | None = None) -> Principal:
        """The token's user. A wrong token counts against ``source`` (the client's address);
        past the limit it is refused with 429. A right token is never refused for its
        address's failures."""
        if not token:
            raise NotAuthenticatedError(
                "missing bearer token: send 'Authorization: Bearer <token>'"
            )
        if access_tokens.looks_like_access_token(token):
            return self._authenticate_access_token(token, source)
        token_hash = hash_token(repair_text(token))
        cached = self.tokens.get(token_hash)
        if cached is not None:
            return cached
        generation = self.tokens.generation()
        with self._db.session(readonly=True) as session:
            user = UserRepository(session).user_for_token(token_hash)
        if user is None:
            refusal = NotAuthenticatedError("unknown or revoked token")
            raise self.failed_auths.failed(source, refusal)
        principal = Principal(user.id, user.name, Role(user.role))
        self.tokens.put(token_hash, principal, generation)
        return principal

    def cached(self, token: str) -> Principal | None:
        """The token's user if this replica checked it within the cache's time, without reading
        the database (so the event loop may ask); None means: call :meth:`authenticate`."""
        if not token or access_tokens.looks_like_access_token(token):
            return None
        return self.tokens.get(hash_token(repair_text(token)))

    def exchange(self, token: str | None, *, source: str | None = None) -> AccessToken:
        """A short-lived access token for a live qruntime token (the IAM-style exchange)."""
        if not token or access_tokens.looks_like_access_token(token):
            refusal = NotAuthenticatedError("send a qruntime token as the apikey")
            raise self.failed_auths.failed(source, refusal)
        with self._db.session(readonly=True) as session:
            found = UserRepository(session).token_id_for(hash_token(repair_text(token)))
        if found is None:
            raise self.failed_auths.failed(
                source, NotAuthenticatedError("unknown or revoked token")
            )
        user, token_id = found
        now = int(time.time())
        issued = access_tokens.issue(self._secret(), user.id, token_id, now=now)
        ttl = access_tokens.ACCESS_TOKEN_TTL
        return AccessToken(issued, ttl, now + ttl)

    def _authenticate_access_token(self, token: str, source: str | None) -> Principal:
        try:
            claims = access_tokens.verify(self._secret(), token)
        except NotAuthenticatedError as refusal:
            raise self.failed_auths.failed(source, refusal) from None
        with self._db.session(readonly=True) as session:
            user = UserRepository(session).user_for_token_id(claims.user_id, claims.token_id)
        if user is None:
            raise self.failed_auths.failed(
                source, NotAuthenticatedError("unknown or revoked token")
            )
        return Principal(user.id, user.name, Role(user.role))

    def _secret(self) -> bytes:
        if self.access_secret is None:
            raise NotAuthenticatedError("the server is starting: access tokens are not ready")
        return self.access_secret

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
        self.tokens.clear()  # after the commit: a request from now on reads the revocation
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
