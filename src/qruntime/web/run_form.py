"""The run form of a program page: its fields as typed, and their parsing into a job request."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from qruntime.backends import IDEAL_SIMULATOR
from qruntime.domain.errors import InvalidInputsError, Problem, QRuntimeError, ValidationFailed
from qruntime.web.spec_view import input_skeleton


@dataclass(frozen=True)
class RunForm:
    """Kept as text, so a refused form comes back exactly as the user typed it."""

    backend: str
    inputs: str
    max_execution_time: str = ""

    @classmethod
    def initial(cls, parameters: dict[str, Any] | None, backends: list[str]) -> RunForm:
        backend = IDEAL_SIMULATOR if IDEAL_SIMULATOR in backends else (backends or [""])[0]
        return cls(backend, json.dumps(input_skeleton(parameters), indent=2))

    def parsed_inputs(self) -> Any:
        """The inputs as RuntimeEncoder JSON; the job service checks them against the schema."""
        try:
            return json.loads(self.inputs or "{}", parse_constant=_refuse_constant)
        except ValueError as exc:
            raise InvalidInputsError(Problem("inputs", f"not valid JSON: {exc}")) from None

    def time_limit(self) -> float | None:
        text = self.max_execution_time.strip()
        if not text:
            return None
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise ValidationFailed(Problem("max_execution_time", f"not a number: {text!r}"))
        return value


def problems_of(exc: QRuntimeError) -> list[Problem]:
    """Every problem a refused submit names, for the list next to the form."""
    if isinstance(exc, ValidationFailed):
        return exc.problems
    return [Problem("", str(exc))]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")
