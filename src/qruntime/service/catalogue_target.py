"""Publish the catalogue into this server's own database (``qruntime serve --catalogue DIR``)."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

from qruntime.catalogue import load_catalogue
from qruntime.catalogue.checks import check_catalogue
from qruntime.catalogue.entries import CatalogueProgram, content_hash
from qruntime.catalogue.plan import PublishedProgram
from qruntime.catalogue.publisher import apply_plan, plan_for, summary
from qruntime.domain.errors import InvalidStateError
from qruntime.domain.metadata import load_metadata
from qruntime.domain.users import Role
from qruntime.service.bootstrap import ADMIN_NAME
from qruntime.service.principal import Principal
from qruntime.service.programs import ProgramService, metadata_of
from qruntime.storage import Database, UserRepository

log = logging.getLogger("qruntime.server")

#: The advisory lock replicas publish the catalogue under (any constant: "qcat").
CATALOGUE_LOCK_KEY = 0x71_63_61_74


class ServiceTarget:
    """The publisher's view of this server, acting as ``caller`` (an admin)."""

    def __init__(self, programs: ProgramService, caller: Principal):
        self._programs = programs
        self._caller = caller

    def published(self) -> list[PublishedProgram]:
        stored, _ = self._programs.list(self._caller, limit=None)
        return [
            PublishedProgram(
                p.id, content_hash(p.source, metadata_of(p).to_json_dict()), p.is_public
            )
            for p in stored
            if p.id == p.name
        ]

    def create(self, program: CatalogueProgram) -> None:
        self._programs.upload(
            self._caller, data=_b64(program.source), metadata=program.metadata, bare_name=True
        )
        self._programs.set_visibility(self._caller, program.name, True)

    def update(self, program: CatalogueProgram) -> None:
        fields = load_metadata(program.metadata).to_json_dict()
        fields.pop("is_public")
        fields.setdefault("version", None)  # a version dropped from the file is dropped here too
        self._programs.replace_source(self._caller, program.name, _b64(program.source))
        self._programs.update(self._caller, program.name, fields)
        self._programs.set_visibility(self._caller, program.name, True)

    def remove(self, program_id: str) -> None:
        self._programs.delete(self._caller, program_id)


def publish_catalogue(db: Database, programs: ProgramService, directory: Path) -> str:
    """Check, then publish every program in ``directory`` as ``admin``; returns the summary."""
    problems = check_catalogue(directory)
    if problems:
        lines = "\n".join(f"  {problem}" for problem in problems)
        raise InvalidStateError(f"the catalogue in {directory} has problems:\n{lines}")
    with db.session(readonly=True) as session:
        admin = UserRepository(session).get_by_name(ADMIN_NAME)
    if admin is None or admin.role != Role.ADMIN.value:
        raise InvalidStateError(f"cannot publish the catalogue: no admin user {ADMIN_NAME!r}")
    target = ServiceTarget(programs, Principal(admin.id, admin.name, Role.ADMIN))
    # Replicas starting at once take turns: each plans against what the one before published,
    # instead of both creating the same bare names and one failing its start.
    with db.exclusive(CATALOGUE_LOCK_KEY):
        steps = plan_for(target, load_catalogue(directory), prune=False)
        outcome = summary(apply_plan(target, steps))
    log.info("published the catalogue in %s: %s", directory, outcome)
    return outcome


def _b64(source: str) -> str:
    return base64.b64encode(source.encode()).decode()
