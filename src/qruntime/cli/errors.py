"""One place that turns SDK exceptions into an ``error:`` line and an exit status.

Expected failures never show a Python traceback; anything else is a bug and keeps it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer

from qruntime.accounts import AccountExistsError, AccountNotFoundError
from qruntime.cli import exit_codes
from qruntime.client import (
    RuntimeConnectionError,
    RuntimeJobCancelledError,
    RuntimeJobFailureError,
    RuntimeJobTimeoutError,
    RuntimeNotAuthorizedError,
    RuntimeServerError,
)
from qruntime.domain.errors import QRuntimeError

P = ParamSpec("P")
R = TypeVar("R")

#: First match wins, so subclasses come before their bases; the default is BAD_INPUT.
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (RuntimeConnectionError, exit_codes.SERVER_UNREACHABLE),
    (RuntimeJobFailureError, exit_codes.JOB_FAILED),
    (RuntimeJobCancelledError, exit_codes.JOB_FAILED),
    (RuntimeJobTimeoutError, exit_codes.JOB_FAILED),
    (RuntimeServerError, exit_codes.JOB_FAILED),
)

_SAVE_HINT = "save one with: qruntime account save --url URL --token TOKEN"
_TOKEN_HINT = f"pass --token, set QRUNTIME_TOKEN, or {_SAVE_HINT}"
_ACCOUNT_HINT = (
    "pass --url and --token, set QRUNTIME_URL and QRUNTIME_TOKEN, pick a saved account with "
    f"qruntime account use NAME (qruntime account list shows them), or {_SAVE_HINT}"
)
_SWITCH_HINT = (
    "is that server running? start it with: qruntime serve; or switch to another saved "
    "account: qruntime account list, then qruntime account use NAME"
)


def exit_code_for(exc: BaseException) -> int:
    """0 never: 1 for failed jobs and server faults, 2 for refusals, 3 for no server."""
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return exit_codes.BAD_INPUT


def fail(message: str, code: int = exit_codes.BAD_INPUT) -> typer.Exit:
    """Print ``error: message`` on stderr; the caller raises what this returns."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Wrap a command so SDK and account errors end it with one clear message."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except QRuntimeError as exc:
            raise _report(exc) from None
        except KeyboardInterrupt:
            raise fail("interrupted", exit_codes.INTERRUPTED) from None

    return wrapper


def _report(exc: QRuntimeError) -> typer.Exit:
    message, hint = _cli_wording(exc)
    typer.echo(f"error: {message}", err=True)
    for problem in getattr(exc, "problems", None) or []:
        if str(problem) not in message:  # the message often lists its problems already
            typer.echo(f"  - {problem}", err=True)
    if hint:
        typer.echo(f"hint: {hint}", err=True)
    return typer.Exit(exit_code_for(exc))


def _cli_wording(exc: QRuntimeError) -> tuple[str, str | None]:
    """The message and a hint in command-line terms; the SDK's own hints name Python calls."""
    message = str(exc)
    if isinstance(exc, RuntimeConnectionError):
        if exc.account_name is not None:
            return message, _SWITCH_HINT
        return message, "is the server running? start it with: qruntime serve"
    if isinstance(exc, RuntimeNotAuthorizedError) and exc.status_code == 401:
        return message.split(" (check the token:")[0], _TOKEN_HINT
    if isinstance(exc, AccountNotFoundError):
        return re.split(r";? (?:or )?save one with", message)[0], _ACCOUNT_HINT
    if isinstance(exc, AccountExistsError):
        return message.replace("overwrite=True", "--overwrite"), None
    return message, None
