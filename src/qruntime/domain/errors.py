"""The error tree shared by every layer; the API maps each class to one HTTP status.

QRuntimeError
├── ValidationFailed             bad input from a user; carries every problem found
│   ├── InvalidMetadataError     program metadata breaks a rule
│   ├── InvalidSourceError       program source cannot be accepted
│   └── InvalidInputsError       job inputs do not satisfy spec.parameters
├── SerializationError           a payload cannot be encoded or decoded
│   └── NotTranslatableError     a stored value has no form in the client's dialect
├── BackendError
│   ├── UnknownBackendError      no backend has that name
│   └── BackendRequirementsError backend does not meet the program's requirements
├── NotFoundError                no such thing, or not visible to the caller (never "forbidden")
├── DuplicateError               an id or name that must be unique is taken
├── InvalidStateError            the thing exists but is in the wrong state for the request
├── NotAuthenticatedError        no credentials, or unknown or revoked ones
├── ForbiddenError               the caller's role does not allow the request
├── TooLargeError                a payload is over a configured size limit
└── QuotaExceededError           a per-user quota (queued jobs) is used up; try again later
"""

from __future__ import annotations

from dataclasses import dataclass

from qruntime.domain.suggest import did_you_mean


class QRuntimeError(Exception):
    """Base of every error qruntime raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One rule that a value broke, located by a dotted path such as ``metadata.name``."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class ValidationFailed(QRuntimeError, ValueError):
    """Input was refused; ``problems`` lists every violation, not only the first."""

    what = "input"

    def __init__(self, problems: list[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [Problem("", problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__(self._render())

    def _render(self) -> str:
        if len(self.problems) == 1:
            return f"invalid {self.what}: {self.problems[0]}"
        lines = "\n".join(f"  - {p}" for p in self.problems)
        return f"invalid {self.what} ({len(self.problems)} problems):\n{lines}"


class InvalidMetadataError(ValidationFailed):
    what = "program metadata"


class InvalidSourceError(ValidationFailed):
    what = "program source"


class InvalidInputsError(ValidationFailed):
    what = "job inputs"


class SerializationError(QRuntimeError, ValueError):
    """A value cannot be encoded, or a payload cannot be decoded safely."""


class NotTranslatableError(SerializationError):
    """A stored value (a result, an interim result) has no form in a client's older dialect."""


class BackendError(QRuntimeError):
    """Base of backend lookup and requirement failures."""


class UnknownBackendError(BackendError, LookupError):
    def __init__(self, name: str, known: list[str]):
        self.name = name
        # A device's own name (ibm_kyiv, manila) stands for its simulator (fake_kyiv).
        simulator = "fake_" + name.removeprefix("ibmq_").removeprefix("ibm_")
        # Backend names share long prefixes (fake_...): only a near-identical name is a typo.
        suggestion = (
            f"; did you mean {simulator!r}?"
            if simulator in known
            else did_you_mean(name, known, cutoff=0.8)
        )
        if not suggestion:
            sample = ", ".join(known[:8]) + (", ..." if len(known) > 8 else "")
            suggestion = f"; available backends include: {sample}"
        super().__init__(
            f"unknown backend {name!r}{suggestion} (qruntime backends lists all {len(known)})"
        )


class BackendRequirementsError(BackendError, ValidationFailed):
    what = "backend"


class NotFoundError(QRuntimeError, LookupError):
    """Raised for anything missing *or* invisible to the caller, so existence never leaks."""

    def __init__(self, kind: str, identifier: str):
        self.kind = kind
        self.identifier = identifier
        super().__init__(f"{kind} {identifier!r} not found")


class DuplicateError(QRuntimeError):
    """An id or name that must be unique is already taken."""


class InvalidStateError(QRuntimeError):
    """The request does not fit the current state (cancel a finished job, result of a failure)."""


class NotAuthenticatedError(QRuntimeError):
    """No credentials, or credentials the server does not accept."""


class ForbiddenError(QRuntimeError):
    """The caller is known but their role does not allow this."""


class TooLargeError(QRuntimeError, ValueError):
    """A payload is over a configured size limit; the message names the limit."""


class QuotaExceededError(QRuntimeError):
    """The caller has used up a per-user quota; the request may succeed later."""
