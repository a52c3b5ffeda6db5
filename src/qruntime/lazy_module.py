"""A module imported on first attribute use, so a server starts without Qiskit's seconds of imports.

The compatibility routes need Qiskit only while they translate a request; ``import_module`` holds
the import lock, so two threads that first touch the module at once import it once.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for module ``name``; the first attribute read imports it."""

    def __init__(self, name: str):
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


def lazy_module(name: str) -> Any:
    """``name`` as a module loaded on first use (typed ``Any``: it stands for any module)."""
    return LazyModule(name)
