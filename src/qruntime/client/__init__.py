"""The qruntime SDK: talk to a qruntime server over HTTP (imports httpx; the package does not)."""

from qruntime.accounts import (
    Account,
    AccountError,
    AccountExistsError,
    AccountNotFoundError,
)
from qruntime.client.exceptions import (
    QRuntimeClientError,
    RuntimeAmbiguousProgramError,
    RuntimeBackendError,
    RuntimeBackendNotFound,
    RuntimeConnectionError,
    RuntimeDuplicateProgramError,
    RuntimeInvalidInputsError,
    RuntimeInvalidProgramError,
    RuntimeInvalidStateError,
    RuntimeJobCancelledError,
    RuntimeJobFailureError,
    RuntimeJobNotFound,
    RuntimeJobTimeoutError,
    RuntimeNotAuthorizedError,
    RuntimeNotFoundError,
    RuntimeProgramNotFound,
    RuntimeRequestError,
    RuntimeServerError,
    RuntimeValidationError,
)
from qruntime.client.job import RuntimeJob
from qruntime.client.program import ParameterNamespace, ProgramParameters, RuntimeProgram
from qruntime.client.provider import Provider, load_account
from qruntime.client.service import BackendInfo, RuntimeService
from qruntime.client.sessions import SessionInfo, SessionJobInfo

__all__ = [
    "Account",
    "AccountError",
    "AccountExistsError",
    "AccountNotFoundError",
    "BackendInfo",
    "ParameterNamespace",
    "ProgramParameters",
    "Provider",
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
    "SessionInfo",
    "SessionJobInfo",
    "load_account",
]
