"""Errors the SDK raises; every one keeps ``status_code``, ``code`` and ``problems``.

QRuntimeClientError                   base (a qruntime.domain QRuntimeError)
├── RuntimeConnectionError            the server could not be reached, even after retries
├── RuntimeRequestError               any other refusal (400 bad_request, 413, 422, other 4xx)
│   └── RuntimeServerError            the server failed (5xx)
├── RuntimeNotAuthorizedError         401 not_authenticated, 403 forbidden
├── RuntimeNotFoundError              404; which subclass depends on the endpoint
│   ├── RuntimeProgramNotFound
│   ├── RuntimeJobNotFound
│   └── RuntimeBackendNotFound
├── RuntimeAmbiguousProgramError      a program name several programs have (``client.lookup``)
├── RuntimeDuplicateProgramError      409 duplicate: the program id is taken
├── RuntimeInvalidStateError          409 invalid_state, or a local state check
│   └── RuntimeJobCancelledError      the job was cancelled; ``reason`` says why (RAN TOO LONG...)
├── RuntimeValidationError            400 with a problem list, or the same check done locally
│   ├── RuntimeInvalidProgramError    invalid_metadata, invalid_source
│   ├── RuntimeInvalidInputsError     invalid_inputs; the message names the parameter
│   └── RuntimeBackendError           unknown_backend, backend_requirements
├── RuntimeJobFailureError            the job ended in ERROR; the message holds its traceback
└── RuntimeJobTimeoutError            waiting for a job outlasted ``timeout`` (a TimeoutError too)

Saved-account errors (``AccountNotFoundError``, ``AccountExistsError``) come from
:mod:`qruntime.accounts` and are re-exported by :mod:`qruntime.client`.
"""

from __future__ import annotations

from qruntime.domain.errors import Problem, QRuntimeError

__all__ = [
    "QRuntimeClientError",
    "RuntimeAmbiguousProgramError",
    "RuntimeBackendError",
    "RuntimeBackendNotFound",
    "RuntimeConnectionError",
    "RuntimeDuplicateProgramError",
    "RuntimeInvalidInputsError",
    "RuntimeInvalidProgramError",
    "RuntimeInvalidStateError",
    "RuntimeJobCancelledError",
    "RuntimeJobFailureError",
    "RuntimeJobNotFound",
    "RuntimeJobTimeoutError",
    "RuntimeNotAuthorizedError",
    "RuntimeNotFoundError",
    "RuntimeProgramNotFound",
    "RuntimeRequestError",
    "RuntimeServerError",
    "RuntimeValidationError",
]


class QRuntimeClientError(QRuntimeError):
    """Base of SDK errors; ``status_code`` is None when the error was raised locally."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        problems: list[Problem] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.problems: list[Problem] = list(problems or [])


class RuntimeConnectionError(QRuntimeClientError, ConnectionError):
    """No answer from the server (refused, reset, unreachable) after the allowed retries.

    ``account_name`` is the saved account the URL came from, if it came from one.
    """

    def __init__(self, message: str, *, account_name: str | None = None) -> None:
        super().__init__(message)
        self.account_name = account_name


class RuntimeRequestError(QRuntimeClientError):
    """The server refused a request for a reason without a more specific class."""


class RuntimeServerError(RuntimeRequestError):
    """The server answered with a 5xx status."""


class RuntimeNotAuthorizedError(QRuntimeClientError):
    """The token is missing, unknown or revoked (401), or the role does not allow this (403)."""


class RuntimeNotFoundError(QRuntimeClientError, LookupError):
    """Nothing with that id is visible to the caller (private things of others are 404 too)."""


class RuntimeProgramNotFound(RuntimeNotFoundError):
    """No such program, or a private program of someone else."""


class RuntimeJobNotFound(RuntimeNotFoundError):
    """No such job, or a job of someone else."""


class RuntimeBackendNotFound(RuntimeNotFoundError):
    """No backend has that name."""


class RuntimeAmbiguousProgramError(QRuntimeClientError, LookupError):
    """A name given for a program id matches several programs; ``candidates`` are their ids."""

    def __init__(self, message: str, *, candidates: list[str]) -> None:
        super().__init__(message)
        self.candidates = list(candidates)


class RuntimeDuplicateProgramError(QRuntimeClientError):
    """The program id (a bare name) is already taken."""


class RuntimeInvalidStateError(QRuntimeClientError):
    """The job or program is in the wrong state for the request (cancel a finished job...)."""


class RuntimeJobCancelledError(RuntimeInvalidStateError):
    """The job was cancelled, so it has no result; ``reason`` is e.g. ``RAN TOO LONG``."""

    def __init__(self, message: str, *, job_id: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.reason = reason


class RuntimeValidationError(QRuntimeClientError, ValueError):
    """A value was refused; ``problems`` lists every violation found."""


class RuntimeInvalidProgramError(RuntimeValidationError):
    """Program metadata or source breaks a rule (checked locally before upload, then again)."""


class RuntimeInvalidInputsError(RuntimeValidationError):
    """Job inputs do not satisfy the program's ``spec.parameters``."""


class RuntimeBackendError(RuntimeValidationError):
    """The backend is unknown or does not meet the program's ``backend_requirements``."""


class RuntimeJobFailureError(QRuntimeClientError):
    """The job ended in ERROR; ``error_message`` is the server's account (often a traceback)."""

    def __init__(
        self, message: str, *, job_id: str, reason: str | None, error_message: str | None
    ) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.reason = reason
        self.error_message = error_message


class RuntimeJobTimeoutError(QRuntimeClientError, TimeoutError):
    """The job did not reach a final state within the given timeout; it keeps running."""
