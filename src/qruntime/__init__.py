"""qruntime: an open, self-hostable runtime for quantum programs.

The SDK names below are imported on first use: worker processes import this package and must
not pay for httpx.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "AccountExistsError",
    "AccountNotFoundError",
    "ParameterNamespace",
    "QRuntimeClientError",
    "RuntimeAmbiguousProgramError",
    "RuntimeBackendError",
    "RuntimeBackendNotFound",
    "RuntimeConnectionError",
    "RuntimeDuplicateProgramError",
    "RuntimeInvalidInputsError",
    "RuntimeInvalidProgramError",
    "RuntimeInvalidStateError",
    "RuntimeJob",
    "RuntimeJobCancelledError",
    "RuntimeJobFailureError",
    "RuntimeJobNotFound",
    "RuntimeJobTimeoutError",
    "RuntimeNotAuthorizedError",
    "RuntimeNotFoundError",
    "RuntimeProgram",
    "RuntimeProgramNotFound",
    "RuntimeRequestError",
    "RuntimeServerError",
    "RuntimeService",
    "RuntimeValidationError",
    "__version__",
    "load_account",
]

#: Names served from qruntime.client on first access.
_LAZY = frozenset(__all__) - {"__version__"}

if TYPE_CHECKING:
    from qruntime.client import (
        AccountExistsError,
        AccountNotFoundError,
        ParameterNamespace,
        QRuntimeClientError,
        RuntimeAmbiguousProgramError,
        RuntimeBackendError,
        RuntimeBackendNotFound,
        RuntimeConnectionError,
        RuntimeDuplicateProgramError,
        RuntimeInvalidInputsError,
        RuntimeInvalidProgramError,
        RuntimeInvalidStateError,
        RuntimeJob,
        RuntimeJobCancelledError,
        RuntimeJobFailureError,
        RuntimeJobNotFound,
        RuntimeJobTimeoutError,
        RuntimeNotAuthorizedError,
        RuntimeNotFoundError,
        RuntimeProgram,
        RuntimeProgramNotFound,
        RuntimeRequestError,
        RuntimeServerError,
        RuntimeService,
        RuntimeValidationError,
        load_account,
    )


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'qruntime' has no attribute {name!r}")
    value = getattr(importlib.import_module("qruntime.client"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
