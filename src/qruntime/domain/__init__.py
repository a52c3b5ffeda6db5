"""Domain model: program names, metadata, sources, inputs and the error tree."""

from __future__ import annotations

from qruntime.lazy_exports import lazy_exports

_SOURCES = {
    "errors": (
        "BackendError",
        "BackendRequirementsError",
        "DuplicateError",
        "ForbiddenError",
        "InvalidInputsError",
        "InvalidMetadataError",
        "InvalidSourceError",
        "InvalidStateError",
        "NotAuthenticatedError",
        "NotFoundError",
        "Problem",
        "QRuntimeError",
        "SerializationError",
        "TooLargeError",
        "UnknownBackendError",
        "ValidationFailed",
    ),
    "events": (
        "CancelledEvent",
        "ErrorEvent",
        "InterimEvent",
        "JobEvent",
        "LogEvent",
        "ResultEvent",
        "TerminalEvent",
    ),
    "inputs": ("inputs_validator", "validate_inputs"),
    "job": ("JobReason", "JobStatus"),
    "metadata": (
        "DEFAULT_MAX_EXECUTION_TIME_CEILING",
        "DEFAULT_SCHEMA_DIALECT",
        "BackendRequirements",
        "ProgramMetadata",
        "ProgramSpec",
        "load_metadata",
    ),
    "naming": (
        "MAX_PROGRAM_NAME_LENGTH",
        "check_program_name",
        "module_to_program_name",
        "program_name_to_module",
    ),
    "source": ("DEFAULT_MAX_SOURCE_BYTES", "check_program_source"),
}

__all__ = sorted(name for names in _SOURCES.values() for name in names)

__getattr__, __dir__ = lazy_exports(__name__, globals(), _SOURCES)
