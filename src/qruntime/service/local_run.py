"""Local mode: validate a program and its inputs like the service would, then run it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qruntime.backends import BackendRegistry, check_backend_requirements, default_registry
from qruntime.domain.errors import InvalidInputsError, Problem
from qruntime.domain.events import JobEvent
from qruntime.domain.inputs import check_input_names, validate_inputs
from qruntime.domain.metadata import DEFAULT_MAX_EXECUTION_TIME_CEILING, ProgramMetadata
from qruntime.domain.naming import module_to_program_name
from qruntime.domain.source import check_program_source, main_signature
from qruntime.execution import Executor, JobRequest, LocalExecutor
from qruntime.serialization import decode, encode


@dataclass(frozen=True)
class LocalProgram:
    """A program as found on disk: source, and metadata when the author has it."""

    source: str
    name: str
    metadata: ProgramMetadata | None = None

    @classmethod
    def from_files(cls, source_path: Path, metadata_path: Path | None = None) -> LocalProgram:
        """``metadata_path`` defaults to the ``.json`` beside the source, when there is one."""
        source = check_program_source(source_path.read_bytes(), filename=source_path.name)
        if metadata_path is None and source_path.with_suffix(".json").is_file():
            metadata_path = source_path.with_suffix(".json")
        if metadata_path is None:
            return cls(source, module_to_program_name(source_path.stem))
        metadata = ProgramMetadata.from_file(metadata_path)
        return cls(source, metadata.name, metadata)


def parse_inputs(text: str) -> dict[str, Any]:
    """Inputs as JSON text, which may contain RuntimeEncoder envelopes."""
    value = decode(text)
    if not isinstance(value, dict):
        raise InvalidInputsError(Problem("inputs", "must be a JSON object of name: value"))
    return value


def prepare_local_job(
    program: LocalProgram,
    inputs: dict[str, Any],
    backend_name: str,
    *,
    max_execution_time: float | None = None,
    registry: BackendRegistry | None = None,
) -> JobRequest:
    """Refuse what the service would refuse, before a process is started."""
    registry = registry or default_registry()
    backend = registry.info(backend_name)
    limit = max_execution_time or DEFAULT_MAX_EXECUTION_TIME_CEILING
    parameters = program.metadata.spec.parameters if program.metadata is not None else None
    check_input_names(parameters, inputs, main_signature(program.source))
    if program.metadata is not None:
        validate_inputs(program.metadata, inputs)
        check_backend_requirements(program.metadata, backend)
        limit = max_execution_time or program.metadata.max_execution_time
    return JobRequest(
        job_id=f"local-{uuid.uuid4().hex[:12]}",
        source=program.source,
        backend_name=backend_name,
        inputs=encode(inputs),
        max_execution_time=limit,
        program_name=program.name,
    )


async def run_local(
    request: JobRequest, executor: Executor | None = None
) -> AsyncIterator[JobEvent]:
    """Run one job through the same isolated worker path the server uses."""
    executor = executor or LocalExecutor()
    try:
        async for event in executor.run(request):
            yield event
    finally:
        await executor.aclose()
