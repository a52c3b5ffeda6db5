"""The Python packages a job can import: those installed with the server (jobs share its
interpreter), named in ``qruntime environment`` and when a program imports a missing module."""

from __future__ import annotations

import importlib.metadata
import platform
import re

#: Listed first, and named in the hint after a ModuleNotFoundError.
NOTABLE = (
    "qiskit",
    "qiskit-aer",
    "qiskit-ibm-runtime",
    "numpy",
    "scipy",
    "mthree",
    "qiskit-qasm3-import",
)


def python_version() -> str:
    return platform.python_version()


def installed_packages() -> list[tuple[str, str]]:
    """``(name, version)`` of every installed distribution, by normalised name."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(_normalise(name), dist.version)
    return sorted(found.items())


def notable_packages() -> list[tuple[str, str]]:
    installed = dict(installed_packages())
    return [(name, installed[name]) for name in NOTABLE if name in installed]


def missing_module_hint(module: str | None) -> str:
    """What to tell the author of a program that imported a module the server lacks."""
    listed = ", ".join(f"{name} {version}" for name, version in notable_packages())
    what = f"{module!r} is not installed where jobs run" if module else "a module is missing"
    return (
        f"qruntime: {what}. Jobs can import the packages installed with the server "
        f"(Python {python_version()}: {listed}, ...); `qruntime environment` lists them all."
    )


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
