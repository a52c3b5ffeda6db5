"""Uploaded programs: their metadata, source and visibility flag."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from qruntime.domain.errors import DuplicateError, NotFoundError
from qruntime.storage.models import PROGRAMS, USERS, utcnow
from qruntime.storage.records import StoredProgram

#: Fields ``update`` may change; ids, owners and timestamps are not among them.
UPDATABLE_FIELDS = frozenset(
    {
        "name",
        "description",
        "max_execution_time",
        "version",
        "spec",
        "is_public",
        "source",
        "main_signature",
    }
)


def _select_programs() -> Select[Any]:
    return select(PROGRAMS, USERS.c.name.label("owner_name")).join(
        USERS, USERS.c.id == PROGRAMS.c.owner_id
    )


class ProgramRepository:
    """Stores programs inside the caller's session; visibility is a filter, not a rule."""

    def __init__(self, session: Session):
        self._session = session

    def add(
        self,
        *,
        id: str,
        name: str,
        owner_id: int,
        description: str,
        max_execution_time: int,
        version: str | None,
        spec: dict[str, Any],
        is_public: bool,
        source: str,
        main_signature: dict[str, Any] | None = None,
    ) -> StoredProgram:
        now = utcnow()
        try:
            with self._session.begin_nested():
                self._session.execute(
                    insert(PROGRAMS).values(
                        id=id,
                        name=name,
                        owner_id=owner_id,
                        description=description,
                        max_execution_time=max_execution_time,
                        version=version,
                        spec=spec,
                        is_public=is_public,
                        source=source,
                        main_signature=main_signature,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError as exc:
            if self._exists(id):
                raise DuplicateError(f"program id {id!r} is already taken") from exc
            raise
        stored = self.get(id)
        assert stored is not None
        return stored

    def get(self, program_id: str) -> StoredProgram | None:
        row = self._session.execute(_select_programs().where(PROGRAMS.c.id == program_id)).first()
        return StoredProgram.from_row(row) if row is not None else None

    def list_visible(
        self, *, viewer_id: int | None, limit: int | None, offset: int = 0
    ) -> tuple[list[StoredProgram], int]:
        """One page ordered by name, id, and the number of all matches.

        ``viewer_id`` None means everything (an admin); otherwise public programs plus the
        viewer's own.
        """
        where: list[ColumnElement[bool]] = []
        if viewer_id is not None:
            where.append(or_(PROGRAMS.c.is_public.is_(True), PROGRAMS.c.owner_id == viewer_id))
        total = self._session.execute(
            select(func.count()).select_from(PROGRAMS).where(*where)
        ).scalar_one()
        query = (
            _select_programs()
            .where(*where)
            .order_by(PROGRAMS.c.name, PROGRAMS.c.id)
            .limit(limit)
            .offset(offset)
        )
        return [StoredProgram.from_row(row) for row in self._session.execute(query)], total

    def update(self, program_id: str, **fields: Any) -> StoredProgram:
        """Change any of ``UPDATABLE_FIELDS`` and bump ``updated_at``."""
        unknown = set(fields) - UPDATABLE_FIELDS
        if unknown:
            raise TypeError(f"cannot update program field(s): {', '.join(sorted(unknown))}")
        result = self._session.execute(
            update(PROGRAMS)
            .where(PROGRAMS.c.id == program_id)
            .values(**fields, updated_at=utcnow())
        )
        if result.rowcount == 0:
            raise NotFoundError("program", program_id)
        stored = self.get(program_id)
        assert stored is not None
        return stored

    def delete(self, program_id: str) -> bool:
        result = self._session.execute(delete(PROGRAMS).where(PROGRAMS.c.id == program_id))
        return result.rowcount > 0

    def _exists(self, program_id: str) -> bool:
        query = select(PROGRAMS.c.id).where(PROGRAMS.c.id == program_id)
        return self._session.execute(query).first() is not None
