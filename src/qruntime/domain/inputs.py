"""Check decoded job inputs against ``spec.parameters`` before a job is queued.

Inputs arrive decoded: numpy scalars and arrays, tuples and circuits must pass for their JSON kin.
"""

from __future__ import annotations

import functools
import sys
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import extend, validator_for
from referencing import Registry
from referencing.exceptions import Unresolvable

from qruntime.domain.errors import InvalidInputsError, InvalidMetadataError, Problem
from qruntime.domain.suggest import did_you_mean

if TYPE_CHECKING:
    from qruntime.domain.metadata import ProgramMetadata
    from qruntime.domain.source import MainSignature

_MAX_MESSAGE_CHARS = 500


def validate_inputs(metadata: ProgramMetadata, inputs: dict[str, Any]) -> None:
    """Raise InvalidInputsError listing every way ``inputs`` breaks ``metadata.spec.parameters``."""
    if not isinstance(inputs, dict):
        raise InvalidInputsError(
            Problem(
                "inputs", f"inputs must be a dict of parameter values, got {type(inputs).__name__}"
            )
        )
    schema = metadata.spec.parameters
    if schema is None:
        return
    validator = inputs_validator(schema)
    try:
        errors = list(validator.iter_errors(_comparable(inputs)))
        problems = [_problem(error) for error in errors]
        if problems:
            problems += _misspelt(inputs, schema.get("properties"))
    except Unresolvable as exc:
        raise InvalidMetadataError(
            Problem("metadata.spec.parameters", f"cannot resolve a $ref: {exc}")
        ) from None
    except RecursionError:
        # Copying, validating and describing the inputs all recurse once per level or more.
        raise InvalidInputsError(
            Problem("inputs", "nested too deeply to check against spec.parameters")
        ) from None
    if problems:
        raise InvalidInputsError(problems)


def check_input_names(
    parameters: dict[str, Any] | None, inputs: dict[str, Any], signature: MainSignature | None
) -> None:
    """Refuse an input that neither ``parameters`` (the spec) documents nor ``main`` takes.

    Such a job could only fail with ``TypeError: main() got an unexpected keyword argument``.
    """
    if signature is None or signature.takes_kwargs or not isinstance(inputs, dict):
        return
    documented = (parameters or {}).get("properties")
    accepted = set(signature.names) | set(documented if isinstance(documented, dict) else ())
    problems = [
        Problem(_location([name]), _unknown_input(str(name), sorted(accepted)))
        for name in inputs
        if name not in accepted
    ]
    if problems:
        raise InvalidInputsError(problems)


def _misspelt(inputs: dict[str, Any], documented: Any) -> list[Problem]:
    """For refused inputs: names the spec does not document but nearly does (a likely typo)."""
    if not isinstance(documented, dict):
        return []
    return [
        Problem(_location([name]), f"{name!r} is not a documented input{hint}")
        for name in inputs
        if isinstance(name, str)
        and name not in documented
        and (hint := did_you_mean(name, [str(k) for k in documented]))
    ]


def _unknown_input(name: str, accepted: list[str]) -> str:
    suggestion = did_you_mean(name, accepted)
    if suggestion:
        return f"unknown input {name!r}{suggestion}"
    if not accepted:
        return f"unknown input {name!r}; this program takes no inputs"
    return f"unknown input {name!r}; this program takes: {', '.join(accepted)}"


def inputs_validator(schema: dict[str, Any]) -> Validator:
    """A validator for ``schema`` that knows numpy values and never fetches remote ``$ref``s."""
    cls = _numpy_aware(validator_for(schema, default=Draft202012Validator))
    return cls(schema, registry=Registry())


@functools.cache
def _numpy_aware(cls: type[Validator]) -> type[Validator]:
    base = cls.TYPE_CHECKER

    def is_integer(checker: Any, instance: Any) -> bool:
        return base.is_type(instance, "integer") or isinstance(instance, _numpy("integer"))

    def is_number(checker: Any, instance: Any) -> bool:
        # jsonschema counts complex as a number (numbers.Number); JSON has no complex numbers.
        if isinstance(instance, (complex, *_numpy("complexfloating"))):
            return False
        return base.is_type(instance, "number") or isinstance(
            instance, _numpy("integer", "floating")
        )

    def is_array(checker: Any, instance: Any) -> bool:
        return base.is_type(instance, "array") or isinstance(instance, (tuple, *_numpy("ndarray")))

    def is_boolean(checker: Any, instance: Any) -> bool:
        return base.is_type(instance, "boolean") or isinstance(instance, _numpy("bool_"))

    checker = base.redefine_many(
        {"integer": is_integer, "number": is_number, "array": is_array, "boolean": is_boolean}
    )
    return extend(cls, type_checker=checker)


def _numpy(*names: str) -> tuple[type, ...]:
    """Numpy's types by name, or none while numpy is not imported: then no value is one of them
    (the server validates inputs without loading numpy; a decoder that makes them loads it)."""
    numpy = sys.modules.get("numpy")
    return tuple(getattr(numpy, name) for name in names) if numpy is not None else ()


def _comparable(value: Any) -> Any:
    """Copy inputs with numpy values as plain Python so ``enum``, ``const`` and messages behave.

    Numpy arrays compare elementwise, which breaks jsonschema's equality checks; the type checker
    alone would accept them but not compare them. Other objects (circuits...) are left as they are.
    """
    if isinstance(value, _numpy("ndarray")):
        return _comparable(value.tolist()) if value.dtype == object else value.tolist()
    if isinstance(value, _numpy("generic")):
        return value.item()
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_comparable(v) for v in value]
    return value


def _location(path: Any) -> str:
    return "inputs" + "".join(
        f"[{part}]"
        if isinstance(part, int)
        else f".{part}"
        if isinstance(part, str) and part.isidentifier()
        else f"[{part!r}]"
        for part in path
    )


def _problem(error: ValidationError) -> Problem:
    location = _location(error.absolute_path)
    message = error.message
    if len(message) > _MAX_MESSAGE_CHARS:
        message = message[: _MAX_MESSAGE_CHARS - 3] + "..."
    return Problem(location, message)
