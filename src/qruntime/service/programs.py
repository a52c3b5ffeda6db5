"""Use cases for programs: upload, list, inspect, update, publish and delete."""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import string
from typing import Any

from qruntime.domain.errors import (
    DuplicateError,
    ForbiddenError,
    InvalidSourceError,
    NotFoundError,
    Problem,
    TooLargeError,
)
from qruntime.domain.metadata import ProgramMetadata, load_metadata
from qruntime.domain.source import MainSignature, check_program_source, main_signature
from qruntime.service.principal import Principal
from qruntime.service.program_cache import ProgramCache
from qruntime.service.storage_budget import StorageBudget
from qruntime.storage import Database, ProgramRepository, StoredProgram
from qruntime.storage.hot_reads import HotReads

#: Metadata fields an owner may change with ``PATCH``.
EDITABLE_FIELDS = ("name", "description", "max_execution_time", "spec", "version")
_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits
_SUFFIX_LENGTH = 6


class ProgramService:
    def __init__(
        self,
        db: Database,
        *,
        max_source_bytes: int,
        max_execution_time_ceiling: int,
        max_metadata_bytes: int = 256 * 1024,
        budget: StorageBudget | None = None,
    ):
        self._db = db
        self._budget = budget
        self._max_source_bytes = max_source_bytes
        self._max_metadata_bytes = max_metadata_bytes
        self._ceiling = max_execution_time_ceiling
        self._derived: ProgramCache[tuple[ProgramMetadata, MainSignature | None]]
        self._derived = ProgramCache(lambda p: (metadata_of(p), signature_of(p)))

    def upload(
        self, caller: Principal, *, data: str, metadata: Any, bare_name: bool = False
    ) -> StoredProgram:
        """Validate everything, then store; the id is the name plus a suffix unless reserved."""
        if not caller.can_upload:
            raise ForbiddenError(
                f"user {caller.name!r} has the 'open' role: it may run public programs "
                "but not upload programs"
            )
        if bare_name and not caller.is_admin:
            raise ForbiddenError("only admins may reserve a bare program name as the id")
        source = self._source(data)
        meta = self._metadata(metadata)
        fields = _fields(meta) | {"owner_id": caller.user_id, **_source_fields(source)}
        with self._db.session() as session:
            if self._budget is not None:
                size = len(source) + len(meta.description)
                self._budget.check(session, caller, size, "this program")
            programs = ProgramRepository(session)
            if bare_name:
                if programs.get(meta.name) is not None:
                    raise DuplicateError(f"a program with id {meta.name!r} already exists")
                return programs.add(id=meta.name, **fields)
            for _ in range(8):
                program_id = f"{meta.name}-{_suffix()}"
                if programs.get(program_id) is None:
                    return programs.add(id=program_id, **fields)
        raise DuplicateError(f"could not find a free id for {meta.name!r}; try again")

    def list(
        self, caller: Principal, *, limit: int | None, offset: int = 0
    ) -> tuple[list[StoredProgram], int]:
        viewer = None if caller.is_admin else caller.user_id
        with self._db.session(readonly=True) as session:
            return ProgramRepository(session).list_visible(
                viewer_id=viewer, limit=limit, offset=offset
            )

    def get(self, caller: Principal, program_id: str) -> StoredProgram:
        """A program the caller may see; private ones of others do not exist for them."""
        program = HotReads.of(self._db).program(program_id)
        if program is None or not (program.is_public or caller.owns(program.owner_id)):
            raise NotFoundError("program", program_id)
        return program

    def derived(self, program: StoredProgram) -> tuple[ProgramMetadata, MainSignature | None]:
        """The program's metadata and ``main``'s signature, validated once per version."""
        return self._derived.derived(program)

    def update(self, caller: Principal, program_id: str, changes: dict[str, Any]) -> StoredProgram:
        """Apply metadata changes; the result must still be valid metadata."""
        program = self._owned(caller, program_id)
        unknown = sorted(set(changes) - set(EDITABLE_FIELDS))
        if unknown:
            raise ForbiddenError(f"these fields cannot be changed: {', '.join(unknown)}")
        merged = metadata_of(program).to_json_dict() | changes
        meta = self._metadata(merged)
        self._derived.forget(program_id)
        with self._db.session() as session:
            return ProgramRepository(session).update(program_id, **_fields(meta))

    def replace_source(self, caller: Principal, program_id: str, data: str) -> StoredProgram:
        program = self._owned(caller, program_id)
        source = self._source(data)
        self._derived.forget(program_id)
        with self._db.session() as session:
            growth = len(source) - len(program.source)
            if self._budget is not None and growth > 0:
                self._budget.check(session, caller, growth, "the new source")
            return ProgramRepository(session).update(program_id, **_source_fields(source))

    def set_visibility(self, caller: Principal, program_id: str, public: bool) -> StoredProgram:
        self._owned(caller, program_id)
        self._derived.forget(program_id)
        with self._db.session() as session:
            return ProgramRepository(session).update(program_id, is_public=public)

    def delete(self, caller: Principal, program_id: str) -> None:
        self._owned(caller, program_id)
        self._derived.forget(program_id)
        with self._db.session() as session:
            if not ProgramRepository(session).delete(program_id):
                raise NotFoundError("program", program_id)

    def _owned(self, caller: Principal, program_id: str) -> StoredProgram:
        program = self.get(caller, program_id)
        if not caller.owns(program.owner_id):
            raise ForbiddenError(
                f"program {program_id!r} is public, but only its owner may change it"
            )
        return program

    def _source(self, data: str) -> str:
        if not isinstance(data, str):
            raise InvalidSourceError(Problem("data", "must be the base64 text of the source"))
        if len(data) > (self._max_source_bytes * 4) // 3 + 4:
            raise TooLargeError(
                f"program source is over the limit of {self._max_source_bytes} bytes "
                "(QRUNTIME_MAX_SOURCE_BYTES)"
            )
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidSourceError(Problem("data", "is not valid base64")) from None
        return check_program_source(raw, max_bytes=self._max_source_bytes)

    def _metadata(self, metadata: Any) -> ProgramMetadata:
        size = len(json.dumps(metadata, default=str).encode())
        if size > self._max_metadata_bytes:
            raise TooLargeError(
                f"program metadata is {size} bytes, over the limit of {self._max_metadata_bytes} "
                "bytes (QRUNTIME_MAX_METADATA_BYTES)"
            )
        return load_metadata(metadata, max_execution_time_ceiling=self._ceiling)


def metadata_of(program: StoredProgram) -> ProgramMetadata:
    """The stored fields as validated metadata again (they were validated when stored)."""
    data: dict[str, Any] = {
        "name": program.name,
        "description": program.description,
        "max_execution_time": program.max_execution_time,
        "is_public": program.is_public,
        "spec": program.spec,
    }
    if program.version is not None:
        data["version"] = program.version
    return load_metadata(data, max_execution_time_ceiling=max(program.max_execution_time, 1))


def signature_of(program: StoredProgram) -> MainSignature | None:
    """What ``main`` accepts: recorded at upload, or read now from older programs' source."""
    if program.main_signature is not None:
        return MainSignature.from_json(program.main_signature)
    return main_signature(program.source)


def _source_fields(source: str) -> dict[str, Any]:
    signature = main_signature(source)
    return {"source": source, "main_signature": signature and signature.to_json()}


def _fields(meta: ProgramMetadata) -> dict[str, Any]:
    return {
        "name": meta.name,
        "description": meta.description,
        "max_execution_time": meta.max_execution_time,
        "version": meta.version,
        "spec": meta.spec.to_json_dict(),
        "is_public": meta.is_public,
    }


def _suffix() -> str:
    return "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(_SUFFIX_LENGTH))
