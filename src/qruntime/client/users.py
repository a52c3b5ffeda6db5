"""Admin calls for users and tokens; kept apart from programs and jobs, which every user has."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qruntime.client.transport import ApiClient


@dataclass(frozen=True)
class IssuedToken:
    """A new bearer token, shown once; ``token_id`` (``tok_...``) names it for revocation."""

    token: str
    token_id: str


class UserAdmin:
    """``RuntimeService.users``-style calls; the server refuses them for non-admins (403)."""

    def __init__(self, api: ApiClient):
        self._api = api

    def list(self) -> list[dict[str, Any]]:
        """Every user: name, role, creation date."""
        return list(self._api.get_json("/users").get("users", []))

    def create(self, name: str, role: str = "user") -> IssuedToken:
        """Create a user with role ``open``, ``user`` or ``admin`` and its first token."""
        body = {"name": name, "role": role}
        return _issued(self._api.request("POST", "/users", json=body).json())

    def issue_token(self, name: str) -> IssuedToken:
        """Another token for an existing user."""
        return _issued(self._api.request("POST", f"/users/{name}/tokens").json())

    def revoke_token(self, *, token: str | None = None, token_id: str | None = None) -> None:
        """Revoke a token given by its value or by its id."""
        body = {"token_id": token_id} if token_id is not None else {"token": token}
        self._api.request("POST", "/tokens/revoke", json=body)


def _issued(body: dict[str, Any]) -> IssuedToken:
    return IssuedToken(token=body["token"], token_id=body["token_id"])
