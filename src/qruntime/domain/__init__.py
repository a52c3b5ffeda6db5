"""Domain model: program names, metadata, sources, inputs and the error tree."""

from qruntime.domain.errors import (
    BackendError,
    BackendRequirementsError,
    InvalidInputsError,
    InvalidMetadataError,
    InvalidSourceError,
    Problem,
    QRuntimeError,
    SerializationError,
    UnknownBackendError,
    ValidationFailed,
)
from qruntime.domain.events import (
    CancelledEvent,
    ErrorEvent,
    InterimEvent,
    JobEvent,
    LogEvent,
    ResultEvent,
    TerminalEvent,
)
from qruntime.domain.inputs import inputs_validator, validate_inputs
from qruntime.domain.job import JobReason, JobStatus
from qruntime.domain.metadata import (
    DEFAULT_MAX_EXECUTION_TIME_CEILING,
    DEFAULT_SCHEMA_DIALECT,
    BackendRequirements,
    ProgramMetadata,
    ProgramSpec,
    load_metadata,
)
from qruntime.domain.naming import (
    MAX_PROGRAM_NAME_LENGTH,
    check_program_name,
    module_to_program_name,
    program_name_to_module,
)
from qruntime.domain.source import DEFAULT_MAX_SOURCE_BYTES, check_program_source

__all__ = [
    "DEFAULT_MAX_EXECUTION_TIME_CEILING",
    "DEFAULT_MAX_SOURCE_BYTES",
    "DEFAULT_SCHEMA_DIALECT",
    "MAX_PROGRAM_NAME_LENGTH",
    "BackendError",
    "BackendRequirements",
    "BackendRequirementsError",
    "CancelledEvent",
    "ErrorEvent",
    "InterimEvent",
    "InvalidInputsError",
    "InvalidMetadataError",
    "InvalidSourceError",
    "JobEvent",
    "JobReason",
    "JobStatus",
    "LogEvent",
    "Problem",
    "ProgramMetadata",
    "ProgramSpec",
    "QRuntimeError",
    "ResultEvent",
    "SerializationError",
    "TerminalEvent",
    "UnknownBackendError",
    "ValidationFailed",
    "check_program_name",
    "check_program_source",
    "inputs_validator",
    "load_metadata",
    "module_to_program_name",
    "program_name_to_module",
    "validate_inputs",
]
