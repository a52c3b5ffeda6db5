"""The authenticated caller, as every use case sees it."""

from __future__ import annotations

from dataclasses import dataclass

from qruntime.domain.users import Role


@dataclass(frozen=True)
class Principal:
    """A user acting through one of their tokens."""

    user_id: int
    name: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def can_upload(self) -> bool:
        return self.role in (Role.USER, Role.ADMIN)

    def owns(self, owner_id: int) -> bool:
        """Owners and admins may change a thing and see everything in it."""
        return self.is_admin or owner_id == self.user_id
