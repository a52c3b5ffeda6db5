"""Publish to a remote server through the SDK (needs an admin token: bare ids are reserved)."""

from __future__ import annotations

from qruntime.catalogue.entries import CatalogueProgram, content_hash
from qruntime.catalogue.plan import PublishedProgram
from qruntime.client import RuntimeService
from qruntime.domain.metadata import load_metadata


class SdkTarget:
    def __init__(self, service: RuntimeService):
        self._service = service

    def published(self) -> list[PublishedProgram]:
        found = []
        for listed in self._service.programs(refresh=True, limit=None):
            if listed.program_id != listed.name:
                continue
            program = self._service.program(listed.program_id, refresh=True)
            digest = content_hash(program.data, program.metadata) if program.data else None
            found.append(PublishedProgram(program.program_id, digest, program.is_public))
        return found

    def create(self, program: CatalogueProgram) -> None:
        program_id = self._service.upload_program(program.source, program.metadata, bare_name=True)
        self._service.set_program_visibility(program_id, True)

    def update(self, program: CatalogueProgram) -> None:
        normal = load_metadata(program.metadata).to_json_dict()
        normal.pop("is_public")
        spec = normal.pop("spec")  # passed explicitly: it replaces the spec instead of merging
        self._service.update_program(program.name, data=program.source, metadata=normal, spec=spec)
        self._service.set_program_visibility(program.name, True)

    def remove(self, program_id: str) -> None:
        self._service.delete_program(program_id)
