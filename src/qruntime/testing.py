"""Helpers for program authors' tests: run ``main`` in-process as the service would.

Inputs (and the result) go through a RuntimeEncoder/RuntimeDecoder round trip first, so a
test fails here if the service could not carry the values.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from qiskit.providers import BackendV2

from qruntime.backends import get_backend
from qruntime.domain.naming import module_to_program_name
from qruntime.execution.program_loader import load_program
from qruntime.serialization import RuntimeDecoder, RuntimeEncoder

__all__ = ["FakeUserMessenger", "ProgramRun", "load_program_file", "round_trip", "run_program"]


def round_trip(value: Any, encoder: type[json.JSONEncoder] = RuntimeEncoder) -> Any:
    """What the other side of the service receives when ``value`` is sent."""
    return json.loads(json.dumps(value, cls=encoder), cls=RuntimeDecoder)


@dataclass
class FakeUserMessenger:
    """Records what a program publishes, decoded as a client's callback would see it."""

    messages: list[Any] = field(default_factory=list)
    final: Any = None
    has_final: bool = False

    def publish(
        self, message: Any, encoder: type[json.JSONEncoder] = RuntimeEncoder, final: bool = False
    ) -> None:
        decoded = round_trip(message, encoder)
        if final:
            self.final, self.has_final = decoded, True
        else:
            self.messages.append(decoded)


@dataclass(frozen=True)
class ProgramRun:
    """The outcome of :func:`run_program`: the final result and every interim message."""

    result: Any
    messages: list[Any]


def load_program_file(path: str | Path) -> ModuleType:
    """Import ``runtime/program_name.py`` as its own module, without touching ``sys.path``."""
    path = Path(path)
    name = module_to_program_name(path.stem)
    return load_program(
        path.read_text(encoding="utf-8"),
        name,
        module_name=f"qruntime_program_{path.stem}",
        filename=str(path),
    )


def run_program(
    program: str | Path | ModuleType | Callable[..., Any],
    inputs: Mapping[str, Any] | None = None,
    *,
    backend: str | BackendV2 = "aer_simulator",
    messenger: FakeUserMessenger | None = None,
) -> ProgramRun:
    """Call the program's ``main(backend, messenger, **inputs)`` in this process."""
    main = _main_of(program)
    messenger = messenger or FakeUserMessenger()
    backend_obj = get_backend(backend) if isinstance(backend, str) else backend
    result = main(backend_obj, messenger, **round_trip(dict(inputs or {})))
    if result is None and messenger.has_final:
        return ProgramRun(messenger.final, messenger.messages)
    return ProgramRun(round_trip(result), messenger.messages)


def _main_of(program: str | Path | ModuleType | Callable[..., Any]) -> Callable[..., Any]:
    if isinstance(program, str | Path):
        program = load_program_file(program)
    if isinstance(program, ModuleType):
        return program.main
    return program
